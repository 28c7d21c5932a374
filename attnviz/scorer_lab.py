"""Models that differ only in their attention scorer, or only in guided training, compared on
one sentence.

- :func:`families`: bundled folders named ``<family>-<scorer>`` whose configs agree on every
  setting but the scorer's own;
- :func:`guided_twins`: a folder ``X`` and a folder ``X-guided`` with equal configs, the second
  trained with a guidance loss that pulls its attention towards a word aligner's links
  (:func:`guidance_weight` reads that from its recipe);
- :func:`synthetic_task`: the synthetic task (with gold alignments, see
  :func:`attnviz.synthetic.gold_pair`) a checkpoint's recipe trains on;
- :func:`compare_table`: translation, attention entropy, agreement between the members, AER
  against the gold alignment, and the test scores each model's card reports.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .align import (
    DEFAULT_METHOD,
    DEFAULT_SYMMETRIC_METHOD,
    STATISTICAL_METHOD,
    GoldAlignment,
    alignment_scores,
    attention_links,
)
from .analysis import agreement, mean_attention_entropy
from .attention import SCORERS
from .checkpoint import MAX_RECIPE_BYTES, RECIPE_FILE, read_config
from .checkpoint.files import read_capped
from .errors import CheckpointError, InputError
from .model import ModelConfig
from .synthetic import TASKS, SyntheticPair
from .translator import Decoded, Score, Translation

__all__ = [
    "ALIGNER_AER",
    "GUIDED_SUFFIX",
    "Family",
    "MemberRun",
    "card_aer",
    "card_bleu",
    "compare_table",
    "default_family",
    "divergence_matrix",
    "families",
    "gold_pair_aer",
    "guidance_weight",
    "guided_twins",
    "mean_to_others",
    "scorer_of",
    "split_name",
    "synthetic_task",
]

# Settings only some scorers read (heads: multihead; attn_dim: additive): part of the scorer.
SCORER_SETTINGS = ("scorer", "heads", "attn_dim")
# The sections of config.json, besides the model settings, that twins have equal.
TWIN_SECTIONS = ("tokenizer", "decoding")
PREFERRED_FAMILY = "en-fr-lab"
GUIDED_SUFFIX = "-guided"
# A twin pair's name (in the family picker and the URL) is its first model's and this: "/" is
# in no folder name, so no scorer family (the part of a folder's name before its last "-")
# can have the name of a twin pair.
TWIN_MARK = "/guided"
ALIGNER_AER = f"AER against {STATISTICAL_METHOD} (this sentence)"
AGREE = DEFAULT_SYMMETRIC_METHOD  # the card's links agreed with its reverse model
UNGUIDED_LABEL, GUIDED_LABEL = "attention alone", "guided by the word aligner"


# -- families -------------------------------------------------------------------------------


@dataclass
class Family:
    """Models compared on one sentence: a scorer family, models named ``<name>-<scorer>``
    whose configs are equal apart from the scorer; or (``twin``) a guided twin pair, a model
    ``X`` and ``X-guided`` with equal configs, the second trained with guidance."""

    name: str
    members: list[str]  # folder names, in the order of attnviz.attention.SCORERS; X first
    left_out: dict[str, str] = field(default_factory=dict)  # named like a member: why not one
    twin: bool = False

    @property
    def scorers(self) -> list[str]:
        return [scorer_of(m) for m in self.members]

    @property
    def label(self) -> str:
        """What the family picker shows."""
        if self.twin:
            return f"{self.members[0]}: {UNGUIDED_LABEL} vs {GUIDED_LABEL}"
        return f"{self.name}-* ({len(self.members)} models)"

    @property
    def column(self) -> str:
        """The compare table's column that tells the members apart."""
        return "training" if self.twin else "scorer"

    def label_of(self, member: str) -> str:
        """What tells ``member`` apart from the others: its scorer, or its training."""
        if not self.twin:
            return scorer_of(member)
        return GUIDED_LABEL if member == self.members[-1] else UNGUIDED_LABEL

    def grid_title(self, unit: str) -> str:
        """The title of the grid of the members' heatmaps, by ``unit`` (words or pieces)."""
        if self.twin:
            guidance = "without and with guidance by the word aligner"
            return f"Attention of {self.members[0]} {guidance}, by {unit[:-1]}"
        return f"Attention of the {self.name} models, by {unit[:-1]}"


def split_name(name: str) -> tuple[str, str] | None:
    """(family, scorer) of a folder named ``<family>-<scorer>``, else None."""
    family, dash, scorer = name.rpartition("-")
    return (family, scorer) if dash and family and scorer in SCORERS else None


def scorer_of(name: str) -> str:
    return name.rpartition("-")[2]


