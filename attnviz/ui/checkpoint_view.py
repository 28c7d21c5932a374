"""Checkpoint: open a checkpoint (the sidebar's, a folder on this machine, or an uploaded zip),
read its card, config and training curve, watch attention form over its snapshots, and run a
file through it (see checkpoint_run)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from ..align import word_attention
from ..checkpoint import (
    CONFIG_FILE,
    HISTORY_FILE,
    WEIGHTS_FILE,
    Checkpoint,
    extract_upload,
    load_snapshot,
)
from ..errors import CheckpointError, InputError
from ..figures import attention_heatmap
from ..figures.training import read_history, snapshot_steps, training_curve
from ..translator import Translation, Translator, load
from .checkpoint_run import Opened, render_run
from .downloads import download_row, file_stem, show_figure
from .inputs import beam_input, sentence_input
from .messages import markdown_literal
from .state import init_from_url, one_of, to_url

SOURCES = {
    "bundled": "The sidebar's model",
    "path": "A folder on this machine",
    "upload": "An uploaded zip",
}
FINAL = "final weights"  # not a valid snapshot label (it has a space), so never a clash
UPLOAD_STATE = "ckpt_upload_held"  # this session's unpacked upload (not a widget)
MAX_CARD_DEPTH = 4  # deeper parts of a card are left to the JSON viewer


# -- opening a checkpoint -------------------------------------------------------------------


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


def open_path(text: str) -> Opened:
    """The checkpoint folder at ``text`` (CheckpointError when it is not one)."""
    if "\x00" in text:
        raise CheckpointError("the path holds a NUL character")
    folder = Path(text.strip()).expanduser().resolve()
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


def unpack(data: bytes, digest: str) -> HeldUpload:
    """Unpack and load an uploaded zip (never unpickling); the error is kept, not raised."""
    folder = tempfile.TemporaryDirectory(prefix="attnviz-upload-")
    try:
        translator = load(extract_upload(data, Path(folder.name)))
    except CheckpointError as exc:
        message = str(exc)
        for prefix in {folder.name, str(Path(folder.name).resolve())}:
            message = message.replace(prefix + os.sep, "")  # paths inside the zip are enough
        folder.cleanup()
        return HeldUpload(digest, None, None, message)
    return HeldUpload(digest, folder, translator, None)


def release_upload() -> None:
    held = st.session_state.pop(UPLOAD_STATE, None)
    if held is not None and held.folder is not None:
        held.folder.cleanup()


def open_upload(data: bytes) -> Opened:
    """The uploaded zip's checkpoint, unpacked once per session and upload."""
    digest = hashlib.sha256(data).hexdigest()
    held = st.session_state.get(UPLOAD_STATE)
    if held is None or held.digest != digest:
        release_upload()
        with st.spinner("Unpacking and checking the checkpoint…"):
            held = st.session_state[UPLOAD_STATE] = unpack(data, digest)
    if held.error is not None:
        raise CheckpointError(held.error)
    return Opened(f"upload:{digest}", held.translator, bundled=False)


def open_checkpoint(translator: Translator, model: str, source: str) -> Opened | None:
    """The checkpoint picked by ``source``; None (with a message) when there is none yet."""
    if source == "bundled":
        return Opened(model, translator, bundled=True)
    if source == "path":
        init_from_url("ckpt_path", "")
        text = st.text_input("Checkpoint folder", key="ckpt_path", placeholder="~/runs/en-fr")
        to_url(ckpt_path=text)
        if not text.strip():
            st.info("Type the path of a checkpoint folder (it holds config.json).")
            return None
        return open_path(text)
    st.caption(
        "An uploaded checkpoint cannot travel in a link: a link to this page opens the "
        "upload box, and the zip must be uploaded again."
    )
    file = st.file_uploader("Checkpoint folder as a zip", type=["zip"], key="ckpt_zip")
    if file is None:
        release_upload()
        return None
    return open_upload(file.getvalue())


