"""The ``attnviz`` command line, driven through ``attnviz.cli.main``."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from attnviz import cli


def run(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    stdin: str = "",
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_plain_output_has_one_line_per_input_line(reversal_checkpoint, monkeypatch, capsys):
    code, out, err = run(
        monkeypatch, capsys, ["translate", "-m", str(reversal_checkpoint)], "a b c\nd e f g\n"
    )
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 2
    assert all(line.strip() for line in lines)


def test_reads_input_file(reversal_checkpoint, tmp_path, monkeypatch, capsys):
    source = tmp_path / "src.txt"
    source.write_text("a b c\nx y\nq\n", encoding="utf-8")
    argv = ["translate", "-m", str(reversal_checkpoint), "-i", str(source), "--beam", "1"]
    code, out, err = run(monkeypatch, capsys, argv)
    assert code == 0, err
    assert len(out.splitlines()) == 3


def test_json_output(reversal_checkpoint, monkeypatch, capsys):
    argv = ["translate", "-m", str(reversal_checkpoint), "--json", "--n-best", "2"]
    code, out, err = run(monkeypatch, capsys, argv, "a b c\nd e\n")
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["line"] for r in records] == [1, 2]
    for record in records:
        attention = np.array(record["attention"])
        assert attention.shape == (len(record["target_pieces"]), len(record["source_pieces"]))
        np.testing.assert_allclose(attention.sum(axis=1), 1.0, atol=1e-3)
        assert record["truncated"] is False
        assert len(record["hypotheses"]) == 2
        assert record["hypotheses"][0]["text"] == record["text"]
        assert {"text", "score", "logprob"} <= set(record["hypotheses"][0])


def test_n_best_gives_n_lines_per_input(reversal_checkpoint, monkeypatch, capsys):
    argv = ["translate", "-m", str(reversal_checkpoint), "--beam", "4", "--n-best", "3"]
    code, out, err = run(monkeypatch, capsys, argv, "a b c\nd e f\n")
    assert code == 0, err
    fields = [line.split(" ||| ") for line in out.splitlines()]
    assert len(fields) == 2 * 3
    assert [int(f[0]) for f in fields] == [0, 1, 2, 0, 1, 2]
    assert all(len(f) == 3 for f in fields)
    for f in fields:
        float(f[1])


def test_n_best_larger_than_beam_is_refused(reversal_checkpoint, monkeypatch, capsys):
    argv = ["translate", "-m", str(reversal_checkpoint), "--beam", "2", "--n-best", "3"]
    code, out, err = run(monkeypatch, capsys, argv, "a b\n")
    assert code == 2
    assert "--beam" in err
    assert out == ""


def test_empty_line_is_reported_and_keeps_lines_aligned(reversal_checkpoint, monkeypatch, capsys):
    code, out, err = run(
        monkeypatch, capsys, ["translate", "-m", str(reversal_checkpoint)], "a b c\n\nd e\n"
    )
    assert code == 1
    assert "line 2" in err
    lines = out.split("\n")
    assert len(lines) == 4 and lines[3] == ""  # three records, newline-terminated
    assert lines[0] and lines[1] == "" and lines[2]


def test_empty_line_in_json_mode_gives_an_error_record(reversal_checkpoint, monkeypatch, capsys):
    argv = ["translate", "-m", str(reversal_checkpoint), "--json"]
    code, out, err = run(monkeypatch, capsys, argv, "a b\n   \n")
    assert code == 1
    assert "line 2" in err
    records = [json.loads(line) for line in out.splitlines()]
    assert "text" in records[0]
    assert records[1]["line"] == 2 and "empty" in records[1]["error"]


def test_missing_model_gives_exit_code_2(tmp_path, monkeypatch, capsys):
    missing = tmp_path / "no-such-model"
    code, out, err = run(monkeypatch, capsys, ["translate", "-m", str(missing)], "a b\n")
    assert code == 2
    assert str(missing) in err
    assert "Traceback" not in err
    assert out == ""


def test_missing_input_file_gives_exit_code_2(reversal_checkpoint, tmp_path, monkeypatch, capsys):
    missing = tmp_path / "nothing.txt"
    argv = ["translate", "-m", str(reversal_checkpoint), "-i", str(missing)]
    code, _, err = run(monkeypatch, capsys, argv)
    assert code == 2
    assert str(missing) in err


def test_help_lists_subcommands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("app", "translate", "eval", "train", "bench"):
        assert command in out


def test_app_runs_streamlit_on_the_app_file(tmp_path, monkeypatch):
    app = tmp_path / "app.py"
    app.write_text("", encoding="utf-8")
    monkeypatch.setattr(cli, "APP_PATH", app)
    calls = []

    def fake_run(command, check, cwd):
        calls.append((command, cwd))
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(cli.subprocess, "run", fake_run)
    assert cli.main(["app", "--port", "8765"]) == 0
    command = [sys.executable, "-m", "streamlit", "run", str(app), *cli.APP_FLAGS]
    command += ["--server.port", "8765"]
    assert calls == [(command, tmp_path)]  # the root, whose .streamlit/config.toml applies


def test_app_without_app_file_says_so(tmp_path, monkeypatch, capsys):
    missing = tmp_path / "app.py"
    monkeypatch.setattr(cli, "APP_PATH", missing)
    assert cli.main(["app"]) == 2
    assert str(missing) in capsys.readouterr().err


def test_console_script_help():
    # The script installed next to this interpreter, so the test does not depend on PATH.
    script = Path(sys.executable).parent / "attnviz"
    result = subprocess.run(
        [str(script), "--help"], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "translate" in result.stdout and "app" in result.stdout


def test_eval_prints_bleu_and_chrf_with_signatures(reversal_checkpoint, tmp_path, capsys):
    src, ref = tmp_path / "src.txt", tmp_path / "ref.txt"
    src.write_text("a b c d\nq r s\nx y z w v\n")
    ref.write_text("d c b a\ns r q\nv w z y x\n")
    code = cli.main(["eval", "-m", str(reversal_checkpoint), "--src", str(src), "--ref", str(ref)])
    out = capsys.readouterr().out
    assert code == 0
    assert "nrefs:1|case:mixed|eff:no|tok:13a" in out
    assert "chrF" in out and "case:lc" in out
    bleu = float(out.split()[1])
    assert bleu > 50  # the reversal model gets these right


def test_eval_refuses_files_of_different_lengths(reversal_checkpoint, tmp_path, capsys):
    src, ref = tmp_path / "src.txt", tmp_path / "ref.txt"
    src.write_text("a b\nc d\n")
    ref.write_text("b a\n")
    code = cli.main(["eval", "-m", str(reversal_checkpoint), "--src", str(src), "--ref", str(ref)])
    assert code == 2
    assert "has 2 lines but" in capsys.readouterr().err
