"""Does a sentence fit a model? Signals a tokenizer can measure before anything is translated.

A character the tokenizer never saw in training has no piece of its own: byte fallback spells
it as byte pieces such as ``<0xF0>`` (or, without byte fallback, it becomes ``<unk>``). The
model learned nothing about those pieces, so what it writes for them is a guess, often fluent
nonsense. The signals are the share of such pieces, the characters behind them and their
scripts (a whole script the model never saw: Chinese into an English model).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from .tokenize import WORD_START, Tokenizer, normalize_text

__all__ = ["InputFit", "input_fit", "script_of"]

BYTE_PIECE = re.compile(r"<0x[0-9A-F]{2}>")


@dataclass(frozen=True)
class InputFit:
    """How well a text fits a tokenizer's vocabulary.

    pieces: pieces of the text (no ``</s>``); unknown: those that are ``<unk>``;
    byte_pieces: byte-fallback pieces (``<0x41>``), one per UTF-8 byte of an unseen character.
    unseen_characters: the distinct characters with no piece of their own, in text order.
    unseen_scripts: their scripts (:func:`script_of`) that no vocabulary piece uses at all.
    """

    pieces: int
    unknown: int
    byte_pieces: int
    unseen_characters: str
    unseen_scripts: tuple[str, ...]

    @property
    def unfamiliar_share(self) -> float:
        """Share of the pieces the model never learned a meaning for (0 = all known)."""
        return (self.unknown + self.byte_pieces) / self.pieces if self.pieces else 0.0

    def warning(self) -> str | None:
        """What a person should be told before reading the translation; None when it fits."""
        if not self.unseen_characters:
            return None
        scripts = f" (script never seen: {', '.join(self.unseen_scripts)})"
        return (
            f"This model never saw {' '.join(self.unseen_characters)} in training"
            f"{scripts if self.unseen_scripts else ''}: {self.unknown + self.byte_pieces} of "
            f"{self.pieces} pieces ({self.unfamiliar_share:.0%}) are unknown or single bytes "
            "such as <0x41>, and what it writes for them is a guess. Its example sentences "
            "show the kind of input it was trained on."
        )


def script_of(character: str) -> str:
    """A character's script as Unicode names it ("LATIN", "CJK", "CYRILLIC"...) for letters;
    "digit", "punctuation", "symbol" (emoji among them) or "other" for the rest."""
    category = unicodedata.category(character)
    if category.startswith("L"):
        name = unicodedata.name(character, "")
        return name.split()[0] if name else "other"
    kinds = {"N": "digit", "P": "punctuation", "S": "symbol"}
    return kinds.get(category[0], "other")


@lru_cache(maxsize=64)
def _vocabulary_characters(tokenizer: Tokenizer) -> frozenset[str]:
    """Every character some ordinary piece of ``tokenizer`` spells (bytes and specials not)."""
    specials = set(tokenizer.special_ids)
    characters: set[str] = set()
    for token_id in range(tokenizer.vocab_size):
        piece = tokenizer.id_to_piece(token_id)
        if token_id not in specials and not BYTE_PIECE.fullmatch(piece):
            characters.update(piece.replace(WORD_START, ""))
    return frozenset(characters)


def input_fit(tokenizer: Tokenizer, text: str) -> InputFit:
    """The fit signals of ``text`` for ``tokenizer`` (empty text: no pieces, no warning)."""
    pieces = tokenizer.pieces(text)
    known = _vocabulary_characters(tokenizer)
    unseen = dict.fromkeys(c for c in normalize_text(text) if not c.isspace() and c not in known)
    known_scripts = {script_of(c) for c in known}
    scripts = dict.fromkeys(script_of(c) for c in unseen if script_of(c) not in known_scripts)
    return InputFit(
        pieces=len(pieces),
        unknown=sum(tokenizer.piece_to_id(p) == tokenizer.special_ids[1] for p in pieces),
        byte_pieces=sum(bool(BYTE_PIECE.fullmatch(p)) for p in pieces),
        unseen_characters="".join(unseen),
        unseen_scripts=tuple(scripts),
    )
