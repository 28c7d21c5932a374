"""What the app tests share: running the app under AppTest from a URL, reading the URL and the
figures back, and filling the models folder the ``app_models`` fixture (conftest) points at."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from streamlit.delta_generator import DeltaGenerator
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
PRETRAINED = ROOT / "pretrained"


def run_app(**query: str) -> AppTest:
    """The app after its first run, opened on a URL with these query parameters."""
    app = AppTest.from_file(APP, default_timeout=60)
    for key, value in query.items():
        app.query_params[key] = value
    return app.run()


def url_value(app: AppTest, key: str) -> str | None:
    """The URL's value of ``key`` (AppTest keeps a list or a plain string); None if absent."""
    value = app.query_params.get(key)
    return value[0] if isinstance(value, list) else value


def add_model(folder: Path, name: str, source: Path | str | None = None) -> Path:
    """Copy a checkpoint folder into the app's models ``folder`` as ``name``. ``source``: a
    folder, or the name of a pretrained model (default: ``name``). Snapshots and the training
    history are left out: they make copies slow and no view needs them unless a test adds them."""
    if source is None or isinstance(source, str):
        source = PRETRAINED / (source or name)
    return shutil.copytree(
        source, folder / name, ignore=shutil.ignore_patterns("snapshots", "history.csv")
    )


def figure_specs(app: AppTest) -> list[dict]:
    """Plotly figure specs on the page, in page order."""
    return [json.loads(chart.proto.spec) for chart in app.get("plotly_chart")]


def figure_titled(app: AppTest, title_part: str) -> dict:
    """The one figure whose title contains ``title_part``."""
    specs = figure_specs(app)
    found = [s for s in specs if title_part in s["layout"]["title"]["text"]]
    assert len(found) == 1, [s["layout"]["title"]["text"] for s in specs]
    return found[0]


def plotly_array(value: dict | list) -> np.ndarray:
    """A numeric array of a figure spec: Plotly writes numpy arrays as base64 typed arrays."""
    if isinstance(value, dict) and "bdata" in value:
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        shape = value.get("shape")
        return flat.reshape([int(n) for n in shape.split(",")]) if shape else flat
    return np.asarray(value)


def record_downloads(monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple[str, object]]:
    """From now on, every download button the app offers, by label: (file name, data). The
    data is what the button was given: bytes, text, or the callable that makes the file."""
    offered: dict[str, tuple[str, object]] = {}
    original = DeltaGenerator.download_button

    def download_button(self, label, data, file_name=None, *args, **kwargs):
        offered[label] = (file_name, data)
        return original(self, label, data, file_name, *args, **kwargs)

    monkeypatch.setattr(DeltaGenerator, "download_button", download_button)
    return offered
