"""Tokenizers of models trained with Joey NMT 2.x and OpenNMT-py 3.x.

A :class:`ToolkitTokenizer` cuts text into pieces the toolkit's way (a SentencePiece model, a
subword-nmt BPE codes file, or plain words), maps pieces to ids with the toolkit's
:class:`~attnviz.tokenize.vocabulary.Vocabulary`, and turns output ids back into the text the
toolkit prints. What each step reproduces:

- pre-processing (Joey NMT's ``BasicTokenizer.pre_process``): its ``normalize`` option
  (NFKC, curly quotes made straight, extra spaces removed, and Moses punctuation
  normalization when Moses is on), Moses tokenization with sacremoses (its default escaping,
  ``'`` -> ``&apos;``), then lowercasing. OpenNMT-py records none of them. Whitespace runs
  count as one space (both toolkits read stripped lines).
- ``sentencepiece``: ``encode(text, out_type=str)``. Joey NMT 2.3 also restricts the model to
  its vocabulary with ``SetVocabulary``, a call sentencepiece 0.2 no longer has; here, as in
  Joey NMT on sentencepiece 0.2, a piece outside the vocabulary becomes ``<unk>``.
- ``bpe``: subword-nmt's ``BPE.segment_tokens`` on the space-split text. Joey NMT gives the
  BPE its vocabulary (``set_vocab``), so a merge that makes a unit outside it is undone, as in
  ``joeynmt test``/``translate`` (Joey's training process segments the training data before
  ``set_vocab`` and its BPE cache then keeps those words unrestricted). OpenNMT-py does not
  restrict (its ``*_subword_vocab`` option is not supported).
- ``word``: the text split on spaces.
- output: Joey NMT (``post_process``) drops padding, ``<s>`` and ``</s>``, keeps ``<unk>``,
  joins (SentencePiece decoding with "▁" as space, stripped; BPE "@@ " removed; words joined
  by spaces), Moses-detokenizes, removes extra spaces (``normalize``), and prints ``<unk>``
  for a hypothesis that comes out empty.
  OpenNMT-py (``TranslationBuilder`` and the transforms' ``apply_reverse``) keeps every
  piece but the final ``</s>``, joins them with spaces and reverses its subword transform.
"""

from __future__ import annotations

import importlib
import io
import re
import unicodedata
from collections.abc import Iterable, Sequence
from types import ModuleType
from typing import Any

from ..errors import CheckpointError
from .pieces import EOS_PIECE, WORD_START, check_utf8, pieces_to_words
from .sentencepiece_model import load_sentencepiece
from .vocabulary import UNK_PIECE, Vocabulary

__all__ = [
    "KINDS",
    "PRETOKENIZERS",
    "TOOLKITS",
    "TOOLKITS_EXTRA",
    "BPESegmenter",
    "SentencePieceSegmenter",
    "ToolkitTokenizer",
    "WordSegmenter",
    "optional_module",
]

KINDS = ("sentencepiece", "bpe", "word")
TOOLKITS = ("joeynmt", "opennmt-py")
PRETOKENIZERS = ("none", "moses")
TOOLKITS_EXTRA = "pip install 'attnviz[toolkits]'"


