"""The word aligner's links of the training pairs, for guided alignment training.

A recipe whose ``[guidance]`` weight is above 0 trains the attention towards a word aligner's
links. Before training, :func:`ensure_training_links` aligns the recipe's training pairs once
with eflomal (:mod:`attnviz.align.statistical`) and writes into the run's output folder:

- ``word_links.pharaoh``: one Pharaoh line per training pair, in the order
  :func:`attnviz.training.corpora.split_corpora` yields them (before the length filter),
  0-based indices of the whitespace words of the normalised text, source first;
- ``aligner_priors.txt.gz``: the aligner's priors from those links; the output folder is the
  checkpoint folder, so a trained model carries them and ``attnviz align --method eflomal``
  aligns single sentences with them.

A resumed run finds the links file and does not align again.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..align.gold import format_pharaoh
from ..align.statistical import PRIORS_FILE, statistical_align, write_priors
from ..checkpoint import write_bytes_atomic
from ..data import Pair
from ..recipe import Recipe
from .guidance import LINKS_FILE

__all__ = ["ensure_training_links"]


def ensure_training_links(recipe: Recipe, pairs: Sequence[Pair]) -> Path:
    """The path of ``word_links.pharaoh`` in the recipe's output folder, aligning ``pairs``
    (the recipe's training pairs) first unless the file exists.

    The priors are written before the links, so a folder with the links has both. Raises
    InputError when the eflomal extra is not installed.
    """
    path = recipe.output / LINKS_FILE
    if path.is_file():
        return path
    aligned = statistical_align([(p.source, p.target) for p in pairs])
    write_priors(recipe.output / PRIORS_FILE, aligned.priors)
    text = "".join(format_pharaoh(links) + "\n" for links in aligned.links)
    write_bytes_atomic(path, text.encode("utf-8"))
    return path
