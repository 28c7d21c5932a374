"""Where an imported model came from: the card.json "imported_from" object.

It records the toolkit, its version when the files say it, the original file's name and
sha256, the sha256 of every other file read, and the toolkit's own configuration made
JSON-safe (a YAML date, a set, an ``argparse.Namespace``, a float NaN or a tuple becomes
plain JSON; anything else its ``repr``).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import math
from typing import Any

from ..errors import CheckpointError

__all__ = ["MAX_CONFIG_DEPTH", "MAX_CONFIG_ITEMS", "imported_from", "json_safe", "sha256_hex"]

MAX_CONFIG_DEPTH = 32  # a toolkit config nests a few levels; deeper is cut, not recursed into
MAX_CONFIG_ITEMS = 100_000  # OpenNMT-py's options are some 400 values, Joey's config fewer


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def imported_from(
    toolkit: str,
    version: str | None,
    file: str,
    sha256: str,
    config: Any,
    files: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The card.json "imported_from" object.

    toolkit: "joeynmt" or "opennmt-py"; version: as the toolkit recorded it, or None
    file, sha256: the checkpoint file as read; config: the toolkit's configuration
    files: {name: sha256} of the other files read (configuration, vocabularies, tokenizers)
    """
    return {
        "toolkit": toolkit,
        "version": version,
        "file": file,
        "sha256": sha256,
        "files": dict(sorted((files or {}).items())),
        "config": json_safe(config),
    }


def json_safe(value: Any) -> Any:
    """``value`` as data ``json.dumps(allow_nan=False)`` accepts, keys as strings.

    A YAML file can repeat one node many times through aliases, so the walk is budgeted:
    more than :data:`MAX_CONFIG_ITEMS` values is refused rather than expanded.
    """
    budget = [MAX_CONFIG_ITEMS]

    def walk(value: Any, depth: int) -> Any:
        budget[0] -= 1
        if budget[0] < 0:
            raise CheckpointError(
                f"the toolkit's configuration has over {MAX_CONFIG_ITEMS} values; refusing it"
            )
        if depth > MAX_CONFIG_DEPTH:
            return "..."
        if value is None or isinstance(value, (bool, int, str)):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else str(value)
        if isinstance(value, argparse.Namespace):
            value = vars(value)
        if isinstance(value, dict):
            return {str(k): walk(v, depth + 1) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [walk(v, depth + 1) for v in value]
        if isinstance(value, (set, frozenset)):
            return sorted((walk(v, depth + 1) for v in value), key=repr)
        if isinstance(value, (datetime.date, datetime.time)):
            return value.isoformat()
        return repr(value)[:1000]

    return walk(value, 0)