def optional_module(name: str, package: str, feature: str) -> ModuleType:
    """Import ``name`` from the ``toolkits`` extra; CheckpointError saying how to install it."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise CheckpointError(
            f"{feature} needs the {package} package, which is not installed: {TOOLKITS_EXTRA}"
        ) from None


class SentencePieceSegmenter:
    """Pieces of a SentencePiece model (its own ids are not used: the vocabulary's are)."""

    def __init__(self, model_proto: bytes) -> None:
        self._sp = load_sentencepiece(model_proto)

    def split(self, text: str) -> list[str]:
        return self._sp.encode(text, out_type=str)

    def join(self, pieces: Sequence[str]) -> str:
        """SentencePiece's decoding of the pieces (a piece it does not know decodes as " ⁇ ")."""
        return self._sp.decode(list(pieces))

    def starts_word(self, pieces: Sequence[str], i: int) -> bool:
        return pieces[i].startswith(WORD_START)


class BPESegmenter:
    """subword-nmt BPE: every unit but a word's last ends with the separator ("th@@ e")."""

    def __init__(self, codes: bytes, separator: str = "@@", vocab: set[str] | None = None) -> None:
        apply_bpe = optional_module("subword_nmt.apply_bpe", "subword-nmt", "a BPE tokenizer")
        text = _bpe_codes_text(codes)
        self._bpe = apply_bpe.BPE(io.StringIO(text), separator=separator, vocab=vocab or None)
        self.separator = separator

    def split(self, text: str) -> list[str]:
        return self._bpe.segment_tokens(text.split(" "))

    def join(self, pieces: Sequence[str]) -> str:
        """The pieces joined, separators removed (Joey NMT's and OpenNMT-py's rule)."""
        text = " ".join(pieces).replace(self.separator + " ", "")
        return text.removesuffix(self.separator)

    def starts_word(self, pieces: Sequence[str], i: int) -> bool:
        return not pieces[i - 1].endswith(self.separator)


class WordSegmenter:
    """Whole words: the text split on spaces."""

    def split(self, text: str) -> list[str]:
        return text.split(" ") if text else []

    def join(self, pieces: Sequence[str]) -> str:
        return " ".join(pieces)

    def starts_word(self, pieces: Sequence[str], i: int) -> bool:
        return True


def _bpe_codes_text(codes: bytes) -> str:
    """The codes file as text, checked as subword-nmt's BPE reads it (it exits the process on
    a malformed line instead of raising)."""
    try:
        text = codes.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    except UnicodeDecodeError:
        raise CheckpointError("BPE codes: not UTF-8 text") from None
    lines = text.rstrip("\n").split("\n")
    first = 1
    if lines[0].startswith("#version:"):
        version = re.sub(r"(\.0+)*$", "", lines[0].split()[-1]).split(".")
        if not all(part.isdigit() for part in version):
            raise CheckpointError(f"BPE codes: unreadable version line {lines[0]!r}")
        lines, first = lines[1:], 2
    for number, line in enumerate(lines, start=first):
        if len(line.strip("\r\n ").split(" ")) != 2:
            raise CheckpointError(
                f"BPE codes: line {number} {line!r} is not two units separated by a space"
            )
    return text


Segmenter = SentencePieceSegmenter | BPESegmenter | WordSegmenter


class ToolkitTokenizer:
    """A Joey NMT or OpenNMT-py model's tokenizer for one side (see the module docstring).

    Implements :class:`attnviz.tokenize.Tokenizer`. Immutable after construction (subword-nmt
    keeps a cache of segmented words) and safe across threads.
    """

    def __init__(
        self,
        segmenter: Segmenter,
        vocabulary: Vocabulary,
        toolkit: str,
        lowercase: bool = False,
        moses_lang: str | None = None,
        normalize: bool = False,
    ) -> None:
        if toolkit not in TOOLKITS:
            raise CheckpointError(f"unknown toolkit {toolkit!r}; expected one of {TOOLKITS}")
        self.segmenter = segmenter
        self.vocabulary = vocabulary
        self.toolkit = toolkit
        self.lowercase = lowercase
        self.normalize = normalize
        self._moses: tuple[Any, Any, Any] | None = None
        if moses_lang is not None:
            sacremoses = optional_module("sacremoses", "sacremoses", "the Moses pretokenizer")
            self._moses = (
                sacremoses.MosesTokenizer(lang=moses_lang),
                sacremoses.MosesDetokenizer(lang=moses_lang),
                sacremoses.MosesPunctNormalizer(),
            )

    @property
    def vocab_size(self) -> int:
        return len(self.vocabulary)

    @property
    def special_ids(self) -> tuple[int, int, int, int]:
        return self.vocabulary.special_ids

    def pre_process(self, text: str) -> str:
        """What the toolkit does to a line before cutting it into pieces."""
        text = " ".join(check_utf8(text).split())
        if self.normalize:
            text = _remove_extra_spaces(_unicode_normalize(text))
        if self._moses is not None:
            if self.normalize:
                text = self._moses[2].normalize(text)
            text = self._moses[0].tokenize(text, return_str=True)
        return text.lower() if self.lowercase else text

    def pieces(self, text: str) -> list[str]:
        return self.segmenter.split(self.pre_process(text))

    def encode(self, text: str) -> list[int]:
        return [self.vocabulary.lookup(p) for p in self.pieces(text)]

    def id_to_piece(self, token_id: int) -> str:
        return self.vocabulary.pieces[int(token_id)]

    def piece_to_id(self, piece: str) -> int:
        return self.vocabulary.lookup(piece)

    def decode(self, ids: Iterable[int]) -> str:
        pieces = [self.vocabulary.pieces[int(i)] for i in ids]
        if EOS_PIECE in pieces:
            pieces = pieces[: pieces.index(EOS_PIECE)]
        if self.toolkit == "opennmt-py":
            return self.segmenter.join(pieces)
        specials = self.vocabulary.special_pieces
        kept = [p for p in pieces if p not in specials] or [UNK_PIECE]
        text = self.segmenter.join(kept)
        if isinstance(self.segmenter, SentencePieceSegmenter):
            text = text.replace(WORD_START, " ").strip()
        text = self._detokenize(text)
        if self.normalize:
            text = _remove_extra_spaces(text)
        # Joey NMT prints its unknown piece for a hypothesis that comes out empty.
        return text or UNK_PIECE

    def decode_pieces(self, pieces: Sequence[str]) -> str:
        return self._detokenize(self.segmenter.join(pieces))

    def _detokenize(self, text: str) -> str:
        return self._moses[1].detokenize(text.split()) if self._moses is not None else text

    def word_of_piece(self, pieces: Sequence[str]) -> list[int]:
        return pieces_to_words(pieces, lambda i: self.segmenter.starts_word(pieces, i))


def _unicode_normalize(text: str) -> str:
    """Joey NMT's ``helpers.unicode_normalize``: NFKC, curly quotes made straight."""
    text = unicodedata.normalize("NFKC", text)
    return text.replace("\u2019", "'").replace("\u201c", '"').replace("\u201d", '"')


def _remove_extra_spaces(text: str) -> str:
    """Joey NMT's ``helpers.remove_extra_spaces``: no zero-width spaces, one space for runs of
    plain or ideographic spaces, none before ? ! , . :"""
    text = re.sub("[ \u3000]+", " ", text.replace("\u200b", ""))
    for mark in "?!,.:":
        text = text.replace(" " + mark, mark)
    return text.strip()
