"""The Checkpoint view under Streamlit's AppTest, on the reversal checkpoint."""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from app_helpers import (
    PRETRAINED,
    add_model,
    figure_titled,
    plotly_array,
    record_downloads,
    url_value,
)
from app_helpers import run_app as app_run
from streamlit.proto.WidgetStates_pb2 import WidgetState
from streamlit.testing.v1 import AppTest

from attnviz.checkpoint import save_weights
from attnviz.model import AttentionRNN
from attnviz.ui.checkpoint_open import ALLOW_PATHS_ENV

HISTORY = (
    "step,epoch,lr,train_loss,dev_loss,dev_bleu,target_tokens,tokens_per_s,elapsed_s\n"
    "100,1,0.01,4.1,3.9,2.5,1000,500,2\n"
    "200,2,0.01,2.0,1.8,40.0,2000,500,4\n"
    "300,3,0.01,0.9,0.7,91.5,3000,500,6\n"
)
SOURCES = "a b c\nd e f g\nh i\n"
REFERENCES = "c b a\ng f e d\ni h\n"


@pytest.fixture
def models(reversal_checkpoint, app_models) -> Path:
    """The reversal checkpoint with a hand-written history.csv."""
    add_model(app_models, "reversal-additive", reversal_checkpoint)
    (app_models / "reversal-additive" / "history.csv").write_text(HISTORY, encoding="utf-8")
    return app_models


@pytest.fixture
def with_snapshots(models, reversal_model) -> Path:
    """The reversal checkpoint with an untrained snapshot (step-0) and the trained weights
    (step-300): attention at step-0 is nothing like the final one."""
    folder = models / "reversal-additive"
    model, _ = reversal_model
    torch.manual_seed(1)
    save_weights(folder / "snapshots" / "step-0.safetensors", AttentionRNN(model.config))
    save_weights(folder / "snapshots" / "step-300.safetensors", model)
    return folder


def run_app(**query: str) -> AppTest:
    return app_run(**{"view": "checkpoint", **query})


def messages(app: AppTest, kind: str) -> str:
    """All st.error/st.warning/st.info bodies, Markdown escapes removed."""
    return " ".join(e.value for e in getattr(app, kind)).replace("\\", "")


def heatmap_weights(spec: dict) -> np.ndarray:
    return plotly_array(spec["data"][0]["z"])


def table(app: AppTest, key: str | None = None):
    frames = [d.value for d in app.dataframe if key is None or d.key == key]
    assert len(frames) == 1
    return frames[0]


