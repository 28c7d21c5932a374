"""Checkpoint folders: save, load and validate them, and unpack uploaded zips.

A checkpoint folder holds::

    config.json        format version, name, ModelConfig, tokenizer file names (written last)
    model.safetensors  weights, float16 on disk, loaded as float32
    spm.model          the joint SentencePiece model (or a shared one in the parent folder)
    card.json          optional free-form dict: data, license, metrics...
    recipe.toml        optional recipe text
    history.csv        optional training curve
    snapshots/         optional earlier weights: snapshots/<label>.safetensors

A checkpoint from outside (a path, an upload, a zip) is untrusted. Nothing here ever
unpickles: weights are safetensors only, and every file is size-capped with ``os.stat`` before
it is read. The safetensors header is parsed and checked here (sizes, offsets, dtypes, tensor
names and shapes against a model built from the config) before the safetensors library reads a
single tensor, and loaded weights must be finite before they reach the model.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import re
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from .errors import CheckpointError
from .model import AttentionRNN, ModelConfig
from .tokenize import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Tokenizer

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
MAX_CONFIG_BYTES = 1 * MB
MAX_CARD_BYTES = 1 * MB
MAX_RECIPE_BYTES = 1 * MB
MAX_TOKENIZER_BYTES = 16 * MB
MAX_WEIGHTS_BYTES = 512 * MB
# The JSON header of a safetensors file: about 100 bytes a tensor, so 1 MB allows some ten
# thousand tensors (these models have a few dozen); each header byte costs ~12 bytes parsed.
MAX_HEADER_BYTES = 1 * MB

MAX_UPLOAD_BYTES = 256 * MB  # the zip as uploaded
MAX_UPLOAD_MEMBER_BYTES = MAX_WEIGHTS_BYTES  # one file, uncompressed
MAX_UPLOAD_TOTAL_BYTES = 1024 * MB  # all files, uncompressed
MAX_UPLOAD_MEMBERS = 64
# Trained float16 weights barely compress; a member that shrank more than this is a zip bomb.
MAX_COMPRESSION_RATIO = 100
RATIO_CHECK_MIN_BYTES = 1 * MB  # small text files (card, config) may compress well

ALLOWED_DTYPES = ("F16", "BF16", "F32")
# Every dtype the safetensors format knows, with its size in bytes (to check offsets).
_DTYPE_BYTES = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E5M2": 1,
    "F8_E4M3": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "I64": 8,
    "U64": 8,
    "F64": 8,
}
# Far above any model of this family; they keep a hostile config from making the template
# model (built from the config before any weight is read) or decoding unboundedly large.
MAX_CONFIG_SIZES = {
    "emb_dim": 16384,
    "enc_hidden": 16384,
    "dec_hidden": 16384,
    "attn_dim": 16384,
    "heads": 256,
    "enc_layers": 16,
    "max_src_len": 4096,
    "max_tgt_len": 4096,
}
_CONFIG_KEYS = {"format_version", "name", "model", "tokenizer"}
_TOKENIZER_KEYS = {"source", "target"}
_LABEL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,99}")
_NAME_RE = re.compile(r"[^\x00-\x1f\x7f/\\:]{1,255}")
_PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".pkl", ".pickle")
_NOT_SAFETENSORS = (
    "attnviz only loads safetensors weights and never unpickles (.pt/.bin/.pth files are "
    "refused); convert the weights with safetensors.torch.save_file"
)


@dataclass
class Checkpoint:
    """A loaded, validated checkpoint folder."""

    path: Path
    name: str
    config: ModelConfig
    model: AttentionRNN  # eval mode, float32
    tokenizer: Tokenizer
    card: dict[str, Any]
    recipe: str | None
    history_path: Path | None
    snapshots: list[str]  # labels of snapshots/<label>.safetensors, sorted naturally


# ---------------------------------------------------------------------------------------------
# Saving


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
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def save_weights(path: str | Path, model: AttentionRNN) -> Path:
    """Write ``model``'s weights to ``path`` as float16 safetensors, atomically.

    Used for ``model.safetensors`` and for ``snapshots/<label>.safetensors``. Raises
    :class:`CheckpointError` if a weight does not fit float16 (NaN, Inf or beyond +-65504),
    so that nothing is written that :func:`load_checkpoint` would refuse.
    """
    path = Path(path)
    tensors: dict[str, Tensor] = {}
    for name, value in model.state_dict().items():
        half = value.detach().to(device="cpu", dtype=torch.float16).contiguous()
        if not bool(torch.isfinite(half).all()):
            raise CheckpointError(
                f"cannot save weight {name!r}: it holds NaN/Inf or values beyond the float16 "
                "range (+-65504)"
            )
        tensors[name] = half
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt", "attnviz": str(FORMAT_VERSION)})
    return path


def save_checkpoint(
    folder: str | Path,
    model: AttentionRNN,
    tokenizer: Tokenizer,
    card: dict[str, Any] | None = None,
    recipe: str | None = None,
    name: str | None = None,
) -> Path:
    """Write a checkpoint folder and return its path.

    Every file is written to a temporary file in the folder and moved into place;
    ``config.json`` comes last, so a folder with a config is complete. ``card`` and ``recipe``
    are written only when given (an existing card.json/recipe.toml is then replaced), and other
    files already in the folder (history.csv, snapshots/) are left alone. ``name`` defaults to
    the folder's name.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if model.config.vocab_size != tokenizer.vocab_size:
        raise CheckpointError(
            f"model vocab_size {model.config.vocab_size} does not match the tokenizer's "
            f"{tokenizer.vocab_size} pieces"
        )
    name = name if name is not None else folder.resolve().name
    write_bytes_atomic(folder / TOKENIZER_FILE, tokenizer.model_proto)
    save_weights(folder / WEIGHTS_FILE, model)
    if card is not None:
        text = json.dumps(card, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
        write_bytes_atomic(folder / CARD_FILE, text.encode("utf-8"))
    if recipe is not None:
        write_bytes_atomic(folder / RECIPE_FILE, recipe.encode("utf-8"))
    config = {
        "format_version": FORMAT_VERSION,
        "name": name,
        "model": model.config.to_dict(),
        "tokenizer": {"source": TOKENIZER_FILE, "target": TOKENIZER_FILE},
    }
    text = json.dumps(config, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    write_bytes_atomic(folder / CONFIG_FILE, text.encode("utf-8"))
    return folder


# ---------------------------------------------------------------------------------------------
# Reading small files


def _human(n: int) -> str:
    return f"{n / MB:.1f} MB" if n >= MB else f"{n} bytes"


def _stat_file(path: Path, what: str, cap: int) -> int:
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
            f"{path}: the {what} is {_human(st.st_size)}, over the {_human(cap)} limit"
        )
    return st.st_size


def _read_capped(path: Path, what: str, cap: int) -> bytes:
    _stat_file(path, what, cap)
    with open(path, "rb") as f:
        data = f.read(cap + 1)  # the file may have grown since the stat
    if len(data) > cap:
        raise CheckpointError(f"{path}: the {what} is over the {_human(cap)} limit")
    return data


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _read_json_object(path: Path, what: str, cap: int) -> dict[str, Any]:
    data = _read_capped(path, what, cap)
    try:
        value = json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicate_keys)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CheckpointError(f"{path}: the {what} is not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise CheckpointError(
            f"{path}: the {what} must be a JSON object ({{...}}), got {type(value).__name__}"
        )
    return value


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


