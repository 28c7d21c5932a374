"""A wheel built from the repository works outside it: installed in a fresh environment, run
from another folder, it finds its default model and example sentences, translates, and the
app's first page draws. Offline: the wheel is built with this environment's setuptools, and
the fresh environment borrows this one's dependencies (only attnviz itself is installed)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "attnviz", "assets")
FLAGSHIP = ROOT / "pretrained" / "en-fr-additive"

# Run inside the installed environment: where attnviz comes from, and the app's first page.
APP_CHECK = """
import json
import attnviz
from attnviz.locations import APP_SCRIPT
from streamlit.testing.v1 import AppTest

app = AppTest.from_file(str(APP_SCRIPT), default_timeout=120).run()
assert not app.exception, app.exception
print(json.dumps({
    "package": attnviz.__file__,
    "model": app.selectbox(key="model").value,
    "sentence": app.text_input(key="text").value,
    "translation": app.text[0].value,
    "charts": len(app.get("plotly_chart")),
}))
"""


def run(command: list[str], cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "ATTNVIZ_MODELS"}
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, **kwargs
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh virtual environment with the wheel installed; returns its bin folder."""
    if not (FLAGSHIP / "config.json").is_file():
        pytest.skip(f"needs the bundled default model in {FLAGSHIP}")
    work = tmp_path_factory.mktemp("install")
    source = work / "source"  # a copy, so that building leaves nothing in the repository
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.png")
            shutil.copytree(ROOT / name, source / name, ignore=ignore)
        else:
            shutil.copy2(ROOT / name, source / name)
    shutil.copytree(
        FLAGSHIP, source / "pretrained" / FLAGSHIP.name, ignore=lambda *_: ["snapshots"]
    )
    pip = [sys.executable, "-m", "pip"]
    wheel_cmd = [
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "-w",
        "dist",
        "./source",
    ]
    run([*pip, *wheel_cmd], cwd=work)
    (wheel,) = (work / "dist").glob("attnviz-*.whl")
    venv = work / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=work)
    python = venv / "bin" / "python"
    target = run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=work
    ).stdout.strip()
    # This environment's dependencies, after the fresh one's own packages on sys.path.
    Path(target, "borrowed-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run([*pip, "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)], cwd=work)
    return venv / "bin"


@pytest.mark.slow
def test_wheel_carries_the_default_model_and_no_other(installed):
    site = next(installed.parent.glob("lib/python*/site-packages"))
    bundled = site / "attnviz" / "pretrained"
    assert [p.name for p in bundled.iterdir()] == [FLAGSHIP.name]
    names = {p.name for p in (bundled / FLAGSHIP.name).iterdir()}
    assert {"config.json", "model.safetensors", "spm.model", "card.json"} <= names
    assert "snapshots" not in names
    assert (site / "attnviz" / "assets" / "examples.txt").is_file()


@pytest.mark.slow
def test_installed_command_translates_from_another_folder(installed, tmp_path):
    out = run([str(installed / "attnviz"), "--version"], cwd=tmp_path).stdout
    assert out.startswith("attnviz ")
    sentence = "The red car is fast."
    result = run([str(installed / "attnviz"), "translate"], cwd=tmp_path, input=sentence + "\n")
    expected = __import__("attnviz").load(FLAGSHIP).translate(sentence).text
    assert result.stdout == expected + "\n"


@pytest.mark.slow
def test_installed_app_opens_its_first_page_from_another_folder(installed, tmp_path):
    page = json.loads(run([str(installed / "python"), "-c", APP_CHECK], cwd=tmp_path).stdout)
    assert page["package"].startswith(str(installed.parent))  # not this repository's copy
    assert page["model"] == FLAGSHIP.name
    card = json.loads((FLAGSHIP / "card.json").read_text(encoding="utf-8"))
    first_example = next(iter(card["examples"]))  # the page offers the model's own examples
    assert page["sentence"] == first_example
    assert page["translation"] == __import__("attnviz").load(FLAGSHIP).translate(first_example).text
    assert page["charts"] == 1
