"""Compare scorers: one sentence through the models that differ only in their attention
scorer, or through a model and its guided twin, their heatmaps side by side and a table of
how they differ."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from ..align import STATISTICAL_METHOD, UNITS, own_links, sorted_links, word_attention
from ..alignment_matrix import alignment_matrix
from ..errors import CheckpointError, InputError
from ..figures.captions import COMPARE_GRID, COMPARE_TWIN_GRID
from ..figures.compare import Panel, heatmap_grid
from ..locations import models_dir
from ..scorer_lab import (
    Family,
    MemberRun,
    compare_table,
    default_family,
    divergence_matrix,
    families,
    guided_twins,
    synthetic_task,
)
from ..synthetic import SyntheticPair, gold_pair
from ..translator import Score
from .downloads import download_row, file_stem, show_figure
from .inputs import beam_input, controls, sentence_input
from .messages import fail, markdown_literal, warn
from .models import (
    PickedModel,
    bundled_models,
    picked,
    score_cached,
    translate_cached,
    warn_if_unfit,
)
from .state import COMPARE, FAMILY, UNIT, init_from_url, one_of, to_url
from .word_aligner import aligner_overlay

__all__ = ["family_picker", "member_runs", "render"]

NUMBER = st.column_config.NumberColumn(format="%.3f")


def family_picker(choices: list[Family], model: str, container=st) -> Family:
    names = [f.name for f in choices]
    init_from_url(FAMILY, default_family(choices, model), one_of(names))
    if st.session_state[FAMILY] not in names:  # the models folder changed since
        st.session_state[FAMILY] = default_family(choices, model)
    name = container.selectbox(
        "Family",
        names,
        format_func=lambda n: choices[names.index(n)].label,
        key=FAMILY,
    )
    to_url(**{FAMILY: name})
    return choices[names.index(name)]


def shared_score(model: PickedModel, text: str, target: str) -> Score | None:
    """The forced decode of the shared target, None when it cannot be scored (empty)."""
    try:
        return score_cached(model, text, target)
    except InputError:
        return None


def member_runs(
    members: list[PickedModel], text: str, beam: int, pair: SyntheticPair | None
) -> tuple[list[MemberRun], str]:
    """Every member's translation and forced decodes, and the shared target (the first
    member's translation)."""
    translations = [translate_cached(m, text, beam) for m in members]
    target = translations[0].text
    runs = [
        MemberRun(
            model=m.name,
            translation=t,
            shared=shared_score(m, text, target),
            gold=score_cached(m, pair.source, pair.target) if pair else None,
            card=m.translator.checkpoint.card,
        )
        for m, t in zip(members, translations, strict=True)
    ]
    return runs, target


def family_gold(members: list[PickedModel], text: str) -> tuple[str | None, SyntheticPair | None]:
    """The synthetic task all members were trained on (from their recipes) and the gold
    translation and alignment of ``text`` in it, where known."""
    tasks = {synthetic_task(m.translator.checkpoint.recipe) for m in members}
    task = tasks.pop() if len(tasks) == 1 else None
    return task, gold_pair(task, text)


def unit_panels(runs: list[MemberRun], unit: str, family: Family) -> list[Panel]:
    """Each model's own translation as a panel in ``unit``."""
    panels = []
    for run in runs:
        matrix = alignment_matrix(run.translation, unit, links=False)
        title = family.label_of(run.model)  # the grid's title names the family; long names collide
        panels.append(Panel(title, matrix.source, matrix.target, matrix.attention))
    return panels


def head_panels(run: MemberRun, unit: str) -> list[Panel]:
    """Each head of a multi-head model as a panel in ``unit`` (none for other scorers)."""
    t = run.translation
    if t.head_attention is None:
        return []
    matrix = alignment_matrix(t, unit, links=False)
    heads = len(t.head_attention)
    panels = []
    for h, weights in enumerate(t.head_attention):
        if unit == "words":
            weights = word_attention(weights, t.source_word_of_piece, t.target_word_of_piece)
        title = f"head {h + 1} of {heads}"  # the grid's title names the model
        panels.append(Panel(title, matrix.source, matrix.target, weights))
    return panels


