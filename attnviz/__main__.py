"""``python -m attnviz`` is the ``attnviz`` command (torchrun launches it this way)."""

import sys

from .cli import main

sys.exit(main())
