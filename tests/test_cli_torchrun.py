"""``torchrun --nproc_per_node 2 -m attnviz translate|align|eval``: the input shared out over
two processes gives what one process gives, line for line, messages and exit code included."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from attnviz import InputError, cli, load
from attnviz.sharding import Ranks, in_input_order
from attnviz.synthetic import reversal_pairs

MODEL = str(Path(__file__).resolve().parents[1] / "pretrained" / "reversal-additive")
PAIRS = reversal_pairs(21, seed=7)
# Line 4 falls to the second process, line 9 to the first: each reports through process 0.
BAD_LINES = (4, 9)


def one_process(monkeypatch, capsys, argv: list[str], stdin: str = "") -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def torchrun(argv: list[str], stdin: str = "") -> tuple[int, str, str]:
    """Run ``attnviz ARGV`` in two processes; (exit code, stdout, the attnviz lines of stderr)."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc_per_node", "2", "-m", "attnviz", *argv]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        command, input=stdin, capture_output=True, text=True, env=env, timeout=300
    )
    # torchrun adds its own report of a process that ended with an error code
    messages = [line for line in done.stderr.splitlines(True) if line.startswith("attnviz:")]
    return done.returncode, done.stdout, "".join(messages)


def with_bad_lines(lines: list[str], bad: str) -> str:
    for number in BAD_LINES:
        lines[number - 1] = bad
    return "".join(line + "\n" for line in lines)


def test_shares_come_back_in_input_order():
    items = list(range(7))
    for world in (1, 2, 3, 8):
        shares = [Ranks(rank, world).share(items) for rank in range(world)]
        lengths = [len(share) for share in shares]
        assert max(lengths) - min(lengths) <= 1
        assert in_input_order(shares) == items


def test_translate_in_two_processes(monkeypatch, capsys):
    # --batch-size 2: the 21 lines go out in two chunks of up to 16
    argv = ["translate", "-m", MODEL, "--beam", "3", "--batch-size", "2"]
    stdin = with_bad_lines([p.source for p in PAIRS], "")
    expected = one_process(monkeypatch, capsys, argv, stdin)
    assert expected[0] == 1 and expected[2].count("line") == len(BAD_LINES)
    assert len(expected[1].splitlines()) == len(PAIRS)
    code, out, err = torchrun(argv, stdin)
    assert out == expected[1]
    assert err == expected[2]
    assert code != 0  # torchrun ends with its own code when a process ends with 1


def test_align_in_two_processes(monkeypatch, capsys, tmp_path):
    source = tmp_path / "pairs.txt"
    lines = [f"{p.source} ||| {p.target}" for p in PAIRS]
    source.write_text(with_bad_lines(lines, "no bars here"), encoding="utf-8")
    argv = ["align", "-m", MODEL, "-i", str(source), "--batch-size", "2"]
    expected = one_process(monkeypatch, capsys, argv)
    assert expected[0] == 1 and "no '|||'" in expected[2]
    code, out, err = torchrun(argv)
    assert out == expected[1]
    assert err == expected[2]


def test_eval_in_two_processes(monkeypatch, capsys, tmp_path):
    (tmp_path / "src").write_text("".join(p.source + "\n" for p in PAIRS), encoding="utf-8")
    # references that differ from the outputs, so that every sentence counts
    refs = "".join(" ".join(p.target.split()[:-1]) + "\n" for p in PAIRS)
    (tmp_path / "ref").write_text(refs, encoding="utf-8")
    argv = ["eval", "-m", MODEL, "--src", str(tmp_path / "src"), "--ref", str(tmp_path / "ref")]
    argv += ["--json", "--batch-size", "2"]
    expected = one_process(monkeypatch, capsys, argv)
    assert expected[0] == 0 and '"sentences": 21' in expected[1]
    assert torchrun(argv) == expected


def test_eval_on_ranks_refuses_a_bad_line_as_one_process_does(monkeypatch, capsys, tmp_path):
    sources = [p.source for p in PAIRS]
    sources[BAD_LINES[0] - 1] = " "
    (tmp_path / "src").write_text("".join(s + "\n" for s in sources), encoding="utf-8")
    argv = ["eval", "-m", MODEL, "--src", str(tmp_path / "src"), "--ref", str(tmp_path / "src")]
    code, _, err = one_process(monkeypatch, capsys, argv)
    assert code == 2
    args = cli.build_parser().parse_args(argv)
    # Every process checks every line before any of them decodes or waits for the others.
    for rank in (0, 1):
        with pytest.raises(InputError) as refused:
            cli._translations_on_ranks(load(MODEL), sources, args, Ranks(rank, 2))
        assert err == f"attnviz: {refused.value}\n"
