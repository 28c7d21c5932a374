"""Attention as alignment.

- :mod:`attnviz.align.links`: word-level aggregation of soft attention and the hard links read
  off it (argmax, shift, threshold, pieces; intersect, grow-diag and agree with a reverse
  model);
- :mod:`attnviz.align.gold`: gold alignments, their Pharaoh/TALP/NAACL files, and AER.

Both are imported from here: ``from attnviz.align import align, read_gold``.
"""

from . import gold, links
from .gold import *  # noqa: F403
from .links import *  # noqa: F403

__all__ = [*gold.__all__, *links.__all__]
