"""What each figure shows, in words a student can read under it: rows, columns, colours,
marks, and the special tokens where they appear. One constant per figure; the views show
them next to the figure they explain (plain text, no Streamlit here)."""

from __future__ import annotations

from collections.abc import Iterable

from ..tokenize import EOS_PIECE as END_OF_SENTENCE
from ..tokenize import WORD_START

__all__ = [
    "ALIGN_HEATMAP",
    "BEAM_DIVERGENCE",
    "BEAM_TREE",
    "COMPARE_GRID",
    "COMPARE_TWIN_GRID",
    "HEATMAP_AXES",
    "STEP_THROUGH",
    "TRAINING_CURVE",
    "WHATIF_BARS",
    "WHATIF_HEATMAP",
    "token_legend",
]

HEATMAP_AXES = (
    "Rows: the translation, one output token per row, top to bottom in the order the model "
    "wrote them. Columns: the source sentence. Colour: the attention weight the output token "
    "gave each source token (white 0, dark blue 1); each row sums to 1."
)
ALIGN_HEATMAP = (
    f"{HEATMAP_AXES} Red squares: the hard alignment, for each output word the source word it "
    "attended to most."
)
STEP_THROUGH = (
    "Top: this step's attention over the source (columns), darker = more weight. Middle: the "
    "output so far, this step's token in red. Bars: the model's most probable next tokens, the "
    "one it chose in red. Bottom strip: the context vector, the attention-weighted sum of the "
    "encoder states that this step's prediction reads (one cell per dimension, colour = value)."
)
COMPARE_GRID = (
    "One heatmap per model, each on its own translation: rows are its output tokens, columns "
    "the source sentence, colour the attention weight (one colour scale and one colour bar, 0 "
    "to 1, for every heatmap, so equal shades are equal weights). Models trained alike that "
    "differ only in the scorer may still look at different words."
)
COMPARE_TWIN_GRID = (
    "One heatmap per model, each on its own translation: rows are its output tokens, columns "
    "the source sentence, colour the attention weight (one colour scale and one colour bar, 0 "
    "to 1, for both heatmaps, so equal shades are equal weights). Left the model as trained, "
    "right the same model after training on with its attention pulled towards the word "
    "aligner's links."
)
BEAM_TREE = (
    "Every hypothesis the beam kept, one column per step from left to right; each node is a "
    "token, linked to the token before it. The red path is the picked hypothesis; the node "
    "colours and symbols (see the legend) say whether a hypothesis finished, was pruned or "
    "was still open."
)
BEAM_DIVERGENCE = (
    "The attention of two hypotheses from the step where they part: rows their tokens from "
    "that step on, columns the source sentence, colour the attention weight (0 to 1)."
)
WHATIF_BARS = (
    "One bar per target piece, left to right: the probability the model gave that piece when "
    "forced to write this target (1 = certain). Pieces below the dashed line (marked ▼) "
    "surprised the model."
)
WHATIF_HEATMAP = f"{HEATMAP_AXES} Here the rows are the target you typed, forced on the model."
TRAINING_CURVE = (
    "Across: the training step. Solid line: BLEU on the dev set (left axis, higher is "
    "better). Dashed lines: training and dev loss (right axis, lower is better). Dotted "
    "vertical lines: the snapshots of the weights saved at those steps, shown in "
    "“Attention forming during training”."
)

TOKEN_NOTES = {
    END_OF_SENTENCE: (
        f"{END_OF_SENTENCE}: the end-of-sentence token. As a row, the model decides it is done; "
        "as a column, attention parked there when no source word is needed."
    ),
    WORD_START: (
        f"{WORD_START}: starts a new word (SentencePiece's mark for the space before it); a "
        "piece without it continues the previous word."
    ),
}


def token_legend(tokens: Iterable[str]) -> str | None:
    """The notes on special tokens that occur in ``tokens`` (joined), None when none does."""
    shown = list(tokens)
    notes = [note for mark, note in TOKEN_NOTES.items() if any(mark in t for t in shown)]
    return " ".join(notes) or None