def zipped(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def folder_zip(folder: Path, replace: dict[str, bytes] | None = None) -> bytes:
    files = {f"ckpt/{p.name}": p.read_bytes() for p in folder.iterdir() if p.is_file()}
    return zipped(files | {f"ckpt/{k}": v for k, v in (replace or {}).items()})


# -- card, config, curve --------------------------------------------------------------------


def test_bundled_checkpoint_shows_card_config_and_curve(models):
    app = run_app()
    assert not app.exception
    assert app.radio(key="ckpt").value == "bundled"
    assert "synthetic word reversal" in " ".join(t.value for t in app.text)
    config = table(app).set_index("setting")["value"]
    assert config["scorer"] == "additive" and config["name"] == "reversal-additive"
    curve = figure_titled(app, "Training of reversal-additive")
    traces = {t["name"]: t for t in curve["data"]}
    assert traces["dev BLEU"]["y"] == [2.5, 40.0, 91.5]
    assert traces["train loss"]["yaxis"] == "y2" and traces["dev loss"]["x"] == [100, 200, 300]
    assert url_value(app, "ckpt") == "bundled"


def test_missing_or_malformed_history_gives_a_message(models):
    history = models / "reversal-additive" / "history.csv"
    history.unlink()
    app = run_app()
    assert not app.exception and "no history.csv" in messages(app, "info")
    history.write_text("step,dev_bleu\n100,3.2\n200,oops\n", encoding="utf-8")
    app = run_app()
    assert not app.exception
    assert "line 3: dev_bleu 'oops' is not a number" in messages(app, "warning")


# -- snapshots ------------------------------------------------------------------------------


def test_snapshot_slider_shows_attention_at_each_snapshot(with_snapshots):
    app = run_app(text="a b c d")
    assert not app.exception
    slider = app.select_slider(key="snapshot")
    assert slider.options == ["step 0", "step 300", "final weights"]  # stops by their step
    assert slider.value == "step-0"
    untrained = heatmap_weights(figure_titled(app, "at step 0 ("))
    app = slider.set_value("final weights").run()
    assert not app.exception
    assert "d c b a" in [t.value for t in app.text]
    final = heatmap_weights(figure_titled(app, "at final weights"))
    assert untrained.shape != final.shape or not np.allclose(untrained, final)
    # trained: each output word looks hardest at its mirror image ("d c b a" <- "a b c d")
    assert final[:4].argmax(axis=1).tolist() == [3, 2, 1, 0]
    assert url_value(app, "snapshot") == "final weights"
    curve = figure_titled(app, "Training of")
    assert "step 300" in json.dumps(curve["layout"]["annotations"])  # snapshots marked


def test_snapshot_from_the_url(with_snapshots):
    app = run_app(text="a b c d", snapshot="step-300")
    assert app.select_slider(key="snapshot").value == "step-300"
    assert "d c b a" in [t.value for t in app.text]


# -- opening a folder or a zip --------------------------------------------------------------


def test_server_folders_are_not_offered_unless_the_operator_allows_some(models, monkeypatch):
    monkeypatch.delenv(ALLOW_PATHS_ENV, raising=False)
    app = run_app(ckpt="path", ckpt_path="/etc")
    assert not app.exception
    assert "path" not in app.radio(key="ckpt").options
    assert app.radio(key="ckpt").value == "bundled"
    assert not app.text_input and url_value(app, "ckpt_path") is None


def open_folder(monkeypatch, allowed: Path, typed: str) -> AppTest:
    """The view with server folders under ``allowed`` permitted and ``typed`` in the box."""
    monkeypatch.setenv(ALLOW_PATHS_ENV, str(allowed))
    app = run_app(ckpt="path")
    assert app.radio(key="ckpt").value == "path"
    return app.text_input(key="ckpt_path").input(typed).run()


def test_a_checkpoint_in_an_allowed_folder_opens_and_stays_out_of_the_url(
    models, reversal_checkpoint, monkeypatch
):
    app = open_folder(monkeypatch, reversal_checkpoint.parent, str(reversal_checkpoint))
    assert not app.exception and not app.error
    assert table(app).set_index("setting")["value"]["name"] == "reversal-additive"
    assert str(reversal_checkpoint) not in json.dumps(dict(app.query_params))
    relative = open_folder(monkeypatch, reversal_checkpoint.parent, reversal_checkpoint.name)
    assert table(relative).set_index("setting")["value"]["name"] == "reversal-additive"


def test_a_path_from_a_link_is_not_opened(models, reversal_checkpoint, monkeypatch):
    monkeypatch.setenv(ALLOW_PATHS_ENV, str(reversal_checkpoint.parent))
    app = run_app(ckpt="path", ckpt_path=str(reversal_checkpoint))
    assert not app.exception
    assert app.text_input(key="ckpt_path").value == ""
    assert url_value(app, "ckpt_path") is None


def test_path_that_does_not_exist_gives_a_message(models, tmp_path, monkeypatch):
    app = open_folder(monkeypatch, tmp_path, str(tmp_path / "nowhere"))
    assert not app.exception
    assert "no such checkpoint folder" in messages(app, "error")


@pytest.mark.parametrize("escape", ["outside", "dotdot", "symlink"])
def test_a_folder_outside_the_allowed_ones_is_refused(
    models, reversal_checkpoint, tmp_path, monkeypatch, escape
):
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    typed = {
        "outside": str(reversal_checkpoint),
        "dotdot": str(allowed / ".." / ".." / reversal_checkpoint.relative_to(tmp_path.parent)),
        "symlink": "link",
    }[escape]
    (allowed / "link").symlink_to(reversal_checkpoint, target_is_directory=True)
    app = open_folder(monkeypatch, allowed, typed)
    assert not app.exception
    assert "outside the folders this server opens" in messages(app, "error")
    assert not app.dataframe


@pytest.mark.parametrize(
    "upload, message",
    [
        (b"this is not a zip", "not a zip file"),
        (zipped({"../evil/config.json": b"{}"}), "unsafe path"),
        ("pickle", "never unpickles"),
    ],
    ids=["corrupt", "path-traversal", "pickle"],
)
def test_bad_upload_gives_a_message_and_the_app_still_works(models, upload, message):
    if upload == "pickle":
        weights = pickle.dumps({"embed.weight": [1.0, 2.0]})
        upload = folder_zip(models / "reversal-additive", {"model.safetensors": weights})
    app = run_app(ckpt="upload")
    assert not app.exception and "cannot travel in a link" in " ".join(c.value for c in app.caption)
    app = app.file_uploader(key="ckpt_zip").upload("ckpt.zip", upload, "application/zip").run()
    assert not app.exception
    assert message in messages(app, "error")
    app = app.radio(key="ckpt").set_value("bundled").run()
    assert not app.exception and not app.error
    assert table(app).set_index("setting")["value"]["name"] == "reversal-additive"


def test_uploaded_zip_of_a_checkpoint_opens_it(models):
    upload = folder_zip(models / "reversal-additive")
    app = run_app(ckpt="upload")
    app = app.file_uploader(key="ckpt_zip").upload("ckpt.zip", upload, "application/zip").run()
    assert not app.exception and not app.error
    assert figure_titled(app, "Training of reversal-additive")


# -- running a file -------------------------------------------------------------------------


def upload_parallel(app: AppTest, sources: str, references: str) -> AppTest:
    app = app.radio(key="run_kind").set_value("parallel").run()
    app.file_uploader(key="run_source").upload("src.txt", sources.encode(), "text/plain")
    app.file_uploader(key="run_reference").upload("ref.txt", references.encode(), "text/plain")
    return app.run()


def test_parallel_files_with_different_line_counts_give_a_message(models):
    app = upload_parallel(run_app(), SOURCES, "c b a\n")
    assert not app.exception
    assert "src.txt has 3 lines but ref.txt has 1" in messages(app, "error")


def test_parallel_set_gives_scores_and_a_table(models):
    app = upload_parallel(run_app(beam="1"), SOURCES, REFERENCES)
    assert not app.exception and not app.error
    rows = table(app, "corpus_table")
    assert list(rows["translation"]) == ["c b a", "g f e d", "i h"]
    assert list(rows["line"]) == [1, 2, 3] and "mean entropy" in rows and "dropped" in rows
    bleu = [m for m in app.metric if m.label == "BLEU"]
    assert len(bleu) == 1 and float(bleu[0].value) > 90


def test_the_run_exports_corpus_scores_and_a_row_per_sentence(models, monkeypatch):
    downloads = record_downloads(monkeypatch)
    app = upload_parallel(run_app(beam="1"), SOURCES, REFERENCES)
    assert not app.exception
    name, data = downloads["JSON"]
    assert name == "checkpoint-reversal-additive-run-parallel-beam-1.json"
    exported = json.loads(data())
    assert [row["translation"] for row in exported["sentences"]] == ["c b a", "g f e d", "i h"]
    assert [row["line"] for row in exported["sentences"]] == [1, 2, 3]
    assert exported["corpus"]["sentences"] == 3 and exported["corpus"]["quality"]["bleu"] > 90


def test_the_view_opens_with_run_a_file_and_the_curve_then_the_card(models):
    app = run_app()
    headings = [h.value for h in app.subheader]
    assert headings.index("Run a file") < headings.index("Training curve")
    assert headings.index("Training curve") < headings.index("Model card")
    captions = " ".join(c.value for c in app.caption).replace("\\", "")
    assert "Across: the training step" in captions  # the curve says what it shows


def test_the_card_reads_as_tables_whose_text_wraps(models):
    card = json.loads((PRETRAINED / "reversal-additive" / "card.json").read_text())
    (models / "reversal-additive" / "card.json").write_text(json.dumps(card))
    app = run_app()
    assert not app.exception
    tables = [t.value for t in app.table]
    data = [t for t in tables if "corpus" in t.columns]
    assert list(data[0]["corpus"]) == [d["corpus"] for d in card["data"]]
    training = [t for t in tables if "steps" in list(t.get("field", []))]
    assert training and training[0].set_index("field")["value"]["steps"] == str(
        card["training"]["steps"]
    )


def test_sentence_file_gives_a_table_without_references(models):
    app = run_app(beam="1")
    app.file_uploader(key="run_sentences").upload("s.txt", b"a b\n\nc d e\n", "text/plain")
    app = app.run()
    assert not app.exception
    rows = table(app, "corpus_table")
    assert list(rows["line"]) == [1, 3] and "reference" not in rows
    assert not [m for m in app.metric if m.label == "BLEU"]


def select_row(app: AppTest, key: str, row: int) -> AppTest:
    """Click a row of the dataframe ``key``. AppTest has no public way to select dataframe
    rows, so this sends the widget state the browser sends (private AppTest API of
    Streamlit 1.67): the app's own on_select callback then runs exactly as in a browser."""
    (frame,) = [d for d in app.dataframe if d.key == key]
    states = app._tree.get_widget_states()
    selection = {"selection": {"rows": [row], "columns": [], "cells": []}}
    states.widgets.append(WidgetState(id=frame.proto.id, string_value=json.dumps(selection)))
    return app._run(states)


def test_selecting_a_row_opens_its_sentence_in_align(models):
    app = upload_parallel(run_app(beam="1"), SOURCES, REFERENCES)
    app = select_row(app, "corpus_table", 1)
    assert not app.exception
    assert app.radio(key="view").value == "align"
    assert app.text_input(key="text").value == "d e f g"
    assert "g f e d" in [t.value for t in app.text]  # the Align view translated it
    assert url_value(app, "view") == "align"


def test_gold_links_give_aer(models):
    app = upload_parallel(run_app(beam="1"), SOURCES, REFERENCES)
    gold = b"0-2 1-1 2-0\n0-3 1-2 2-1 3-0\n0-1 1-0\n"
    app = app.file_uploader(key="run_gold").upload("gold.txt", gold, "text/plain").run()
    assert not app.exception and not app.error
    aer = [m for m in app.metric if m.label == "AER"]
    assert len(aer) == 1 and float(aer[0].value) < 0.5
    assert "AER" in table(app, "corpus_table")


def test_gold_link_out_of_range_names_the_line(models):
    app = upload_parallel(run_app(beam="1"), SOURCES, REFERENCES)
    gold = b"0-2 1-1 2-0\n0-3 9-2\n0-1 1-0\n"
    app = app.file_uploader(key="run_gold").upload("gold.txt", gold, "text/plain").run()
    assert not app.exception
    assert "gold.txt, line 2: link 9-2 (0-based) points past the end" in messages(app, "error")
