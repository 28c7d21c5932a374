"""The wrapper the UI and CLI use: ``load(path)``, ``translate(...)``, ``score(...)``.

Results are plain dataclasses holding strings and numpy arrays, so nothing downstream needs
torch (or Streamlit). A :class:`Translator` holds no per-call state: many threads may call it
at once and each gets exactly what a lone caller would.

Decoding one sentence is small work: torch's default of one thread per core gains ~10% on an
idle machine and costs 10-20x when another process keeps a core busy (`attnviz bench` shows
both). So a Translator decodes with one thread (``Translator.threads``) and gives the
caller's setting back afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from .batch_search import BATCH_SIZE, beam_search_batch, forced_decode_batch, greedy_search_batch
from .checkpoint import Checkpoint, load_checkpoint
from .errors import InputError
from .model import AttentionRNN
from .search import (
    BeamResult,
    DecodingConfig,
    NodeStatus,
    SearchResult,
    TreeNode,
    beam_search,
    forced_decode,
    greedy_search,
)
from .tokenize import EOS_PIECE, Tokenizer, group_words, normalize_text, without_eos

Result = TypeVar("Result")

__all__ = [
    "BeamNode",
    "Candidate",
    "Decoded",
    "Hypothesis",
    "Score",
    "Step",
    "Translation",
    "Translator",
    "load",
]


@dataclass
class Candidate:
    """One of the top-k next tokens at a step."""

    piece: str
    prob: float
    logprob: float


@dataclass
class Step:
    """One output step.

    attention:      (src_len,) mean over heads
    head_attention: (heads, src_len)
    energies:       (heads, src_len) the scorer's raw scores; ``head_attention`` is their
                    softmax (see :mod:`attnviz.explain`)
    context:        (dec_hidden,) the context vector the attention produced
    """

    index: int
    piece: str
    prob: float
    logprob: float
    candidates: list[Candidate]
    attention: np.ndarray
    head_attention: np.ndarray
    energies: np.ndarray
    context: np.ndarray


@dataclass
class Hypothesis:
    """One entry of the n-best list.

    attention:      (tgt_len, src_len), mean over heads
    head_attention: (heads, tgt_len, src_len)
    """

    rank: int
    pieces: list[str]
    text: str
    score: float
    logprob: float
    finished: bool
    token_logprobs: np.ndarray
    attention: np.ndarray
    head_attention: np.ndarray
    steps: list[Step]


@dataclass
class BeamNode:
    """A node of the beam tree: :class:`attnviz.search.TreeNode` with its token as a piece."""

    id: int
    step: int
    parent: int
    piece: str
    logprob: float
    cumulative_logprob: float
    status: NodeStatus


@dataclass
class _Aligned:
    """The fields a :class:`Translation` and a :class:`Score` share: a source and a target
    sentence and the attention between them.

    source:               the source text as given
    source_pieces:        (src_len,) SentencePiece pieces of the source, ending with "</s>"
    target_pieces:        (tgt_len,) pieces of the target; "</s>" last when it is finished
    source_words:         the source words as text ("</s>" is a word of its own)
    target_words:         the target words as text
    source_word_of_piece: (src_len,) index into source_words of each source piece
    target_word_of_piece: (tgt_len,) index into target_words of each target piece
    attention:            (tgt_len, src_len) one row per output step, rows sum to 1 (mean
                          over heads)
    head_attention:       (heads, tgt_len, src_len) for a multi-head model, else None
    steps:                (tgt_len,) one :class:`Step` per target piece
    truncated:            the source was longer than the model's limit and was cut
    model:                the name of the model that computed it
    """

    source: str
    source_pieces: list[str]
    target_pieces: list[str]
    source_words: list[str]
    target_words: list[str]
    source_word_of_piece: list[int]
    target_word_of_piece: list[int]
    attention: np.ndarray
    head_attention: np.ndarray | None
    steps: list[Step]
    truncated: bool
    model: str

    @property
    def finished(self) -> bool:
        """Whether the target ends with "</s>"; False for a translation cut at the length limit."""
        return len(without_eos(self.target_pieces)) < len(self.target_pieces)

    @property
    def text_attention(self) -> np.ndarray:
        """(text target pieces, text source pieces): the attention between the pieces of the
        two texts, without the "</s>" column of the source and the "</s>" row of a finished
        target (see :func:`attnviz.tokenize.without_eos`)."""
        rows, columns = len(without_eos(self.target_pieces)), len(without_eos(self.source_pieces))
        return self.attention[:rows, :columns]

    @property
    def source_text_words(self) -> list[str]:
        """The words of the source text: ``source_words`` without "</s>"."""
        return _text_words(self.source_pieces, self.source_words)

    @property
    def target_text_words(self) -> list[str]:
        """The words of the target text: ``target_words`` without the "</s>" of a finished one."""
        return _text_words(self.target_pieces, self.target_words)


def _text_words(pieces: list[str], words: list[str]) -> list[str]:
    """``words`` (of ``pieces``) without the word of a final "</s>" piece."""
    return words[:-1] if len(without_eos(pieces)) < len(pieces) else list(words)


@dataclass
class Translation(_Aligned):
    """What :meth:`Translator.translate` returns: the best hypothesis as the target, with the
    source and attention fields every aligned result has (see ``_Aligned``), and what the
    search saw.

    text:       the best hypothesis, detokenized
    hypotheses: the n-best list, best first; ``hypotheses[0]`` is the target above
    beam_tree:  every candidate the beam ranked (empty after greedy search: beam_size 1
                and no prefix)
    beam_size:  the beam size searched with
    """

    text: str = ""
    hypotheses: list[Hypothesis] = field(default_factory=list)
    beam_tree: list[BeamNode] = field(default_factory=list)
    beam_size: int = 1


@dataclass
class Score(_Aligned):
    """What :meth:`Translator.score` returns: a given target forced through the model, with
    the source and attention fields every aligned result has (see ``_Aligned``).

    text:           the target as the model's pieces detokenize it
    token_logprobs: (tgt_len,) float32, the log-probability of each target piece ("</s>"
                    included) given the source and the pieces before it
    logprob:        their sum, the log-probability of the whole target
    """

    text: str = ""
    token_logprobs: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    logprob: float = 0.0


@contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Run the block with ``count`` torch threads (None: as the caller set them), then give
    the caller's count back. torch keeps the count per calling thread (OpenMP), so threads
    that decode at the same time do not change each other's."""
    if count is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class Translator:
    """A loaded model with its tokenizers.

    ``tokenizer``: the source side's, and the target side's too unless ``target_tokenizer``
    is given (attnviz's own models have one joint tokenizer).
    ``threads``: torch threads for decoding (default 1, the fastest on a shared machine;
    None uses whatever the caller set with ``torch.set_num_threads``). ``decoding``: the
    beam size, length penalty, length limit and beam rule used when a call gives none (the
    checkpoint's "decoding" section; default attnviz's own).
    """

    def __init__(
        self,
        model: AttentionRNN,
        tokenizer: Tokenizer,
        name: str = "model",
        threads: int | None = 1,
        target_tokenizer: Tokenizer | None = None,
        decoding: DecodingConfig | None = None,
    ) -> None:
        self.model = model.freeze()
        self.decoding = decoding or DecodingConfig()
        self.source_tokenizer = tokenizer
        self.target_tokenizer = target_tokenizer if target_tokenizer is not None else tokenizer
        self.name = name
        self.config = model.config
        self.threads = threads
        self.checkpoint: Checkpoint | None = None

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint) -> Translator:
        translator = cls(
            checkpoint.model,
            checkpoint.source_tokenizer,
            checkpoint.name,
            target_tokenizer=checkpoint.target_tokenizer,
            decoding=checkpoint.decoding,
        )
        translator.checkpoint = checkpoint
        return translator

    # -- input ---------------------------------------------------------------------------

    def source_ids(self, text: str, strict: bool = False) -> tuple[list[int], bool]:
        """Token ids of ``text`` plus EOS (unless the model reads sources without it, as
        OpenNMT-py's do), cut to the model's limit; and whether it was cut."""
        if not isinstance(text, str) or not normalize_text(text):
            raise InputError("the source text is empty: type a sentence to translate")
        ids = self.source_tokenizer.encode(text)
        eos = [self.config.eos_id] if self.config.source_eos else []
        limit = self.config.max_src_len - len(eos)
        truncated = len(ids) > limit
        if truncated and strict:
            raise InputError(
                f"the source has {len(ids)} pieces, more than this model's limit of {limit}; "
                "shorten it or allow truncation"
            )
        return ids[:limit] + eos, truncated

    def target_ids(self, target: str | Sequence[str], add_eos: bool = True) -> list[int]:
        """Ids of a target given as text or as a list of pieces."""
        if isinstance(target, str):
            if not normalize_text(target):
                raise InputError("the target text is empty: type a translation to score")
            ids = self.target_tokenizer.encode(target)
        else:
            ids = [self.target_tokenizer.piece_to_id(p) for p in target if p != EOS_PIECE]
        ids = ids[: self.config.max_tgt_len - 1]
        return ids + [self.config.eos_id] if add_eos else ids

    # -- public API ----------------------------------------------------------------------

    def translate(
        self,
        text: str,
        beam_size: int | None = None,
        n_best: int = 1,
        top_k: int = 5,
        max_len: int | None = None,
        alpha: float | None = None,
        prefix: str | Sequence[str] | None = None,
        strict: bool = False,
    ) -> Translation:
        """Translate ``text``. ``beam_size=1`` is greedy search. ``prefix`` (text or pieces)
        forces the start of the translation and lets the model continue from there.
        ``beam_size``, ``max_len`` and ``alpha`` None: the translator's ``decoding`` defaults."""
        beam_size = self.decoding.beam_size if beam_size is None else beam_size
        _check_search(beam_size, n_best, top_k, max_len)
        src_ids, truncated = self.source_ids(text, strict)
        if isinstance(prefix, str):
            prefix = normalize_text(prefix)  # a blank prefix forces nothing
        prefix_ids = self.target_ids(prefix, add_eos=False) if prefix else []
        with torch_threads(self.threads):
            if beam_size == 1 and not prefix_ids:
                beam = BeamResult(
                    [greedy_search(self.model, src_ids, max_len, top_k, self.decoding)]
                )
            else:
                beam = beam_search(
                    self.model,
                    src_ids,
                    beam_size,
                    max_len,
                    top_k,
                    alpha,
                    prefix_ids,
                    self.decoding,
                )
        return self._translation(text, src_ids, truncated, beam, beam_size, n_best)

    def translate_batch(
        self,
        texts: Sequence[str],
        beam_size: int | None = None,
        n_best: int = 1,
        top_k: int = 5,
        max_len: int | None = None,
        alpha: float | None = None,
        strict: bool = False,
        batch_size: int = BATCH_SIZE,
        progress: Callable[[int], None] | None = None,
    ) -> list[Translation]:
        """:meth:`translate` of every text (no prefix), in input order, decoding
        ``batch_size`` sentences of similar length at once (see :mod:`attnviz.batch_search`).
        ``progress`` gets the number of sentences each finished batch held.

        An unusable text raises :class:`InputError` naming its index; nothing is decoded then.
        """
        beam_size = self.decoding.beam_size if beam_size is None else beam_size
        _check_search(beam_size, n_best, top_k, max_len)
        _check_batch_size(batch_size)
        sources = [self._indexed(i, self.source_ids, text, strict) for i, text in enumerate(texts)]
        ids = [src_ids for src_ids, _ in sources]
        with torch_threads(self.threads):
            if beam_size == 1:
                found = greedy_search_batch(
                    self.model, ids, max_len, top_k, batch_size, progress, self.decoding
                )
                beams = [BeamResult([result]) for result in found]
            else:
                beams = beam_search_batch(
                    self.model,
                    ids,
                    beam_size,
                    max_len,
                    top_k,
                    alpha,
                    batch_size,
                    progress,
                    self.decoding,
                )
        return [
            self._translation(text, src_ids, truncated, beam, beam_size, n_best)
            for text, (src_ids, truncated), beam in zip(texts, sources, beams, strict=True)
        ]

    def score(
        self,
        source: str,
        target: str | Sequence[str],
        top_k: int = 5,
        strict: bool = False,
    ) -> Score:
        """Forced decoding of ``target`` (text, or a list of pieces) given ``source``."""
        src_ids, truncated = self.source_ids(source, strict)
        target_ids = self.target_ids(target)
        with torch_threads(self.threads):
            result = forced_decode(self.model, src_ids, target_ids, top_k)
        return self._score(source, src_ids, truncated, result)

    def score_batch(
        self,
        pairs: Sequence[tuple[str, str | Sequence[str]]],
        top_k: int = 5,
        strict: bool = False,
        batch_size: int = BATCH_SIZE,
        progress: Callable[[int], None] | None = None,
    ) -> list[Score]:
        """:meth:`score` of every (source, target) pair, in input order, ``batch_size``
        pairs at once. An unusable pair raises :class:`InputError` naming its index."""
        _check_batch_size(batch_size)
        sources = [self._indexed(i, self.source_ids, s, strict) for i, (s, _) in enumerate(pairs)]
        targets = [self._indexed(i, self.target_ids, t) for i, (_, t) in enumerate(pairs)]
        ids = [src_ids for src_ids, _ in sources]
        with torch_threads(self.threads):
            results = forced_decode_batch(self.model, ids, targets, top_k, batch_size, progress)
        return [
            self._score(source, src_ids, truncated, result)
            for (source, _), (src_ids, truncated), result in zip(
                pairs, sources, results, strict=True
            )
        ]

    @staticmethod
    def _indexed(index: int, read: Callable[..., Result], *args: object) -> Result:
        """``read(*args)``, an :class:`InputError` naming the batch entry it came from."""
        try:
            return read(*args)
        except InputError as exc:
            raise InputError(f"sentence {index + 1}: {exc}") from exc

    # -- result building -----------------------------------------------------------------

    def _translation(
        self,
        text: str,
        src_ids: list[int],
        truncated: bool,
        beam: BeamResult,
        beam_size: int,
        n_best: int,
    ) -> Translation:
        hypotheses = [self._hypothesis(rank, r) for rank, r in enumerate(beam.hypotheses[:n_best])]
        best = hypotheses[0]
        return Translation(
            **self._aligned(text, src_ids, best.pieces, best.steps, best.head_attention, truncated),
            text=best.text,
            hypotheses=hypotheses,
            beam_tree=[self._node(n) for n in beam.tree],
            beam_size=beam_size,
        )

    def _score(
        self, source: str, src_ids: list[int], truncated: bool, result: SearchResult
    ) -> Score:
        pieces = [self.target_tokenizer.id_to_piece(t) for t in result.tokens]
        steps = self._steps(result)
        return Score(
            **self._aligned(
                source, src_ids, pieces, steps, result.attention.transpose(1, 0, 2), truncated
            ),
            text=self.target_tokenizer.decode(result.tokens),
            token_logprobs=result.token_logprobs,
            logprob=result.logprob,
        )

    def _steps(self, result: SearchResult) -> list[Step]:
        piece = self.target_tokenizer.id_to_piece
        steps = []
        for i, s in enumerate(result.steps):
            probs = np.exp(s.top_logprobs).tolist()
            candidates = [
                Candidate(piece(t), p, lp)
                for t, p, lp in zip(s.top_ids.tolist(), probs, s.top_logprobs.tolist(), strict=True)
            ]
            steps.append(
                Step(
                    index=i,
                    piece=piece(s.token),
                    prob=float(np.exp(s.logprob)),
                    logprob=s.logprob,
                    candidates=candidates,
                    attention=s.attention.mean(axis=0),
                    head_attention=s.attention,
                    energies=s.energies,
                    context=s.context,
                )
            )
        return steps

    def _hypothesis(self, rank: int, result: SearchResult) -> Hypothesis:
        heads = result.attention  # (tgt_len, heads, src_len)
        return Hypothesis(
            rank=rank,
            pieces=[self.target_tokenizer.id_to_piece(t) for t in result.tokens],
            text=self.target_tokenizer.decode(result.tokens),
            score=result.score,
            logprob=result.logprob,
            finished=result.finished,
            token_logprobs=result.token_logprobs,
            attention=heads.mean(axis=1),
            head_attention=heads.transpose(1, 0, 2),
            steps=self._steps(result),
        )

    def _node(self, node: TreeNode) -> BeamNode:
        return BeamNode(
            node.id,
            node.step,
            node.parent,
            self.target_tokenizer.id_to_piece(node.token),
            node.logprob,
            node.cumulative_logprob,
            node.status,
        )

    def _aligned(
        self,
        source: str,
        src_ids: list[int],
        target_pieces: list[str],
        steps: list[Step],
        head_attention: np.ndarray,
        truncated: bool,
    ) -> dict:
        """Fields shared by translations and scores; head_attention: (heads, tgt, src)."""
        source_pieces = [self.source_tokenizer.id_to_piece(i) for i in src_ids]
        return dict(
            source=source,
            source_pieces=source_pieces,
            target_pieces=target_pieces,
            source_words=group_words(self.source_tokenizer, source_pieces),
            target_words=group_words(self.target_tokenizer, target_pieces),
            source_word_of_piece=self.source_tokenizer.word_of_piece(source_pieces),
            target_word_of_piece=self.target_tokenizer.word_of_piece(target_pieces),
            attention=head_attention.mean(axis=0),
            head_attention=head_attention if self.config.heads_used > 1 else None,
            steps=steps,
            truncated=truncated,
            model=self.name,
        )


def _check_search(beam_size: int, n_best: int, top_k: int, max_len: int | None) -> None:
    if beam_size < 1 or n_best < 1 or top_k < 1:
        raise InputError("beam_size, n_best and top_k must be at least 1")
    if max_len is not None and max_len < 1:
        # The searches read 0 as "the model's limit", and greedy search fails below 0.
        raise InputError(f"max_len must be at least 1 (None: the model's limit), got {max_len}")


def _check_batch_size(batch_size: int) -> None:
    if batch_size < 1:
        raise InputError(f"batch_size must be at least 1, got {batch_size}")


def load(path: str | Path) -> Translator:
    """Load a checkpoint folder (validated, never unpickled) as a :class:`Translator`."""
    return Translator.from_checkpoint(load_checkpoint(path))


# Either result: source and target pieces, their words and the attention between them.
Decoded = Translation | Score
