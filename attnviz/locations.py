"""Where attnviz finds its checkpoints, example sentences and the app's entry script.

Two layouts are served by the same rules: a clone of the repository (``pretrained/`` and
``assets/`` beside the package) and an installed wheel, which carries the default model and
the examples inside the package (``attnviz/pretrained/``, ``attnviz/assets/``; see setup.py).
The package's own copy wins, so an installed attnviz never reads a stray folder that happens
to sit next to site-packages; ``ATTNVIZ_MODELS`` overrides both for the checkpoints.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "APP_SCRIPT",
    "DEFAULT_MODEL",
    "MODELS_ENV",
    "PACKAGE_DIR",
    "default_model",
    "examples_file",
    "model_path",
    "models_dir",
]

PACKAGE_DIR = Path(__file__).resolve().parent
# The clone's top folder; in an installed wheel it is site-packages and has neither folder.
_CLONE_DIR = PACKAGE_DIR.parent
MODELS_ENV = "ATTNVIZ_MODELS"
DEFAULT_MODEL = "en-fr-additive"
# What `attnviz app` hands to `streamlit run`; it ships inside the package.
APP_SCRIPT = PACKAGE_DIR / "ui" / "entry.py"


def _packaged_or_clone(name: str) -> Path:
    packaged = PACKAGE_DIR / name
    return packaged if packaged.exists() else _CLONE_DIR / name


def models_dir() -> Path:
    """The folder of checkpoint folders: ``ATTNVIZ_MODELS``, else the bundled ones."""
    override = os.environ.get(MODELS_ENV)
    return Path(override) if override else _packaged_or_clone("pretrained")


def default_model() -> Path:
    """The checkpoint the app opens first and the commands use without ``--model``."""
    return models_dir() / DEFAULT_MODEL


def model_path(model: str | Path | None) -> Path:
    """A ``--model`` value as a folder: None is the default model; an existing path is
    itself; otherwise a name is looked up among the bundled checkpoints (``en-de-additive``)."""
    if model is None:
        return default_model()
    path = Path(model)
    if path.exists() or len(path.parts) != 1:
        return path
    bundled = models_dir() / path
    return bundled if bundled.is_dir() else path


def examples_file() -> Path:
    """The example sentences the app offers, one per line."""
    return _packaged_or_clone("assets") / "examples.txt"
