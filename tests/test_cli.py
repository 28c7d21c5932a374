"""The ``attnviz`` command line, driven through ``attnviz.cli.main``."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from attnviz import cli
from attnviz.locations import APP_SCRIPT
from attnviz.ui.checkpoint_open import ALLOW_PATHS_ENV


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


def test_app_becomes_the_streamlit_server(monkeypatch):
    calls = []

    def fake_execv(path, command):
        calls.append((path, command))
        raise SystemExit(0)  # a real exec does not return either

    monkeypatch.setattr(cli.os, "execv", fake_execv)
    with pytest.raises(SystemExit):
        cli.main(["app", "--port", "8765"])
    command = [sys.executable, "-m", "streamlit", "run", str(APP_SCRIPT)]
    command += [*cli.STREAMLIT_OPTIONS, "--server.port=8765"]
    assert calls == [(sys.executable, command)]
    assert APP_SCRIPT.is_file() and APP_SCRIPT.is_relative_to(Path(cli.__file__).parent)


def test_app_allows_only_existing_server_folders(tmp_path, monkeypatch, capsys):
    calls = []

    def fake_execv(path, command):
        calls.append(os.environ.get(ALLOW_PATHS_ENV))
        raise SystemExit(0)

    monkeypatch.setattr(cli.os, "execv", fake_execv)
    monkeypatch.setenv(ALLOW_PATHS_ENV, "")  # recorded, so the value the app sets is undone
    monkeypatch.delenv(ALLOW_PATHS_ENV)
    (tmp_path / "runs").mkdir()
    with pytest.raises(SystemExit):
        cli.main(["app", "--allow-path", str(tmp_path / "runs" / ".."), "--allow-path", "."])
    assert calls == [os.pathsep.join([str(tmp_path.resolve()), str(Path.cwd().resolve())])]
    monkeypatch.delenv(ALLOW_PATHS_ENV, raising=False)
    assert cli.main(["app", "--allow-path", str(tmp_path / "nowhere")]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert len(calls) == 1


def test_app_that_cannot_start_says_so(tmp_path, monkeypatch, capsys):
    missing = tmp_path / "python"
    monkeypatch.setattr(cli.sys, "executable", str(missing))
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


class TerminalInput(io.StringIO):
    """Standard input typed at a terminal."""

    def isatty(self) -> bool:
        return True


def test_batches_give_the_outputs_of_one_line_at_a_time(reversal_checkpoint, monkeypatch, capsys):
    """Lines of many lengths, a short last batch and a refused line in the middle: batched
    decoding prints what decoding each line alone prints, in input order."""
    from attnviz.synthetic import reversal_pairs

    lines = [p.source for p in reversal_pairs(11, seed=3)]
    lines.insert(5, "")
    text = "".join(f"{line}\n" for line in lines)
    argv = ["translate", "-m", str(reversal_checkpoint), "--n-best", "3", "--json"]
    alone = run(monkeypatch, capsys, [*argv, "--batch-size", "1"], text)
    batched = run(monkeypatch, capsys, [*argv, "--batch-size", "2"], text)
    assert alone[0] == batched[0] == 1
    alone_records = [json.loads(line) for line in alone[1].splitlines()]
    batched_records = [json.loads(line) for line in batched[1].splitlines()]
    assert [r["line"] for r in batched_records] == list(range(1, 13))
    assert "error" in batched_records[5]
    for a, b in zip(alone_records, batched_records, strict=True):
        assert b.get("text") == a.get("text")
        assert [h["text"] for h in b.get("hypotheses", [])] == [
            h["text"] for h in a.get("hypotheses", [])
        ]
        np.testing.assert_allclose(b.get("attention", []), a.get("attention", []), atol=2e-4)
    assert "line 6:" in batched[2]


def test_a_terminal_gets_each_line_decoded_alone(reversal_checkpoint, monkeypatch, capsys):
    """From a terminal each line is answered before the next is read: translate_batch is
    never called."""
    from attnviz.translator import Translator

    def refuse(*args, **kwargs):
        raise AssertionError("a terminal's lines must not wait for a batch")

    monkeypatch.setattr(Translator, "translate_batch", refuse)
    monkeypatch.setattr(sys, "stdin", TerminalInput("a b c\nd e\n"))
    assert cli.main(["translate", "-m", str(reversal_checkpoint)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_align_in_batches_equals_one_pair_at_a_time(reversal_checkpoint, monkeypatch, capsys):
    from attnviz.synthetic import reversal_pairs

    text = "".join(f"{p.source} ||| {p.target}\n" for p in reversal_pairs(9, seed=4))
    text += "no bars here\n"
    argv = ["align", "-m", str(reversal_checkpoint), "--reverse-model", str(reversal_checkpoint)]
    alone = run(monkeypatch, capsys, [*argv, "--batch-size", "1"], text)
    batched = run(monkeypatch, capsys, [*argv, "--batch-size", "4"], text)
    assert alone[:2] == batched[:2]
    assert alone[0] == 1 and batched[1].split("\n")[9] == ""
    assert "line 10:" in batched[2]


def test_a_reader_that_goes_away_stops_the_output_quietly(tmp_path):
    """`attnviz eval-align ... | head -0`: the pipe closes before the command writes; it
    stops without a traceback or Python's "Exception ignored" message."""
    (tmp_path / "pred.txt").write_text("0-0 1-1\n")
    (tmp_path / "gold.txt").write_text("0-0 1-1\n")
    command = [sys.executable, "-m", "attnviz", "eval-align", "--pred", "pred.txt"]
    process = subprocess.Popen(
        [*command, "--gold", "gold.txt"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    process.stdout.close()  # before the interpreter has even started: the write must fail
    stderr = process.stderr.read()
    assert process.wait(timeout=120) == 1
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
