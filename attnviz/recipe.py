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
```
"""

from __future__ import annotations

import dataclasses
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


@dataclass
class AlignmentSpec:
    """How the card scores attention as alignment on the gold sets.

    ``reverse_model`` (a checkpoint folder relative to the project root, translating the
    target language into English) adds the symmetric methods (intersect, grow-diag, agree);
    the card leaves them out, and says so, while that folder does not exist yet.
    """

    reverse_model: str | None = None


@dataclass
class GuidanceSpec:
    """Guided alignment training: the weight of the loss between the attention and a word
    aligner's links (0: off), and its decay. A weight above 0 makes ``attnviz train`` align
    the training pairs first (:mod:`attnviz.training.word_links`)."""

    weight: float = 0.0
    decay: float = 1.0

    @property
    def enabled(self) -> bool:
        return self.weight > 0


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
    return cls(**data)


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
    try:
        recipe.model_config(vocab_size=recipe.tokenizer.vocab_size)
    except (TypeError, ValueError) as exc:
        raise InputError(f"recipe {path} [model]: {exc}") from None
    return recipe
