"""The word aligner (eflomal, with the priors saved with a model) as the reference that the
views measure a model's attention links against, one sentence at a time."""

from __future__ import annotations

import hashlib
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

__all__ = ["AlignerOverlay", "aligner_overlay", "priors_key", "saved_priors", "sentence_links"]


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


@st.cache_data(show_spinner=False, max_entries=256)
def sentence_links(priors: str, _name: str, source: str, target: str) -> list[Link] | str:
    """eflomal's links of one pair with the priors of the model ``_name``, else why there are
    none. Cached by ``priors`` (the priors file's digest, see :func:`priors_key`), not by
    model: eflomal's sampler is not seeded, and neither a rerun (a toggle, a step) nor another
    model with the same priors (a guided twin) may move the dots."""
    saved = saved_priors(_name)
    if isinstance(saved, str):
        return saved
    try:
        (links,) = statistical_align([(source, target)], saved).links
    except AttnvizError as exc:
        return str(exc)
    return sorted(links)


def priors_key(name: str) -> str:
    """What the aligner's links of a model are cached by: its priors file's digest, or the
    model's own name when the file cannot be read (the links then say why there are none)."""
    digest = priors_digest(name)
    return f"sha256:{digest}" if digest is not None else f"model:{name}"


def aligner_overlay(name: str, result: Decoded, attention: list[Link]) -> AlignerOverlay:
    """eflomal's links of the words of ``result`` (a translation or a forced decode), with
    the priors of the model ``name``, and the AER of ``attention`` (hard word links of
    ``result``) against them."""
    source = " ".join(result.source_text_words)
    target = " ".join(result.target_text_words)
    links = sentence_links(priors_key(name), name, source, target)
    if isinstance(links, str):
        return AlignerOverlay([], None, links)
    aer = alignment_scores([attention], [GoldAlignment.of(links)]).aer
    return AlignerOverlay(links, aer)