def show_heatmaps(runs: list[MemberRun], unit: str, family: Family) -> go.Figure:
    """The grid of every model's attention (and one grid of heads per multi-head model);
    returns the models' grid for the HTML export."""
    st.subheader("Attention of each model")
    panels = unit_panels(runs, unit, family)
    grid = heatmap_grid(panels, family.grid_title(unit))
    caption = COMPARE_TWIN_GRID if family.twin else COMPARE_GRID
    show_figure(grid, key="compare-grid", caption=caption, tokens=tokens_of(panels))
    for run in runs:
        heads = head_panels(run, unit)
        if not heads:
            continue
        st.caption(
            f"Each of the {len(heads)} heads of {run.model} (its heatmap above is their mean):"
        )
        label = family.label_of(run.model)
        title = f"The {len(heads)} heads of {run.model} ({label}), by {unit[:-1]}"
        show_figure(heatmap_grid(heads, title), key=f"compare-heads-{run.model}")
    return grid


def with_aligner_aer(
    members: list[PickedModel], runs: list[MemberRun]
) -> tuple[list[MemberRun], list[str]]:
    """The runs with the AER of each model's hard word links (its own ``pieces`` links on the
    shared target) against the word aligner's links of that pair (eflomal with the model's
    priors: one alignment for models that share them); and, once each, why some have none."""
    measured, reasons = [], []
    for member, run in zip(members, runs, strict=True):
        if run.shared is None:  # the shared target could not be scored: no links either
            measured.append(run)
            continue
        overlay = aligner_overlay(member.name, run.shared, sorted_links(own_links(run.shared)))
        if overlay.aer is None and overlay.reason not in reasons:
            reasons.append(overlay.reason)
        aer = np.nan if overlay.aer is None else overlay.aer
        measured.append(replace(run, aligner_aer=aer))
    return measured, reasons


def introduce_twins(family: Family) -> None:
    """What a twin pair's comparison shows."""
    unguided, guided = family.members
    st.caption(
        f"The attention of the same model before and after guided training: {unguided} as "
        f"trained, and {guided}, trained with a loss that pulls its attention towards the "
        f"links of the {STATISTICAL_METHOD} word aligner. Attention is not alignment (Koehn & "
        "Knowles 2017): what a model attends to need not be the source word a translation "
        "comes from, unless the model is trained to make it so."
    )


def explain_twins(reasons: list[str]) -> None:
    """How a twin pair's word-aligner AER is measured, and why some models have none."""
    st.caption(
        f"AER against {STATISTICAL_METHOD} (0 = the same links): each model's hard word links "
        "(pieces: each target piece to its most attended source word) on the shared target, "
        f"against {STATISTICAL_METHOD}'s links of the same pair (with the aligner priors "
        "saved with the model; one alignment for both where they share their priors). The "
        "cards' gold-set AER: the same pieces links, and agree "
        "(links both the model and its reverse model find) where the card has it."
    )
    if reasons:
        why = markdown_literal("; ".join(reasons))  # errors name paths: shown as written
        st.caption(f"No AER against {STATISTICAL_METHOD}: {why}.")


def tokens_of(panels: list[Panel]) -> list[str]:
    return [t for p in panels for t in (*p.source_tokens, *p.target_tokens)]


def explain(
    runs: list[MemberRun], target: str, task: str | None, pair: SyntheticPair | None
) -> None:
    st.caption(
        "Mean entropy: each output step's attention entropy, averaged (nats; 0 = one source "
        "piece only). Mean JSD: Jensen-Shannon divergence of the word attention to each other "
        "member (bits; 0 = the same, 1 = nothing in common), every model force-decoding the "
        "same target, the first model's translation:"
    )
    st.text(f"{runs[0].model}: {target}")  # what the model wrote, never read as Markdown
    if pair is not None:
        st.caption(
            f"Gold alignment known ({task} task). AER (0 = perfect): the links each model's "
            "attention gives (method: pieces) on its forced decode of the gold translation:"
        )
        st.text(pair.target)
    st.caption("Test BLEU (greedy) and gold-set AER come from each model's card.")


