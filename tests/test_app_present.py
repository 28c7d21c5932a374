"""Presentation mode under AppTest: every view folds its inputs into one closed expander, so
that its figures come first; outside it the same inputs stand on the page."""

from __future__ import annotations

import pytest
from app_helpers import add_model, run_app

from attnviz.attention import SCORERS

# view: (the expander's label, keys of inputs it must hold)
FOLDED = {
    "align": ("Sentence and settings", ["text", "beam"]),
    "step": ("Sentence and settings", ["text", "beam"]),
    "beam": ("Sentence and settings", ["text", "beam"]),
    "compare": ("Sentence and settings", ["text", "beam", "family"]),
    "whatif": ("Sentence and settings", ["text", "beam", "target"]),
    "checkpoint": ("Checkpoint and settings", ["beam", "ckpt"]),
}


def widget_keys(node) -> set[str]:
    """Keys of the input widgets under ``node`` of the app's element tree."""
    kinds = ("text_input", "text_area", "slider", "selectbox", "radio")
    return {w.key for kind in kinds for w in node.get(kind) if w.key}


@pytest.fixture
def models(app_models):
    for scorer in SCORERS:
        add_model(app_models, f"reversal-{scorer}")
    return app_models


@pytest.mark.parametrize("view", list(FOLDED))
def test_presentation_mode_folds_every_view_s_inputs(models, view):
    label, keys = FOLDED[view]
    app = run_app(view=view, model="reversal-additive", text="a b c", present="1")
    assert not app.exception
    folds = [e for e in app.expander if e.label == label]
    assert len(folds) == 1
    assert set(keys) <= widget_keys(folds[0])
    plain = run_app(view=view, model="reversal-additive", text="a b c")
    # The same figures, drawn outside the fold (the copies here have no training curve).
    charts = len(app.get("plotly_chart"))
    assert charts == len(plain.get("plotly_chart")) and (charts or view == "checkpoint")
    assert not [e for e in plain.expander if e.label == label]
    assert set(keys) <= widget_keys(plain.main)