def read_config(path: str | Path) -> tuple[ModelConfig, dict[str, Any]]:
    """Read and validate ``config.json`` (``path`` is the file or its checkpoint folder).

    Returns the model config and the whole parsed JSON object. Raises
    :class:`CheckpointError` for a missing/oversized/non-JSON file, a missing, non-integer or
    newer ``format_version``, unknown keys, or model settings :class:`ModelConfig` refuses.
    """
    path = Path(path)
    if path.is_dir():
        path = path / CONFIG_FILE
    raw = _read_json_object(path, "config.json", MAX_CONFIG_BYTES)
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
    unknown = sorted(set(raw) - _CONFIG_KEYS)
    if unknown:
        raise CheckpointError(
            f"{path}: unknown config keys {', '.join(unknown)}; "
            f"expected only {', '.join(sorted(_CONFIG_KEYS))}"
        )
    if "name" in raw and not isinstance(raw["name"], str):
        raise CheckpointError(f"{path}: name must be a string, got {raw['name']!r}")
    model = raw.get("model")
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
    special = (config.pad_id, config.unk_id, config.bos_id, config.eos_id)
    if special != (PAD_ID, UNK_ID, BOS_ID, EOS_ID):
        raise CheckpointError(
            f"{path}: model pad/unk/bos/eos ids are {special}; the tokenizer reserves "
            f"{(PAD_ID, UNK_ID, BOS_ID, EOS_ID)}"
        )
    tok = raw.get("tokenizer")
    if (
        not isinstance(tok, dict)
        or set(tok) != _TOKENIZER_KEYS
        or not all(isinstance(v, str) for v in tok.values())
    ):
        raise CheckpointError(
            f"{path}: 'tokenizer' must be an object like "
            f'{{"source": "spm.model", "target": "spm.model"}}, got {tok!r}'
        )
    return config, raw


