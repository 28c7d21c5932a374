"""Attention as alignment.

- :mod:`attnviz.align.links`: word-level aggregation of soft attention and the hard links read
  off it (argmax, shift, threshold, pieces; intersect, grow-diag and agree with a reverse
  model);
- :mod:`attnviz.align.gold`: gold alignments, their Pharaoh/TALP/NAACL files, and AER;
- :mod:`attnviz.align.statistical`: the statistical word aligner (eflomal, the optional extra
  ``attnviz[align]``) that attention's links are compared with, and its priors.

All are imported from here: ``from attnviz.align import align, read_gold``.
"""

from . import gold, links, statistical
from .gold import *  # noqa: F403
from .links import *  # noqa: F403
from .statistical import *  # noqa: F403

__all__ = [*gold.__all__, *links.__all__, *statistical.__all__]
