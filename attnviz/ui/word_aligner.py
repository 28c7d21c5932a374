"""The word aligner (eflomal, with the priors saved with a model) as the reference that the
views measure a model's attention links against, one sentence at a time."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import streamlit as st

from ..align import (
    PRIORS_FILE,
    AlignerPriors,
    GoldAlignment,
    Link,
    alignment_scores,
    model_priors,
    statistical_align,
)
from ..errors import AttnvizError
from ..locations import models_dir
from ..translator import Decoded

__all__ = ["AlignerOverlay", "aligner_overlay", "priors_owners", "saved_priors", "sentence_links"]


@dataclass(frozen=True)
class AlignerOverlay:
    """The word aligner's links for one sentence pair (word indices, source first) and the
    AER of the attention's word links against them; or why there are none (``reason``)."""

    links: list[Link]
    aer: float | None
    reason: str = ""


@st.cache_resource(show_spinner=False)
def saved_priors(name: str) -> AlignerPriors | str:
    """The aligner priors saved with the model, read once per process; else why not."""
    try:
        return model_priors(models_dir() / name)
    except AttnvizError as exc:
        return str(exc)


@st.cache_resource(show_spinner=False)
def priors_digest(name: str) -> str | None:
    """The SHA-256 of the aligner priors file saved with the model; None when unreadable."""
    try:
        return hashlib.sha256((models_dir() / name / PRIORS_FILE).read_bytes()).hexdigest()
    except OSError:
        return None


def priors_owners(names: Sequence[str]) -> list[str]:
    """For each model of ``names``, the first of ``names`` whose aligner priors are the same
    file: models that share their priors are measured against one alignment (eflomal's
    sampler is not seeded: two runs may differ where the models do not)."""
    digests = [priors_digest(name) for name in names]
    return [
        names[digests.index(digest)] if digest is not None else name
        for name, digest in zip(names, digests, strict=True)
    ]


@st.cache_data(show_spinner=False, max_entries=256)
def sentence_links(name: str, source: str, target: str) -> list[Link] | str:
    """eflomal's links of one pair with the model's priors, else why there are none. Cached:
    eflomal's sampler is not seeded, and a rerun (a toggle, a step) must not move the dots."""
    priors = saved_priors(name)
    if isinstance(priors, str):
        return priors
    try:
        (links,) = statistical_align([(source, target)], priors).links
    except AttnvizError as exc:
        return str(exc)
    return sorted(links)


def aligner_overlay(name: str, result: Decoded, attention: list[Link]) -> AlignerOverlay:
    """eflomal's links of the words of ``result`` (a translation or a forced decode), with
    the priors of the model ``name``, and the AER of ``attention`` (hard word links of
    ``result``) against them."""
    source = " ".join(result.source_text_words)
    target = " ".join(result.target_text_words)
    links = sentence_links(name, source, target)
    if isinstance(links, str):
        return AlignerOverlay([], None, links)
    aer = alignment_scores([attention], [GoldAlignment.of(links)]).aer
    return AlignerOverlay(links, aer)