def _tokenizer_path(folder: Path, entry: str, config_path: Path) -> Path:
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
            "in the checkpoint folder (e.g. 'spm.model') or its parent (e.g. '../spm.model')"
        )
    return resolved


def _load_tokenizer(folder: Path, raw: dict[str, Any], config_path: Path) -> Tokenizer:
    entries = raw["tokenizer"]
    paths = {
        key: _tokenizer_path(folder, entries[key], config_path) for key in ("source", "target")
    }
    protos = {
        key: _read_capped(p, f"{key} tokenizer", MAX_TOKENIZER_BYTES) for key, p in paths.items()
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


# ---------------------------------------------------------------------------------------------
# Weights


@dataclass(frozen=True)
class _TensorInfo:
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def read_safetensors_header(path: str | Path, max_bytes: int | None = None) -> dict[str, Any]:
    """Parse and check the header of a safetensors file without reading any tensor.

    Returns ``{tensor name: {"dtype", "shape", "data_offsets"}}`` (metadata dropped). The file
    size is checked against ``max_bytes`` (default :data:`MAX_WEIGHTS_BYTES`) with ``os.stat``
    before anything is read; every entry's dtype, shape and offsets must be consistent with
    the file size, and the tensors must tile the data area exactly.
    """
    infos = _read_header(Path(path), MAX_WEIGHTS_BYTES if max_bytes is None else max_bytes)
    return {
        name: {"dtype": i.dtype, "shape": list(i.shape), "data_offsets": [i.begin, i.end]}
        for name, i in infos.items()
    }


def _read_header(path: Path, cap: int) -> dict[str, _TensorInfo]:
    size = _stat_file(path, "weights file", cap)

    def bad(why: str) -> CheckpointError:
        return CheckpointError(f"{path}: not a valid safetensors file ({why}). {_NOT_SAFETENSORS}")

    if size < 8:
        raise bad(f"only {size} bytes long")
    with open(path, "rb") as f:
        length = int.from_bytes(f.read(8), "little")
        if length < 2 or length > MAX_HEADER_BYTES or length > size - 8:
            raise bad(f"header length {length} is impossible for a file of {size} bytes")
        header_bytes = f.read(length)
    if len(header_bytes) != length:
        raise bad("the file changed while being read")
    try:
        header = json.loads(header_bytes.decode("utf-8"), object_pairs_hook=_no_duplicate_keys)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise bad("the header is not JSON") from None
    if not isinstance(header, dict):
        raise bad("the header is not a JSON object")
    buffer_len = size - 8 - length
    infos: dict[str, _TensorInfo] = {}
    for name, entry in header.items():
        if name == "__metadata__":
            if not isinstance(entry, dict) or not all(isinstance(v, str) for v in entry.values()):
                raise bad("__metadata__ must map strings to strings")
            continue
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise bad(f"entry {name!r} must have exactly dtype, shape and data_offsets")
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if not isinstance(dtype, str) or dtype not in _DTYPE_BYTES:
            raise bad(f"tensor {name!r} has unknown dtype {dtype!r}")
        if not isinstance(shape, list) or len(shape) > 8 or not all(map(_is_count, shape)):
            raise bad(f"tensor {name!r} has invalid shape {shape!r}")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(map(_is_count, offsets))):
            raise bad(f"tensor {name!r} has invalid data_offsets {offsets!r}")
        begin, end = offsets
        nbytes = math.prod(shape) * _DTYPE_BYTES[dtype]
        if not begin <= end <= buffer_len or end - begin != nbytes:
            raise bad(
                f"tensor {name!r} ({dtype} {shape}) needs {nbytes} bytes but its data_offsets "
                f"{offsets} do not fit the {buffer_len} data bytes; the file may be truncated"
            )
        infos[name] = _TensorInfo(dtype, tuple(shape), begin, end)
    position = 0
    for info in sorted(infos.values(), key=lambda i: (i.begin, i.end)):
        if info.begin != position:
            raise bad("tensor data overlap or leave gaps")
        position = info.end
    if position != buffer_len:
        raise bad(f"tensors cover {position} of {buffer_len} data bytes; truncated or padded")
    return infos


