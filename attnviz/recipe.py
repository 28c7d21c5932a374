"""Training recipes: a TOML file that says everything needed to reproduce a checkpoint.

```toml
name = "en-fr-additive"
output = "runs/en-fr-additive"           # optional: the run's folder (relative to the recipe's
seed = 1                                 # project root, the folder holding pyproject.toml);
                                         # runs/<name> when absent, and `--output` overrides it

[data]
tatoeba = "eng-fra"
multi30k = ["en", "fr"]

[tokenizer]
vocab_size = 8000

[model]                                  # any attnviz.model.ModelConfig field but vocab_size
scorer = "additive"

[training]
max_minutes = 90

[guidance]                               # optional: guided alignment training, off by default
weight = 0.1
```
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError
from .model import ModelConfig

__all__ = [
    "AlignmentSpec",
    "DataSpec",
    "GuidanceSpec",
    "Recipe",
    "TokenizerSpec",
    "TrainingSpec",
    "project_root",
    "read_recipe",
]


@dataclass
class DataSpec:
    """Which corpora, and how they are split and filtered.

    Tatoeba is split into train/dev/test by English sentence; Multi30k ``train`` is used for
    training only, its ``val`` joins the dev set and ``test_2016_flickr`` stays for the card.
    ``synthetic = "reversal"`` or ``"dates"`` replaces the corpora with generated pairs.
    """

    data_dir: str = "../shared/data"
    tatoeba: str | None = None
    multi30k: list[str] | None = None
    synthetic: str | None = None
    synthetic_pairs: int = 20000
    dev_fraction: float = 0.02
    test_fraction: float = 0.02
    max_pieces: int = 60
    max_ratio: float = 3.0
    bleu_sentences: int = 500  # dev sentences decoded (greedy) at each validation
    # Translate into English instead (e.g. French->English, the reverse model that
    # symmetric alignment needs); the split stays by English sentence, so held-out
    # sentences are the same as the English->X recipe's.
    reverse: bool = False


@dataclass
class TokenizerSpec:
    """A joint SentencePiece model trained on the training pairs, or an existing one reused.

    ``model`` (a path relative to the project root) makes several recipes share one
    tokenizer, e.g. models that must differ in nothing but their attention scorer.
    """

    vocab_size: int = 8000
    model_type: str = "unigram"
    model: str | None = None


@dataclass
class TrainingSpec:
    """How the model is trained. ``init_from`` (a checkpoint folder relative to the project
    root) starts from that checkpoint's weights instead of a random initialisation, e.g. to
    fine-tune a trained model with guidance; the recipe's model and tokenizer must be the
    checkpoint's. The optimizer, learning-rate warm-up and step count start afresh."""

    max_tokens: int = 2000  # target tokens (padding included) per batch, all processes
    lr: float = 1e-3
    warmup_steps: int = 500
    lr_decay: float = 0.5  # factor applied when dev BLEU stops improving
    min_lr: float = 1e-5
    clip: float = 1.0
    label_smoothing: float = 0.1
    max_epochs: int = 30
    max_steps: int | None = None
    max_minutes: float | None = None
    validate_every: int = 1000
    patience: int = 6  # validations without a better dev BLEU before stopping
    snapshots: list[int] = field(default_factory=list)  # steps at which to keep weights
    threads: int | None = None
    init_from: str | None = None


@dataclass
class AlignmentSpec:
    """How the card scores attention as alignment on the gold sets.

    ``reverse_model`` (a checkpoint folder relative to the project root, translating the
    target language into English) adds the symmetric methods (intersect, grow-diag, agree);
    the card leaves them out, and says so, while that folder holds no checkpoint yet.
    ``adapt_epochs`` above 0 scores every method a second time with copies of the models
    trained that many epochs on the gold pairs themselves (translation loss only, as
    ``attnviz align --adapt-epochs``; see :mod:`attnviz.training.adapt`).
    """

    reverse_model: str | None = None
    adapt_epochs: int = 0

    def __post_init__(self) -> None:
        if not _is_whole(self.adapt_epochs) or self.adapt_epochs < 0:
            raise ValueError(f"adapt_epochs must be a whole number >= 0, got {self.adapt_epochs!r}")


