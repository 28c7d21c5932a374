"""Training that starts from a trained checkpoint's weights (``[training] init_from``).

A guided twin of a bundled model is the bundled model trained on with guidance, so the two
differ in the guidance and the steps after it, not in a second random initialisation.
"""

from __future__ import annotations

from pathlib import Path

from ..checkpoint import load_checkpoint
from ..errors import InputError
from ..model import AttentionRNN
from ..tokenize import SentencePieceTokenizer

__all__ = ["load_initial_weights"]


def load_initial_weights(
    model: AttentionRNN, tokenizer: SentencePieceTokenizer, folder: Path
) -> None:
    """Copy the weights of the checkpoint in ``folder`` into ``model`` (float32).

    Raises InputError when the checkpoint's model configuration or tokenizer differ from the
    recipe's: its weights would mean something else in this model.
    """
    checkpoint = load_checkpoint(folder)
    if checkpoint.config != model.config:
        raise InputError(
            f"init_from {folder}: its model configuration differs from the recipe's "
            f"(checkpoint {checkpoint.config}, recipe {model.config})"
        )
    proto = getattr(checkpoint.source_tokenizer, "model_proto", None)
    if proto != tokenizer.model_proto:
        raise InputError(
            f"init_from {folder}: its tokenizer differs from the recipe's; set the recipe's "
            f"[tokenizer] model to the checkpoint's {folder.name}/spm.model"
        )
    model.load_state_dict(checkpoint.model.state_dict())