def _list_names(names: list[str], limit: int = 6) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _expected_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Names and shapes of the state dict of AttentionRNN(config), without allocating it."""
    with torch.device("meta"):
        template = AttentionRNN(config)
    return {name: tuple(t.shape) for name, t in template.state_dict().items()}


def _load_weights(path: Path, config: ModelConfig) -> AttentionRNN:
    """Validate the safetensors file ``path`` against ``config``; return the model (eval,
    float32) with its weights."""
    infos = _read_header(path, MAX_WEIGHTS_BYTES)
    expected = _expected_shapes(config)
    missing = sorted(set(expected) - set(infos))
    unexpected = sorted(set(infos) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing tensors {_list_names(missing)}")
        if unexpected:
            parts.append(f"unexpected tensors {_list_names(unexpected)}")
        raise CheckpointError(
            f"{path}: {'; '.join(parts)}. The weights do not belong to the model config.json "
            f"describes (scorer={config.scorer!r}, tie_output={config.tie_output})"
        )
    for name, info in infos.items():
        if info.dtype not in ALLOWED_DTYPES:
            raise CheckpointError(
                f"{path}: tensor {name!r} has dtype {info.dtype}; expected one of "
                f"{', '.join(ALLOWED_DTYPES)}"
            )
    for name, info in infos.items():
        if info.shape != expected[name]:
            raise CheckpointError(
                f"{path}: tensor {name!r} has shape {list(info.shape)} but config.json implies "
                f"{list(expected[name])}; the config and the weights do not match"
            )
    try:
        tensors = load_file(str(path), device="cpu")
    except Exception as exc:  # safetensors raises its own SafetensorError
        raise CheckpointError(f"{path}: could not read the weights: {exc}") from None
    state: dict[str, Tensor] = {}
    for name in expected:
        tensor = tensors[name]
        if not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"{path}: tensor {name!r} contains NaN or Inf values")
        state[name] = tensor.to(torch.float32)
    model = AttentionRNN(config)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:  # cannot happen after the checks above; kept as a guard
        raise CheckpointError(f"{path}: weights do not fit the model: {exc}") from None
    return model.float().eval()


# ---------------------------------------------------------------------------------------------
# Loading


def _natural_key(label: str) -> tuple[tuple[Any, ...], str]:
    parts = re.split(r"(\d+)", label)
    return tuple(int(p) if i % 2 else p.lower() for i, p in enumerate(parts)), label


def _snapshot_labels(folder: Path) -> list[str]:
    snapdir = folder / SNAPSHOTS_DIR
    if not snapdir.is_dir():
        return []
    labels = [
        p.name[: -len(WEIGHTS_SUFFIX)]
        for p in snapdir.iterdir()
        if p.name.endswith(WEIGHTS_SUFFIX) and p.is_file()
    ]
    return sorted((x for x in labels if _LABEL_RE.fullmatch(x)), key=_natural_key)


def _no_pickled_weights_instead(folder: Path) -> None:
    """When model.safetensors is missing but PyTorch pickles are there, say why they are not
    used (they are never opened)."""
    if (folder / WEIGHTS_FILE).exists():
        return
    pickles = sorted(p.name for p in folder.iterdir() if p.suffix in _PICKLE_SUFFIXES)
    if pickles:
        raise CheckpointError(
            f"{folder / WEIGHTS_FILE}: missing; found {_list_names(pickles)} instead: "
            f"{_NOT_SAFETENSORS}"
        )


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Load and validate a checkpoint folder.

    Raises :class:`CheckpointError` naming the file, what is wrong and what is expected for
    anything amiss: missing files, malformed or newer config, tokenizer/config mismatch,
    weights that are not safetensors, too big, or whose names, shapes, dtypes or values do not
    fit the config. Nothing is ever unpickled.
    """
    folder = Path(path)
    if not folder.exists():
        raise CheckpointError(f"{folder}: no such checkpoint folder")
    if not folder.is_dir():
        raise CheckpointError(
            f"{folder}: not a folder; a checkpoint is a folder holding config.json, "
            "model.safetensors and spm.model (unpack a zip first)"
        )
    folder = folder.resolve()
    config_path = folder / CONFIG_FILE
    config, raw = read_config(config_path)
    tokenizer = _load_tokenizer(folder, raw, config_path)
    if tokenizer.vocab_size != config.vocab_size:
        raise CheckpointError(
            f"{config_path}: vocab_size is {config.vocab_size} but the tokenizer "
            f"{raw['tokenizer']['source']!r} has {tokenizer.vocab_size} pieces; "
            "they must be equal"
        )
    _no_pickled_weights_instead(folder)
    model = _load_weights(folder / WEIGHTS_FILE, config)
    card: dict[str, Any] = {}
    if (folder / CARD_FILE).exists():
        card = _read_json_object(folder / CARD_FILE, "model card", MAX_CARD_BYTES)
    recipe = None
    if (folder / RECIPE_FILE).exists():
        data = _read_capped(folder / RECIPE_FILE, "recipe", MAX_RECIPE_BYTES)
        try:
            recipe = data.decode("utf-8")
        except UnicodeDecodeError:
            raise CheckpointError(f"{folder / RECIPE_FILE}: the recipe is not UTF-8 text") from None
    history = folder / HISTORY_FILE
    return Checkpoint(
        path=folder,
        name=raw.get("name") or folder.name,
        config=config,
        model=model,
        tokenizer=tokenizer,
        card=card,
        recipe=recipe,
        history_path=history if history.is_file() else None,
        snapshots=_snapshot_labels(folder),
    )


