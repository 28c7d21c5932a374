"""The checkpoint folder's file names and the file I/O every part of the package shares.

Reads are size-capped with ``os.stat`` before a byte is read, because a checkpoint from
outside is untrusted; writes go to a temporary file next to the target and are moved into
place, so a reader never sees half a file.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import CheckpointError

__all__ = [
    "CARD_FILE",
    "CONFIG_FILE",
    "FORMAT_VERSION",
    "HISTORY_FILE",
    "MB",
    "RECIPE_FILE",
    "SNAPSHOTS_DIR",
    "TOKENIZER_FILE",
    "WEIGHTS_FILE",
    "WEIGHTS_SUFFIX",
    "atomic_path",
    "human_size",
    "list_names",
    "no_duplicate_keys",
    "read_capped",
    "read_json_object",
    "stat_file",
    "write_bytes_atomic",
    "write_json_atomic",
]

FORMAT_VERSION = 1

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILE = "spm.model"
CARD_FILE = "card.json"
RECIPE_FILE = "recipe.toml"
HISTORY_FILE = "history.csv"
SNAPSHOTS_DIR = "snapshots"
WEIGHTS_SUFFIX = ".safetensors"

MB = 1024 * 1024


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path next to ``path``; moved onto ``path`` if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through :func:`atomic_path`."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json_atomic(path: Path, value: dict[str, Any]) -> None:
    """Write ``value`` as indented UTF-8 JSON (NaN refused) through :func:`atomic_path`."""
    text = json.dumps(value, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    write_bytes_atomic(path, text.encode("utf-8"))


def human_size(n: int) -> str:
    """``n`` bytes as people read it in an error message."""
    return f"{n / MB:.1f} MB" if n >= MB else f"{n} bytes"


def list_names(names: list[str], limit: int = 6) -> str:
    """The first ``limit`` names joined by commas, and how many more there are."""
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def stat_file(path: Path, what: str, cap: int) -> int:
    """Size of the regular file ``path``; CheckpointError if missing, not a file or too big."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing; a checkpoint needs its {what}") from None
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read the {what}: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise CheckpointError(f"{path}: the {what} must be a regular file")
    if st.st_size > cap:
        raise CheckpointError(
            f"{path}: the {what} is {human_size(st.st_size)}, over the {human_size(cap)} limit"
        )
    return st.st_size


def read_capped(path: Path, what: str, cap: int) -> bytes:
    """The bytes of ``path`` (``what`` names it in errors), refused beyond ``cap`` bytes."""
    stat_file(path, what, cap)
    with open(path, "rb") as f:
        data = f.read(cap + 1)  # the file may have grown since the stat
    if len(data) > cap:
        raise CheckpointError(f"{path}: the {what} is over the {human_size(cap)} limit")
    return data


def no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` for :func:`json.loads` that refuses a key given twice (JSON
    parsers disagree on which one wins, so a checker and a loader could see different files)."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def read_json_object(path: Path, what: str, cap: int) -> dict[str, Any]:
    """The JSON object in ``path``, read through :func:`read_capped`; CheckpointError if it
    is not UTF-8 JSON, repeats a key or is not an object."""
    data = read_capped(path, what, cap)
    try:
        value = json.loads(data.decode("utf-8"), object_pairs_hook=no_duplicate_keys)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CheckpointError(f"{path}: the {what} is not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise CheckpointError(
            f"{path}: the {what} must be a JSON object ({{...}}), got {type(value).__name__}"
        )
    return value
