"""Decoding: greedy, beam search (n-best, full beam tree), forced decoding, prefix continuation.

Every search runs :meth:`AttentionRNN.decode_step` for one source sentence and records, for
each step of each hypothesis, the attention and top-k candidates of the very computation that
chose the token. Results are plain dataclasses of token ids and numpy arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import torch

from .model import AttentionRNN, Encoded, StepOutput, select_state

__all__ = [
    "BeamResult",
    "NodeStatus",
    "SearchResult",
    "StepTrace",
    "TreeNode",
    "beam_search",
    "forced_decode",
    "greedy_search",
    "length_normalised",
]


@dataclass
class StepTrace:
    """What one decoding step of one hypothesis computed.

    attention:     (heads, src_len) weights that produced the context
    energies:      (heads, src_len) the scorer's raw scores; ``attention`` is their softmax
    context:       (dec_hidden,) the context vector
    top_ids:       (k,) the k most likely next tokens, best first
    top_logprobs:  (k,) their log-probabilities
    """

    token: int
    logprob: float
    attention: np.ndarray
    energies: np.ndarray
    context: np.ndarray
    top_ids: np.ndarray
    top_logprobs: np.ndarray


@dataclass
class SearchResult:
    """One hypothesis: ``tokens`` end with EOS when ``finished``."""

    tokens: list[int]
    logprob: float
    score: float
    finished: bool
    steps: list[StepTrace]

    @property
    def token_logprobs(self) -> np.ndarray:
        """(tgt_len,)"""
        return np.array([s.logprob for s in self.steps], dtype=np.float32)

    @property
    def attention(self) -> np.ndarray:
        """(tgt_len, heads, src_len)"""
        return np.stack([s.attention for s in self.steps])


class NodeStatus(StrEnum):
    """What became of a candidate the beam considered (equal to its lower-case name as a
    string, which is how exports and figures show it)."""

    KEPT = "kept"  # in the beam, expanded further
    FINISHED = "finished"  # ended with EOS: a complete hypothesis
    PRUNED = "pruned"  # fell out of the beam
    STOPPED = "stopped"  # still in the beam when the search ended


@dataclass
class TreeNode:
    """A candidate the beam considered.

    ``parent`` is the id of the node it extends, -1 for the start; ``logprob`` is the
    log-probability of ``token`` given its parent's prefix, ``cumulative_logprob`` that of the
    whole prefix ending in this node.
    """

    id: int
    step: int
    parent: int
    token: int
    logprob: float
    cumulative_logprob: float
    status: NodeStatus


@dataclass
class BeamResult:
    """What :func:`beam_search` found for one source sentence.

    hypotheses: at most ``beam_size`` results, the finished ones first, each group best first
                by :func:`length_normalised` score
    tree:       every candidate the beam ranked, step by step; a node's ``id`` is its index
                here and its ``parent`` an earlier node (-1: the start)
    """

    hypotheses: list[SearchResult]
    tree: list[TreeNode] = field(default_factory=list)


def length_normalised(logprob: float, length: int, alpha: float) -> float:
    """Score used to rank finished hypotheses: logprob / length ** alpha."""
    return logprob / max(length, 1) ** alpha


def _traces(out: StepOutput, top_k: int) -> tuple[np.ndarray, ...]:
    """Per-row numpy copies of one step's attention, energies, context and top-k."""
    top_lp, top_ids = out.logprobs.topk(top_k, dim=-1)
    return (
        out.attention.numpy(),
        out.energies.numpy(),
        out.context.numpy(),
        top_ids.numpy(),
        top_lp.numpy(),
    )


def _encode_one(model: AttentionRNN, src_ids: Sequence[int]) -> Encoded:
    src = torch.tensor([list(src_ids)], dtype=torch.long)
    return model.encode(src, torch.tensor([len(src_ids)]))


