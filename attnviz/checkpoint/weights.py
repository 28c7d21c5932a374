"""Weights as safetensors: saving them as float16, and loading them only after their header
has been parsed and checked against the model the config describes.

The safetensors header is parsed here (sizes, offsets, dtypes, tensor names and shapes)
before the safetensors library reads a single tensor, and loaded weights must be finite
before they reach the model. Nothing is ever unpickled.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from ..errors import CheckpointError
from ..model import AttentionRNN, ModelConfig
from .files import (
    FORMAT_VERSION,
    MB,
    WEIGHTS_FILE,
    atomic_path,
    list_names,
    no_duplicate_keys,
    stat_file,
)

__all__ = [
    "ALLOWED_DTYPES",
    "MAX_HEADER_BYTES",
    "MAX_WEIGHTS_BYTES",
    "NOT_SAFETENSORS",
    "load_weights",
    "read_safetensors_header",
    "refuse_pickled_weights",
    "save_tensors",
    "save_weights",
]

MAX_WEIGHTS_BYTES = 512 * MB
# The JSON header of a safetensors file: about 100 bytes a tensor, so 1 MB allows some ten
# thousand tensors (these models have a few dozen); each header byte costs ~12 bytes parsed.
MAX_HEADER_BYTES = 1 * MB

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
_PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".pkl", ".pickle")
NOT_SAFETENSORS = (
    "attnviz only loads safetensors weights and never unpickles (.pt/.bin/.pth files are "
    "refused); convert the weights with safetensors.torch.save_file"
)


def save_weights(path: str | Path, model: AttentionRNN) -> Path:
    """Write ``model``'s weights to ``path`` as float16 safetensors, atomically.

    Used for ``model.safetensors`` and for ``snapshots/<label>.safetensors``. Raises
    :class:`CheckpointError` if a weight does not fit float16 (NaN, Inf or beyond +-65504),
    so that nothing is written that :func:`load_weights` would refuse.
    """
    return save_tensors(path, model.state_dict(), torch.float16)


def save_tensors(path: str | Path, tensors: Mapping[str, Tensor], dtype: torch.dtype) -> Path:
    """Write ``tensors`` (a state dict) to ``path`` as safetensors of ``dtype``, atomically:
    float16 for attnviz's own checkpoints, float32 for imports, which must not lose
    precision. Raises :class:`CheckpointError` for a weight that is not finite in ``dtype``."""
    path = Path(path)
    converted: dict[str, Tensor] = {}
    for name, value in tensors.items():
        cast = value.detach().to(device="cpu", dtype=dtype).contiguous()
        if not bool(torch.isfinite(cast).all()):
            beyond = (
                " or values beyond the float16 range (+-65504)" if dtype == torch.float16 else ""
            )
            raise CheckpointError(f"cannot save weight {name!r}: it holds NaN/Inf{beyond}")
        converted[name] = cast
    with atomic_path(path) as tmp:
        save_file(converted, str(tmp), metadata={"format": "pt", "attnviz": str(FORMAT_VERSION)})
    return path


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
    size = stat_file(path, "weights file", cap)

    def bad(why: str) -> CheckpointError:
        return CheckpointError(f"{path}: not a valid safetensors file ({why}). {NOT_SAFETENSORS}")

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
        header = json.loads(header_bytes.decode("utf-8"), object_pairs_hook=no_duplicate_keys)
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


def _expected_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Names and shapes of the state dict of AttentionRNN(config), without allocating it."""
    with torch.device("meta"):
        template = AttentionRNN(config)
    return {name: tuple(t.shape) for name, t in template.state_dict().items()}


def _check_header(path: Path, infos: dict[str, _TensorInfo], config: ModelConfig) -> list[str]:
    """The tensors' names, dtypes and shapes must be those of AttentionRNN(config); returns
    the names in the order of the model's state dict."""
    expected = _expected_shapes(config)
    missing = sorted(set(expected) - set(infos))
    unexpected = sorted(set(infos) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing tensors {list_names(missing)}")
        if unexpected:
            parts.append(f"unexpected tensors {list_names(unexpected)}")
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
    return list(expected)


def load_weights(path: Path, config: ModelConfig) -> AttentionRNN:
    """Validate the safetensors file ``path`` against ``config``; return the model (eval,
    float32) with its weights."""
    infos = _read_header(path, MAX_WEIGHTS_BYTES)
    names = _check_header(path, infos, config)
    try:
        tensors = load_file(str(path), device="cpu")
    except Exception as exc:  # safetensors raises its own SafetensorError
        raise CheckpointError(f"{path}: could not read the weights: {exc}") from None
    state: dict[str, Tensor] = {}
    for name in names:
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


def refuse_pickled_weights(folder: Path) -> None:
    """When model.safetensors is missing but PyTorch pickles are there, say why they are not
    used (they are never opened)."""
    if (folder / WEIGHTS_FILE).exists():
        return
    pickles = sorted(p.name for p in folder.iterdir() if p.suffix in _PICKLE_SUFFIXES)
    if pickles:
        raise CheckpointError(
            f"{folder / WEIGHTS_FILE}: missing; found {list_names(pickles)} instead: "
            f"{NOT_SAFETENSORS}"
        )
