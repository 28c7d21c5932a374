"""Decoding: greedy, beam search (n-best, full beam tree), forced decoding, prefix continuation.

Every search runs :meth:`AttentionRNN.decode_step` for one source sentence and records, for
each step of each hypothesis, the attention and top-k candidates of the very computation that
chose the token. Results are plain dataclasses of token ids and numpy arrays.

:class:`DecodingConfig` (the "decoding" section of config.json) chooses the length penalty,
the maximum output length and the beam's stopping rule: attnviz's own, Joey NMT 2.3's
(``joeynmt/search.py``) or OpenNMT-py 3.5's (``onmt/translate/beam_search.py``), so that an
imported model decodes as its toolkit does.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import torch

from .model import AttentionRNN, Encoded, ModelConfig, StepOutput, select_state

__all__ = [
    "BEAM_STOPS",
    "LENGTH_PENALTIES",
    "BeamResult",
    "DecodingConfig",
    "NodeStatus",
    "SearchResult",
    "StepTrace",
    "TreeNode",
    "beam_search",
    "forbid_tokens",
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


LENGTH_PENALTIES = ("length_norm", "gnmt", "none")
BEAM_STOPS = ("attnviz", "joey", "onmt")


@dataclass(frozen=True)
class DecodingConfig:
    """How a model decodes by default: the "decoding" section of config.json.

    length_penalty: "length_norm" (logprob / len ** alpha; OpenNMT-py "avg"), "gnmt"
                    (logprob / ((5 + len) / 6) ** alpha, Wu et al. 2016; Joey NMT, OpenNMT-py
                    "wu") or "none"
    alpha:          the penalty's exponent (Joey NMT's beam_alpha <= 0 means no penalty:
                    length_penalty "none")
    max_len_a/_b:   output length limit floor(a * src_len + b) (src_len: the source ids the
                    model reads), never over the model's max_tgt_len; None: max_tgt_len only.
                    Joey NMT: a = 1.5, b = 0; OpenNMT-py: a = max_length_ratio, b = 5
    beam_stop:      "attnviz": EOS among the best beam_size proposals finishes a hypothesis,
                    the best beam_size others go on, the search ends with beam_size finished;
                    "joey": Joey NMT 2.3's beam_search (see :class:`_Beam`), and greedy and
                    beam search never pick BOS or PAD, nor EOS first (:func:`forbid_tokens`);
                    "onmt": OpenNMT-py 3.5's BeamSearch with n_best 1 (see :class:`_Beam`)
    beam_size:      the beam size used when the caller gives none
    """

    length_penalty: str = "length_norm"
    alpha: float = 1.0
    max_len_a: float | None = None
    max_len_b: int | None = None
    beam_stop: str = "attnviz"
    beam_size: int = 5

    def __post_init__(self) -> None:
        if self.length_penalty not in LENGTH_PENALTIES:
            raise ValueError(
                f"length_penalty must be one of {', '.join(LENGTH_PENALTIES)}, "
                f"got {self.length_penalty!r}"
            )
        if self.beam_stop not in BEAM_STOPS:
            raise ValueError(
                f"beam_stop must be one of {', '.join(BEAM_STOPS)}, got {self.beam_stop!r}"
            )
        if not _is_number(self.alpha):
            raise ValueError(f"alpha must be a finite number, got {self.alpha!r}")
        if self.max_len_a is not None and (
            not _is_number(self.max_len_a) or not 0 <= self.max_len_a <= 100
        ):
            raise ValueError(f"max_len_a must be a number in [0, 100], got {self.max_len_a!r}")
        if self.max_len_b is not None and (
            not isinstance(self.max_len_b, int) or isinstance(self.max_len_b, bool)
        ):
            raise ValueError(f"max_len_b must be an integer, got {self.max_len_b!r}")
        if (
            not isinstance(self.beam_size, int)
            or isinstance(self.beam_size, bool)
            or not (1 <= self.beam_size <= 64)
        ):
            raise ValueError(f"beam_size must be an integer in [1, 64], got {self.beam_size!r}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DecodingConfig:
        """From config.json's "decoding" object; unknown keys are refused (ValueError)."""
        if not isinstance(data, dict):
            raise ValueError(f"'decoding' must be an object, got {data!r}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown decoding keys: {', '.join(unknown)}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def score(self, logprob: float, length: int) -> float:
        """A hypothesis' ranking score: its log-probability under the length penalty."""
        if self.length_penalty == "length_norm":
            return length_normalised(logprob, length, self.alpha)
        if self.length_penalty == "gnmt":
            return logprob / ((5.0 + length) / 6.0) ** self.alpha
        return logprob

    def max_len(self, config: ModelConfig, src_len: int) -> int:
        """The most tokens (EOS included) decoded for a source of ``src_len`` ids."""
        if self.max_len_a is None and self.max_len_b is None:
            return config.max_tgt_len
        rule = math.floor((self.max_len_a or 0.0) * src_len + (self.max_len_b or 0))
        return max(1, min(config.max_tgt_len, rule))


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def forbid_tokens(
    out: StepOutput, t: int, decoding: DecodingConfig, config: ModelConfig
) -> StepOutput:
    """``out`` with the tokens the toolkit never emits at step ``t`` (0-based) made -inf:
    under the ``joey`` rule BOS and PAD at every step and EOS at the first (Joey NMT's
    min_output_length 1); under the other rules ``out`` as it is."""
    if decoding.beam_stop != "joey":
        return out
    masked = out.logprobs.clone()
    masked[:, [config.bos_id, config.pad_id]] = float("-inf")
    if t == 0:
        masked[:, config.eos_id] = float("-inf")
    return out._replace(logprobs=masked)


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
    model: AttentionRNN,
    src_ids: Sequence[int],
    max_len: int | None = None,
    top_k: int = 5,
    decoding: DecodingConfig | None = None,
) -> SearchResult:
    """Pick the most likely token at every step until EOS or ``max_len`` tokens (None: the
    ``decoding`` length rule). Under Joey NMT's rules BOS and PAD, and EOS at the first step,
    are never picked (see :func:`forbid_tokens`)."""
    cfg = model.config
    decoding = decoding or DecodingConfig()
    max_len = max_len or decoding.max_len(cfg, len(src_ids))
    encoded = _encode_one(model, src_ids)
    state = encoded.state
    prev = torch.tensor([cfg.bos_id])
    steps, tokens, total = [], [], 0.0
    k = min(top_k, cfg.vocab_size)
    for t in range(max_len):
        out = model.decode_step(prev, state, encoded)
        out = forbid_tokens(out, t, decoding, cfg)
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
    """A hypothesis still in the beam (``ended``: it already holds an EOS, which only Joey
    NMT's rule keeps expanding)."""

    node: int
    tokens: list[int]
    logprob: float
    steps: list[StepTrace]
    ended: bool = False