# -- card, config, curve --------------------------------------------------------------------


def arrow_safe(table: pd.DataFrame) -> pd.DataFrame:
    """Columns of numbers stay numbers; any other column becomes text (cards are free-form)."""

    def numeric(value: Any) -> bool:
        return value is None or (isinstance(value, int | float) and not isinstance(value, bool))

    for column in table.columns:
        if not all(numeric(v) for v in table[column]):
            table[column] = [
                "" if v is None else v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
                for v in table[column]
            ]
    return table


def as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def key_values(section: dict) -> pd.DataFrame:
    """A dict's plain entries (not dicts, not definitions) as (field, value) rows of text."""
    rows = [
        (str(k), as_text(v))
        for k, v in section.items()
        if not isinstance(v, dict) and not str(k).endswith("definition")
    ]
    return pd.DataFrame(rows, columns=["field", "value"])


def nested_table(section: dict) -> pd.DataFrame:
    """The dicts inside ``section`` as one table: a row per dict that has plain values, named
    by its path ("tatoeba / greedy"), a column per plain key ("bleu", "chrf"...)."""
    rows: dict[str, dict] = {}

    def visit(node: dict, path: tuple[str, ...]) -> None:
        plain = {str(k): v for k, v in node.items() if not isinstance(v, dict)}
        if plain and path:
            rows[" / ".join(path)] = plain
        for k, v in node.items():
            if isinstance(v, dict) and len(path) < MAX_CARD_DEPTH:
                visit(v, (*path, str(k)))

    visit(section, ())
    table = pd.DataFrame.from_dict(rows, orient="index").rename_axis("").reset_index()
    return arrow_safe(table.astype(object).where(table.notna(), None))


def render_section(title: str, section: dict) -> None:
    """One part of the card: plain fields, then nested numbers, then definitions as text."""
    st.markdown(f"**{markdown_literal(title)}**")
    for table in (key_values(section), nested_table(section)):
        if len(table):
            st.dataframe(table, hide_index=True)
    for key, value in section.items():
        if str(key).endswith("definition"):
            st.text(f"{key}: {as_text(value)}")


def render_card(checkpoint: Checkpoint) -> None:
    """The card, whatever its shape (it is free-form JSON): every part as tables and text,
    and the whole of it in a JSON viewer."""
    st.subheader("Model card")
    card = checkpoint.card
    if not card:
        st.info("This checkpoint has no card.json: its data, license and metrics are unknown.")
        return
    data = card.get("data")
    if data is not None:
        st.markdown("**Data, license and attribution**")
        if isinstance(data, list) and data and all(isinstance(d, dict) for d in data):
            st.dataframe(arrow_safe(pd.DataFrame(data).astype(object)), hide_index=True)
        else:
            st.text(as_text(data))
    render_section(
        "About", {k: v for k, v in card.items() if k != "data" and not isinstance(v, dict)}
    )
    for key, value in card.items():
        if isinstance(value, dict):
            render_section(str(key).replace("_", " ").capitalize(), value)
    with st.expander("The whole card (JSON)"):
        st.json(card, expanded=2)


def render_config(checkpoint: Checkpoint) -> None:
    st.subheader("Configuration")
    parameters = sum(p.numel() for p in checkpoint.model.parameters())
    rows = [("name", checkpoint.name), ("parameters", f"{parameters:,}")]
    rows += [(k, str(v)) for k, v in dataclasses.asdict(checkpoint.config).items()]
    rows.append(("snapshots", ", ".join(checkpoint.snapshots) or "none"))
    st.dataframe(pd.DataFrame(rows, columns=["setting", "value"]), hide_index=True)
    if checkpoint.recipe is not None:
        with st.expander("Recipe (recipe.toml)"):
            st.code(checkpoint.recipe, language="toml")


