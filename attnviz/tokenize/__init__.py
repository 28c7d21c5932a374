"""Tokenization: text <-> pieces <-> ids, piece -> word grouping, detokenization.

One :class:`Tokenizer` protocol, several kinds:

- :class:`SentencePieceTokenizer`: attnviz's own models, one joint SentencePiece model whose
  ids are the model's (pad 0, unk 1, bos 2, eos 3);
- :class:`ToolkitTokenizer`: models trained with Joey NMT or OpenNMT-py, whose vocabulary
  file decides the ids: SentencePiece or subword-nmt BPE pieces, or whole words, with the
  toolkit's pre- and post-processing (lowercasing, Moses via sacremoses). BPE and Moses need
  the optional ``toolkits`` extra (``pip install 'attnviz[toolkits]'``).
"""

from .pieces import (
    BOS_ID,
    EOS_ID,
    EOS_PIECE,
    PAD_ID,
    SPECIAL_IDS,
    UNK_ID,
    WORD_START,
    Tokenizer,
    check_utf8,
    group_words,
    normalize_text,
    pieces_to_words,
    without_eos,
    word_of_piece,
)
from .sentencepiece_model import SentencePieceTokenizer, load_sentencepiece, train_tokenizer
from .toolkit import (
    KINDS,
    PRETOKENIZERS,
    TOOLKITS,
    TOOLKITS_EXTRA,
    BPESegmenter,
    SentencePieceSegmenter,
    ToolkitTokenizer,
    WordSegmenter,
    optional_module,
)
from .vocabulary import BOS_PIECE, PAD_PIECES, UNK_PIECE, Vocabulary

__all__ = [
    "BOS_ID",
    "BOS_PIECE",
    "EOS_ID",
    "EOS_PIECE",
    "KINDS",
    "PAD_ID",
    "PAD_PIECES",
    "PRETOKENIZERS",
    "SPECIAL_IDS",
    "TOOLKITS",
    "TOOLKITS_EXTRA",
    "UNK_ID",
    "UNK_PIECE",
    "WORD_START",
    "BPESegmenter",
    "SentencePieceSegmenter",
    "SentencePieceTokenizer",
    "Tokenizer",
    "ToolkitTokenizer",
    "Vocabulary",
    "WordSegmenter",
    "check_utf8",
    "group_words",
    "load_sentencepiece",
    "normalize_text",
    "optional_module",
    "pieces_to_words",
    "train_tokenizer",
    "without_eos",
    "word_of_piece",
]
