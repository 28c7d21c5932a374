"""Checkpoint folders: save, load and validate them, and unpack uploaded zips.

A checkpoint folder holds::

    config.json        format version, name, ModelConfig, tokenizer file names (written last)
    model.safetensors  weights, float16 on disk, loaded as float32
    spm.model          the joint SentencePiece model (or a shared one in the parent folder)
    card.json          optional free-form dict: data, license, metrics...
    recipe.toml        optional recipe text
    history.csv        optional training curve
    snapshots/         optional earlier weights: snapshots/<label>.safetensors

A checkpoint from outside (a path, an upload, a zip) is untrusted. Nothing here ever
unpickles: weights are safetensors only, and every file is size-capped with ``os.stat`` before
it is read.

One job per module: :mod:`.files` (file names, capped reads, atomic writes), :mod:`.config`
(config.json and the tokenizer it names), :mod:`.weights` (safetensors header checks, saving
and loading weights), :mod:`.snapshots`, :mod:`.folder` (the whole folder: save and load) and
:mod:`.upload` (zips). Each size cap lives in the module that enforces it.
"""

from .config import MAX_CONFIG_BYTES, MAX_CONFIG_SIZES, MAX_TOKENIZER_BYTES, read_config
from .files import (
    CARD_FILE,
    CONFIG_FILE,
    FORMAT_VERSION,
    HISTORY_FILE,
    RECIPE_FILE,
    SNAPSHOTS_DIR,
    TOKENIZER_FILE,
    WEIGHTS_FILE,
    WEIGHTS_SUFFIX,
    atomic_path,
    write_bytes_atomic,
    write_json_atomic,
)
from .folder import MAX_CARD_BYTES, MAX_RECIPE_BYTES, Checkpoint, load_checkpoint, save_checkpoint
from .snapshots import load_snapshot, snapshot_labels, snapshot_path, snapshot_steps, step_label
from .upload import (
    MAX_COMPRESSION_RATIO,
    MAX_UPLOAD_BYTES,
    MAX_UPLOAD_MEMBER_BYTES,
    MAX_UPLOAD_MEMBERS,
    MAX_UPLOAD_TOTAL_BYTES,
    extract_upload,
)
from .weights import (
    ALLOWED_DTYPES,
    MAX_HEADER_BYTES,
    MAX_WEIGHTS_BYTES,
    read_safetensors_header,
    save_tensors,
    save_weights,
)

__all__ = [
    "ALLOWED_DTYPES",
    "CARD_FILE",
    "CONFIG_FILE",
    "FORMAT_VERSION",
    "HISTORY_FILE",
    "MAX_CARD_BYTES",
    "MAX_COMPRESSION_RATIO",
    "MAX_CONFIG_BYTES",
    "MAX_CONFIG_SIZES",
    "MAX_HEADER_BYTES",
    "MAX_RECIPE_BYTES",
    "MAX_TOKENIZER_BYTES",
    "MAX_UPLOAD_BYTES",
    "MAX_UPLOAD_MEMBERS",
    "MAX_UPLOAD_MEMBER_BYTES",
    "MAX_UPLOAD_TOTAL_BYTES",
    "MAX_WEIGHTS_BYTES",
    "RECIPE_FILE",
    "SNAPSHOTS_DIR",
    "TOKENIZER_FILE",
    "WEIGHTS_FILE",
    "WEIGHTS_SUFFIX",
    "Checkpoint",
    "atomic_path",
    "extract_upload",
    "load_checkpoint",
    "load_snapshot",
    "read_config",
    "read_safetensors_header",
    "save_checkpoint",
    "save_tensors",
    "save_weights",
    "snapshot_labels",
    "snapshot_path",
    "snapshot_steps",
    "step_label",
    "write_bytes_atomic",
    "write_json_atomic",
]