def render_curve(checkpoint: Checkpoint) -> None:
    st.subheader("Training curve")
    path = checkpoint.path / HISTORY_FILE  # read afresh: a training run may still append to it
    if not path.is_file():
        st.info("This checkpoint has no history.csv, so there is no training curve to draw.")
        return
    try:
        history = read_history(path)
    except CheckpointError as exc:
        st.warning(markdown_literal(f"The training curve cannot be drawn: {exc}"))
        return
    marks = snapshot_steps(checkpoint.snapshots)
    figure = training_curve(history, f"Training of {checkpoint.name}", marks)
    show_figure(figure, key="curve")
    download_row(file_stem(checkpoint.name, "training"), key="curve", figure=figure, table=history)


# -- snapshots ------------------------------------------------------------------------------


@st.cache_resource(max_entries=16, show_spinner="Loading the snapshot…")
def snapshot_translator(key: str, label: str, _checkpoint: Checkpoint) -> Translator:
    """The checkpoint's tokenizer with the weights of snapshot ``label`` (``key``: the
    checkpoint, see :class:`Opened`)."""
    model = load_snapshot(_checkpoint, label)
    return Translator(model, _checkpoint.tokenizer, f"{_checkpoint.name} at {label}")


@st.cache_data(max_entries=256, show_spinner=False)
def weights_translation(
    key: str, label: str, text: str, beam: int, _translator: Translator
) -> Translation:
    return _translator.translate(text, beam_size=beam)


def render_snapshots(opened: Opened, beam: int) -> None:
    checkpoint = opened.translator.checkpoint
    if not checkpoint.snapshots:
        return
    st.subheader("Attention forming during training")
    text = sentence_input()
    options = [*checkpoint.snapshots, FINAL]
    init_from_url("snapshot", options[0], one_of(options))
    if st.session_state["snapshot"] not in options:  # another checkpoint's snapshot
        st.session_state["snapshot"] = options[0]
    label = st.select_slider("Weights at", options, key="snapshot")
    to_url(snapshot=label)
    try:
        translator = (
            opened.translator
            if label == FINAL
            else snapshot_translator(opened.key, label, checkpoint)
        )
        with st.spinner("Translating…"):
            translation = weights_translation(opened.key, label, text, beam, translator)
    except (CheckpointError, InputError) as exc:
        st.warning(markdown_literal(str(exc)))
        return
    st.text(translation.text)
    attention = word_attention(
        translation.attention, translation.source_word_of_piece, translation.target_word_of_piece
    )
    search = "greedy" if beam == 1 else f"beam {beam}"
    title = f"Attention of {checkpoint.name} at {label} ({search}), by word"
    figure = attention_heatmap(translation.source_words, translation.target_words, attention, title)
    show_figure(figure, key="snapshot_heatmap")
    download_row(
        file_stem(checkpoint.name, label),
        key="snapshot",
        figure=figure,
        numbers=lambda: translation,
    )


# -- the view -------------------------------------------------------------------------------


def render(translator: Translator, model: str) -> None:
    """The Checkpoint view; ``translator`` is the sidebar's model, opened by default."""
    init_from_url("ckpt", "bundled", one_of(list(SOURCES)))
    left, right = st.columns([3, 1])
    source = left.radio(
        "Checkpoint", list(SOURCES), format_func=SOURCES.get, horizontal=True, key="ckpt"
    )
    beam = beam_input(right)
    to_url(ckpt=source)
    try:
        opened = open_checkpoint(translator, model, source)
    except CheckpointError as exc:
        st.error(markdown_literal(f"Cannot open the checkpoint: {exc}"))
        return
    if opened is None:
        return
    if opened.translator.checkpoint is None:
        st.error("This model was not loaded from a checkpoint folder.")
        return
    # What a teacher shows first (the curve, attention forming), then the reference parts.
    render_curve(opened.translator.checkpoint)
    render_snapshots(opened, beam)
    render_card(opened.translator.checkpoint)
    render_config(opened.translator.checkpoint)
    render_run(opened, beam, model)
