"""The one rule for lines of text files: UTF-8, one leading byte-order mark dropped, lines end
at \\n or \\r\\n only, undecodable bytes an InputError naming the line."""

from __future__ import annotations

import io

import pytest

from attnviz.errors import InputError
from attnviz.text_lines import decode_lines, iter_lines, read_lines


@pytest.mark.parametrize(
    "data, lines",
    [
        (b"a\nb\n", ["a", "b"]),
        (b"a\nb", ["a", "b"]),  # no line end after the last line
        (b"a\r\nb\r\n", ["a", "b"]),
        (b"a\n\n", ["a", ""]),  # a blank last line is a line
        (b"", []),
        ("\ufeff".encode(), []),
        ("\ufeff\n".encode(), [""]),
        (b"\n", [""]),
        ("\ufeffa\n\ufeffb\n".encode(), ["a", "\ufeffb"]),  # one BOM, at the start only
        ("a\rb\x0cc\u2028d\x85e\n".encode(), ["a\rb\x0cc\u2028d\x85e"]),  # no line ends
        (b"a\r\r\nb", ["a\r", "b"]),
    ],
)
def test_line_ends_and_byte_order_mark(data, lines):
    assert decode_lines(data, "f.txt") == lines
    assert list(iter_lines(io.BytesIO(data), "f.txt")) == lines


def test_undecodable_bytes_name_the_file_and_line():
    with pytest.raises(InputError, match=r"f\.txt, line 2: not UTF-8 text \(byte 0xE9"):
        decode_lines(b"ok\ncaf\xe9\nnever read\n", "f.txt")


def test_a_stream_yields_the_lines_before_a_bad_one():
    lines = iter_lines(io.BytesIO(b"one\ntwo\n\xff\n"), "standard input")
    assert [next(lines), next(lines)] == ["one", "two"]
    with pytest.raises(InputError, match="standard input, line 3"):
        next(lines)


def test_files_that_cannot_be_read(tmp_path):
    with pytest.raises(InputError, match=f"cannot read {tmp_path / 'missing.txt'}"):
        read_lines(tmp_path / "missing.txt")
    with pytest.raises(InputError, match="cannot read"):
        read_lines(tmp_path)
    (tmp_path / "f.txt").write_bytes("\ufeffx ||| y\r\n".encode())
    assert read_lines(tmp_path / "f.txt") == ["x ||| y"]
