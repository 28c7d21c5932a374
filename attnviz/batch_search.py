"""Decoding many sentences at once: greedy, beam search and forced decoding over a corpus.

Each search here gives, sentence by sentence, what its one-sentence counterpart in
:mod:`attnviz.search` gives: the same tokens, tree and traces (floats equal up to the last
bits, since a product over a batch of rows may sum in another order than over one). Sources
are sorted by length and decoded ``batch_size`` at a time, so a batch pads little; every
sentence's attention and energies are cut to its own source length; rows whose sentence has
ended leave the batch. Beam search puts the live hypotheses of all the batch's sentences in
one decoding step, and each sentence's beam ranks its own rows (the same ranking code as
:func:`attnviz.search.beam_search`). Results come back in input order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np
import torch

from .model import AttentionRNN, Encoded, select_state
from .search import (
    BeamResult,
    DecodingConfig,
    SearchResult,
    StepTrace,
    _Beam,
    _traces,
    _with_alpha,
    forbid_tokens,
)

__all__ = [
    "BATCH_SIZE",
    "READ_AHEAD_BATCHES",
    "beam_search_batch",
    "encode_batch",
    "forced_decode_batch",
    "greedy_search_batch",
]

BATCH_SIZE = 64  # sentences decoded together (a beam of 5 makes 320 rows)
# Batches a corpus reader takes at a time: the more, the less padding length sorting leaves;
# the fewer, the fewer full traces are held before they are written out or reduced.
READ_AHEAD_BATCHES = 4

Result = TypeVar("Result")


def encode_batch(model: AttentionRNN, sources: Sequence[Sequence[int]]) -> Encoded:
    """Encode source id lists (each >= 1 long) as one batch padded with pad_id."""
    lengths = torch.tensor([len(ids) for ids in sources])
    src = torch.full((len(sources), int(lengths.max())), model.config.pad_id, dtype=torch.long)
    for row, ids in enumerate(sources):
        src[row, : len(ids)] = torch.tensor(list(ids), dtype=torch.long)
    return model.encode(src, lengths)


def _by_length(
    sources: Sequence[Sequence[int]],
    batch_size: int,
    decode: Callable[[list[int]], list[Result]],
    progress: Callable[[int], None] | None,
) -> list[Result]:
    """Call ``decode`` on batches of indices of sources of similar length, longest first;
    return its results in input order. ``progress`` gets each batch's size when it is done."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    order = sorted(range(len(sources)), key=lambda i: -len(sources[i]))
    results: list[Result | None] = [None] * len(sources)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        for index, result in zip(chunk, decode(chunk), strict=True):
            results[index] = result
        if progress:
            progress(len(chunk))
    return results  # type: ignore[return-value]


def _row_trace(
    traces: tuple[np.ndarray, ...], row: int, src_len: int, token: int, logprob: float
) -> StepTrace:
    attention, energies, context, top_ids, top_lp = traces
    # Copies: a view would keep the whole batch's arrays of the step alive with the result.
    return StepTrace(
        token,
        logprob,
        attention[row, :, :src_len].copy(),
        energies[row, :, :src_len].copy(),
        context[row].copy(),
        top_ids[row].copy(),
        top_lp[row].copy(),
    )


@torch.inference_mode()
def greedy_search_batch(
    model: AttentionRNN,
    sources: Sequence[Sequence[int]],
    max_len: int | None = None,
    top_k: int = 5,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
    decoding: DecodingConfig | None = None,
) -> list[SearchResult]:
    """:func:`attnviz.search.greedy_search` of every source, in input order."""
    decoding = decoding or DecodingConfig()

    def decode(chunk: list[int]) -> list[SearchResult]:
        return _greedy(model, [sources[i] for i in chunk], max_len, top_k, decoding)

    return _by_length(sources, batch_size, decode, progress)


def _greedy(
    model: AttentionRNN,
    sources: list[Sequence[int]],
    max_len: int | None,
    top_k: int,
    decoding: DecodingConfig,
) -> list[SearchResult]:
    cfg = model.config
    k = min(top_k, cfg.vocab_size)
    limits = [max_len or decoding.max_len(cfg, len(src)) for src in sources]
    encoded = encode_batch(model, sources)
    state, rows = encoded.state, encoded
    live = list(range(len(sources)))  # the sentence of each row
    steps: list[list[StepTrace]] = [[] for _ in sources]
    prev = torch.full((len(sources),), cfg.bos_id, dtype=torch.long)
    for t in range(max(limits)):
        out = model.decode_step(prev, state, rows)
        out = forbid_tokens(out, t, decoding, cfg)
        traces = _traces(out, k)
        top_ids, top_lp = traces[3], traces[4]
        keep = []
        for row, sentence in enumerate(live):
            token = int(top_ids[row, 0])
            steps[sentence].append(
                _row_trace(traces, row, len(sources[sentence]), token, float(top_lp[row, 0]))
            )
            if token != cfg.eos_id and t + 1 < limits[sentence]:
                keep.append(row)
        if not keep:
            break
        index = torch.tensor(keep)
        state, prev = select_state(out.state, index), torch.from_numpy(top_ids[keep, 0])
        if len(keep) < len(live):
            rows, live = rows.select(index), [live[r] for r in keep]
    return [_result(s, cfg.eos_id) for s in steps]