def render(model: PickedModel) -> None:
    """The Compare scorers view; the sidebar's model picks the family shown first."""
    names = bundled_models()
    found = families(models_dir(), names)
    choices = [f for f in found if len(f.members) >= 2] + guided_twins(models_dir(), names)
    if not choices:
        st.info(
            "No family of models that differ only in their scorer has two members here, and "
            "no model has a guided twin. A family is checkpoint folders named "
            "<family>-<scorer> (scorer: dot, general, additive, scaled_dot, multihead) whose "
            "configs agree apart from the scorer. A guided twin of a folder X is a folder "
            "X-guided with the same config, trained with a [guidance] weight above 0."
        )
        return
    init_from_url(UNIT, "words", one_of(UNITS))
    with controls():
        left, middle, right = st.columns(3)
        family = family_picker(choices, model.name, left)
        beam = beam_input(middle)
        unit = right.radio("Show", UNITS, horizontal=True, key=UNIT)
        try:
            members, broken = [picked(name) for name in family.members], ""
        except CheckpointError as exc:
            members, broken = [], str(exc)
        text = sentence_input(members[0].translator) if members else ""
    to_url(**{UNIT: unit})
    for name, why in family.left_out.items():
        st.text(f"{name} is not compared: {why}.")  # folder names and errors, shown literally
    if not members:
        fail(f"A model of this family cannot be used: {broken}")
        return
    try:
        task, pair = family_gold(members, text)
        with st.spinner(f"Translating with {len(members)} models…"):
            runs, target = member_runs(members, text, beam, pair)
    except InputError as exc:
        warn(str(exc))
        return
    reasons: list[str] = []
    if family.twin:
        with st.spinner(f"Aligning with {STATISTICAL_METHOD}…"):
            runs, reasons = with_aligner_aer(members, runs)
    if any(r.translation.truncated for r in runs):
        st.warning("The sentence is longer than these models read; only its beginning was used.")
    warn_if_unfit(members[0].translator, text)
    if family.twin:
        introduce_twins(family)
    st.subheader("Side by side in numbers")
    jsd = divergence_matrix([r.shared for r in runs])
    table = compare_table(runs, pair, jsd, family)
    # A static table wraps its text: every column stays on screen (a data grid would scroll
    # the scores off to the right behind the translations).
    st.table(table.style.format(precision=3, na_rep="–").hide(axis="index"))
    explain(runs, target, task, pair)
    if family.twin:
        explain_twins(reasons)
    grid = show_heatmaps(runs, unit, family)
    names = family.members
    pairwise = pd.DataFrame(jsd, index=names, columns=names)
    st.caption("Mean JSD (bits) between each pair of models on the shared target:")
    st.dataframe(pairwise, column_config=dict.fromkeys(names, NUMBER), key="compare-jsd")
    numbers = {
        "family": family.name,
        "source": text,
        "shared_target": target,
        "gold": pair,
        "table": table.to_dict(orient="records"),
        "jsd_bits": {"models": names, "matrix": jsd},
        "attention": {
            r.model: {
                "source_pieces": r.translation.source_pieces,
                "target_pieces": r.translation.target_pieces,
                "attention": r.translation.attention,
                "head_attention": r.translation.head_attention,
            }
            for r in runs
        },
        "drawn": {
            "unit": unit,
            "panels": [
                {
                    "title": p.title,
                    "source": p.source_tokens,
                    "target": p.target_tokens,
                    "attention": p.attention,
                }
                for p in unit_panels(runs, unit, family)
            ],
        },
    }
    download_row(
        file_stem(COMPARE, family.name, unit),
        key="compare",
        figure=grid,
        numbers=lambda: numbers,
        table=table,
    )