@torch.inference_mode()
def forced_decode(
    model: AttentionRNN, src_ids: Sequence[int], tgt_ids: Sequence[int], top_k: int = 5
) -> SearchResult:
    """Score a given target (``tgt_ids`` should end with EOS) token by token."""
    encoded = _encode_one(model, src_ids)
    state = encoded.state
    prev = torch.tensor([model.config.bos_id])
    steps, total = [], 0.0
    k = min(top_k, model.config.vocab_size)
    for token in tgt_ids:
        out = model.decode_step(prev, state, encoded)
        attention, energies, context, top_ids, top_lp = _traces(out, k)
        logprob = float(out.logprobs[0, token])
        total += logprob
        steps.append(
            StepTrace(
                int(token), logprob, attention[0], energies[0], context[0], top_ids[0], top_lp[0]
            )
        )
        state = out.state
        prev = torch.tensor([int(token)])
    finished = bool(tgt_ids) and tgt_ids[-1] == model.config.eos_id
    return SearchResult(list(tgt_ids), total, total, finished, steps)


@torch.inference_mode()
def greedy_search(
    model: AttentionRNN, src_ids: Sequence[int], max_len: int | None = None, top_k: int = 5
) -> SearchResult:
    """Pick the most likely token at every step until EOS or ``max_len`` tokens."""
    cfg = model.config
    max_len = max_len or cfg.max_tgt_len
    encoded = _encode_one(model, src_ids)
    state = encoded.state
    prev = torch.tensor([cfg.bos_id])
    steps, tokens, total = [], [], 0.0
    k = min(top_k, cfg.vocab_size)
    for _ in range(max_len):
        out = model.decode_step(prev, state, encoded)
        attention, energies, context, top_ids, top_lp = _traces(out, k)
        token, logprob = int(top_ids[0, 0]), float(top_lp[0, 0])
        steps.append(
            StepTrace(token, logprob, attention[0], energies[0], context[0], top_ids[0], top_lp[0])
        )
        tokens.append(token)
        total += logprob
        if token == cfg.eos_id:
            break
        state, prev = out.state, torch.tensor([token])
    finished = tokens[-1] == cfg.eos_id
    return SearchResult(tokens, total, total, finished, steps)


@dataclass
class _Live:
    """A hypothesis still in the beam."""

    node: int
    tokens: list[int]
    logprob: float
    steps: list[StepTrace]


