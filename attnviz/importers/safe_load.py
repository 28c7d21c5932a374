"""Reading another toolkit's PyTorch checkpoint without running code from it.

Joey NMT and OpenNMT-py save ``torch.save`` pickles. A pickle can name any Python callable
and have the loader call it, so these files are read only through PyTorch's restricted
unpickler (``weights_only=True``), which builds tensors, containers and plain values and
nothing else; each toolkit adds the few classes its files really hold and no more:

- Joey NMT 2.x ``*.ckpt``: ``{"model_state", "optimizer_state", "scaler_state",
  "scheduler_state", "train_iter_state", "stats_state"}``: state dicts, a torch generator
  state (a byte tensor) and plain numbers (joeynmt/training.py ``_save_checkpoint``).
  No class beyond the default allowlist.
- OpenNMT-py 3.x ``*.pt``: ``{"model", "generator", "vocab", "opt", "optim"}``: state dicts,
  token lists, and the training options as an ``argparse.Namespace``
  (onmt/models/model_saver.py ``ModelSaver._save``). Allowlist: ``argparse.Namespace``.

A file that needs any other class is refused with a message naming it. The file is read once
into memory, size-capped first, so the bytes hashed for the provenance are the bytes loaded.
"""

from __future__ import annotations

import io
import pickle
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..checkpoint.files import MB, list_names, read_capped
from ..errors import CheckpointError
from .provenance import sha256_hex

__all__ = ["MAX_TOOLKIT_CHECKPOINT_BYTES", "LoadedCheckpoint", "load_toolkit_checkpoint"]

# A toolkit checkpoint also holds the optimizer's state (Adam: two more copies of every
# weight), so it may be up to three times the weights' size; this allows weights of about
# 340 MB, as many as the upload of a checkpoint folder allows all files together.
MAX_TOOLKIT_CHECKPOINT_BYTES = 1024 * MB

# "Unsupported global: GLOBAL os.system was not an allowed global by default..."
_GLOBAL_RE = re.compile(r"GLOBAL ([\w.]+)")


@dataclass(frozen=True)
class LoadedCheckpoint:
    """A toolkit checkpoint read safely.

    content: what the pickle holds (a dict for both toolkits)
    name:    the file's name, for messages and the provenance
    sha256:  hex digest of the file's bytes (those that were loaded)
    """

    content: Any
    name: str
    sha256: str


def load_toolkit_checkpoint(
    path: Path,
    allowed: tuple[type, ...] = (),
    toolkit: str = "the toolkit",
    max_bytes: int = MAX_TOOLKIT_CHECKPOINT_BYTES,
) -> LoadedCheckpoint:
    """Read the ``torch.save`` file ``path`` with PyTorch's restricted unpickler.

    ``allowed``: the classes beyond PyTorch's default allowlist that this toolkit's files
    hold. Any other class named in the pickle is refused (the message names it) before
    anything is built; nothing in the file is ever called. Tensors are loaded on the CPU.
    """
    data = read_capped(path, f"{toolkit} checkpoint", max_bytes)
    if zipfile.is_zipfile(io.BytesIO(data)):
        _check_stored(data, path)
        _refuse_unknown_globals(data, allowed, path, toolkit)
    try:
        with torch.serialization.safe_globals(list(allowed)):
            content = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        names = _GLOBAL_RE.findall(str(exc))
        raise CheckpointError(_refusal(path, toolkit, names, allowed)) from None
    except Exception as exc:  # torch raises many kinds for a damaged file
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint ({type(exc).__name__}: "
            f"{_first_line(exc)}); expected the {toolkit} file as the toolkit saved it"
        ) from None
    return LoadedCheckpoint(content, path.name, sha256_hex(data))


def _check_stored(data: bytes, path: Path) -> None:
    """``torch.save`` stores its zip members uncompressed; a compressed member could expand
    far beyond the size cap, so the file is refused before PyTorch decompresses anything."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({exc})") from None
    for info in members:
        if info.compress_type != zipfile.ZIP_STORED or info.file_size > len(data):
            raise CheckpointError(
                f"{path}: member {info.filename!r} is compressed; torch.save never compresses, "
                "so this is not a checkpoint as the toolkit saved it"
            )


def _refuse_unknown_globals(
    data: bytes, allowed: tuple[type, ...], path: Path, toolkit: str
) -> None:
    """Name every class the pickle needs beyond the allowlist, without unpickling."""
    allowed_names = {f"{cls.__module__}.{cls.__qualname__}" for cls in allowed}
    try:
        needed = torch.serialization.get_unsafe_globals_in_checkpoint(io.BytesIO(data))
    except Exception as exc:
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint ({_first_line(exc)}); expected the "
            f"{toolkit} file as the toolkit saved it"
        ) from None
    unknown = sorted(set(needed) - allowed_names)
    if unknown:
        raise CheckpointError(_refusal(path, toolkit, unknown, allowed))


def _refusal(path: Path, toolkit: str, names: list[str], allowed: tuple[type, ...]) -> str:
    what = f"class {list_names(names)}" if names else "an object PyTorch cannot read safely"
    extra = ", ".join(f"{c.__module__}.{c.__qualname__}" for c in allowed)
    reads = f"tensors, plain values and {extra}" if extra else "tensors and plain values"
    return (
        f"{path}: refused: the file needs {what}, which a {toolkit} checkpoint does not "
        f"hold. attnviz never runs code from a checkpoint and reads only {reads}"
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
