"""Opening the checkpoint the Checkpoint view shows: the sidebar's model, a folder on the
server, or an upload (unpacked once per session, never unpickled): a checkpoint folder's zip,
or a Joey NMT model folder's zip or an OpenNMT-py ``.pt``, imported as ``attnviz import`` does.

A folder on the server is offered only when whoever started the app allowed some folders
(``ATTNVIZ_ALLOW_PATHS``, or ``attnviz app --allow-path DIR``): otherwise any visitor could
probe the server's files. Only folders inside those are opened, after resolving ``..`` and
symbolic links, and a path never travels in a link."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import tempfile
import zipfile
from pathlib import Path

import streamlit as st

from ..checkpoint import (
    CONFIG_FILE,
    MAX_TOKENIZER_BYTES,
    MAX_UPLOAD_BYTES,
    WEIGHTS_FILE,
    extract_upload,
)
from ..checkpoint.files import human_size
from ..errors import CheckpointError, InputError
from ..importers import import_model
from ..importers.joey import JOEY_CONFIG_FILE
from ..translator import Translator, load
from .models import PickedModel
from .state import CHECKPOINT_PATH

__all__ = [
    "ALLOW_PATHS_ENV",
    "SOURCES",
    "Opened",
    "allowed_folders",
    "open_checkpoint",
    "open_path",
    "open_upload",
    "sources",
]

ALLOW_PATHS_ENV = "ATTNVIZ_ALLOW_PATHS"  # folders (os.pathsep between them) visitors may open
SOURCES = {
    "bundled": "The sidebar's model",
    "path": "A folder on the server",
    "upload": "An upload (zip, Joey NMT, OpenNMT-py)",
}
UPLOAD_STATE = "ckpt_upload_held"  # this session's unpacked upload (not a widget)
ONMT_UPLOAD_NAME = "model.pt"  # an uploaded .pt is stored under this name, whatever it was
# Uploaded tokenizer files: ("source" | "target", the file's bytes).
Tokenizers = tuple[tuple[str, bytes], ...]


@dataclasses.dataclass
class Opened:
    """The checkpoint the view shows. ``key`` names it in caches: the bundled model's name,
    a folder's path and modification times, or an upload's SHA-256."""

    key: str
    translator: Translator
    bundled: bool  # the sidebar's model, the one Align uses


@st.cache_resource(max_entries=8, show_spinner="Loading the checkpoint…")
def load_folder(path: str, version: tuple) -> Translator:
    """A checkpoint folder on this machine, loaded again when its files change (``version``)."""
    return load(path)


def folder_version(folder: Path) -> tuple:
    """Modification times and sizes of the files that make the model."""
    try:
        stats = [os.stat(folder / name) for name in (CONFIG_FILE, WEIGHTS_FILE)]
    except OSError:
        return ()  # load() will say what is missing
    return tuple((s.st_mtime_ns, s.st_size) for s in stats)


def allowed_folders() -> list[Path]:
    """The folders (resolved) under which visitors may open checkpoints: those named in
    ``ATTNVIZ_ALLOW_PATHS`` that exist; none when it is unset."""
    named = os.environ.get(ALLOW_PATHS_ENV, "").split(os.pathsep)
    folders = [Path(n).expanduser().resolve() for n in named if n.strip()]
    return [f for f in folders if f.is_dir()]


def sources() -> dict[str, str]:
    """Where a checkpoint may come from here: a server folder only when some are allowed."""
    return {k: v for k, v in SOURCES.items() if k != "path" or allowed_folders()}


def open_path(text: str, allowed: list[Path]) -> Opened:
    """The checkpoint folder at ``text``: absolute, or relative to the first ``allowed``
    folder. CheckpointError when it is not one, or not inside an ``allowed`` folder once
    ``..`` and symbolic links are resolved."""
    if "\x00" in text:
        raise CheckpointError("the path holds a NUL character")
    if not allowed:
        raise CheckpointError("this server opens no folders (see ATTNVIZ_ALLOW_PATHS)")
    typed = Path(text.strip())
    folder = (typed if typed.is_absolute() else allowed[0] / typed).resolve()
    if not any(folder.is_relative_to(root) for root in allowed):
        where = ", ".join(str(root) for root in allowed)
        raise CheckpointError(f"{text.strip()} is outside the folders this server opens: {where}")
    version = folder_version(folder)
    return Opened(f"path:{folder}:{version}", load_folder(str(folder), version), bundled=False)


@dataclasses.dataclass
class HeldUpload:
    """This session's unpacked upload: its folder lives as long as the session (the
    TemporaryDirectory removes it when it is replaced or garbage-collected)."""

    digest: str
    folder: tempfile.TemporaryDirectory | None
    translator: Translator | None
    error: str | None


def unpack(
    data: bytes, digest: str, name: str = "checkpoint.zip", tokenizers: Tokenizers = ()
) -> HeldUpload:
    """Unpack and load an uploaded zip, or import an uploaded OpenNMT-py ``.pt`` (``name``
    says which); the error is kept, not raised."""
    folder = tempfile.TemporaryDirectory(prefix="attnviz-upload-")
    try:
        translator = _open_uploaded(data, name, Path(folder.name), tokenizers)
    except (CheckpointError, InputError) as exc:
        message = str(exc)
        for prefix in {folder.name, str(Path(folder.name).resolve())}:
            message = message.replace(prefix + os.sep, "")  # paths inside the zip are enough
        folder.cleanup()
        return HeldUpload(digest, None, None, message)
    return HeldUpload(digest, folder, translator, None)


def _open_uploaded(data: bytes, name: str, root: Path, tokenizers: Tokenizers) -> Translator:
    """The translator of an upload unpacked under ``root``: a checkpoint folder's zip is
    loaded; a Joey NMT model folder's zip (it holds config.yaml, no config.json) and an
    OpenNMT-py ``.pt`` with its ``tokenizers`` files are imported into ``root / imported``
    the way ``attnviz import`` does, under the same caps as any upload."""
    imported = root / "imported"
    if name.lower().endswith(".pt"):
        if len(data) > MAX_UPLOAD_BYTES:
            raise CheckpointError(
                f"upload: the checkpoint is {human_size(len(data))}, over the "
                f"{human_size(MAX_UPLOAD_BYTES)} limit"
            )
        files = root / "upload"
        files.mkdir()
        (files / ONMT_UPLOAD_NAME).write_bytes(data)
        paths = {}
        for (side, blob), option in zip(
            tokenizers, ("src_tokenizer", "tgt_tokenizer"), strict=False
        ):
            if len(blob) > MAX_TOKENIZER_BYTES:
                raise CheckpointError(f"upload: the {side} tokenizer file is over the size limit")
            (files / f"{side}.tokenizer").write_bytes(blob)
            paths[option] = files / f"{side}.tokenizer"
        checkpoint = import_model("onmt", files / ONMT_UPLOAD_NAME, imported, **paths)
        return Translator.from_checkpoint(checkpoint)
    if _holds_joey_folder(data):
        folder = extract_upload(data, root / "upload", marker=JOEY_CONFIG_FILE)
        return Translator.from_checkpoint(import_model("joey", folder, imported))
    return load(extract_upload(data, root / "upload"))


def _holds_joey_folder(data: bytes) -> bool:
    """Whether a zip names a Joey config.yaml and no config.json (reading only its index;
    anything unreadable is left to :func:`extract_upload` to refuse)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = {Path(n).name for n in archive.namelist()}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError):
        return False
    return JOEY_CONFIG_FILE in names and CONFIG_FILE not in names