def shared_settings(config: ModelConfig, raw: dict[str, Any]) -> dict[str, Any]:
    """The settings every member of a family must share: the architecture without the
    scorer's own settings, and the tokenizer file names."""
    settings = {k: v for k, v in config.to_dict().items() if k not in SCORER_SETTINGS}
    return {**settings, "tokenizer": raw["tokenizer"]}


def _family(folder: Path, name: str, names: list[str]) -> Family:
    """The largest group of ``names`` with equal shared settings (ties: the group of the
    earliest name); the others are left out, with the reason."""
    left_out: dict[str, str] = {}
    settings: dict[str, dict[str, Any]] = {}
    for model in names:
        try:
            config, raw = read_config(folder / model)
        except CheckpointError as exc:
            left_out[model] = f"its config cannot be read ({exc})"
            continue
        if config.scorer != scorer_of(model):
            left_out[model] = f"its config says scorer {config.scorer!r}"
            continue
        settings[model] = shared_settings(config, raw)
    groups: list[list[str]] = []
    for model, values in settings.items():
        group = next((g for g in groups if settings[g[0]] == values), None)
        if group is None:
            groups.append([model])
        else:
            group.append(model)
    members = max(groups, key=len, default=[])
    for model in settings.keys() - set(members):
        differing = sorted(k for k, v in settings[model].items() if settings[members[0]][k] != v)
        left_out[model] = f"its settings differ from the family's: {', '.join(differing)}"
    members.sort(key=lambda m: SCORERS.index(scorer_of(m)))
    return Family(name, members, dict(sorted(left_out.items())))


def families(folder: Path, names: Sequence[str]) -> list[Family]:
    """Families among the checkpoint folders ``names`` inside ``folder``, sorted by name
    (a family may have a single member)."""
    by_family: dict[str, list[str]] = {}
    for model in sorted(names):
        parsed = split_name(model)
        if parsed is not None:
            by_family.setdefault(parsed[0], []).append(model)
    return [_family(folder, name, models) for name, models in sorted(by_family.items())]


def guidance_weight(recipe: str | None) -> float:
    """The ``[guidance] weight`` of a recipe's text: 0 when it has none, or the text is not a
    recipe (:class:`attnviz.recipe.GuidanceSpec` checks a recipe that is trained on)."""
    try:
        guidance = tomllib.loads(recipe or "").get("guidance")
    except tomllib.TOMLDecodeError:
        return 0.0
    weight = _number(guidance.get("weight")) if isinstance(guidance, dict) else 0.0
    return weight if math.isfinite(weight) else 0.0


def _folder_recipe(folder: Path) -> str | None:
    """A checkpoint folder's recipe text; None when it has none or it cannot be read."""
    try:
        return read_capped(folder / RECIPE_FILE, "recipe", MAX_RECIPE_BYTES).decode("utf-8")
    except (CheckpointError, UnicodeDecodeError):
        return None


def _twin(folder: Path, model: str) -> Family | None:
    """``model`` and ``model-guided`` as a twin pair, if their configs are equal (scorer
    included) and the second's recipe trains with a guidance weight above 0."""
    guided = model + GUIDED_SUFFIX
    if not guidance_weight(_folder_recipe(folder / guided)) > 0:
        return None
    try:
        config, raw = read_config(folder / model)
        guided_config, guided_raw = read_config(folder / guided)
    except CheckpointError:
        return None
    sections = all(raw.get(k) == guided_raw.get(k) for k in TWIN_SECTIONS)
    same = config == guided_config and sections
    return Family(model + TWIN_MARK, [model, guided], twin=True) if same else None


def guided_twins(folder: Path, names: Sequence[str]) -> list[Family]:
    """The twin pairs among the checkpoint folders ``names`` inside ``folder``, sorted by
    name: ``X`` and ``X-guided`` whose configs are equal and whose second was trained with
    guidance (its recipe's ``[guidance] weight`` above 0)."""
    present = set(names)
    pairs = (_twin(folder, m) for m in sorted(present) if m + GUIDED_SUFFIX in present)
    return [pair for pair in pairs if pair is not None]


def default_family(choices: Sequence[Family], model: str) -> str:
    """The current model's scorer family if it has two members or more; else, for a guided
    model, its twin pair; else the preferred lab family if present (what the view is named
    for); else the current model's twin pair; else the first. ``choices``: families with two
    members or more, and twin pairs."""
    names = [f.name for f in choices]
    parsed = split_name(model)
    if parsed is not None and parsed[0] in names:
        family = choices[names.index(parsed[0])]
        if model in family.members:
            return family.name
    twin = next((f for f in choices if f.twin and model in f.members), None)
    if twin is not None and model == twin.members[-1]:
        return twin.name
    if PREFERRED_FAMILY in names:
        return PREFERRED_FAMILY
    return twin.name if twin is not None else names[0]


# -- gold alignments of synthetic tasks -----------------------------------------------------


