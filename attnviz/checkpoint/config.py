"""``config.json``: writing it, reading and validating it, and loading the tokenizer it names.

The config is the first file of an untrusted checkpoint that is read, so every value is
checked before anything is built from it: types, sizes far above any model of this family,
the special token ids, and tokenizer file names that cannot point outside the folder.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import CheckpointError
from ..model import ModelConfig
from ..search import DecodingConfig
from ..tokenize import SPECIAL_IDS, Tokenizer
from .files import (
    CONFIG_FILE,
    FORMAT_VERSION,
    MB,
    TOKENIZER_FILE,
    read_capped,
    read_json_object,
    write_json_atomic,
)

__all__ = [
    "MAX_CONFIG_BYTES",
    "MAX_CONFIG_SIZES",
    "MAX_TOKENIZER_BYTES",
    "load_tokenizer",
    "read_config",
    "read_decoding",
    "tokenizer_path",
    "write_config",
]

MAX_CONFIG_BYTES = 1 * MB
MAX_TOKENIZER_BYTES = 16 * MB
# Far above any model of this family; they keep a hostile config from making the template
# model (built from the config before any weight is read) or decoding unboundedly large.
MAX_CONFIG_SIZES = {
    "emb_dim": 16384,
    "enc_hidden": 16384,
    "dec_hidden": 16384,
    "attn_dim": 16384,
    "heads": 256,
    "enc_layers": 16,
    "dec_layers": 16,
    "max_src_len": 4096,
    "max_tgt_len": 4096,
}
_CONFIG_KEYS = {"format_version", "name", "model", "tokenizer", "decoding"}
_TOKENIZER_KEYS = {"source", "target"}


def write_config(
    folder: Path, config: ModelConfig, name: str, decoding: DecodingConfig | None = None
) -> None:
    """Write ``folder/config.json`` atomically; the tokenizer is the folder's spm.model. The
    "decoding" section is written only when ``decoding`` is given."""
    data = {
        "format_version": FORMAT_VERSION,
        "name": name,
        "model": config.to_dict(),
        "tokenizer": {"source": TOKENIZER_FILE, "target": TOKENIZER_FILE},
    }
    if decoding is not None:
        data["decoding"] = decoding.to_dict()
    write_json_atomic(folder / CONFIG_FILE, data)


def _check_field_types(data: dict[str, Any], path: Path) -> None:
    """Types of the ModelConfig fields in config.json (JSON allows anything)."""
    for field in dataclasses.fields(ModelConfig):
        if field.name not in data:
            continue
        value = data[field.name]
        kind = field.type if isinstance(field.type, str) else field.type.__name__
        if kind == "int":
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif kind == "float":
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        elif kind == "bool":
            ok = isinstance(value, bool)
        elif kind == "str":
            ok = isinstance(value, str)
        else:
            ok = True
        if not ok:
            raise CheckpointError(
                f"{path}: model.{field.name} must be of type {kind}, got {value!r}"
            )


def _check_format_version(raw: dict[str, Any], path: Path) -> None:
    if "format_version" not in raw:
        raise CheckpointError(f"{path}: format_version is missing; expected {FORMAT_VERSION}")
    version = raw["format_version"]
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise CheckpointError(
            f"{path}: format_version must be a positive integer (expected {FORMAT_VERSION}), "
            f"got {version!r}"
        )
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: format_version {version} was written by a newer attnviz; upgrade attnviz "
            f"to load it (this one reads format_version up to {FORMAT_VERSION})"
        )


def _model_config(model: Any, path: Path) -> ModelConfig:
    """The ModelConfig of the config's ``model`` object, every setting checked."""
    if not isinstance(model, dict):
        raise CheckpointError(
            f"{path}: 'model' must be an object with the architecture settings, got {model!r}"
        )
    _check_field_types(model, path)
    for name, limit in MAX_CONFIG_SIZES.items():
        if isinstance(model.get(name), int) and model[name] > limit:
            raise CheckpointError(
                f"{path}: model.{name} is {model[name]}, over the {limit} that attnviz loads"
            )
    try:
        config = ModelConfig.from_dict(model)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: invalid model settings: {exc}") from None
    if config.special_ids != SPECIAL_IDS:
        raise CheckpointError(
            f"{path}: model pad/unk/bos/eos ids are {config.special_ids}; the tokenizer "
            f"reserves {SPECIAL_IDS}"
        )
    return config


