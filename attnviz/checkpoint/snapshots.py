"""Snapshots: earlier weights of a checkpoint, ``snapshots/<label>.safetensors``, for watching
attention form during training."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import CheckpointError
from ..model import AttentionRNN
from .files import SNAPSHOTS_DIR, WEIGHTS_SUFFIX
from .weights import load_weights

if TYPE_CHECKING:
    from .folder import Checkpoint

__all__ = ["load_snapshot", "snapshot_labels", "snapshot_path", "snapshot_steps", "step_label"]

_LABEL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,99}")
# Training labels its snapshots "step-<n>"; "step_1000" or "Step1000" from elsewhere are read too.
_STEP_LABEL = re.compile(r"step[-_]?(\d+)", re.IGNORECASE)


def step_label(step: int) -> str:
    """The label of the snapshot that training saves at ``step``."""
    return f"step-{step}"


def snapshot_steps(labels: list[str]) -> list[tuple[int, str]]:
    """(step, label) of the snapshot labels that name a step, like ``step-1000``."""
    found = ((_STEP_LABEL.fullmatch(label), label) for label in labels)
    return [(int(match.group(1)), label) for match, label in found if match]


def _check_label(label: str) -> None:
    if not isinstance(label, str) or not _LABEL_RE.fullmatch(label) or ".." in label:
        raise CheckpointError(
            f"invalid snapshot label {label!r}; expected a plain name such as 'step-1000'"
        )


def snapshot_path(folder: Path, label: str) -> Path:
    """Where the snapshot ``label`` of the checkpoint ``folder`` is stored.

    ``label`` must be a plain name (letters, digits, ``._+-``; no path separators).
    """
    _check_label(label)
    return folder / SNAPSHOTS_DIR / f"{label}{WEIGHTS_SUFFIX}"


def _natural_key(label: str) -> tuple[tuple[Any, ...], str]:
    parts = re.split(r"(\d+)", label)
    return tuple(int(p) if i % 2 else p.lower() for i, p in enumerate(parts)), label


def snapshot_labels(folder: Path) -> list[str]:
    """Labels of the snapshots in the checkpoint ``folder``, sorted naturally (step-2 before
    step-10); files whose names are not plain labels are left out."""
    snapdir = folder / SNAPSHOTS_DIR
    if not snapdir.is_dir():
        return []
    labels = [
        p.name[: -len(WEIGHTS_SUFFIX)]
        for p in snapdir.iterdir()
        if p.name.endswith(WEIGHTS_SUFFIX) and p.is_file()
    ]
    return sorted((x for x in labels if _LABEL_RE.fullmatch(x)), key=_natural_key)


def load_snapshot(checkpoint: Checkpoint, label: str) -> AttentionRNN:
    """The model with the weights of ``snapshots/<label>.safetensors`` (eval, float32).

    ``label`` must be a plain name (see :func:`snapshot_path`), and the file is validated
    exactly like ``model.safetensors``.
    """
    path = snapshot_path(checkpoint.path, label)
    if not path.exists():
        known = ", ".join(checkpoint.snapshots) or "none"
        raise CheckpointError(f"{path}: no snapshot {label!r}; available: {known}")
    return load_weights(path, checkpoint.config)