def load_snapshot(checkpoint: Checkpoint, label: str) -> AttentionRNN:
    """The model with the weights of ``snapshots/<label>.safetensors`` (eval, float32).

    ``label`` must be a plain name (letters, digits, ``._+-``; no path separators), and the
    file is validated exactly like ``model.safetensors``.
    """
    if not isinstance(label, str) or not _LABEL_RE.fullmatch(label) or ".." in label:
        raise CheckpointError(
            f"invalid snapshot label {label!r}; expected a plain name such as 'step-1000'"
        )
    path = checkpoint.path / SNAPSHOTS_DIR / f"{label}{WEIGHTS_SUFFIX}"
    if not path.exists():
        known = ", ".join(checkpoint.snapshots) or "none"
        raise CheckpointError(f"{path}: no snapshot {label!r}; available: {known}")
    return _load_weights(path, checkpoint.config)


# ---------------------------------------------------------------------------------------------
# Uploads


def _member_parts(info: zipfile.ZipInfo) -> tuple[str, ...]:
    """The path components of a zip member, or CheckpointError if it could escape."""
    name = info.filename
    if name.startswith(("/", "\\")) or "\\" in name or re.match(r"[A-Za-z]:", name):
        raise CheckpointError(f"upload: member {name!r} has an absolute or Windows path")
    parts = tuple(name.rstrip("/").split("/"))
    for part in parts:
        if part in ("", ".", "..") or not _NAME_RE.fullmatch(part):
            raise CheckpointError(
                f"upload: member {name!r} has an unsafe path; only plain relative names allowed"
            )
    return parts


