"""Lines of text, read by one rule wherever attnviz reads a file of lines (corpora, test sets,
gold alignments and their texts, files uploaded to the app):

- the bytes are UTF-8; one byte-order mark at the very start is dropped;
- a line ends at ``\\n`` or ``\\r\\n``; the end is not part of the line, and a file that ends
  with a line end has no empty line after it. Nothing else ends a line: a lone ``\\r``, a form
  feed or U+2028 inside a sentence stays in it (``str.splitlines`` would split there, and line
  *i* would no longer be sentence *i* of a parallel file or gold set);
- bytes that are not UTF-8 are an :class:`~attnviz.errors.InputError` naming the file and the
  line; nothing is replaced or skipped silently.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from pathlib import Path

from .errors import InputError

__all__ = ["BOM", "decode_lines", "iter_lines", "read_lines"]

BOM = "\ufeff"
_BOM_BYTES = BOM.encode("utf-8")


def _decoded(raw: bytes, name: str, number: int) -> str:
    """One raw line (with or without its line end) as text; InputError if it is not UTF-8."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{name}, line {number}: not UTF-8 text (byte 0x{raw[exc.start]:02X} at byte "
            f"{exc.start + 1} of the line)"
        ) from None
    if line.endswith("\n"):
        line = line[:-2] if line.endswith("\r\n") else line[:-1]
    return line


def iter_lines(raw_lines: Iterable[bytes], name: str) -> Iterator[str]:
    """The lines of a binary stream (``raw_lines`` as a file opened in ``"rb"`` yields them:
    split after each ``\\n``), decoded one by one as they arrive; see the module docstring."""
    for number, raw in enumerate(raw_lines, start=1):
        if number == 1 and raw.startswith(_BOM_BYTES):
            raw = raw[len(_BOM_BYTES) :]
            if not raw:  # the file is only a byte-order mark: no lines, like an empty file
                return
        yield _decoded(raw, name, number)


def decode_lines(data: bytes, name: str) -> list[str]:
    """The lines of the bytes of a whole file (e.g. an upload); ``name`` is used in errors."""
    return list(iter_lines(io.BytesIO(data), name))


def read_lines(path: str | Path) -> list[str]:
    """The lines of a text file; InputError (naming the file) if it cannot be read."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    return decode_lines(data, str(path))
