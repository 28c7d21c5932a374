"""The app under Streamlit's AppTest on models the real toolkits trained (tests/fixtures/toolkits):
every view works on an imported model, and the Checkpoint view imports an uploaded Joey NMT
model folder (zip) or OpenNMT-py checkpoint (.pt) itself."""

from __future__ import annotations

import argparse
import io
import zipfile
from pathlib import Path

import pytest
import torch
from app_helpers import figure_specs, run_app
from streamlit.testing.v1 import AppTest

from attnviz.importers import import_model

TOOLKITS = Path(__file__).resolve().parent / "fixtures" / "toolkits"
JOEY = TOOLKITS / "joey-lstm-luong"
ONMT = TOOLKITS / "onmt-gru-mlp"


def first_line(folder: Path, file: str) -> str:
    return (folder / file).read_text(encoding="utf-8").splitlines()[0]


@pytest.fixture
def models(app_models) -> Path:
    """The Joey NMT LSTM fixture imported into the app's models folder, as its only model."""
    import_model("joey", JOEY, app_models / "joey-lstm-luong")
    return app_models


def run_view(view: str, **query: str) -> AppTest:
    app = run_app(view=view, model="joey-lstm-luong", text=first_line(JOEY, "src.txt"), **query)
    assert not app.exception and not app.error, [e.value for e in app.error]
    return app


def test_align_shows_the_toolkits_translation_and_its_attention(models):
    app = run_view("align", beam="5")
    assert [t.value for t in app.text][0] == first_line(JOEY, "beam5.txt")
    heatmaps = [s for s in figure_specs(app) if s["data"][0]["type"] == "heatmap"]
    assert heatmaps and heatmaps[0]["layout"]["xaxis"]["ticktext"][-1] == "&lt;/s&gt;"


def test_step_through_beam_and_what_if_work_on_the_imported_model(models):
    step = run_view("step", beam="1", step="2")
    assert "step 2 of" in figure_specs(step)[0]["layout"]["title"]["text"]
    beam = run_view("beam", beam="5")
    assert "The red path is the picked hypothesis" in " ".join(c.value for c in beam.caption)
    whatif = run_view("whatif", beam="1")
    assert whatif.text_area(key="target").value == first_line(JOEY, "greedy.txt")


def zip_folder(folder: Path) -> bytes:
    """The folder zipped as `zip -r` does: best.ckpt (a symlink) stored as the file it names."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.iterdir()):
            archive.writestr(f"model/{path.name}", path.read_bytes())
    return buffer.getvalue()


def config_table(app: AppTest):
    frames = [d.value for d in app.dataframe]
    assert frames, "the Checkpoint view shows its config table"
    return frames[0]


def test_checkpoint_view_shows_an_imported_model(models):
    app = run_view("checkpoint")
    assert "lstm" in config_table(app).to_string()


def test_checkpoint_view_imports_an_uploaded_joey_folder(models):
    app = run_app(view="checkpoint", ckpt="upload")
    upload = zip_folder(TOOLKITS / "joey-gru-bahdanau")
    app = app.file_uploader(key="ckpt_zip").upload("model.zip", upload, "application/zip").run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    shown = config_table(app).to_string()
    assert "gru" in shown and "bridge" in shown and "joey-lstm" not in shown


def test_checkpoint_view_imports_an_uploaded_onmt_checkpoint(models):
    app = run_app(view="checkpoint", ckpt="upload")
    data = (ONMT / "model.pt").read_bytes()
    app = app.file_uploader(key="ckpt_zip").upload("model.pt", data, "application/octet-stream")
    app = app.run()
    assert not app.exception
    error = " ".join(e.value for e in app.error)
    assert "sentencepiece transform" in error and "tokenizer uploads" in error
    tokenizer = (ONMT / "spm.model").read_bytes()
    app = app.file_uploader(key="ckpt_src_tokenizer").upload("spm.model", tokenizer, "")
    app = app.run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    assert "additive" in config_table(app).to_string()


class Payload:
    """Unpickling this object opens (creates) ``marker``: a stand-in for any code."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (open, (self.marker, "w"))


def test_uploaded_checkpoint_with_a_payload_is_refused_and_never_runs(models, tmp_path):
    marker = tmp_path / "pwned"
    with torch.serialization.safe_globals([argparse.Namespace]):
        content = torch.load(ONMT / "model.pt", weights_only=True)
    content["extra"] = Payload(str(marker))
    buffer = io.BytesIO()
    torch.save(content, buffer)
    app = run_app(view="checkpoint", ckpt="upload")
    upload = app.file_uploader(key="ckpt_zip").upload("model.pt", buffer.getvalue(), "")
    app = upload.run()
    assert not app.exception
    assert "never runs code" in " ".join(e.value for e in app.error)
    assert not marker.exists()
    app = app.radio(key="ckpt").set_value("bundled").run()
    assert not app.exception and not app.error
