"""`attnviz bench` runs end to end and reports every figure (no speed is asserted here)."""

from __future__ import annotations

import json
import string
import subprocess
import sys

import pytest
import torch

from attnviz import bench


@pytest.fixture
def tiny_recipe(tmp_path):
    (tmp_path / "pyproject.toml").write_text("")
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        'name = "t"\n[tokenizer]\nvocab_size = 500\n[model]\nemb_dim = 16\n'
        "enc_hidden = 16\ndec_hidden = 16\nattn_dim = 16\n[training]\nmax_tokens = 300\n"
    )
    return recipe


def test_bench_reports_every_figure(reversal_checkpoint, tiny_recipe, tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = bench.main(
        str(reversal_checkpoint), runs=2, json_path=str(out), threads=None, recipe=tiny_recipe
    )
    assert code == 0
    result = json.loads(out.read_text())
    names = [t["name"] for t in result["timings"]]
    assert len(names) == 11
    assert sum("beam 5" in n for n in names) == 3
    assert sum(n.startswith("Align figure") for n in names) == 3
    assert names[-1].startswith("train step t, 300 target tokens")
    # Every row, training included, has its median and p95, in the JSON and in the table.
    assert all(t["median_ms"] > 0 and t["p95_ms"] >= t["median_ms"] for t in result["timings"])
    training = result["training"]
    assert training["target_tokens_per_s_p95"] <= training["target_tokens_per_s_median"]
    assert "cores" in result["machine"]
    table, progress = capsys.readouterr()
    assert "median ms" in table and "p95 ms" in table
    assert all(name in table for name in names)
    # Progress on stderr: a line as each figure starts.
    assert all(f"bench: {name}" in progress for name in names[:-1])
    # One decoding thread against torch's default, idle and next to a busy process.
    threads = result["threads"]
    assert len(threads) == 2 and "one thread (the Translator's default)" in threads
    for by_load in threads.values():
        assert list(by_load) == ["idle", "one busy neighbour"]
        assert all(t["p95_ms"] >= t["median_ms"] > 0 for t in by_load.values())
    assert "one busy neighbour" in table and "decoding threads" in table


def test_bench_says_when_it_times_an_untrained_model(
    reversal_translator, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("ATTNVIZ_MODELS", str(tmp_path))  # no default model there
    words = list(string.ascii_lowercase) * 2
    sentences = [" ".join(words[:n]) for n in bench.SENTENCE_WORDS]
    monkeypatch.setattr(bench, "untrained_flagship", lambda: (reversal_translator, sentences))
    result = bench.run_bench(None, runs=1)
    assert result["model"] == reversal_translator.name
    assert f"no checkpoint at {tmp_path / 'en-fr-additive'}" in capsys.readouterr().err


def test_real_sentences_have_the_timed_lengths():
    sentences = bench.real_sentences()
    assert [len(s.split()) for s in sentences] == list(bench.SENTENCE_WORDS)
    assert all(s.startswith("The little girl") and s.endswith(".") for s in sentences)


def test_training_throughput_figure(tiny_recipe):
    result = bench.time_training(tiny_recipe, steps=3)
    assert result["target_tokens_per_s_median"] > 0
    assert result["step_ms_p95"] >= result["step_ms_median"] > 0
    assert result["batch_target_tokens"] == 300 and result["steps"] == 3
    assert result["matrix_gflop_per_step"] > 0 and result["matrix_gflops_rate"] > 0
    line = bench.format_matrix_products(result)
    assert line.startswith("train step matrix products: ") and line.endswith("%)")


def test_matrix_products_count_the_arithmetic_of_the_step():
    """The profiler's count is 2 m k n for an m x k by k x n product, forward and backward."""
    a = torch.randn(64, 32, requires_grad=True)
    b = torch.randn(32, 48)
    result = bench.matrix_products(lambda: (a @ b).sum().backward(), 64, 32, 48)
    # forward a @ b, and the backward product for a's gradient (b needs none)
    assert result["matrix_gflop_per_step"] * 1e9 == pytest.approx(2 * (2 * 64 * 32 * 48))


def test_the_align_figure_path_imports_no_streamlit(reversal_checkpoint):
    """The bench times the library's figure work, not a Streamlit page."""
    code = (
        "import sys\n"
        "from attnviz import bench\n"
        "from attnviz.translator import load\n"
        "timings = bench.time_align_figures(load(sys.argv[1]), bench.real_sentences(), True, 1)\n"
        "assert len(timings) == 3, timings\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'streamlit')\n"
        "assert not loaded, loaded[:5]\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(reversal_checkpoint)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
