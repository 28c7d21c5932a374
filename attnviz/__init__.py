"""attnviz: see inside an attention-based RNN translator."""

from .errors import AttnvizError, CheckpointError, InputError
from .translator import Score, Translation, Translator, load

__version__ = "0.1.0"

__all__ = [
    "AttnvizError",
    "CheckpointError",
    "InputError",
    "Score",
    "Translation",
    "Translator",
    "load",
]