def read_decoding(raw: dict[str, Any], path: Path) -> DecodingConfig:
    """The config's optional "decoding" section (absent: attnviz's own defaults)."""
    try:
        return DecodingConfig.from_dict(raw.get("decoding", {}))
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: invalid decoding settings: {exc}") from None


def read_config(path: str | Path) -> tuple[ModelConfig, dict[str, Any]]:
    """Read and validate ``config.json`` (``path`` is the file or its checkpoint folder).

    Returns the model config and the whole parsed JSON object. Raises
    :class:`CheckpointError` for a missing/oversized/non-JSON file, a missing, non-integer or
    newer ``format_version``, unknown keys, or model settings :class:`ModelConfig` refuses.
    """
    path = Path(path)
    if path.is_dir():
        path = path / CONFIG_FILE
    raw = read_json_object(path, CONFIG_FILE, MAX_CONFIG_BYTES)
    _check_format_version(raw, path)
    unknown = sorted(set(raw) - _CONFIG_KEYS)
    if unknown:
        raise CheckpointError(
            f"{path}: unknown config keys {', '.join(unknown)}; "
            f"expected only {', '.join(sorted(_CONFIG_KEYS))}"
        )
    if "name" in raw and not isinstance(raw["name"], str):
        raise CheckpointError(f"{path}: name must be a string, got {raw['name']!r}")
    config = _model_config(raw.get("model"), path)
    read_decoding(raw, path)
    tok = raw.get("tokenizer")
    if (
        not isinstance(tok, dict)
        or set(tok) != _TOKENIZER_KEYS
        or not all(isinstance(v, str) for v in tok.values())
    ):
        raise CheckpointError(
            f"{path}: 'tokenizer' must be an object like "
            f'{{"source": "{TOKENIZER_FILE}", "target": "{TOKENIZER_FILE}"}}, got {tok!r}'
        )
    return config, raw


def tokenizer_path(folder: Path, entry: str, config_path: Path) -> Path:
    """Resolve a tokenizer file name; it must end in .model and lie in the folder or its
    direct parent (so several checkpoints can share one)."""
    bad = (
        not entry.endswith(".model")
        or "\\" in entry
        or "\x00" in entry
        or PurePosixPath(entry).is_absolute()
    )
    resolved = (folder / entry).resolve() if not bad else None
    if resolved is None or resolved.parent not in (folder, folder.parent):
        raise CheckpointError(
            f"{config_path}: tokenizer file {entry!r} is not allowed; expected a *.model file "
            f"in the checkpoint folder (e.g. '{TOKENIZER_FILE}') or its parent "
            f"(e.g. '../{TOKENIZER_FILE}')"
        )
    return resolved


def load_tokenizer(folder: Path, raw: dict[str, Any], config_path: Path) -> Tokenizer:
    """The tokenizer the config ``raw`` (read from ``config_path``) names; source and target
    must be the same joint SentencePiece model."""
    entries = raw["tokenizer"]
    paths = {key: tokenizer_path(folder, entries[key], config_path) for key in ("source", "target")}
    protos = {
        key: read_capped(p, f"{key} tokenizer", MAX_TOKENIZER_BYTES) for key, p in paths.items()
    }
    if protos["source"] != protos["target"]:
        raise CheckpointError(
            f"{config_path}: tokenizer source {entries['source']!r} and target "
            f"{entries['target']!r} differ; attnviz uses one joint SentencePiece model"
        )
    try:
        return Tokenizer(protos["source"])
    except CheckpointError as exc:
        raise CheckpointError(f"{paths['source']}: {exc}") from None
