"""What an importer hands on: the toolkit's model translated into attnviz's terms.

Each toolkit module keeps ONE table of :class:`TensorRule` rows: for every tensor of the
toolkit's state dict, the engine parameter it becomes, its expected shape, the conversion (if
the two conventions differ) and the mathematics it stands for. :func:`map_tensors` applies a
table: a tensor missing from the file, of the wrong shape, not floating point, not finite, or
one the table does not know (a feature attnviz does not support) is refused by name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ..errors import CheckpointError

# The toolkits translate a source of any length; attnviz's config needs a bound for its checks.
MAX_SOURCE_PIECES = 1024

__all__ = [
    "MAX_SOURCE_PIECES",
    "ImportedModel",
    "TensorRule",
    "map_tensors",
    "rnn_layer_rules",
    "shared_file_names",
    "vocab_file_bytes",
]


@dataclass
class ImportedModel:
    """A toolkit's model in attnviz's terms (see the project's shared design for issue 13).

    model:      the config.json "model" section (ModelConfig fields)
    tokenizer:  the config.json "tokenizer" section; its file names are keys of ``files``
    decoding:   the config.json "decoding" section: the toolkit's own decoding defaults
    tensors:    {engine parameter name: float32 tensor}
    files:      {file name in the checkpoint folder: bytes} (vocabularies, tokenizer models)
    provenance: the card.json "imported_from" object
    """

    model: dict[str, Any]
    tokenizer: dict[str, Any]
    decoding: dict[str, Any]
    tensors: dict[str, Tensor]
    files: dict[str, bytes]
    provenance: dict[str, Any]


def _same(tensor: Tensor) -> Tensor:
    return tensor


@dataclass(frozen=True)
class TensorRule:
    """One row of a toolkit's tensor table.

    engine:  the engine's parameter name
    toolkit: the toolkit's state-dict key; None for a parameter the toolkit does not have
             (the engine's tensor is then zeros of ``shape``: a bias the toolkit leaves out)
    shape:   the toolkit tensor's expected shape (the engine's when ``toolkit`` is None)
    maths:   what the tensor computes, in the toolkit's terms and in the engine's
    convert: toolkit tensor -> engine tensor, when the conventions differ
    """

    engine: str
    toolkit: str | None
    shape: tuple[int, ...]
    maths: str
    convert: Callable[[Tensor], Tensor] = field(default=_same)


def rnn_layer_rules(
    engine: str, toolkit: str, gates: int, input_size: int, hidden: int, maths: str
) -> list[TensorRule]:
    """The four tensors of one layer (one direction) of a PyTorch GRU/LSTM or GRUCell/LSTMCell.

    ``engine`` and ``toolkit`` are name templates with ``{}`` where ``weight_ih`` etc. go
    (e.g. ``"encoder.{}_l0_reverse"``, ``"decoder.rnn.layers.0.{}"``). ``gates``: 3 for a GRU
    (gate order r, z, n), 4 for an LSTM (i, f, g, o); the layer and the cell classes share
    both the order and the shapes, so the tensors carry over unchanged.
    """
    shapes = {
        "weight_ih": (gates * hidden, input_size),
        "weight_hh": (gates * hidden, hidden),
        "bias_ih": (gates * hidden,),
        "bias_hh": (gates * hidden,),
    }
    return [
        TensorRule(engine.format(name), toolkit.format(name), shape, f"{maths}: {name}")
        for name, shape in shapes.items()
    ]


def map_tensors(
    state: Mapping[str, Any],
    rules: list[TensorRule],
    where: str,
    tied: Mapping[str, str] | None = None,
) -> dict[str, Tensor]:
    """Apply a tensor table to the toolkit's state dict ``state``.

    ``tied``: {toolkit key: toolkit key it must equal}: tensors the toolkit stores twice
    because they are one parameter (tied embeddings); they are checked, not mapped.
    ``where`` names the file in messages. Returns {engine name: float32 contiguous tensor}.
    """
    tied = dict(tied or {})
    known = {rule.toolkit for rule in rules if rule.toolkit is not None} | set(tied)
    unknown = sorted(str(k) for k in state if k not in known)
    if unknown:
        shown = ", ".join(unknown[:8]) + (
            f" and {len(unknown) - 8} more" if len(unknown) > 8 else ""
        )
        raise CheckpointError(
            f"{where}: tensors attnviz does not know: {shown}. They belong to a part of the "
            "model that attnviz does not support (or the file is not what its configuration "
            "says)"
        )
    tensors: dict[str, Tensor] = {}
    for rule in rules:
        if rule.toolkit is None:
            tensors[rule.engine] = torch.zeros(rule.shape)
            continue
        tensor = _checked(state, rule.toolkit, rule.shape, where)
        tensors[rule.engine] = rule.convert(tensor).to(torch.float32).contiguous()
    for key, other in tied.items():
        if not torch.equal(_checked(state, key, None, where), _checked(state, other, None, where)):
            raise CheckpointError(
                f"{where}: tensor {key!r} should be the same parameter as {other!r} (the "
                "configuration ties them) but differs from it"
            )
    return tensors


def _checked(
    state: Mapping[str, Any], key: str, shape: tuple[int, ...] | None, where: str
) -> Tensor:
    if key not in state:
        raise CheckpointError(f"{where}: tensor {key!r} is missing")
    tensor = state[key]
    if not isinstance(tensor, Tensor) or tensor.layout != torch.strided:
        raise CheckpointError(f"{where}: {key!r} is not a dense tensor")
    if not tensor.is_floating_point():
        raise CheckpointError(f"{where}: tensor {key!r} has dtype {tensor.dtype}; expected floats")
    if shape is not None and tuple(tensor.shape) != shape:
        raise CheckpointError(
            f"{where}: tensor {key!r} has shape {list(tensor.shape)} but the configuration "
            f"implies {list(shape)}"
        )
    if not bool(torch.isfinite(tensor).all()):
        raise CheckpointError(f"{where}: tensor {key!r} contains NaN or Inf values")
    return tensor


def vocab_file_bytes(tokens: list[str], where: str) -> bytes:
    """A vocabulary file: one token per line, line number = id (Joey NMT's vocab.txt).

    A token that is empty or holds a line break could not be read back at its id, so it is
    refused (``where`` names the vocabulary).
    """
    for index, token in enumerate(tokens):
        if not isinstance(token, str) or token.splitlines() != [token]:
            raise CheckpointError(
                f"{where}: token {index} ({token!r}) is empty or contains a line break; "
                "attnviz writes one token per line"
            )
    return ("\n".join(tokens) + "\n").encode("utf-8")


def shared_file_names(same: bool, stem: str, suffix: str) -> tuple[str, str]:
    """Source and target file names: one file for both sides when their contents are the
    same (``vocab.txt``), else one each (``source_vocab.txt``, ``target_vocab.txt``)."""
    return (stem + suffix,) * 2 if same else (f"source_{stem}{suffix}", f"target_{stem}{suffix}")
