"""`attnviz bench` runs end to end and reports every figure (no speed is asserted here)."""

from __future__ import annotations

import json

from attnviz import bench


def test_bench_reports_every_figure(reversal_checkpoint, tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert (
        bench.main(
            str(reversal_checkpoint), runs=2, json_path=str(out), threads=None, training=False
        )
        == 0
    )
    result = json.loads(out.read_text())
    names = [t["name"] for t in result["timings"]]
    assert len(names) == 7 and sum("beam 5" in n for n in names) == 3
    assert all(t["median_ms"] > 0 and t["p95_ms"] >= t["median_ms"] for t in result["timings"])
    assert "cores" in result["machine"]
    assert "median ms" in capsys.readouterr().out


def test_training_throughput_figure(tmp_path):
    (tmp_path / "pyproject.toml").write_text("")
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        'name = "t"\n[tokenizer]\nvocab_size = 500\n[model]\nemb_dim = 16\n'
        "enc_hidden = 16\ndec_hidden = 16\nattn_dim = 16\n[training]\nmax_tokens = 300\n"
    )
    result = bench.time_training(recipe, steps=3)
    assert result["target_tokens_per_s_median"] > 0
    assert result["batch_target_tokens"] == 300 and result["steps"] == 3
