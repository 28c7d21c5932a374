"""The command line as a user meets it: `--version`, the README's synopses, the default
model and model names, input that is not UTF-8, sentences longer than the model reads."""

from __future__ import annotations

import io
import re
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

import attnviz
from attnviz import cli, locations

README = Path(__file__).resolve().parents[1] / "README.md"


def run_bytes(monkeypatch, capsys, argv: list[str], data: bytes) -> tuple[int, str, str]:
    """Run the command with ``data`` on standard input, a byte stream as in a real process
    (whose text layer would refuse bytes that are not UTF-8)."""
    stdin = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="strict")
    monkeypatch.setattr(sys, "stdin", stdin)
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_version_is_the_package_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"attnviz {attnviz.__version__}\n"
    assert version("attnviz") == attnviz.__version__  # the installed metadata says the same


def usage(command: list[str], monkeypatch, capsys) -> str:
    """The usage line argparse prints for ``command --help``, unwrapped, without ``[-h]``."""
    monkeypatch.setenv("COLUMNS", "1000")
    with pytest.raises(SystemExit):
        cli.main([*command, "--help"])
    first = capsys.readouterr().out.splitlines()[0]
    return first.removeprefix("usage: ").replace(" [-h]", "")


def readme_synopses() -> list[str]:
    """The lines of the first code block of the README's "Command line" section."""
    section = README.read_text(encoding="utf-8").split("\n## Command line\n", 1)[1]
    block = re.search(r"```text\n(.*?)```", section, re.S)
    assert block, "the Command line section starts with a ```text block of synopses"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_readme_synopses_are_the_help_output(monkeypatch, capsys):
    top = usage([], monkeypatch, capsys)  # attnviz [--version] {app,translate,...} ...
    commands = re.search(r"\{(.*?)\}", top).group(1).split(",")
    expected = [usage([command], monkeypatch, capsys) for command in commands]
    assert readme_synopses() == expected


@pytest.fixture
def models(reversal_checkpoint, tmp_path, monkeypatch) -> Path:
    """ATTNVIZ_MODELS with the reversal checkpoint as the default model and as `rev`."""
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / locations.DEFAULT_MODEL).symlink_to(reversal_checkpoint)
    (folder / "rev").symlink_to(reversal_checkpoint)
    monkeypatch.setenv(locations.MODELS_ENV, str(folder))
    return folder


def test_model_defaults_to_the_bundled_default_and_takes_names(
    models, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    for argv in (["translate"], ["translate", "-m", "rev"]):
        code, out, err = run_bytes(monkeypatch, capsys, argv, b"a b c\n")
        assert code == 0, err
        assert out == "c b a\n"
    # A folder of that name in the working directory is a path and wins over the name.
    (tmp_path / "rev").mkdir()
    code, out, err = run_bytes(monkeypatch, capsys, ["translate", "-m", "rev"], b"a b\n")
    assert code == 2 and "config.json" in err


def test_model_path_rules(models, tmp_path):
    assert locations.model_path(None) == models / locations.DEFAULT_MODEL
    assert locations.model_path("rev") == models / "rev"
    assert locations.model_path("no-such-model") == Path("no-such-model")  # reported by load
    assert locations.model_path("some/rev") == Path("some/rev")


# Lines that are not UTF-8, or hold characters that break naive text handling.
BAD_LINES = [
    b"caf\xe9",  # Latin-1
    b"\xff\xfe a b",  # a UTF-16 byte-order mark
    b"a \xed\xa0\x80 b",  # an encoded surrogate, which UTF-8 forbids
    b"a \xc3",  # a sequence cut in the middle
]
ODD_BUT_VALID = [b"a\x00b", b"\x01 a \x1b[31m b", b"a\x0cb \x1c c", b"\xc2\x85 a"]


@pytest.mark.parametrize("source", ["stdin", "file"])
def test_undecodable_lines_are_reported_and_keep_the_output_aligned(
    reversal_checkpoint, source, tmp_path, monkeypatch, capsys
):
    lines = [b"a b c", *BAD_LINES, *ODD_BUT_VALID, b"d e"]
    data = b"\n".join(lines) + b"\n"
    argv = ["translate", "-m", str(reversal_checkpoint)]
    if source == "file":
        (tmp_path / "in.txt").write_bytes(data)
        argv += ["-i", str(tmp_path / "in.txt")]
    code, out, err = run_bytes(monkeypatch, capsys, argv, data)
    assert code == 1
    records = out.split("\n")
    assert len(records) == len(lines) + 1 and records[-1] == ""
    assert records[0] == "c b a" and records[len(lines) - 1] == "e d"
    for number in range(2, 2 + len(BAD_LINES)):
        assert f"line {number}: the text is not valid UTF-8" in err
        assert records[number - 1] == ""
    # NUL and control characters are text: they translate like any other unseen character.
    assert err.count("\n") == len(BAD_LINES)
    assert "Traceback" not in err


def test_undecodable_align_line_is_reported(reversal_checkpoint, monkeypatch, capsys):
    data = b"a b ||| b a\nc\xe9 d ||| d c\ne f ||| f e\n"
    code, out, err = run_bytes(monkeypatch, capsys, ["align", "-m", str(reversal_checkpoint)], data)
    assert code == 1
    assert out.split("\n")[1] == "" and len(out.split("\n")) == 4
    assert "line 2: the text is not valid UTF-8" in err


def test_unreadable_input_stream_gives_exit_code_2(reversal_checkpoint, tmp_path, capsys):
    code = cli.main(["translate", "-m", str(reversal_checkpoint), "-i", str(tmp_path)])
    assert code == 2
    assert f"cannot read {tmp_path}" in capsys.readouterr().err


def test_long_line_is_cut_with_a_warning_or_refused_with_strict(
    reversal_checkpoint, monkeypatch, capsys
):
    limit = attnviz.load(reversal_checkpoint).config.max_src_len - 1
    long_line = " ".join(["a", "b", "c"] * limit).encode()
    data = b"a b\n" + long_line + b"\nc d\n"
    argv = ["translate", "-m", str(reversal_checkpoint)]
    code, out, err = run_bytes(monkeypatch, capsys, argv, data)
    assert code == 0
    assert len(out.splitlines()) == 3 and all(out.splitlines())
    kept = out.splitlines()
    assert err == (
        f"attnviz: line 2: longer than the model reads ({limit} pieces); only its beginning "
        "was translated (--strict makes this an error)\n"
    )
    code, out, err = run_bytes(monkeypatch, capsys, [*argv, "--strict"], data)
    assert code == 1
    # The other lines translate as without --strict (what a tiny model writes for them is
    # its own business: it depends on how its training summed); the long one is left empty.
    assert out.split("\n")[:3] == [kept[0], "", kept[2]]
    assert f"line 2: the source has {3 * limit} pieces, more than this model's limit" in err
