"""Reading other toolkits' models: Joey NMT 2.x model folders and OpenNMT-py 3.x checkpoints.

Each reader turns the toolkit's files into an :class:`ImportedModel`: the config.json
sections ("model", "tokenizer", "decoding") in attnviz's terms, the weights as
{engine parameter name: float32 tensor}, the vocabulary and tokenizer files, and the card's
"imported_from" provenance. Nothing here runs code from a file: checkpoints are read with
PyTorch's restricted unpickler and the smallest allowlist (:mod:`.safe_load`), YAML with
``yaml.safe_load``.

One job per module: :mod:`.safe_load` (reading a ``torch.save`` file), :mod:`.imported`
(the result, tensor tables, vocabulary files), :mod:`.provenance` (card.json),
:mod:`.joey` and :mod:`.onmt` (one toolkit each, with its one tensor table), :mod:`.folder`
(writing the checkpoint folder).
"""

from .folder import TOOLKITS, import_model, save_imported
from .imported import ImportedModel, TensorRule
from .joey import read_joey_model
from .onmt import read_onmt_checkpoint
from .safe_load import MAX_TOOLKIT_CHECKPOINT_BYTES, load_toolkit_checkpoint

__all__ = [
    "MAX_TOOLKIT_CHECKPOINT_BYTES",
    "TOOLKITS",
    "ImportedModel",
    "TensorRule",
    "import_model",
    "load_toolkit_checkpoint",
    "read_joey_model",
    "read_onmt_checkpoint",
    "save_imported",
]