def synthetic_task(recipe: str | None) -> str | None:
    """The synthetic task a recipe's text trains on (``[data] synthetic``), if it has a
    known gold alignment."""
    try:
        data = tomllib.loads(recipe or "").get("data")
    except tomllib.TOMLDecodeError:
        return None
    task = data.get("synthetic") if isinstance(data, dict) else None
    return task if task in TASKS else None


def gold_pair_aer(result: Decoded, pair: SyntheticPair) -> float:
    """AER of the links read (by :data:`attnviz.align.DEFAULT_METHOD`) off ``result``, a
    forced decode of ``pair.target`` given ``pair.source``, against the pair's gold links
    (all sure)."""
    links = attention_links(result, pair.source, pair.target, DEFAULT_METHOD)
    return alignment_scores([links], [GoldAlignment.of(pair.alignment)]).aer


# -- the comparison -------------------------------------------------------------------------


@dataclass
class MemberRun:
    """What one family member made of the sentence.

    shared:      forced decode of the target all members share (None where it could not be
                 scored)
    gold:        forced decode of the gold translation, where the task gives one
    card:        the checkpoint's card.json
    aligner_aer: AER of the hard word links of ``shared`` against a word aligner's links of
                 the same pair (guided twins; nan where there are none)
    """

    model: str
    translation: Translation
    shared: Score | None
    gold: Score | None
    card: dict[str, Any]
    aligner_aer: float = float("nan")


def divergence_matrix(scores: Sequence[Score | None]) -> np.ndarray:
    """(n, n) mean Jensen-Shannon divergence (bits) between the word attention of each pair of
    forced decodes of one sentence pair; nan where a pair cannot be compared."""
    n = len(scores)
    matrix = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            first, second = scores[i], scores[j]
            try:
                value = float(agreement(first, second).mean()) if first and second else np.nan
            except InputError:  # different word counts (e.g. one source was cut)
                value = np.nan
            matrix[i, j] = matrix[j, i] = value
    return matrix


def mean_to_others(matrix: np.ndarray) -> np.ndarray:
    """(n,) mean of each row of an (n, n) divergence matrix without its diagonal, ignoring
    nan; nan where nothing is left."""
    others = ~np.eye(len(matrix), dtype=bool) & ~np.isnan(matrix)
    counts = others.sum(axis=1)
    sums = np.where(others, matrix, 0.0).sum(axis=1)
    return np.divide(sums, counts, out=np.full(len(matrix), np.nan), where=counts > 0)


def _number(value: Any) -> float:
    """A card's or recipe's number, nan when it is missing or not a number."""
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if is_number else float("nan")


def _section(data: Any, key: str) -> dict[str, Any]:
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, dict) else {}


def card_bleu(card: dict[str, Any]) -> dict[str, float]:
    """Test BLEU (greedy) per test set of a card: column name -> value."""
    return {
        f"test BLEU {test_set} (greedy)": _number(_section(metrics, "greedy").get("bleu"))
        for test_set, metrics in _section(card, "metrics").items()
    }


def card_aer(card: dict[str, Any], method: str = DEFAULT_METHOD) -> float:
    """AER on the card's gold alignment set by ``method``; nan when it has none."""
    methods = _section(_section(card, "alignment"), "methods")
    return _number(_section(methods, method).get("aer"))


def compare_table(
    runs: Sequence[MemberRun],
    pair: SyntheticPair | None,
    divergence: np.ndarray,
    family: Family,
) -> pd.DataFrame:
    """One row per member of ``family``: model, scorer (twins: training), translation, mean
    entropy, mean JSD to the other members (on the shared target; ``divergence`` is the
    runs' :func:`divergence_matrix`), AER on this sentence (when ``pair`` gives the gold;
    twins also against the word aligner) and the card's test BLEU and gold-set AER (twins
    also by ``agree``). Columns that would be empty are left out."""
    jsd = mean_to_others(divergence)
    rows = []
    for run, divergence in zip(runs, jsd, strict=True):
        row = {
            "model": run.model,
            family.column: family.label_of(run.model),
            "translation": run.translation.text,
            "mean entropy (nats)": mean_attention_entropy([run.translation.attention]),
            "mean JSD to the others (bits)": divergence,
        }
        if pair is not None:
            row["AER (this sentence)"] = gold_pair_aer(run.gold, pair) if run.gold else np.nan
        if family.twin:
            row[ALIGNER_AER] = run.aligner_aer
        row.update(card_bleu(run.card))
        row["AER on the card's gold set"] = card_aer(run.card)
        if family.twin:
            row[f"AER on the card's gold set ({AGREE})"] = card_aer(run.card, AGREE)
        rows.append(row)
    table = pd.DataFrame(rows)
    optional = [c for c in table.columns if c.startswith(("AER", "test BLEU"))]
    return table.drop(columns=[c for c in optional if table[c].isna().all()])
