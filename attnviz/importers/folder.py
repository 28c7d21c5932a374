"""Writing an imported model as an ordinary attnviz checkpoint folder.

The folder holds what any checkpoint holds (config.json with its "model", "tokenizer" and
"decoding" sections, model.safetensors, the tokenizer and vocabulary files) plus card.json
with the "imported_from" provenance. The weights stay float32: the toolkits decode in float32,
and float16 would flip the near-ties that decide some of their outputs. The folder is read
back with :func:`attnviz.checkpoint.load_checkpoint` before the import counts as done, so a
folder that was written is one attnviz opens.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import (
    CARD_FILE,
    CONFIG_FILE,
    MAX_CONFIG_BYTES,
    WEIGHTS_FILE,
    Checkpoint,
    load_checkpoint,
    save_tensors,
    write_bytes_atomic,
    write_json_atomic,
)
from ..checkpoint.config import write_config
from ..checkpoint.files import read_json_object
from ..errors import CheckpointError, InputError
from ..model import AttentionRNN, ModelConfig
from ..search import DecodingConfig
from .imported import ImportedModel
from .joey import read_joey_model
from .onmt import read_onmt_checkpoint

__all__ = ["TOOLKITS", "claim_import_folder", "import_model", "save_imported"]

# The toolkit names ``attnviz import`` and :func:`import_model` take.
TOOLKITS = ("joey", "onmt")
# What a checkpoint folder may hold; --overwrite removes these and nothing else.
_CHECKPOINT_NAMES = ("history.csv", "recipe.toml", "snapshots")


def import_model(
    toolkit: str,
    source: str | Path,
    output: str | Path,
    *,
    overwrite: bool = False,
    name: str | None = None,
    **options: Any,
) -> Checkpoint:
    """Import a toolkit's model into the checkpoint folder ``output`` and return it loaded.

    toolkit: "joey" (``source`` is the model folder; option ``checkpoint``) or "onmt"
             (``source`` is the .pt file; options ``src_tokenizer``, ``tgt_tokenizer``)
    The model is read completely before ``output`` is touched; ``output`` must be missing or
    empty unless ``overwrite`` (see :func:`claim_import_folder`).
    """
    if toolkit == "joey":
        imported = read_joey_model(source, options.get("checkpoint"))
    elif toolkit == "onmt":
        imported = read_onmt_checkpoint(
            source, options.get("src_tokenizer"), options.get("tgt_tokenizer")
        )
    else:
        raise InputError(f"unknown toolkit {toolkit!r}; choose one of {', '.join(TOOLKITS)}")
    folder = Path(output)
    claim_import_folder(folder, overwrite, [*imported.files, CONFIG_FILE, WEIGHTS_FILE, CARD_FILE])
    return save_imported(imported, folder, name)


def claim_import_folder(folder: Path, overwrite: bool, names: list[str]) -> None:
    """A missing or empty ``folder`` is free. One holding anything is refused
    (:class:`InputError`) unless ``overwrite``, which removes the files of a checkpoint folder
    (``names``, the ones the import writes, and those of any checkpoint) and leaves others."""
    if not folder.exists():
        return
    if not folder.is_dir():
        raise InputError(f"cannot import into {folder}: it is a file, not a folder")
    if not any(folder.iterdir()):
        return
    if not overwrite:
        holds = "a checkpoint" if (folder / CONFIG_FILE).is_file() else "files"
        raise InputError(
            f"{folder} already holds {holds}; import into another folder with -o FOLDER, or "
            "replace it with --overwrite"
        )
    names = [*names, *_CHECKPOINT_NAMES, *_tokenizer_files(folder / CONFIG_FILE)]
    # config.json first: a folder whose other files are half removed is no checkpoint.
    for file_name in [CONFIG_FILE, *names]:
        path = folder / file_name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def _tokenizer_files(config_path: Path) -> list[str]:
    """The tokenizer and vocabulary files an existing config.json names inside its folder."""
    try:
        tokenizer = read_json_object(config_path, CONFIG_FILE, MAX_CONFIG_BYTES).get("tokenizer")
    except CheckpointError:
        return []
    if not isinstance(tokenizer, dict):
        return []
    names = [tokenizer.get(key) for key in ("source", "target", "source_vocab", "target_vocab")]
    return [n for n in names if isinstance(n, str) and n and Path(n).name == n and n != ".."]


def save_imported(
    imported: ImportedModel, folder: str | Path, name: str | None = None
) -> Checkpoint:
    """Write ``imported`` into ``folder`` (created; files already there are replaced) and
    return the folder loaded as a :class:`Checkpoint`.

    ``name`` defaults to the folder's name. config.json is written last, so a folder with a
    config is complete. Raises :class:`CheckpointError` when the tensors do not build the model
    the "model" section describes (the message names the tensor).
    """
    folder = Path(folder)
    try:
        config = ModelConfig.from_dict(imported.model)
        decoding = DecodingConfig.from_dict(imported.decoding)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"the imported model's settings are not usable: {exc}") from None
    _check_tensors(config, imported)
    folder.mkdir(parents=True, exist_ok=True)
    for file_name, data in imported.files.items():
        write_bytes_atomic(folder / file_name, data)
    save_tensors(folder / WEIGHTS_FILE, imported.tensors, torch.float32)
    write_json_atomic(folder / CARD_FILE, {"imported_from": imported.provenance})
    name = name if name is not None else folder.resolve().name
    write_config(folder, config, name, decoding, imported.tokenizer)
    try:
        return load_checkpoint(folder)
    except CheckpointError:
        # The folder is not usable: without its config.json it is no checkpoint either.
        (folder / CONFIG_FILE).unlink(missing_ok=True)
        raise


def _check_tensors(config: ModelConfig, imported: ImportedModel) -> None:
    """The tensors must be exactly those of AttentionRNN(config), with its shapes."""
    expected = {k: tuple(v.shape) for k, v in AttentionRNN(config).state_dict().items()}
    given = {k: tuple(v.shape) for k, v in imported.tensors.items()}
    missing = sorted(set(expected) - set(given))
    extra = sorted(set(given) - set(expected))
    if missing or extra:
        raise CheckpointError(
            f"the imported tensors do not build the engine's model: missing {missing or '-'}, "
            f"not used {extra or '-'}"
        )
    for key, shape in expected.items():
        if given[key] != shape:
            raise CheckpointError(
                f"the imported tensor {key!r} has shape {list(given[key])}; the engine's model "
                f"needs {list(shape)}"
            )