def release_upload() -> None:
    held = st.session_state.pop(UPLOAD_STATE, None)
    if held is not None and held.folder is not None:
        held.folder.cleanup()


def open_upload(data: bytes, name: str = "checkpoint.zip", tokenizers: Tokenizers = ()) -> Opened:
    """The uploaded checkpoint, unpacked (or imported) once per session and upload."""
    hasher = hashlib.sha256(name.encode("utf-8") + b"\0" + data)
    for side, blob in tokenizers:
        hasher.update(side.encode("utf-8") + b"\0" + hashlib.sha256(blob).digest())
    digest = hasher.hexdigest()
    held = st.session_state.get(UPLOAD_STATE)
    if held is None or held.digest != digest:
        release_upload()
        with st.spinner("Unpacking and checking the checkpoint…"):
            held = st.session_state[UPLOAD_STATE] = unpack(data, digest, name, tokenizers)
    if held.error is not None:
        raise CheckpointError(held.error)
    return Opened(f"upload:{digest}", held.translator, bundled=False)


def open_checkpoint(model: PickedModel, source: str) -> Opened | None:
    """The checkpoint picked by ``source``; None (with a message) when there is none yet."""
    if source == "bundled":
        return Opened(model.name, model.translator, bundled=True)
    if source == "path":
        allowed = allowed_folders()
        where = ", ".join(str(root) for root in allowed)
        text = st.text_input("Checkpoint folder", key=CHECKPOINT_PATH, placeholder="runs/en-fr")
        st.caption(
            f"Folders inside {where} (relative paths start in the first). A link to this "
            "page does not carry the path: type it again."
        )
        if not text.strip():
            st.info("Type the path of a checkpoint folder (it holds config.json).")
            return None
        return open_path(text, allowed)
    st.caption(
        "An uploaded checkpoint cannot travel in a link: a link to this page opens the "
        "upload box, and the zip must be uploaded again."
    )
    file = st.file_uploader(
        "Checkpoint folder as a zip, a Joey NMT model folder as a zip, or an OpenNMT-py .pt",
        type=["zip", "pt"],
        key="ckpt_zip",
    )
    if file is None:
        release_upload()
        return None
    tokenizers: list[tuple[str, bytes]] = []
    if file.name.lower().endswith(".pt"):
        st.caption(
            "An OpenNMT-py checkpoint records only the paths of its SentencePiece model or BPE "
            "codes: upload the file it was trained with (and the target's, if it had its own)."
        )
        for side, key in (("source", "ckpt_src_tokenizer"), ("target", "ckpt_tgt_tokenizer")):
            given = st.file_uploader(f"The {side} tokenizer file", key=key)
            if given is not None:
                tokenizers.append((side, given.getvalue()))
    return open_upload(file.getvalue(), file.name, tuple(tokenizers))
