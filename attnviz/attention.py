"""Attention scorers: ``dot``, ``general``, ``additive``, ``scaled_dot``, ``multihead``.

Every scorer works on the same inputs, so models that differ only in their scorer are a fair
comparison. The query (the decoder state, ``dim``) and the encoder memory (``key_dim``) may
differ in size: attnviz's own models project the memory to the decoder size first, Joey NMT
and OpenNMT-py attend over the raw encoder states.

The toolkits' scorers are these classes wherever the mathematics is identical:
Joey NMT ``bahdanau`` is :class:`AdditiveScorer` with its key bias zero; OpenNMT-py ``mlp`` is
:class:`AdditiveScorer` (its query bias, inside the tanh, is a key bias); Joey ``luong`` is
:class:`GeneralScorer`; OpenNMT-py ``general`` is :class:`GeneralScorer` with its weight
transposed (q . (W m) = (W^T q) . m); ``dot`` is :class:`DotScorer`.

Scorers are stateless between calls: :meth:`Scorer.prepare` projects the encoder
memory into keys and values once per source sentence and returns them; the caller passes them
back at every decoding step. Nothing is cached on ``self``, so one loaded model can serve many
concurrent sessions.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn

__all__ = [
    "SCORERS",
    "AdditiveScorer",
    "DotScorer",
    "GeneralScorer",
    "Keys",
    "MultiHeadScorer",
    "ScaledDotScorer",
    "Scorer",
    "build_scorer",
]


class Keys(NamedTuple):
    """Per-sentence attention inputs, computed once by :meth:`Scorer.prepare`.

    keys:   (batch, src_len, key_dim)  what the query is compared with
    values: (batch, src_len, dim)      what the weights average into the context
    mask:   (batch, src_len) bool      True at real source tokens, False at padding
    """

    keys: Tensor
    values: Tensor
    mask: Tensor

    def select(self, index: Tensor) -> Keys:
        """Rows ``index`` of the batch (e.g. one source sentence repeated for a beam).

        index: (new_batch,) long
        """
        return Keys(self.keys[index], self.values[index], self.mask[index])

    def first(self, n: int) -> Keys:
        """The first ``n`` rows of the batch, as views (no copy)."""
        return Keys(self.keys[:n], self.values[:n], self.mask[:n])


class Attended(NamedTuple):
    """One attention step.

    context:  (batch, dim) the weighted sum of the values
    weights:  (batch, heads, src_len) softmax of ``energies``: rows sum to 1, 0 at padding
    energies: (batch, heads, src_len) the scorer's raw scores e_j, -inf at padding
    """

    context: Tensor
    weights: Tensor
    energies: Tensor


class Scorer(nn.Module):
    """Base class. ``dim`` is the decoder state (query) size, ``key_dim`` the encoder memory
    size (``dim`` when None); the context has ``context_dim`` features."""

    heads: int = 1

    def __init__(self, dim: int, key_dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim
        self.key_dim = key_dim or dim

    @property
    def context_dim(self) -> int:
        """Size of the context vector: the memory size (multihead: its output size)."""
        return self.key_dim

    def prepare(self, memory: Tensor, mask: Tensor) -> Keys:
        """Project the encoder memory once per sentence.

        memory: (batch, src_len, key_dim)
        mask:   (batch, src_len) bool, True at real tokens
        """
        return Keys(memory, memory, mask)

    def scores(self, query: Tensor, keys: Keys) -> Tensor:
        """Unnormalised scores. query: (batch, dim) -> (batch, heads, src_len)."""
        raise NotImplementedError

    def forward(self, query: Tensor, keys: Keys) -> tuple[Tensor, Tensor]:
        """Attend once.

        query: (batch, dim) the decoder state asking where to look
        keys:  from :meth:`prepare`
        returns context (batch, context_dim) and weights (batch, heads, src_len); each weight
        row sums to 1 and padded positions get exactly 0.
        """
        attended = self.attend(query, keys)
        return attended.context, attended.weights

    def attend(self, query: Tensor, keys: Keys) -> Attended:
        """Attend once, keeping the energies the weights are the softmax of (shapes as in
        :class:`Attended`)."""
        energies = self.scores(query, keys).masked_fill(~keys.mask.unsqueeze(1), float("-inf"))
        weights = torch.softmax(energies, dim=-1)
        return Attended(self.combine(weights, keys), weights, energies)

    def combine(self, weights: Tensor, keys: Keys) -> Tensor:
        """weights: (batch, heads, src_len) -> context (batch, context_dim)."""
        return torch.bmm(weights, keys.values).squeeze(1)


class DotScorer(Scorer):
    """Luong et al. (2015) dot: score = q . m (the memory has the query's size)."""

    def __init__(self, dim: int, key_dim: int | None = None) -> None:
        super().__init__(dim, key_dim)
        if self.key_dim != dim:
            raise ValueError(f"a dot scorer needs memory size {self.key_dim} == query size {dim}")

    def scores(self, query: Tensor, keys: Keys) -> Tensor:
        return torch.bmm(query.unsqueeze(1), keys.keys.transpose(1, 2))


class ScaledDotScorer(DotScorer):
    """Dot product divided by sqrt(dim), as in Vaswani et al. (2017)."""

    def scores(self, query: Tensor, keys: Keys) -> Tensor:
        return super().scores(query, keys) / math.sqrt(self.dim)


class GeneralScorer(DotScorer):
    """Luong et al. (2015) general (bilinear): score = q . (W m); W m is the key.

    key_proj: key_dim -> dim, W (no bias)
    """

    def __init__(self, dim: int, key_dim: int | None = None) -> None:
        Scorer.__init__(self, dim, key_dim)
        self.key_proj = nn.Linear(self.key_dim, dim, bias=False)

    def prepare(self, memory: Tensor, mask: Tensor) -> Keys:
        return Keys(self.key_proj(memory), memory, mask)


class AdditiveScorer(Scorer):
    """Bahdanau et al. (2015) concat MLP: score = v . tanh(W_q q + W_k m + b).

    key_proj: key_dim -> attn_dim, W_k and b; query_proj: dim -> attn_dim, W_q (no bias);
    energy: attn_dim -> 1, v (no bias)
    """

    def __init__(self, dim: int, attn_dim: int, key_dim: int | None = None) -> None:
        super().__init__(dim, key_dim)
        self.key_proj = nn.Linear(self.key_dim, attn_dim)
        self.query_proj = nn.Linear(dim, attn_dim, bias=False)
        self.energy = nn.Linear(attn_dim, 1, bias=False)

    def prepare(self, memory: Tensor, mask: Tensor) -> Keys:
        return Keys(self.key_proj(memory), memory, mask)

    def scores(self, query: Tensor, keys: Keys) -> Tensor:
        hidden = torch.tanh(keys.keys + self.query_proj(query).unsqueeze(1))
        return self.energy(hidden).transpose(1, 2)


class MultiHeadScorer(Scorer):
    """Scaled dot-product attention in ``heads`` subspaces, concatenated and projected.

    Keys and values are (batch, src_len, dim) holding heads side by side (head h owns
    columns h*d .. (h+1)*d with d = dim / heads); the memory (key_dim) is projected to them.
    """

    def __init__(self, dim: int, heads: int, key_dim: int | None = None) -> None:
        super().__init__(dim, key_dim)
        if heads < 1 or dim % heads:
            raise ValueError(f"multihead needs heads >= 1 dividing dim={dim}, got heads={heads}")
        self.heads = heads
        self.head_dim = dim // heads
        self.query_proj = nn.Linear(dim, dim, bias=False)
        self.key_proj = nn.Linear(self.key_dim, dim, bias=False)
        self.value_proj = nn.Linear(self.key_dim, dim, bias=False)
        self.out_proj = nn.Linear(dim, dim, bias=False)

    @property
    def context_dim(self) -> int:
        return self.dim

    def prepare(self, memory: Tensor, mask: Tensor) -> Keys:
        return Keys(self.key_proj(memory), self.value_proj(memory), mask)

    def _split(self, x: Tensor) -> Tensor:
        """(batch, src_len, dim) -> (batch * heads, src_len, head_dim)."""
        batch, src_len, _ = x.shape
        x = x.view(batch, src_len, self.heads, self.head_dim).transpose(1, 2)
        return x.reshape(batch * self.heads, src_len, self.head_dim)

    def scores(self, query: Tensor, keys: Keys) -> Tensor:
        batch = query.shape[0]
        q = self.query_proj(query).view(batch * self.heads, 1, self.head_dim)
        scores = torch.bmm(q, self._split(keys.keys).transpose(1, 2))
        return scores.view(batch, self.heads, -1) / math.sqrt(self.head_dim)

    def combine(self, weights: Tensor, keys: Keys) -> Tensor:
        batch, heads, src_len = weights.shape
        flat = weights.reshape(batch * heads, 1, src_len)
        context = torch.bmm(flat, self._split(keys.values)).view(batch, self.dim)
        return self.out_proj(context)


SCORERS = ("dot", "general", "additive", "scaled_dot", "multihead")


def build_scorer(
    name: str, dim: int, heads: int = 1, attn_dim: int | None = None, key_dim: int | None = None
) -> Scorer:
    """The scorer registered as ``name`` for decoder size ``dim`` and memory size ``key_dim``
    (``dim`` when None)."""
    if name == "dot":
        return DotScorer(dim, key_dim)
    if name == "scaled_dot":
        return ScaledDotScorer(dim, key_dim)
    if name == "general":
        return GeneralScorer(dim, key_dim)
    if name == "additive":
        return AdditiveScorer(dim, attn_dim or dim, key_dim)
    if name == "multihead":
        return MultiHeadScorer(dim, heads, key_dim)
    raise ValueError(f"unknown attention scorer {name!r}; choose one of {', '.join(SCORERS)}")
