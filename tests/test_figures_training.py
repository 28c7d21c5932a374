"""The training curve: history.csv read strictly, drawn with BLEU and losses on two axes."""

from __future__ import annotations

import pandas as pd
import pytest

from attnviz.checkpoint import snapshot_steps
from attnviz.errors import CheckpointError
from attnviz.figures.training import (
    MAX_HISTORY_BYTES,
    read_history,
    training_curve,
)

HISTORY = (
    "step,epoch,lr,train_loss,dev_loss,dev_bleu,target_tokens,tokens_per_s,elapsed_s\n"
    "2000,1,0.001,3.5879,2.1150,25.32,3979650,2333,1705\n"
    "1000,0,0.001,5.3188,3.0291,8.82,1989850,2694,738\n"
)


def write(tmp_path, text: str):
    path = tmp_path / "history.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_history_is_read_as_numbers_sorted_by_step(tmp_path):
    history = read_history(write(tmp_path, HISTORY))
    assert list(history.columns) == ["step", "dev_bleu", "train_loss", "dev_loss"]
    assert list(history["step"]) == [1000.0, 2000.0] and list(history["dev_bleu"]) == [8.82, 25.32]


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "expected a header with step"),
        ("epoch,lr\n1,0.1\n", "expected a header with step"),
        ("step,dev_bleu\n", "no rows yet"),
        ("step,dev_bleu\n100,1.0\n200,nan\n", "line 3: dev_bleu 'nan' is not a number"),
        ("step,dev_loss\n100\n", "line 2: dev_loss None is not a number"),
    ],
)
def test_malformed_history_names_what_is_wrong(tmp_path, text, message):
    with pytest.raises(CheckpointError, match=message):
        read_history(write(tmp_path, text))


def test_oversized_or_binary_history_is_refused(tmp_path):
    path = tmp_path / "history.csv"
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(CheckpointError, match="not UTF-8"):
        read_history(path)
    path.write_bytes(b"1" * (MAX_HISTORY_BYTES + 1))
    with pytest.raises(CheckpointError, match="over the"):
        read_history(path)


def test_curve_puts_bleu_left_and_losses_right(tmp_path):
    figure = training_curve(read_history(write(tmp_path, HISTORY)), "Training of <b>x</b>")
    traces = {t.name: t for t in figure.data}
    assert set(traces) == {"dev BLEU", "train loss", "dev loss"}
    assert traces["dev BLEU"].yaxis == "y" and traces["dev loss"].yaxis == "y2"
    assert list(traces["train loss"].y) == [5.3188, 3.5879]
    assert figure.layout.yaxis2.overlaying == "y"
    assert figure.layout.title.text == "Training of &lt;b&gt;x&lt;/b&gt;"


def test_losses_alone_use_one_axis_and_snapshots_are_marked():
    history = pd.DataFrame({"step": [1.0, 2.0], "dev_loss": [3.0, 2.0]})
    marks = snapshot_steps(["step-250", "best", "step_1000", "<i>step-9</i>"])
    assert marks == [(250, "step-250"), (1000, "step_1000")]
    figure = training_curve(history, "t", marks)
    assert figure.data[0].yaxis == "y" and figure.layout.yaxis.title.text == "loss"
    assert [shape.x0 for shape in figure.layout.shapes] == [250, 1000]
    assert [a.text for a in figure.layout.annotations] == ["step-250", "step_1000"]


def test_no_axis_of_the_curve_reaches_below_zero():
    # Losses near zero: Plotly's autorange would pad the axis below 0 and tick negative losses.
    history = pd.DataFrame(
        {
            "step": [1.0, 2.0],
            "dev_bleu": [0.0, 99.0],
            "train_loss": [0.01, 0.0],
            "dev_loss": [0.02, 0.0],
        }
    )
    both = training_curve(history, "t")
    assert both.layout.yaxis.rangemode == "nonnegative"
    assert both.layout.yaxis2.rangemode == "nonnegative"
    losses = training_curve(history.drop(columns="dev_bleu"), "t")
    assert losses.layout.yaxis.rangemode == "nonnegative"


def test_snapshot_labels_close_together_are_staggered_and_far_ones_share_the_top_row():
    history = pd.DataFrame({"step": [0.0, 6000.0], "dev_loss": [3.0, 1.0]})
    marks = [(250, "step 250"), (500, "step 500"), (750, "step 750"), (5000, "step 5000")]
    figure = training_curve(history, "t", marks)
    labels = {a.text: a for a in figure.layout.annotations}
    assert set(labels) == {label for _, label in marks}  # every label kept, whole
    rows = [labels[label].y for _, label in marks]
    assert rows[0] == rows[3] == 1  # far apart: both on the top row
    assert len({rows[0], rows[1], rows[2]}) == 3  # each close one a row lower
