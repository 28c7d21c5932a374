"""Models that differ only in their attention scorer, compared on one sentence.

- :func:`families`: bundled folders named ``<family>-<scorer>`` whose configs agree on every
  setting but the scorer's own;
- :func:`synthetic_task`: the synthetic task (with gold alignments, see
  :func:`attnviz.synthetic.gold_pair`) a checkpoint's recipe trains on;
- :func:`compare_table`: translation, attention entropy, agreement between the members, AER
  against the gold alignment, and the test scores each model's card reports.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .align import DEFAULT_METHOD, GoldAlignment, alignment_scores, attention_links
from .analysis import agreement, mean_attention_entropy
from .attention import SCORERS
from .checkpoint import read_config
from .errors import CheckpointError, InputError
from .model import ModelConfig
from .synthetic import TASKS, SyntheticPair
from .translator import Decoded, Score, Translation

# Settings only some scorers read (heads: multihead; attn_dim: additive): part of the scorer.
SCORER_SETTINGS = ("scorer", "heads", "attn_dim")
PREFERRED_FAMILY = "en-fr-lab"


# -- families -------------------------------------------------------------------------------


@dataclass
class Family:
    """Models named ``<name>-<scorer>`` whose configs are equal apart from the scorer."""

    name: str
    members: list[str]  # folder names, in the order of attnviz.attention.SCORERS
    left_out: dict[str, str] = field(default_factory=dict)  # named like a member: why not one

    @property
    def scorers(self) -> list[str]:
        return [scorer_of(m) for m in self.members]


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


def default_family(choices: Sequence[Family], model: str) -> str:
    """The current model's family if it has two members or more, else the preferred lab
    family if present, else the first. ``choices``: families with two members or more."""
    names = [f.name for f in choices]
    parsed = split_name(model)
    if parsed is not None and parsed[0] in names:
        family = choices[names.index(parsed[0])]
        if model in family.members:
            return family.name
    return PREFERRED_FAMILY if PREFERRED_FAMILY in names else names[0]


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

    shared: forced decode of the target all members share (None where it could not be scored)
    gold:   forced decode of the gold translation, where the task gives one
    card:   the checkpoint's card.json
    """

    model: str
    translation: Translation
    shared: Score | None
    gold: Score | None
    card: dict[str, Any]


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


def _card_number(value: Any) -> float:
    """A card's number, nan when it is missing or not a number."""
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if is_number else float("nan")


def _section(data: Any, key: str) -> dict[str, Any]:
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, dict) else {}


def card_bleu(card: dict[str, Any]) -> dict[str, float]:
    """Test BLEU (greedy) per test set of a card: column name -> value."""
    return {
        f"test BLEU {test_set} (greedy)": _card_number(_section(metrics, "greedy").get("bleu"))
        for test_set, metrics in _section(card, "metrics").items()
    }


def card_aer(card: dict[str, Any]) -> float:
    """AER on the card's gold alignment set by the default method; nan when it has none."""
    methods = _section(_section(card, "alignment"), "methods")
    return _card_number(_section(methods, DEFAULT_METHOD).get("aer"))


def compare_table(
    runs: Sequence[MemberRun], pair: SyntheticPair | None, divergence: np.ndarray
) -> pd.DataFrame:
    """One row per member: model, scorer, translation, mean entropy, mean JSD to the other
    members (on the shared target; ``divergence`` is the runs' :func:`divergence_matrix`),
    AER on this sentence (when ``pair`` gives the gold) and the card's test BLEU and gold-set
    AER. Columns that would be empty are left out."""
    jsd = mean_to_others(divergence)
    rows = []
    for run, divergence in zip(runs, jsd, strict=True):
        row = {
            "model": run.model,
            "scorer": scorer_of(run.model),
            "translation": run.translation.text,
            "mean entropy (nats)": mean_attention_entropy([run.translation.attention]),
            "mean JSD to the others (bits)": divergence,
        }
        if pair is not None:
            row["AER (this sentence)"] = gold_pair_aer(run.gold, pair) if run.gold else np.nan
        row.update(card_bleu(run.card))
        row["AER on the card's gold set"] = card_aer(run.card)
        rows.append(row)
    table = pd.DataFrame(rows)
    optional = [c for c in table.columns if c.startswith(("AER", "test BLEU"))]
    return table.drop(columns=[c for c in optional if table[c].isna().all()])