@dataclass
class _Ended:
    """A hypothesis a toolkit rule took out of the beam, with the score it had then."""

    hyp: _Live
    score: float
    finished: bool


class _Beam:
    """One sentence's beam between steps: its live and finished hypotheses and its tree.

    :func:`beam_search` keeps one; the batched search keeps one per sentence and hands each
    its own rows of a shared step, so both rank candidates by this same code.

    The rules (``decoding.beam_stop``), each ranking the proposals by cumulative log-probability
    (the toolkits rank by it divided by the step's length penalty, the same order):

    attnviz: see :func:`beam_search`.
    joey:    Joey NMT 2.3 ``beam_search``. The best beam_size proposals of all, EOS included,
             fill the beam's slots; one ending with its first EOS becomes a hypothesis scored
             with the penalty of its length, yet stays in its slot and is expanded further
             (its continuations are never hypotheses). The search ends when every slot has held
             an EOS at some step, or at the length limit, where the slots without an EOS
             become hypotheses too. Hypotheses are ranked by score.
    onmt:    OpenNMT-py 3.5 ``BeamSearch`` (n_best 1, ratio 0). The best beam_size proposals of
             all, EOS included; each EOS becomes a hypothesis scored with the penalty of its
             length plus one (OpenNMT counts BOS) and leaves the beam. The search ends when the
             best proposal of a step is an EOS, or at the length limit, where the live
             hypotheses become hypotheses too. Hypotheses are ranked by score.
    """

    def __init__(
        self,
        beam_size: int,
        eos_id: int,
        k_trace: int,
        prefix: Sequence[int] = (),
        decoding: DecodingConfig | None = None,
        max_len: int | None = None,
    ):
        self.beam_size = beam_size
        self.eos_id = eos_id
        self.k_trace = k_trace
        self.prefix = prefix
        self.decoding = decoding or DecodingConfig()
        self.max_len = max_len
        self.tree: list[TreeNode] = []
        self.live = [_Live(-1, [], 0.0, [])]
        self.finished: list[_Live] = []
        self.ended: list[_Ended] = []  # toolkit rules
        self.slot_finished = [False] * beam_size  # Joey: slots that have held an EOS
        self.stopped = False  # a toolkit rule ended the search
        self.steps_done = 0

    @property
    def done(self) -> bool:
        if self.decoding.beam_stop != "attnviz":
            return self.stopped or not self.live
        at_limit = self.max_len is not None and self.steps_done >= self.max_len
        return len(self.finished) >= self.beam_size or not self.live or at_limit

    def last_tokens(self, bos_id: int) -> list[int]:
        """The token each live hypothesis ends with (``bos_id`` before the first step)."""
        return [h.tokens[-1] if h.tokens else bos_id for h in self.live]

    def _proposals(
        self, t: int, logprobs: torch.Tensor, top_ids: np.ndarray, top_lp: np.ndarray
    ) -> list[tuple[float, int, int, float]]:
        """(cumulative, row, token, token logprob) of every candidate, best first."""
        k_expand = min(self.beam_size, logprobs.shape[-1])
        if t < len(self.prefix):
            forced = int(self.prefix[t])
            cand_ids = np.array([[forced]] * logprobs.shape[0])
            cand_lp = logprobs[:, forced : forced + 1].numpy()
        else:
            cand_ids, cand_lp = top_ids[:, :k_expand], top_lp[:, :k_expand]
        proposals = []
        for row, hyp in enumerate(self.live):
            for token, lp in zip(cand_ids[row], cand_lp[row], strict=True):
                proposals.append((hyp.logprob + float(lp), row, int(token), float(lp)))
        proposals.sort(key=lambda p: -p[0])
        return proposals

    def _extend(
        self, traces: tuple[np.ndarray, ...], node: TreeNode, row: int, ended: bool = False
    ) -> _Live:
        """The live hypothesis of ``row`` extended by ``node``'s token."""
        attention, energies, context, top_ids, top_lp = traces
        parent = self.live[row]
        trace = StepTrace(
            node.token,
            node.logprob,
            attention[row],
            energies[row],
            context[row],
            top_ids[row, : self.k_trace],
            top_lp[row, : self.k_trace],
        )
        return _Live(
            node.id,
            parent.tokens + [node.token],
            node.cumulative_logprob,
            parent.steps + [trace],
            ended,
        )

    def advance(self, t: int, logprobs: torch.Tensor, traces: tuple[np.ndarray, ...]) -> list[int]:
        """Rank the proposals of step ``t``; returns the rows that continue, in beam order.

        logprobs: (live, vocab) this beam's rows of the step
        traces:   this beam's rows of :func:`_traces` (at least ``beam_size`` top-k columns),
                  attention and energies cut to the sentence's source length
        """
        self.steps_done = t + 1
        if self.decoding.beam_stop != "attnviz":
            return self._advance_toolkit(t, logprobs, traces)
        proposals = self._proposals(t, logprobs, traces[3], traces[4])
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
            target.append(self._extend(traces, node, row))
        self.live = next_live
        return next_rows

    def _advance_toolkit(
        self, t: int, logprobs: torch.Tensor, traces: tuple[np.ndarray, ...]
    ) -> list[int]:
        """:meth:`advance` under the Joey NMT or OpenNMT-py rule (see the class docstring)."""
        joey = self.decoding.beam_stop == "joey"
        last_step = self.max_len is not None and t + 1 >= self.max_len
        # OpenNMT-py's length penalty counts BOS: step + 1 with step = len(alive_seq).
        length = t + 1 if joey else t + 2
        proposals = self._proposals(t, logprobs, traces[3], traces[4])
        next_live: list[_Live] = []
        next_rows: list[int] = []
        best_is_eos = False
        for rank, (cumulative, row, token, lp) in enumerate(proposals):
            parent = self.live[row]
            node = TreeNode(
                len(self.tree), t, parent.node, token, lp, cumulative, NodeStatus.PRUNED
            )
            self.tree.append(node)
            if rank >= self.beam_size:
                continue
            is_eos = token == self.eos_id
            best_is_eos = best_is_eos or (rank == 0 and is_eos)
            hyp = self._extend(traces, node, row, parent.ended or is_eos)
            score = self.decoding.score(cumulative, length)
            if is_eos and not parent.ended:
                node.status = NodeStatus.FINISHED
                self.ended.append(_Ended(hyp, score, True))
            else:
                node.status = NodeStatus.KEPT
                if last_step and not hyp.ended:
                    self.ended.append(_Ended(hyp, score, False))
            if joey:
                self.slot_finished[rank] = self.slot_finished[rank] or is_eos
            if joey or not is_eos:
                next_live.append(hyp)
                next_rows.append(row)
        self.live = next_live
        if joey:
            self.stopped = last_step or all(self.slot_finished[: len(next_live)])
        else:
            self.stopped = last_step or best_is_eos
        return next_rows

    def result(self) -> BeamResult:
        """The ranked hypotheses and the tree; live hypotheses become STOPPED."""
        for hyp in self.live:
            if self.tree[hyp.node].status == NodeStatus.KEPT:
                self.tree[hyp.node].status = NodeStatus.STOPPED
        if self.decoding.beam_stop != "attnviz":
            ranked = sorted(self.ended, key=lambda e: -e.score)[: self.beam_size]
            return BeamResult(
                [
                    SearchResult(e.hyp.tokens, e.hyp.logprob, e.score, e.finished, e.hyp.steps)
                    for e in ranked
                ],
                self.tree,
            )
        ended = self.finished + (self.live if len(self.finished) < self.beam_size else [])
        results = [
            SearchResult(
                h.tokens,
                h.logprob,
                self.decoding.score(h.logprob, len(h.tokens)),
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
    alpha: float | None = None,
    prefix: Sequence[int] = (),
    decoding: DecodingConfig | None = None,
) -> BeamResult:
    """Beam search over one sentence, the beam batched, recording the whole tree.

    Under attnviz's rule (``decoding.beam_stop``, default) at each step every live hypothesis
    proposes its ``beam_size`` best tokens; all proposals are ranked by cumulative
    log-probability. Among the best ``beam_size`` of them an EOS completes a hypothesis
    (FINISHED); the best ``beam_size`` non-EOS proposals continue (KEPT); all others are
    PRUNED. The search ends when ``beam_size`` hypotheses are finished or after ``max_len``
    tokens (the live ones are then STOPPED). Finished hypotheses are ranked by
    ``decoding.score`` (default logprob / length ** alpha). The toolkits' rules are described
    at :class:`_Beam`.

    ``max_len`` None: the ``decoding`` length rule; ``alpha`` None: ``decoding.alpha``.
    ``prefix`` forces the first target tokens (continuation from a prefix); their nodes are
    recorded like any other.
    """
    cfg = model.config
    decoding = _with_alpha(decoding, alpha)
    max_len = max(max_len or decoding.max_len(cfg, len(src_ids)), len(prefix) + 1)
    # The beam shares one source: repeat its keys once, then take views of the live rows.
    encoded = _encode_one(model, src_ids).select(torch.zeros(beam_size, dtype=torch.long))
    k_trace = min(max(top_k, 1), cfg.vocab_size)
    beam = _Beam(beam_size, cfg.eos_id, k_trace, prefix, decoding, max_len)
    state = encoded.first(1).state
    for t in range(max_len):
        prev = torch.tensor(beam.last_tokens(cfg.bos_id))
        out = model.decode_step(prev, state, encoded.first(len(beam.live)))
        out = forbid_tokens(out, t, decoding, cfg)
        traces = _traces(out, max(k_trace, min(beam_size, cfg.vocab_size)))
        next_rows = beam.advance(t, out.logprobs, traces)
        if beam.done:
            break
        state = select_state(out.state, torch.tensor(next_rows))
    return beam.result()


def _with_alpha(decoding: DecodingConfig | None, alpha: float | None) -> DecodingConfig:
    """``decoding`` (default: attnviz's) with ``alpha`` instead of its own when given."""
    decoding = decoding or DecodingConfig()
    return decoding if alpha is None else dataclasses.replace(decoding, alpha=alpha)