def _check_member_kind(info: zipfile.ZipInfo) -> None:
    if info.flag_bits & 0x1:
        raise CheckpointError(f"upload: member {info.filename!r} is encrypted")
    mode = info.external_attr >> 16
    if info.create_system == 3 and mode:  # Unix: the high bits hold st_mode
        kind = stat.S_IFMT(mode)
        if stat.S_ISLNK(mode):
            raise CheckpointError(f"upload: member {info.filename!r} is a symlink; not allowed")
        if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
            raise CheckpointError(f"upload: member {info.filename!r} is not a regular file")


def extract_upload(data: bytes, dest: Path) -> Path:
    """Unpack an uploaded zip of a checkpoint folder into ``dest``; return the folder inside
    ``dest`` that holds ``config.json`` (not yet validated: call :func:`load_checkpoint`).

    The files may sit at the zip's root or inside exactly one top folder. ``dest`` must be
    empty or absent. Sizes are capped (the zip, each file, all files together, and the
    compression ratio), both as declared and as actually decompressed; absolute paths, ``..``,
    symlinks, encrypted members and too many members are refused. Nothing is written outside
    ``dest``; on any error, what was written is removed.
    """
    if len(data) > MAX_UPLOAD_BYTES:
        raise CheckpointError(
            f"upload: the zip is {_human(len(data))}, over the {_human(MAX_UPLOAD_BYTES)} limit"
        )
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as exc:
        raise CheckpointError(f"upload: not a zip file ({exc})") from None
    with archive:
        members = [
            i for i in archive.infolist() if not i.filename.startswith(("__MACOSX/", "./__MACOSX/"))
        ]
        if len(members) > MAX_UPLOAD_MEMBERS:
            raise CheckpointError(
                f"upload: the zip has {len(members)} entries; at most {MAX_UPLOAD_MEMBERS} allowed"
            )
        files: list[tuple[zipfile.ZipInfo, tuple[str, ...]]] = []
        seen: set[tuple[str, ...]] = set()
        total = 0
        for info in members:
            _check_member_kind(info)
            parts = _member_parts(info)
            if info.is_dir():
                continue
            if parts in seen:
                raise CheckpointError(f"upload: member {info.filename!r} appears twice")
            seen.add(parts)
            if info.file_size > MAX_UPLOAD_MEMBER_BYTES:
                raise CheckpointError(
                    f"upload: {info.filename!r} is {_human(info.file_size)} uncompressed, over "
                    f"the {_human(MAX_UPLOAD_MEMBER_BYTES)} limit"
                )
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > RATIO_CHECK_MIN_BYTES and ratio > MAX_COMPRESSION_RATIO:
                raise CheckpointError(
                    f"upload: {info.filename!r} expands {ratio:.0f} times when unpacked; "
                    "refusing a likely zip bomb"
                )
            total += info.file_size
            if total > MAX_UPLOAD_TOTAL_BYTES:
                raise CheckpointError(
                    f"upload: the files add up to over {_human(MAX_UPLOAD_TOTAL_BYTES)} "
                    "uncompressed"
                )
            files.append((info, parts))
        _check_total_ratio(files)
        root = _upload_root(files)
        return _extract_files(archive, files, Path(dest), root)


