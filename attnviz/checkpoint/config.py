"""``config.json``: writing it, reading and validating it, and loading the tokenizer it names.

The config is the first file of an untrusted checkpoint that is read, so every value is
checked before anything is built from it: types, sizes far above any model of this family,
the special token ids, and tokenizer file names that cannot point outside the folder.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import CheckpointError
from ..model import ModelConfig
from ..search import DecodingConfig
from ..tokenize import (
    KINDS,
    PRETOKENIZERS,
    TOOLKITS,
    UNK_PIECE,
    BPESegmenter,
    SentencePieceSegmenter,
    SentencePieceTokenizer,
    Tokenizer,
    ToolkitTokenizer,
    Vocabulary,
    WordSegmenter,
)
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
    "check_special_ids",
    "load_tokenizers",
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
_TOKENIZER_FILE_KEYS = ("source", "target", "source_vocab", "target_vocab")
# The "tokenizer" section's keys and their JSON types (see load_tokenizers).
_TOKENIZER_TYPES: dict[str, type] = {
    **dict.fromkeys(_TOKENIZER_FILE_KEYS, str),
    "kind": str,
    "toolkit": str,
    "lowercase": bool,
    "normalize": bool,
    "pretokenizer": str,
    "source_lang": str,
    "target_lang": str,
    "bpe_separator": str,
}


def write_config(
    folder: Path,
    config: ModelConfig,
    name: str,
    decoding: DecodingConfig | None = None,
    tokenizer: dict[str, Any] | None = None,
) -> None:
    """Write ``folder/config.json`` atomically. ``tokenizer``: the "tokenizer" section (by
    default the folder's joint spm.model); the "decoding" section is written only when
    ``decoding`` is given."""
    data = {
        "format_version": FORMAT_VERSION,
        "name": name,
        "model": config.to_dict(),
        "tokenizer": tokenizer or {"source": TOKENIZER_FILE, "target": TOKENIZER_FILE},
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
    _check_tokenizer_section(raw.get("tokenizer"), path)
    return config, raw


def tokenizer_path(folder: Path, entry: str, config_path: Path, suffix: str = ".model") -> Path:
    """Resolve a tokenizer file name; it must lie in the folder or its direct parent (so
    several checkpoints can share one) and, when ``suffix`` is given, end in it (a
    SentencePiece model: .model)."""
    bad = (
        not entry.endswith(suffix)
        or not entry.strip()
        or "\\" in entry
        or "\x00" in entry
        or PurePosixPath(entry).is_absolute()
    )
    resolved = (folder / entry).resolve() if not bad else None
    if resolved is None or resolved.parent not in (folder, folder.parent):
        kind = f"a *{suffix} file" if suffix else "a file"
        raise CheckpointError(
            f"{config_path}: tokenizer file {entry!r} is not allowed; expected {kind} "
            f"in the checkpoint folder (e.g. '{TOKENIZER_FILE}') or its parent "
            f"(e.g. '../{TOKENIZER_FILE}')"
        )
    return resolved


def _check_tokenizer_section(tok: Any, path: Path) -> None:
    """The ``tokenizer`` object: known keys of the right types and values, and the files
    each kind needs (see :func:`load_tokenizers`)."""
    example = f'{{"source": "{TOKENIZER_FILE}", "target": "{TOKENIZER_FILE}"}}'
    if not isinstance(tok, dict):
        raise CheckpointError(f"{path}: 'tokenizer' must be an object like {example}, got {tok!r}")
    unknown = sorted(set(tok) - set(_TOKENIZER_TYPES))
    if unknown:
        raise CheckpointError(
            f"{path}: unknown tokenizer keys {', '.join(unknown)}; "
            f"expected only {', '.join(_TOKENIZER_TYPES)}"
        )
    for key, value in tok.items():
        if not isinstance(value, _TOKENIZER_TYPES[key]):
            kind = _TOKENIZER_TYPES[key].__name__
            raise CheckpointError(f"{path}: tokenizer.{key} must be of type {kind}, got {value!r}")
    for key, allowed in (("kind", KINDS), ("toolkit", TOOLKITS), ("pretokenizer", PRETOKENIZERS)):
        if key in tok and tok[key] not in allowed:
            raise CheckpointError(
                f"{path}: tokenizer {key} {tok[key]!r} is not supported; "
                f"expected one of {', '.join(allowed)}"
            )
    for key in ("source_lang", "target_lang"):
        if key in tok and not re.fullmatch(r"[a-z]{2,3}", tok[key]):
            raise CheckpointError(
                f"{path}: tokenizer.{key} must be a language code such as 'en', got {tok[key]!r}"
            )
    separator = tok.get("bpe_separator", "@@")
    if not separator or len(separator) > 8 or any(c.isspace() for c in separator):
        raise CheckpointError(
            f"{path}: tokenizer.bpe_separator must be 1-8 characters without spaces, "
            f"got {separator!r}"
        )
    _check_tokenizer_files(tok, path, example)


def _check_tokenizer_files(tok: dict[str, Any], path: Path, example: str) -> None:
    kind = tok.get("kind", "sentencepiece")
    wanted = {"source", "target"} if kind != "word" else set()
    if "toolkit" in tok:
        wanted |= {"source_vocab", "target_vocab"}
    else:
        options = sorted(set(tok) - {"kind", "source", "target"})
        if kind != "sentencepiece" or options:
            raise CheckpointError(
                f"{path}: tokenizer kind {kind!r} and the options {', '.join(options) or '-'} "
                "need tokenizer.toolkit (joeynmt or opennmt-py) and its vocabulary files; "
                f"attnviz's own models have {example}"
            )
    files = {key for key in _TOKENIZER_FILE_KEYS if key in tok}
    if files != wanted:
        raise CheckpointError(
            f"{path}: a {kind} tokenizer{' of ' + tok['toolkit'] if 'toolkit' in tok else ''} "
            f"names the files {', '.join(sorted(wanted)) or 'none'}, got "
            f"{', '.join(sorted(files)) or 'none'}"
        )
    if tok.get("pretokenizer") == "moses" and not {"source_lang", "target_lang"} <= set(tok):
        raise CheckpointError(
            f"{path}: the Moses pretokenizer needs tokenizer.source_lang and target_lang"
        )


def _read_tokenizer_file(folder: Path, tok: dict[str, Any], key: str, config_path: Path) -> bytes:
    suffix = ".model" if key in ("source", "target") and tok.get("kind") != "bpe" else ""
    path = tokenizer_path(folder, tok[key], config_path, suffix)
    return read_capped(path, f"{key} tokenizer", MAX_TOKENIZER_BYTES)


def load_tokenizers(
    folder: Path, raw: dict[str, Any], config_path: Path
) -> tuple[Tokenizer, Tokenizer]:
    """The (source, target) tokenizers the config ``raw`` (read from ``config_path``) names.

    attnviz's own models: ``source`` and ``target`` are the same joint SentencePiece model.
    A model of another toolkit (``toolkit``: joeynmt or opennmt-py) has a vocabulary file per
    side (``source_vocab``, ``target_vocab``), whose ids the model uses, and per ``kind``: a
    SentencePiece model or a subword-nmt BPE codes file per side (``source``, ``target``), or
    nothing (``word``); options ``lowercase``, ``normalize`` (Joey NMT's), ``pretokenizer``
    ("none" or "moses", with ``source_lang``/``target_lang``) and ``bpe_separator`` (default
    "@@")."""
    tok = raw["tokenizer"]
    if "toolkit" not in tok:
        return _joint_sentencepiece(folder, tok, config_path)
    return (
        _toolkit_tokenizer(folder, tok, "source", config_path),
        _toolkit_tokenizer(folder, tok, "target", config_path),
    )


def _joint_sentencepiece(
    folder: Path, tok: dict[str, Any], config_path: Path
) -> tuple[Tokenizer, Tokenizer]:
    protos = {
        key: _read_tokenizer_file(folder, tok, key, config_path) for key in ("source", "target")
    }
    if protos["source"] != protos["target"]:
        raise CheckpointError(
            f"{config_path}: tokenizer source {tok['source']!r} and target "
            f"{tok['target']!r} differ; attnviz uses one joint SentencePiece model"
        )
    try:
        tokenizer = SentencePieceTokenizer(protos["source"])
    except CheckpointError as exc:
        raise CheckpointError(f"{folder / tok['source']}: {exc}") from None
    return tokenizer, tokenizer


def _toolkit_tokenizer(
    folder: Path, tok: dict[str, Any], side: str, config_path: Path
) -> Tokenizer:
    vocab_key = f"{side}_vocab"
    vocabulary = Vocabulary.from_bytes(
        _read_tokenizer_file(folder, tok, vocab_key, config_path), str(folder / tok[vocab_key])
    )
    kind = tok.get("kind", "sentencepiece")
    try:
        if kind == "word":
            segmenter: SentencePieceSegmenter | BPESegmenter | WordSegmenter = WordSegmenter()
        elif kind == "bpe":
            # Joey NMT hands BPE its vocabulary (without the special pieces); OpenNMT-py does not.
            restrict = set(vocabulary.pieces) - vocabulary.special_pieces - {UNK_PIECE}
            segmenter = BPESegmenter(
                _read_tokenizer_file(folder, tok, side, config_path),
                tok.get("bpe_separator", "@@"),
                restrict if tok["toolkit"] == "joeynmt" else None,
            )
        else:
            segmenter = SentencePieceSegmenter(_read_tokenizer_file(folder, tok, side, config_path))
        return ToolkitTokenizer(
            segmenter,
            vocabulary,
            tok["toolkit"],
            lowercase=tok.get("lowercase", False),
            moses_lang=tok[f"{side}_lang"] if tok.get("pretokenizer") == "moses" else None,
            normalize=tok.get("normalize", False),
        )
    except CheckpointError as exc:
        raise CheckpointError(f"{config_path}: {side} tokenizer: {exc}") from None


def check_special_ids(
    config: ModelConfig, tokenizers: tuple[Tokenizer, Tokenizer], path: Path
) -> None:
    """The model's pad/unk/bos/eos ids must be the ones both vocabularies reserve (the source
    gets the model's eos appended, the target starts with its bos)."""
    for side, tokenizer in zip(("source", "target"), tokenizers, strict=True):
        if tokenizer.special_ids != config.special_ids:
            raise CheckpointError(
                f"{path}: model pad/unk/bos/eos ids are {config.special_ids}; the {side} "
                f"tokenizer reserves {tokenizer.special_ids}"
            )