class _Beam:
    """One sentence's beam between steps: its live and finished hypotheses and its tree.

    :func:`beam_search` keeps one; the batched search keeps one per sentence and hands each
    its own rows of a shared step, so both rank candidates by this same code.
    """

    def __init__(self, beam_size: int, eos_id: int, k_trace: int, prefix: Sequence[int] = ()):
        self.beam_size = beam_size
        self.eos_id = eos_id
        self.k_trace = k_trace
        self.prefix = prefix
        self.tree: list[TreeNode] = []
        self.live = [_Live(-1, [], 0.0, [])]
        self.finished: list[_Live] = []

    @property
    def done(self) -> bool:
        return len(self.finished) >= self.beam_size or not self.live

    def last_tokens(self, bos_id: int) -> list[int]:
        """The token each live hypothesis ends with (``bos_id`` before the first step)."""
        return [h.tokens[-1] if h.tokens else bos_id for h in self.live]

    def advance(self, t: int, logprobs: torch.Tensor, traces: tuple[np.ndarray, ...]) -> list[int]:
        """Rank the proposals of step ``t``; returns the rows that continue, in beam order.

        logprobs: (live, vocab) this beam's rows of the step
        traces:   this beam's rows of :func:`_traces` (at least ``beam_size`` top-k columns),
                  attention and energies cut to the sentence's source length
        """
        attention, energies, context, top_ids, top_lp = traces
        k_expand = min(self.beam_size, logprobs.shape[-1])
        if t < len(self.prefix):
            forced = int(self.prefix[t])
            cand_ids = np.array([[forced]] * logprobs.shape[0])
            cand_lp = logprobs[:, forced : forced + 1].numpy()
        else:
            cand_ids, cand_lp = top_ids[:, :k_expand], top_lp[:, :k_expand]
        proposals = []  # (cumulative, row, token, token logprob)
        for row, hyp in enumerate(self.live):
            for token, lp in zip(cand_ids[row], cand_lp[row], strict=True):
                proposals.append((hyp.logprob + float(lp), row, int(token), float(lp)))
        proposals.sort(key=lambda p: -p[0])
        next_live: list[_Live] = []
        next_rows: list[int] = []
        for rank, (cumulative, row, token, lp) in enumerate(proposals):
            parent = self.live[row]
            node = TreeNode(
                len(self.tree), t, parent.node, token, lp, cumulative, NodeStatus.PRUNED
            )
            self.tree.append(node)
            if len(self.finished) >= self.beam_size:
                continue
            if token == self.eos_id and rank < self.beam_size:
                node.status, target = NodeStatus.FINISHED, self.finished
            elif token != self.eos_id and len(next_live) < self.beam_size:
                node.status, target = NodeStatus.KEPT, next_live
                next_rows.append(row)
            else:
                continue
            trace = StepTrace(
                token,
                lp,
                attention[row],
                energies[row],
                context[row],
                top_ids[row, : self.k_trace],
                top_lp[row, : self.k_trace],
            )
            target.append(
                _Live(node.id, parent.tokens + [token], cumulative, parent.steps + [trace])
            )
        self.live = next_live
        return next_rows

    def result(self, alpha: float) -> BeamResult:
        """The ranked hypotheses and the tree; live hypotheses become STOPPED."""
        for hyp in self.live:
            self.tree[hyp.node].status = NodeStatus.STOPPED
        ended = self.finished + (self.live if len(self.finished) < self.beam_size else [])
        results = [
            SearchResult(
                h.tokens,
                h.logprob,
                length_normalised(h.logprob, len(h.tokens), alpha),
                bool(h.tokens) and h.tokens[-1] == self.eos_id,
                h.steps,
            )
            for h in ended
        ]
        results.sort(key=lambda r: (not r.finished, -r.score))
        return BeamResult(results[: self.beam_size], self.tree)


@torch.inference_mode()
def beam_search(
    model: AttentionRNN,
    src_ids: Sequence[int],
    beam_size: int = 5,
    max_len: int | None = None,
    top_k: int = 5,
    alpha: float = 1.0,
    prefix: Sequence[int] = (),
) -> BeamResult:
    """Beam search over one sentence, the beam batched, recording the whole tree.

    At each step every live hypothesis proposes its ``beam_size`` best tokens; all proposals
    are ranked by cumulative log-probability. Among the best ``beam_size`` of them an EOS
    completes a hypothesis (FINISHED); the best ``beam_size`` non-EOS proposals continue
    (KEPT); all others are PRUNED. The search ends when ``beam_size`` hypotheses are
    finished or after ``max_len`` tokens (the live ones are then STOPPED). Finished
    hypotheses are ranked by ``logprob / length ** alpha``.

    ``prefix`` forces the first target tokens (continuation from a prefix); their nodes are
    recorded like any other.
    """
    cfg = model.config
    max_len = max(max_len or cfg.max_tgt_len, len(prefix) + 1)
    # The beam shares one source: repeat its keys once, then take views of the live rows.
    encoded = _encode_one(model, src_ids).select(torch.zeros(beam_size, dtype=torch.long))
    k_trace = min(max(top_k, 1), cfg.vocab_size)
    beam = _Beam(beam_size, cfg.eos_id, k_trace, prefix)
    state = encoded.first(1).state
    for t in range(max_len):
        prev = torch.tensor(beam.last_tokens(cfg.bos_id))
        out = model.decode_step(prev, state, encoded.first(len(beam.live)))
        traces = _traces(out, max(k_trace, min(beam_size, cfg.vocab_size)))
        next_rows = beam.advance(t, out.logprobs, traces)
        if beam.done:
            break
        state = select_state(out.state, torch.tensor(next_rows))
    return beam.result(alpha)