def _check_total_ratio(files: list[tuple[zipfile.ZipInfo, tuple[str, ...]]]) -> None:
    """The compression ratio of all files together: many small members that each pass the
    per-file check can still add up to a zip bomb."""
    total = sum(info.file_size for info, _ in files)
    ratio = total / max(sum(info.compress_size for info, _ in files), 1)
    if total > RATIO_CHECK_MIN_BYTES and ratio > MAX_COMPRESSION_RATIO:
        raise CheckpointError(
            f"upload: the files expand {ratio:.0f} times when unpacked; refusing a likely zip bomb"
        )


def _upload_root(files: list[tuple[zipfile.ZipInfo, tuple[str, ...]]]) -> str | None:
    """The one top folder all files are in, or None when config.json is at the root."""
    if not files:
        raise CheckpointError("upload: the zip is empty")
    if any(parts == (CONFIG_FILE,) for _, parts in files):
        return None
    tops = sorted({parts[0] for _, parts in files})
    if len(tops) != 1 or any(len(parts) < 2 for _, parts in files):
        raise CheckpointError(
            "upload: expected a checkpoint folder's files (config.json, model.safetensors, "
            "spm.model) at the zip's root or inside one folder; found top-level entries "
            f"{_list_names(tops)}"
        )
    if not any(parts == (tops[0], CONFIG_FILE) for _, parts in files):
        raise CheckpointError(f"upload: no config.json in the zip's folder {tops[0]!r}")
    return tops[0]


def _extract_files(
    archive: zipfile.ZipFile,
    files: list[tuple[zipfile.ZipInfo, tuple[str, ...]]],
    dest: Path,
    root: str | None,
) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    dest = dest.resolve()
    if any(dest.iterdir()):
        raise CheckpointError(f"upload: destination {dest} must be empty")
    # Files at the zip root go into a subfolder, so that a tokenizer named "../x.model" can
    # only ever see this upload's own files.
    folder = dest / (root or "checkpoint")
    written = 0
    try:
        for info, parts in files:
            rel = parts[1:] if root else parts
            target = folder.joinpath(*rel)
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.parent.resolve().is_relative_to(folder):
                raise CheckpointError(f"upload: member {info.filename!r} escapes the folder")
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
            fd = os.open(target, flags, 0o644)
            size = 0
            with os.fdopen(fd, "wb") as out, archive.open(info) as src:
                while chunk := src.read(MB):
                    size += len(chunk)
                    written += len(chunk)
                    if size > info.file_size or size > MAX_UPLOAD_MEMBER_BYTES:
                        raise CheckpointError(
                            f"upload: {info.filename!r} decompresses to more than it declares; "
                            "refusing a likely zip bomb"
                        )
                    if written > MAX_UPLOAD_TOTAL_BYTES:
                        raise CheckpointError(
                            f"upload: the files decompress to over {_human(MAX_UPLOAD_TOTAL_BYTES)}"
                        )
                    out.write(chunk)
    except (zipfile.BadZipFile, EOFError, OSError, RuntimeError, NotImplementedError) as exc:
        _clear(dest)
        raise CheckpointError(f"upload: could not unpack the zip: {exc}") from None
    except BaseException:
        _clear(dest)
        raise
    return folder


def _clear(dest: Path) -> None:
    """Remove everything inside ``dest`` (which we checked was empty before unpacking)."""
    for child in dest.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)
