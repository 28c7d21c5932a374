"""The checkpoint folder as a whole: :func:`save_checkpoint` writes one, :func:`load_checkpoint`
reads and validates one into a :class:`Checkpoint`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import CheckpointError
from ..model import AttentionRNN, ModelConfig
from ..search import DecodingConfig
from ..tokenize import SentencePieceTokenizer, Tokenizer
from .config import check_special_ids, load_tokenizers, read_config, read_decoding, write_config
from .files import (
    CARD_FILE,
    CONFIG_FILE,
    HISTORY_FILE,
    MB,
    RECIPE_FILE,
    TOKENIZER_FILE,
    WEIGHTS_FILE,
    read_capped,
    read_json_object,
    write_bytes_atomic,
    write_json_atomic,
)
from .snapshots import snapshot_labels
from .weights import load_weights, refuse_pickled_weights, save_weights

__all__ = ["MAX_CARD_BYTES", "MAX_RECIPE_BYTES", "Checkpoint", "load_checkpoint", "save_checkpoint"]

MAX_CARD_BYTES = 1 * MB
MAX_RECIPE_BYTES = 1 * MB


@dataclass
class Checkpoint:
    """A loaded, validated checkpoint folder."""

    path: Path
    name: str
    config: ModelConfig
    model: AttentionRNN  # eval mode, float32
    source_tokenizer: Tokenizer  # attnviz's own models: one joint tokenizer for both sides
    target_tokenizer: Tokenizer
    card: dict[str, Any]
    recipe: str | None
    history_path: Path | None
    snapshots: list[str]  # labels of snapshots/<label>.safetensors, sorted naturally
    decoding: DecodingConfig = field(default_factory=DecodingConfig)  # config.json "decoding"


def save_checkpoint(
    folder: str | Path,
    model: AttentionRNN,
    tokenizer: SentencePieceTokenizer,
    card: dict[str, Any] | None = None,
    recipe: str | None = None,
    name: str | None = None,
) -> Path:
    """Write a checkpoint folder of an attnviz model (joint SentencePiece ``tokenizer``) and
    return its path.

    Every file is written to a temporary file in the folder and moved into place;
    ``config.json`` comes last, so a folder with a config is complete. ``card`` and ``recipe``
    are written only when given (an existing card.json/recipe.toml is then replaced), and other
    files already in the folder (history.csv, snapshots/) are left alone. ``name`` defaults to
    the folder's name.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if model.config.vocab_size != tokenizer.vocab_size:
        raise CheckpointError(
            f"model vocab_size {model.config.vocab_size} does not match the tokenizer's "
            f"{tokenizer.vocab_size} pieces"
        )
    name = name if name is not None else folder.resolve().name
    write_bytes_atomic(folder / TOKENIZER_FILE, tokenizer.model_proto)
    save_weights(folder / WEIGHTS_FILE, model)
    if card is not None:
        write_json_atomic(folder / CARD_FILE, card)
    if recipe is not None:
        write_bytes_atomic(folder / RECIPE_FILE, recipe.encode("utf-8"))
    write_config(folder, model.config, name)
    return folder


def _read_card(path: Path) -> dict[str, Any]:
    """card.json, or an empty card when there is none."""
    return read_json_object(path, "model card", MAX_CARD_BYTES) if path.exists() else {}


def _read_recipe(path: Path) -> str | None:
    """recipe.toml as text, or None when there is none."""
    if not path.exists():
        return None
    data = read_capped(path, "recipe", MAX_RECIPE_BYTES)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise CheckpointError(f"{path}: the recipe is not UTF-8 text") from None


def _existing_folder(path: str | Path) -> Path:
    folder = Path(path)
    if not folder.exists():
        raise CheckpointError(f"{folder}: no such checkpoint folder")
    if not folder.is_dir():
        raise CheckpointError(
            f"{folder}: not a folder; a checkpoint is a folder holding {CONFIG_FILE}, "
            f"{WEIGHTS_FILE} and {TOKENIZER_FILE} (unpack a zip first)"
        )
    return folder.resolve()


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Load and validate a checkpoint folder.

    Raises :class:`CheckpointError` naming the file, what is wrong and what is expected for
    anything amiss: missing files, malformed or newer config, tokenizer/config mismatch,
    weights that are not safetensors, too big, or whose names, shapes, dtypes or values do not
    fit the config. Nothing is ever unpickled.
    """
    folder = _existing_folder(path)
    config_path = folder / CONFIG_FILE
    config, raw = read_config(config_path)
    source_tokenizer, target_tokenizer = load_tokenizers(folder, raw, config_path)
    check_special_ids(config, (source_tokenizer, target_tokenizer), config_path)
    # The target vocabulary is the output layer's; the source one is the source embedding's
    # (src_vocab_size when the model has one of its own, else the joint vocab_size).
    sides = (
        ("source", source_tokenizer, "src_vocab_size" if config.src_vocab_size else "vocab_size"),
        ("target", target_tokenizer, "vocab_size"),
    )
    for side, tokenizer, key in sides:
        size = getattr(config, key)
        if tokenizer.vocab_size != size:
            raise CheckpointError(
                f"{config_path}: {key} is {size} but the {side} tokenizer "
                f"has {tokenizer.vocab_size} pieces; they must be equal"
            )
    refuse_pickled_weights(folder)
    model = load_weights(folder / WEIGHTS_FILE, config)
    history = folder / HISTORY_FILE
    return Checkpoint(
        path=folder,
        name=raw.get("name") or folder.name,
        config=config,
        model=model,
        source_tokenizer=source_tokenizer,
        target_tokenizer=target_tokenizer,
        card=_read_card(folder / CARD_FILE),
        recipe=_read_recipe(folder / RECIPE_FILE),
        history_path=history if history.is_file() else None,
        snapshots=snapshot_labels(folder),
        decoding=read_decoding(raw, config_path),
    )