def _result(steps: list[StepTrace], eos_id: int) -> SearchResult:
    tokens = [s.token for s in steps]
    total = 0.0
    for s in steps:  # summed in step order, as the one-sentence searches do
        total += s.logprob
    return SearchResult(tokens, total, total, bool(tokens) and tokens[-1] == eos_id, steps)


@torch.inference_mode()
def forced_decode_batch(
    model: AttentionRNN,
    sources: Sequence[Sequence[int]],
    targets: Sequence[Sequence[int]],
    top_k: int = 5,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
) -> list[SearchResult]:
    """:func:`attnviz.search.forced_decode` of every (source, target), in input order."""
    if len(sources) != len(targets):
        raise ValueError(f"{len(sources)} sources but {len(targets)} targets")

    def decode(chunk: list[int]) -> list[SearchResult]:
        return _forced(model, [sources[i] for i in chunk], [targets[i] for i in chunk], top_k)

    return _by_length(sources, batch_size, decode, progress)


def _forced(
    model: AttentionRNN,
    sources: list[Sequence[int]],
    targets: list[Sequence[int]],
    top_k: int,
) -> list[SearchResult]:
    cfg = model.config
    k = min(top_k, cfg.vocab_size)
    encoded = encode_batch(model, sources)
    rows = encoded
    live = [i for i, target in enumerate(targets) if target]  # the sentence of each row
    if len(live) < len(sources):
        rows = rows.select(torch.tensor(live, dtype=torch.long))
    state = rows.state
    steps: list[list[StepTrace]] = [[] for _ in sources]
    prev = torch.full((len(live),), cfg.bos_id, dtype=torch.long)
    t = 0
    while live:
        out = model.decode_step(prev, state, rows)
        traces = _traces(out, k)
        tokens = torch.tensor([int(targets[s][t]) for s in live])
        logprobs = out.logprobs.gather(1, tokens[:, None])[:, 0].tolist()
        keep = []
        for row, sentence in enumerate(live):
            token = int(tokens[row])
            steps[sentence].append(
                _row_trace(traces, row, len(sources[sentence]), token, logprobs[row])
            )
            if t + 1 < len(targets[sentence]):
                keep.append(row)
        t += 1
        if not keep:
            break
        index = torch.tensor(keep)
        state, prev = select_state(out.state, index), tokens[index]
        if len(keep) < len(live):
            rows, live = rows.select(index), [live[r] for r in keep]
    return [_result(s, cfg.eos_id) for s in steps]


@torch.inference_mode()
def beam_search_batch(
    model: AttentionRNN,
    sources: Sequence[Sequence[int]],
    beam_size: int = 5,
    max_len: int | None = None,
    top_k: int = 5,
    alpha: float | None = None,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
    decoding: DecodingConfig | None = None,
) -> list[BeamResult]:
    """:func:`attnviz.search.beam_search` (without a prefix) of every source, in input order;
    the beams of a batch's sentences share each decoding step."""
    decoding = _with_alpha(decoding, alpha)

    def decode(chunk: list[int]) -> list[BeamResult]:
        return _beams(model, [sources[i] for i in chunk], beam_size, max_len, top_k, decoding)

    return _by_length(sources, batch_size, decode, progress)


def _beams(
    model: AttentionRNN,
    sources: list[Sequence[int]],
    beam_size: int,
    max_len: int | None,
    top_k: int,
    decoding: DecodingConfig,
) -> list[BeamResult]:
    cfg = model.config
    k_trace = min(max(top_k, 1), cfg.vocab_size)
    k_ranked = max(k_trace, min(beam_size, cfg.vocab_size))
    encoded = encode_batch(model, sources)
    limits = [max_len or decoding.max_len(cfg, len(src)) for src in sources]
    beams = [_Beam(beam_size, cfg.eos_id, k_trace, (), decoding, limit) for limit in limits]
    active = list(range(len(sources)))  # sentences still searching, in row order
    row_sentence = active  # the sentence of each row
    state, rows = encoded.state, encoded
    for t in range(max(limits)):
        prev = torch.tensor([token for s in active for token in beams[s].last_tokens(cfg.bos_id)])
        out = model.decode_step(prev, state, rows)
        out = forbid_tokens(out, t, decoding, cfg)
        attention, energies, context, top_ids, top_lp = _traces(out, k_ranked)
        next_rows, still, start = [], [], 0
        for sentence in active:
            beam = beams[sentence]
            end, length = start + len(beam.live), len(sources[sentence])
            own = slice(start, end)
            # The sentence's own rows, copied so that its results keep only them alive.
            traces = (
                attention[own, :, :length].copy(),
                energies[own, :, :length].copy(),
                context[own].copy(),
                top_ids[own].copy(),
                top_lp[own].copy(),
            )
            continuing = beam.advance(t, out.logprobs[own], traces)
            if not beam.done:
                next_rows += [start + row for row in continuing]
                still.append(sentence)
            start = end
        if not still:
            break
        active = still
        state = select_state(out.state, torch.tensor(next_rows))
        # Keys are copied only when a sentence's share of the rows changes (rarely: a beam
        # keeps beam_size rows until it ends).
        new_row_sentence = [s for s in active for _ in beams[s].live]
        if new_row_sentence != row_sentence:
            row_sentence = new_row_sentence
            rows = encoded.select(torch.tensor(row_sentence))
    return [beam.result() for beam in beams]
