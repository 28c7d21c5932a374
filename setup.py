"""Build hook: a wheel carries the app's default model and its example sentences.

Everything else is declared in pyproject.toml. The checkpoints live in ``pretrained/`` at
the repository root, outside the package; a clone finds them there (attnviz/locations.py),
an installed wheel inside the package. Only the model the app and the commands open by
default ships (8 MB): the other bundled checkpoints (92 MB in all) stay in the repository,
and ``--model`` or ``ATTNVIZ_MODELS`` point to them or to any other folder.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

# Repository path -> path inside the installed package. Snapshots (16 MB of earlier
# weights for the Checkpoint view's training slider) stay out.
BUNDLED = {
    **{
        f"pretrained/en-fr-additive/{name}": f"pretrained/en-fr-additive/{name}"
        for name in (
            "config.json",
            "model.safetensors",
            "spm.model",
            "card.json",
            "recipe.toml",
            "history.csv",
        )
    },
    "assets/examples.txt": "assets/examples.txt",
}


class BuildWithModel(build_py):
    """Copies the bundled files into the built package (not for editable installs, which
    read them from the clone)."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        for source, target in BUNDLED.items():
            destination = Path(self.build_lib) / "attnviz" / target
            self.mkpath(str(destination.parent))
            self.copy_file(source, str(destination))


setup(cmdclass={"build_py": BuildWithModel})