@dataclass
class GuidanceSpec:
    """Guided alignment training (Chen et al. 2016; Marian's ``--guided-alignment ce``): a
    cross-entropy between the attention and a word aligner's links is added to the
    translation loss (see :mod:`attnviz.training.guidance`).

    ``weight``: the loss weight at step 0; 0 turns guidance off (training is then exactly what
    it is without this table). Marian's default weight is 0.1.
    ``decay``, ``decay_steps``: the weight at step s is ``weight * decay ** (s / decay_steps)``.
    Chen et al. lower the weight as training goes on, so that the links steer the attention
    early and the translation loss has the last word; an exponential in the step, rather
    than a per-epoch schedule, means the same thing on any corpus size and batch size and
    resumes exactly, as it depends on nothing but the step. ``decay = 1`` (the default, as in
    Marian) keeps the weight constant.
    ``heads``: which attention is guided in a multi-head model: ``"all"`` (the default) guides
    the mean over heads, which is the attention that attnviz shows and reads its links from;
    a head index guides that head alone and leaves the others free (Garg et al. 2019).
    Models with one head have only head 0.
    """

    weight: float = 0.0
    decay: float = 1.0
    decay_steps: int = 1000
    heads: str | int = "all"

    def __post_init__(self) -> None:
        if not _is_number(self.weight) or not math.isfinite(self.weight) or self.weight < 0:
            raise ValueError(f"weight must be a number >= 0, got {self.weight!r}")
        if not _is_number(self.decay) or not 0 < self.decay <= 1:
            raise ValueError(f"decay must be a number in (0, 1], got {self.decay!r}")
        if not _is_whole(self.decay_steps) or self.decay_steps < 1:
            raise ValueError(f"decay_steps must be a positive integer, got {self.decay_steps!r}")
        if self.heads != "all" and not (_is_whole(self.heads) and self.heads >= 0):
            raise ValueError(f'heads must be "all" or a head index (0, 1, ...), got {self.heads!r}')

    @property
    def enabled(self) -> bool:
        return self.weight > 0

    def weight_at(self, step: int) -> float:
        """The loss weight of training step ``step`` (0-based)."""
        return self.weight * self.decay ** (step / self.decay_steps)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass
class Recipe:
    """A parsed recipe; ``output`` is the run's folder: checkpoint, history, resumable state."""

    name: str
    output: Path
    seed: int = 1
    data: DataSpec = field(default_factory=DataSpec)
    tokenizer: TokenizerSpec = field(default_factory=TokenizerSpec)
    model: dict[str, Any] = field(default_factory=dict)
    training: TrainingSpec = field(default_factory=TrainingSpec)
    alignment: AlignmentSpec = field(default_factory=AlignmentSpec)
    guidance: GuidanceSpec = field(default_factory=GuidanceSpec)
    source_path: Path | None = None
    text: str = ""
    root: Path = Path(".")

    def model_config(self, vocab_size: int) -> ModelConfig:
        sizes = {"max_src_len": self.data.max_pieces + 1, "max_tgt_len": self.data.max_pieces + 1}
        return ModelConfig.from_dict({**sizes, **self.model, "vocab_size": vocab_size})


def _section(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise InputError(f"{where}: expected a table")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise InputError(f"{where}: unknown keys {', '.join(unknown)}; known: {', '.join(known)}")
    try:
        return cls(**data)
    except ValueError as exc:
        raise InputError(f"{where}: {exc}") from None


def project_root(start: Path) -> Path:
    """The nearest folder at or above ``start`` holding pyproject.toml (else ``start``)."""
    for folder in (start, *start.parents):
        if (folder / "pyproject.toml").is_file():
            return folder
    return start


def read_recipe(path: str | Path) -> Recipe:
    """Parse and check a recipe file; paths in it are relative to the project root."""
    path = Path(path).resolve()
    try:
        text = path.read_text(encoding="utf-8")
        raw = tomllib.loads(text)
    except OSError as exc:
        raise InputError(f"cannot read recipe {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"recipe {path} is not valid TOML: {exc}") from None
    top = {
        "name",
        "output",
        "seed",
        "data",
        "tokenizer",
        "model",
        "training",
        "alignment",
        "guidance",
    }
    unknown = sorted(set(raw) - top)
    if unknown or "name" not in raw:
        raise InputError(f"recipe {path}: needs `name`; unknown keys: {', '.join(unknown)}")
    root = project_root(path.parent)
    recipe = Recipe(
        name=str(raw["name"]),
        output=(root / raw.get("output", f"runs/{raw['name']}")).resolve(),
        seed=int(raw.get("seed", 1)),
        data=_section(DataSpec, raw.get("data", {}), f"{path} [data]"),
        tokenizer=_section(TokenizerSpec, raw.get("tokenizer", {}), f"{path} [tokenizer]"),
        model=dict(raw.get("model", {})),
        training=_section(TrainingSpec, raw.get("training", {}), f"{path} [training]"),
        alignment=_section(AlignmentSpec, raw.get("alignment", {}), f"{path} [alignment]"),
        guidance=_section(GuidanceSpec, raw.get("guidance", {}), f"{path} [guidance]"),
        source_path=path,
        text=text,
        root=root,
    )
    recipe.data.data_dir = str((root / recipe.data.data_dir).resolve())
    shared = recipe.tokenizer.model
    if shared is not None and not (root / shared).is_file():
        raise InputError(f"recipe {path} [tokenizer]: model {root / shared} does not exist")
    start = recipe.training.init_from
    if start is not None and not (root / start).is_dir():
        raise InputError(f"recipe {path} [training]: init_from {root / start} is not a folder")
    try:
        config = recipe.model_config(vocab_size=recipe.tokenizer.vocab_size)
    except (TypeError, ValueError) as exc:
        raise InputError(f"recipe {path} [model]: {exc}") from None
    heads = recipe.guidance.heads
    if heads != "all" and heads >= config.heads_used:
        raise InputError(
            f"recipe {path} [guidance]: heads = {heads}, but the model has "
            f"{config.heads_used} head{'s' if config.heads_used > 1 else ''} (0 to "
            f'{config.heads_used - 1}); use "all" or one of them'
        )
    return recipe
