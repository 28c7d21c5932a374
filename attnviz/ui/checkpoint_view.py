"""Checkpoint: open a checkpoint (the sidebar's, a folder on this machine, or an uploaded zip;
see checkpoint_open), read its training curve, card and config, watch attention form over its
snapshots, and run a file through it (see checkpoint_run)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pandas as pd
import streamlit as st

from ..align import word_attention
from ..checkpoint import HISTORY_FILE, Checkpoint, load_snapshot, snapshot_steps
from ..errors import CheckpointError, InputError
from ..figures import attention_heatmap
from ..figures.captions import HEATMAP_AXES, TRAINING_CURVE
from ..figures.style import search_label
from ..figures.training import read_history, training_curve
from ..translator import Translation, Translator
from .checkpoint_open import Opened, open_checkpoint, sources
from .checkpoint_run import render_run
from .downloads import download_row, file_stem, show_figure
from .inputs import beam_input, controls, sentence_input
from .messages import markdown_literal
from .models import PickedModel
from .state import CHECKPOINT, CHECKPOINT_SOURCE, SNAPSHOT, init_from_url, one_of, to_url

__all__ = ["render", "render_card", "render_config", "render_curve", "render_snapshots"]

FINAL = "final weights"  # not a valid snapshot label (it has a space), so never a clash
MAX_CARD_DEPTH = 4  # deeper parts of a card are left to the JSON viewer


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


def card_table(table: pd.DataFrame) -> None:
    """A static table: long text (attributions, notes) wraps instead of being cut off."""
    st.table(table.style.format(precision=4, na_rep="").hide(axis="index"))


def render_section(title: str, section: dict) -> None:
    """One part of the card: plain fields, then nested numbers, then definitions as text."""
    st.markdown(f"**{markdown_literal(title)}**")
    for table in (key_values(section), nested_table(section)):
        if len(table):
            card_table(table)
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
            card_table(arrow_safe(pd.DataFrame(data).astype(object)))
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
    marks = [(step, f"step {step}") for step, _ in snapshot_steps(checkpoint.snapshots)]
    figure = training_curve(history, f"Training of {checkpoint.name}", marks)
    show_figure(figure, key="curve", caption=TRAINING_CURVE)
    download_row(
        file_stem(CHECKPOINT, checkpoint.name, "training"),
        key="curve",
        figure=figure,
        table=history,
    )


# -- snapshots ------------------------------------------------------------------------------


@st.cache_resource(max_entries=16, show_spinner="Loading the snapshot…")
def snapshot_translator(key: str, label: str, _checkpoint: Checkpoint) -> Translator:
    """The checkpoint's tokenizer with the weights of snapshot ``label`` (``key``: the
    checkpoint, see :class:`Opened`)."""
    model = load_snapshot(_checkpoint, label)
    return Translator(
        model,
        _checkpoint.source_tokenizer,
        f"{_checkpoint.name} at {label}",
        target_tokenizer=_checkpoint.target_tokenizer,
    )


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
    text = sentence_input(opened.translator)
    options = [*checkpoint.snapshots, FINAL]
    init_from_url(SNAPSHOT, options[0], one_of(options))
    if st.session_state[SNAPSHOT] not in options:  # another checkpoint's snapshot
        st.session_state[SNAPSHOT] = options[0]
    steps = {label: f"step {step}" for step, label in snapshot_steps(checkpoint.snapshots)}
    label = st.select_slider(
        "Weights at", options, key=SNAPSHOT, format_func=lambda o: steps.get(o, o)
    )
    to_url(**{SNAPSHOT: label})
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
    title = (
        f"Attention of {checkpoint.name} at {steps.get(label, label)} ({search_label(beam)}), "
        "by word"
    )
    figure = attention_heatmap(translation.source_words, translation.target_words, attention, title)
    tokens = [*translation.source_words, *translation.target_words]
    show_figure(figure, key="snapshot_heatmap", caption=HEATMAP_AXES, tokens=tokens)
    download_row(
        file_stem(CHECKPOINT, checkpoint.name, label, "words"),
        key="snapshot",
        figure=figure,
        numbers=lambda: translation,
    )


# -- the view -------------------------------------------------------------------------------


def render(model: PickedModel) -> None:
    """The Checkpoint view; the sidebar's model is opened by default."""
    offered = sources()
    init_from_url(CHECKPOINT_SOURCE, "bundled", one_of(list(offered)))
    if st.session_state[CHECKPOINT_SOURCE] not in offered:  # the server stopped allowing it
        st.session_state[CHECKPOINT_SOURCE] = "bundled"
    with controls("Checkpoint and settings"):
        left, right = st.columns([3, 1])
        source = left.radio(
            "Checkpoint",
            list(offered),
            format_func=offered.get,
            horizontal=True,
            key=CHECKPOINT_SOURCE,
        )
        beam = beam_input(right)
        try:
            opened, broken = open_checkpoint(model, source), ""
        except CheckpointError as exc:
            opened, broken = None, str(exc)
    to_url(**{CHECKPOINT_SOURCE: source})
    if broken:
        st.error(markdown_literal(f"Cannot open the checkpoint: {broken}"))
        return
    if opened is None:
        return
    if opened.translator.checkpoint is None:  # the adapted model: no folder, only its code
        render_run(opened, beam, model.name)
        st.info(
            markdown_literal(
                f"{opened.translator.name} is your own code behind an adapter (attnviz app "
                "--model module:factory), not a checkpoint folder: it has no training curve, "
                "snapshots, card or config.json to show."
            )
        )
        return
    # What a teacher or researcher uses first (a file through the model, the curve, attention
    # forming), then the reference parts.
    render_run(opened, beam, model.name)
    render_curve(opened.translator.checkpoint)
    render_snapshots(opened, beam)
    render_card(opened.translator.checkpoint)
    render_config(opened.translator.checkpoint)
