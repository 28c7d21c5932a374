"""The resumable state of a run: weights, Adam moments, RNG and position in the data, saved
as one safetensors file (never a pickle) so that ``--resume`` continues exactly."""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor

from ..checkpoint import atomic_path
from ..model import AttentionRNN
from ..recipe import TrainingSpec

__all__ = ["STATE_FILE", "TrainState", "load_state", "save_state", "state_summary"]

STATE_FILE = "state.safetensors"  # in the run's output folder, next to the checkpoint
UPDATE_IMPLEMENTATION = ("fused", "foreach", "capturable", "differentiable")


@dataclass
class TrainState:
    """Where training stands; saved with the weights so ``--resume`` continues exactly."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    lr: float = 0.0
    best_bleu: float = -1.0
    best_step: int = 0
    bad_validations: int = 0
    target_tokens: int = 0
    elapsed_s: float = 0.0
    loss_sum: float = 0.0  # since the last validation
    loss_count: int = 0
    guidance_loss_sum: float = 0.0  # since the last validation, guided runs only
    finished: bool = False
    python_rng: list = field(default_factory=list)

    def done(self, spec: TrainingSpec) -> bool:
        """True when the run has reached one of its own ends: patience used up, the last epoch
        or step, or the time budget.

        The loop stops by this rule and the test sets are scored by it, so both read the time
        from ``elapsed_s``, which the loop brings up to date before every check. (Two clocks
        used to disagree here: the loop's own, and ``elapsed_s`` as of the last validation,
        which lags it by the time a validation takes to save; a 60-second allowance papered
        over the difference.)
        """
        return (
            self.finished
            or self.epoch >= spec.max_epochs
            or (spec.max_steps is not None and self.step >= spec.max_steps)
            or (spec.max_minutes is not None and self.elapsed_s >= 60 * spec.max_minutes)
        )


def save_state(
    path: Path, model: AttentionRNN, optimizer: torch.optim.Optimizer, state: TrainState
) -> None:
    """Weights, Adam moments, RNG and position, as one safetensors file (never a pickle)."""
    tensors = {f"model.{k}": v.detach().contiguous() for k, v in model.state_dict().items()}
    optim = optimizer.state_dict()
    for index, slots in optim["state"].items():
        for key, value in slots.items():
            tensors[f"optim.{index}.{key}"] = torch.as_tensor(value).contiguous()
    tensors["rng.torch"] = torch.get_rng_state()
    state.python_rng = _jsonable(random.getstate())
    metadata = {
        "state": json.dumps(asdict(state)),
        "param_groups": json.dumps(optim["param_groups"]),
    }
    with atomic_path(path) as tmp:
        save_file({k: v.cpu() for k, v in tensors.items()}, str(tmp), metadata=metadata)


def _jsonable(value: object) -> object:
    return [_jsonable(v) for v in value] if isinstance(value, tuple | list) else value


def _tupled(value: object) -> object:
    return tuple(_tupled(v) for v in value) if isinstance(value, list) else value


def load_state(path: Path, model: AttentionRNN, optimizer: torch.optim.Optimizer) -> TrainState:
    """Restore what :func:`save_state` wrote into ``model``, ``optimizer`` and the RNGs."""
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata()
    tensors = load_file(str(path))
    device = next(model.parameters()).device
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    slots: dict[int, dict[str, Tensor]] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, index, key = name.split(".", 2)
            slots.setdefault(int(index), {})[key] = value if key == "step" else value.to(device)
    groups = json.loads(metadata["param_groups"])
    for saved, own in zip(groups, optimizer.param_groups, strict=True):
        # How the update is computed is this run's choice (a state saved before the fused
        # kernel says fused: null), not the saved run's; the moments and rates are the same.
        saved.update({k: own[k] for k in UPDATE_IMPLEMENTATION if k in own})
    optimizer.load_state_dict({"state": slots, "param_groups": groups})
    torch.set_rng_state(tensors["rng.torch"])
    state = TrainState(**json.loads(metadata["state"]))
    if state.python_rng:
        random.setstate(_tupled(state.python_rng))  # type: ignore[arg-type]
    return state


def state_summary(path: Path) -> dict:
    """The saved state's counters (for tests and status lines)."""
    with safe_open(str(path), framework="pt") as f:
        return json.loads(f.metadata()["state"])
