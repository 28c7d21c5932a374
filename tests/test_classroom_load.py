"""Smoke test of tests/classroom_load.py: two sessions against the real app server."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent / "classroom_load.py"

pytestmark = pytest.mark.slow


def load_script():
    spec = importlib.util.spec_from_file_location("classroom_load", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_two_sessions_each_get_a_heatmap(reversal_checkpoint, tmp_path):
    models = tmp_path / "models"
    shutil.copytree(reversal_checkpoint, models / "reversal-additive")
    load = load_script()
    out = tmp_path / "load.json"
    report = load.run(
        sessions=2, duration=2, sentences=2, models=models, model="reversal-additive",
        timeout=60, json_path=out,
    )  # fmt: skip
    summary = report["summary"]
    assert summary["errors"]["total"] == 0, summary["error_examples"]
    assert summary["heatmaps"] == 4
    measured = report["measurements"]
    assert [(m["session"], m["index"], m["via"]) for m in measured] == [
        (0, 0, "url"), (0, 1, "widget"), (1, 0, "url"), (1, 1, "widget"),
    ]  # fmt: skip
    assert all(0 < m["chart_ms"] <= m["finished_ms"] for m in measured)
    assert report["server"]["peak_rss_mb"] > 50
    assert json.loads(out.read_text())["summary"]["heatmaps"] == 4
    assert "time to the heatmap" in load.format_report(report)


def test_sentence_plan_repeats_only_the_first_example():
    load = load_script()
    sentences = load.plan(sessions=8, per_session=4)
    firsts = [s[0] for s in sentences]
    assert set(firsts) <= set(load.examples())
    later = [t for s in sentences for t in s[1:]]
    assert len(set(later)) == len(later) and not set(later) & set(firsts)
