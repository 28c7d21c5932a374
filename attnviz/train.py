"""Training: batches, the teacher-forced loss, and the loop behind ``attnviz train``.

The loop keeps the best checkpoint (by greedy dev BLEU) in the recipe's output folder and its
resumable state (weights, Adam moments, RNG, position in the data) in ``runs/<name>/``. Every
file is replaced atomically, so a kill at any moment leaves a loadable checkpoint. At each
validation the history row is written before the state; ``--resume`` drops history rows past
the state's step, so the history never has a gap or a repeated step.

With ``torchrun --nproc_per_node N`` each process trains on its share of every global batch
and DistributedDataParallel averages the gradients; process 0 validates and writes.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import os
import platform
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import Tensor
from tqdm import tqdm

from .checkpoint import (
    CARD_FILE,
    CONFIG_FILE,
    HISTORY_FILE,
    atomic_path,
    load_checkpoint,
    save_checkpoint,
    save_weights,
    snapshot_path,
    write_bytes_atomic,
)
from .data import (
    TATOEBA_LANGUAGES,
    EncodedPair,
    Pair,
    bucket_batches,
    deduplicate,
    encode_pairs,
    filter_length,
    load_corpus,
    source_key,
    split_by_source,
)
from .errors import InputError
from .evaluate import corpus_quality, evaluate_test_sets, example_translations, translate_all
from .gold_sets import GOLD_SETS, gold_alignment_metrics
from .model import AttentionRNN
from .recipe import Recipe
from .synthetic import date_pairs, reversal_pairs
from .tokenize import PAD_ID, Tokenizer, train_tokenizer
from .translator import Translator, load

SYNTHETIC_TASKS = {"reversal": reversal_pairs, "dates": date_pairs}
HISTORY_FIELDS = [
    "step",
    "epoch",
    "lr",
    "train_loss",
    "dev_loss",
    "dev_bleu",
    "target_tokens",
    "tokens_per_s",
    "elapsed_s",
]


def make_batch(
    pairs: Sequence[tuple[Sequence[int], Sequence[int]]], pad_id: int, bos_id: int, eos_id: int
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Pad a list of (source ids, target ids) pairs; EOS is appended to both sides.

    returns src (batch, src_len), src_lengths (batch,), tgt_in (batch, tgt_len) starting with
    BOS, tgt_out (batch, tgt_len) ending with EOS and padded with pad_id.
    """
    src_len = max(len(s) for s, _ in pairs) + 1
    tgt_len = max(len(t) for _, t in pairs) + 1
    src = torch.full((len(pairs), src_len), pad_id, dtype=torch.long)
    tgt_in = torch.full((len(pairs), tgt_len), pad_id, dtype=torch.long)
    tgt_out = torch.full((len(pairs), tgt_len), pad_id, dtype=torch.long)
    lengths = torch.empty(len(pairs), dtype=torch.long)
    for i, (s, t) in enumerate(pairs):
        src[i, : len(s) + 1] = torch.tensor([*s, eos_id])
        tgt_in[i, : len(t) + 1] = torch.tensor([bos_id, *t])
        tgt_out[i, : len(t) + 1] = torch.tensor([*t, eos_id])
        lengths[i] = len(s) + 1
    return src, lengths, tgt_in, tgt_out


def batch_loss(
    model: torch.nn.Module,
    src: Tensor,
    src_lengths: Tensor,
    tgt_in: Tensor,
    tgt_out: Tensor,
    label_smoothing: float = 0.0,
    pad_id: int = PAD_ID,
) -> tuple[Tensor, int]:
    """Mean cross-entropy per target token, and the number of target tokens.

    src: (batch, src_len); src_lengths: (batch,); tgt_in, tgt_out: (batch, tgt_len)
    """
    logits, _ = model(src, src_lengths, tgt_in)
    loss = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]),
        tgt_out.reshape(-1),
        ignore_index=pad_id,
        label_smoothing=label_smoothing,
    )
    return loss, int((tgt_out != pad_id).sum())


# -- data ---------------------------------------------------------------------------------


@dataclass
class PreparedData:
    tokenizer: Tokenizer
    train: list[EncodedPair]
    dev: list[EncodedPair]
    dev_pairs: list[Pair]  # the dev sentences decoded for BLEU at each validation
    test_sets: dict[str, list[Pair]]  # held out for the model card
    sizes: dict[str, int]


def split_corpora(recipe: Recipe) -> tuple[list[Pair], list[Pair], dict[str, list[Pair]]]:
    """Train pairs, dev pairs and named test sets, with no English sentence on two sides."""
    spec = recipe.data
    if spec.synthetic is not None:
        if spec.synthetic not in SYNTHETIC_TASKS:
            raise InputError(
                f"unknown synthetic task {spec.synthetic!r}; use {', '.join(SYNTHETIC_TASKS)}"
            )
        generated = SYNTHETIC_TASKS[spec.synthetic](spec.synthetic_pairs, seed=recipe.seed)
        pairs = [Pair(p.source, p.target) for p in generated]
        train, dev, test = split_by_source(pairs, spec.dev_fraction, spec.test_fraction)
        return train, dev, {spec.synthetic: test}
    train: list[Pair] = []
    dev: list[Pair] = []
    tests: dict[str, list[Pair]] = {}
    if spec.tatoeba:
        pairs = deduplicate(load_corpus({"tatoeba": spec.tatoeba}, spec.data_dir))
        t_train, t_dev, t_test = split_by_source(pairs, spec.dev_fraction, spec.test_fraction)
        train += t_train
        dev += t_dev
        tests["tatoeba"] = t_test
    if spec.multi30k:

        def part(split: str) -> list[Pair]:
            corpus = {"multi30k": spec.multi30k, "multi30k_split": split}
            return deduplicate(load_corpus(corpus, spec.data_dir))

        train += part("train")
        dev += part("val")
        tests["multi30k"] = part("test_2016_flickr")
    held_out = {source_key(p.source) for p in dev} | {
        source_key(p.source) for test in tests.values() for p in test
    }
    train = [p for p in train if source_key(p.source) not in held_out]
    if spec.reverse:
        return _swapped(train), _swapped(dev), {k: _swapped(v) for k, v in tests.items()}
    return train, dev, tests


def _swapped(pairs: list[Pair]) -> list[Pair]:
    return [Pair(p.target, p.source) for p in pairs]


def recipe_tokenizer(recipe: Recipe, train: list[Pair]) -> Tokenizer:
    """The recipe's shared tokenizer, or a joint one trained on both sides of the pairs."""
    if recipe.tokenizer.model:
        return Tokenizer.from_file(recipe.root / recipe.tokenizer.model)
    texts = [p.source for p in train] + [p.target for p in train]
    spec = recipe.tokenizer
    return train_tokenizer(texts, spec.vocab_size, model_type=spec.model_type)


def prepare_data(recipe: Recipe, tokenizer: Tokenizer) -> PreparedData:
    """Read, split, filter and encode the recipe's corpora."""
    train, dev, tests = split_corpora(recipe)
    spec = recipe.data
    train = filter_length(train, tokenizer, spec.max_pieces, spec.max_ratio)
    dev = filter_length(dev, tokenizer, spec.max_pieces)
    rng = random.Random(recipe.seed)
    dev_pairs = rng.sample(dev, min(spec.bleu_sentences, len(dev)))
    sizes = {"train": len(train), "dev": len(dev)}
    sizes.update({f"test_{name}": len(pairs) for name, pairs in tests.items()})
    return PreparedData(
        tokenizer,
        encode_pairs(train, tokenizer),
        encode_pairs(dev, tokenizer),
        dev_pairs,
        tests,
        sizes,
    )


# -- state --------------------------------------------------------------------------------


@dataclass
class TrainState:
    """Where training stands; saved with the weights so ``--resume`` continues exactly."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    lr: float = 0.0
    best_bleu: float = -1.0
    best_step: int = 0
    bad_validations: int = 0
    target_tokens: int = 0
    elapsed_s: float = 0.0
    loss_sum: float = 0.0  # since the last validation
    loss_count: int = 0
    finished: bool = False
    python_rng: list = field(default_factory=list)

    def finished_training(self, recipe: Recipe) -> bool:
        """True when the run ended by its own rules (not by a kill)."""
        spec = recipe.training
        return (
            self.finished
            or self.epoch >= spec.max_epochs
            or (spec.max_steps is not None and self.step >= spec.max_steps)
            or (spec.max_minutes is not None and self.elapsed_s >= 60 * spec.max_minutes - 60)
        )


def save_state(
    path: Path, model: AttentionRNN, optimizer: torch.optim.Optimizer, state: TrainState
) -> None:
    """Weights, Adam moments, RNG and position, as one safetensors file (never a pickle)."""
    tensors = {f"model.{k}": v.detach().contiguous() for k, v in model.state_dict().items()}
    optim = optimizer.state_dict()
    for index, slots in optim["state"].items():
        for key, value in slots.items():
            tensors[f"optim.{index}.{key}"] = torch.as_tensor(value).contiguous()
    tensors["rng.torch"] = torch.get_rng_state()
    state.python_rng = _jsonable(random.getstate())
    metadata = {
        "state": json.dumps(asdict(state)),
        "param_groups": json.dumps(optim["param_groups"]),
    }
    with atomic_path(path) as tmp:
        save_file({k: v.cpu() for k, v in tensors.items()}, str(tmp), metadata=metadata)


def _jsonable(value: object) -> object:
    return [_jsonable(v) for v in value] if isinstance(value, tuple | list) else value


def _tupled(value: object) -> object:
    return tuple(_tupled(v) for v in value) if isinstance(value, list) else value


def load_state(path: Path, model: AttentionRNN, optimizer: torch.optim.Optimizer) -> TrainState:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata()
    tensors = load_file(str(path))
    device = next(model.parameters()).device
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    slots: dict[int, dict[str, Tensor]] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, index, key = name.split(".", 2)
            slots.setdefault(int(index), {})[key] = value if key == "step" else value.to(device)
    optimizer.load_state_dict(
        {"state": slots, "param_groups": json.loads(metadata["param_groups"])}
    )
    torch.set_rng_state(tensors["rng.torch"])
    state = TrainState(**json.loads(metadata["state"]))
    if state.python_rng:
        random.setstate(_tupled(state.python_rng))  # type: ignore[arg-type]
    return state


class History:
    """history.csv of the checkpoint folder: one row per validation."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def rows(self) -> list[dict[str, str]]:
        if not self.path.is_file():
            return []
        with open(self.path, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))

    def _write(self, rows: list[dict]) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, HISTORY_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        write_bytes_atomic(self.path, buffer.getvalue().encode("utf-8"))

    def truncate_after(self, step: int) -> None:
        """Drop rows written after the saved state (a kill between the two writes)."""
        rows = self.rows()
        kept = [r for r in rows if int(r["step"]) <= step]
        if len(kept) != len(rows) or (rows and not step):
            self._write(kept)

    def append(self, row: dict) -> None:
        self._write(self.rows() + [row])


# -- the loop -----------------------------------------------------------------------------


def init_distributed(device: str) -> tuple[int, int]:
    """(rank, world size); starts torch.distributed when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def run_tokenizer(recipe: Recipe, rank: int, world: int, resume: bool) -> Tokenizer:
    """Process 0 trains the tokenizer (or a resumed run reuses its own); the others read it."""
    path = recipe.run_dir / "spm.model"
    if not (resume and path.is_file()):
        if rank == 0:
            train, _, _ = split_corpora(recipe)
            write_bytes_atomic(path, recipe_tokenizer(recipe, train).model_proto)
        if world > 1:
            dist.barrier()
    return Tokenizer.from_file(path)


def dev_loss(model: AttentionRNN, dev: list[EncodedPair], max_tokens: int, device: str) -> float:
    cfg = model.config
    total, tokens = 0.0, 0
    model.eval()
    with torch.no_grad():
        for batch in bucket_batches(dev, max_tokens, seed=0, shuffle=False):
            tensors = make_batch([dev[i] for i in batch], cfg.pad_id, cfg.bos_id, cfg.eos_id)
            loss, n = batch_loss(model, *(t.to(device) for t in tensors), pad_id=cfg.pad_id)
            total += float(loss) * n
            tokens += n
    return total / max(tokens, 1)


def dev_bleu(model: AttentionRNN, tokenizer: Tokenizer, pairs: list[Pair]) -> float:
    """Greedy cased sacreBLEU of the dev sentences (on a CPU copy when training elsewhere)."""
    on_cpu = model if next(model.parameters()).device.type == "cpu" else copy.deepcopy(model).cpu()
    translator = Translator(on_cpu, tokenizer)
    outputs = translate_all(translator, [p.source for p in pairs], beam_size=1)
    return corpus_quality(outputs, [p.target for p in pairs]).bleu


def learning_rate(recipe: Recipe, state: TrainState) -> float:
    """Linear warm-up to the recipe's rate, then whatever plateau decay has set."""
    spec = recipe.training
    if state.step < spec.warmup_steps:
        return spec.lr * (state.step + 1) / spec.warmup_steps
    return state.lr or spec.lr


def train(recipe: Recipe, resume: bool = False, device: str = "cpu") -> Path:
    """Run (or continue) the recipe; returns the checkpoint folder."""
    spec = recipe.training
    if spec.threads:
        torch.set_num_threads(spec.threads)
    rank, world = init_distributed(device)
    random.seed(recipe.seed)
    torch.manual_seed(recipe.seed)
    recipe.run_dir.mkdir(parents=True, exist_ok=True)
    state_path = recipe.run_dir / "state.safetensors"
    resume = resume and state_path.is_file()
    tokenizer = run_tokenizer(recipe, rank, world, resume)
    data = prepare_data(recipe, tokenizer)
    model = AttentionRNN(recipe.model_config(tokenizer.vocab_size)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=spec.lr)
    state = load_state(state_path, model, optimizer) if resume else TrainState(lr=spec.lr)
    history = History(recipe.output / HISTORY_FILE)
    if rank == 0:
        history.truncate_after(state.step)
    trainer = Trainer(recipe, model, optimizer, state, data, history, device, rank, world)
    trainer.run()
    if rank == 0 and not (recipe.output / CONFIG_FILE).is_file():
        trainer.save_best()  # a run too short to validate still leaves a checkpoint
    if rank == 0 and state.finished_training(recipe):
        write_test_metrics(recipe)
    if world > 1:
        dist.barrier()
    return recipe.output


class Trainer:
    """The training loop of one process."""

    def __init__(
        self,
        recipe: Recipe,
        model: AttentionRNN,
        optimizer: torch.optim.Optimizer,
        state: TrainState,
        data: PreparedData,
        history: History,
        device: str,
        rank: int,
        world: int,
    ) -> None:
        self.recipe, self.model, self.optimizer, self.state = recipe, model, optimizer, state
        self.data, self.history, self.device, self.rank, self.world = (
            data,
            history,
            device,
            rank,
            world,
        )
        self.ddp = model
        if world > 1:
            self.ddp = torch.nn.parallel.DistributedDataParallel(model)
        self.started = time.monotonic() - state.elapsed_s
        self.session_tokens = 0
        self.session_start = time.monotonic()

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """This process's batches of an epoch (the same global order on every process)."""
        max_tokens = self.recipe.training.max_tokens // self.world
        batches = bucket_batches(self.data.train, max_tokens, seed=self.recipe.seed * 1000 + epoch)
        usable = len(batches) - len(batches) % self.world
        return batches[self.rank : usable : self.world]

    def should_stop(self) -> bool:
        spec, state = self.recipe.training, self.state
        if spec.max_steps is not None and state.step >= spec.max_steps:
            return True
        if spec.max_minutes is not None and self.elapsed() >= 60 * spec.max_minutes:
            return True
        return state.finished or state.epoch >= spec.max_epochs

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def run(self) -> None:
        spec, state = self.recipe.training, self.state
        steps_per_epoch = len(self.epoch_batches(0))
        total = spec.max_epochs * steps_per_epoch
        if spec.max_steps is not None:
            total = min(total, spec.max_steps)
        bar = tqdm(
            total=total,
            initial=state.step,
            disable=self.rank != 0,
            unit="step",
            dynamic_ncols=True,
            desc=self.recipe.name,
        )
        while not self.should_stop():
            batches = self.epoch_batches(state.epoch)
            while state.batch_in_epoch < len(batches) and not self.should_stop():
                loss = self.train_step(batches[state.batch_in_epoch])
                state.batch_in_epoch += 1
                bar.update(1)
                rate = self.session_tokens / max(time.monotonic() - self.session_start, 1e-9)
                bar.set_postfix(
                    loss=f"{loss:.3f}", tok_s=f"{rate:.0f}", bleu=state.best_bleu, refresh=False
                )
                if state.step in spec.snapshots and self.rank == 0:
                    path = snapshot_path(self.recipe.output, f"step-{state.step}")
                    save_weights(path, self.model)
                if state.step % spec.validate_every == 0:
                    self.validate()
            if state.batch_in_epoch >= len(batches):
                state.epoch += 1
                state.batch_in_epoch = 0
        if state.loss_count:
            self.validate()
        bar.close()

    def train_step(self, batch: list[int]) -> float:
        cfg, spec, state = self.model.config, self.recipe.training, self.state
        self.model.train()
        pairs = [self.data.train[i] for i in batch]
        tensors = [t.to(self.device) for t in make_batch(pairs, cfg.pad_id, cfg.bos_id, cfg.eos_id)]
        loss, tokens = batch_loss(self.ddp, *tensors, spec.label_smoothing, cfg.pad_id)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), spec.clip)
        lr = learning_rate(self.recipe, state)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.step()
        state.step += 1
        state.target_tokens += tokens * self.world
        self.session_tokens += tokens * self.world
        value = loss.item()
        state.loss_sum += value
        state.loss_count += 1
        return value

    def validate(self) -> None:
        """Dev loss and BLEU; history row, best checkpoint, plateau decay, then the state."""
        spec, state = self.recipe.training, self.state
        decision = torch.zeros(2)
        if self.rank == 0:
            loss = dev_loss(self.model, self.data.dev, spec.max_tokens, self.device)
            bleu = dev_bleu(self.model, self.data.tokenizer, self.data.dev_pairs)
            state.elapsed_s = self.elapsed()
            rate = self.session_tokens / max(time.monotonic() - self.session_start, 1e-9)
            self.history.append(
                {
                    "step": state.step,
                    "epoch": state.epoch,
                    "lr": f"{learning_rate(self.recipe, state):.3g}",
                    "train_loss": f"{state.loss_sum / max(state.loss_count, 1):.4f}",
                    "dev_loss": f"{loss:.4f}",
                    "dev_bleu": f"{bleu:.2f}",
                    "target_tokens": state.target_tokens,
                    "tokens_per_s": f"{rate:.0f}",
                    "elapsed_s": f"{state.elapsed_s:.0f}",
                }
            )
            if bleu > state.best_bleu:
                state.best_bleu, state.best_step, state.bad_validations = bleu, state.step, 0
                self.save_best()
            elif state.step >= spec.warmup_steps:
                state.bad_validations += 1
                state.lr = max(learning_rate(self.recipe, state) * spec.lr_decay, spec.min_lr)
            state.finished = state.bad_validations >= spec.patience
            decision = torch.tensor([state.lr, float(state.finished)])
        if self.world > 1:
            dist.broadcast(decision, src=0)
            state.lr, state.finished = float(decision[0]), bool(decision[1])
        state.loss_sum, state.loss_count = 0.0, 0
        if self.rank == 0:
            save_state(self.recipe.run_dir / "state.safetensors", self.model, self.optimizer, state)

    def save_best(self) -> None:
        save_checkpoint(
            self.recipe.output,
            self.model,
            self.data.tokenizer,
            card=training_card(self.recipe, self.model, self.data, self.state, self.world),
            recipe=self.recipe.text,
            name=self.recipe.name,
        )


def training_card(
    recipe: Recipe, model: AttentionRNN, data: PreparedData, state: TrainState, world: int
) -> dict:
    """What the card says about training; test-set metrics are added by ``attnviz eval``."""
    return {
        "name": recipe.name,
        "training": {
            "steps": state.step,
            "best_step": state.best_step,
            "epochs_completed": state.epoch,
            "target_tokens_seen": state.target_tokens,
            "minutes": round(state.elapsed_s / 60, 1),
            "processes": world,
            "hardware": f"{platform.machine()} CPU, {os.cpu_count()} cores"
            if not torch.cuda.is_available()
            else torch.cuda.get_device_name(0),
            "torch": torch.__version__,
            "dev_bleu_greedy": state.best_bleu,
            "dev_bleu_definition": (
                f"cased sacreBLEU (13a), greedy, on {len(data.dev_pairs)} dev sentences"
            ),
        },
        "parameters": sum(p.numel() for p in model.parameters()),
        "data_sizes": data.sizes,
        "data": data_card(recipe),
    }


def data_card(recipe: Recipe) -> list[dict]:
    spec = recipe.data
    sources = []
    if spec.tatoeba:
        sources.append(
            {
                "corpus": f"Tatoeba {spec.tatoeba} (manythings.org export)",
                "license": "CC-BY 2.0",
                "attribution": "Sentences from tatoeba.org, pairs from manythings.org/anki",
            }
        )
    if spec.multi30k:
        sources.append(
            {
                "corpus": f"Multi30k task 1 {'-'.join(spec.multi30k)}",
                "license": "non-commercial research and educational use only",
                "attribution": "Elliott et al. (2016), derived from Flickr30k",
            }
        )
    if spec.synthetic:
        sources.append({"corpus": f"synthetic {spec.synthetic}, generated by attnviz.synthetic"})
    return sources


def target_language(recipe: Recipe) -> str | None:
    """The language the recipe translates into ("fr", "de"), from its corpora."""
    if recipe.data.reverse:
        return "en"
    if recipe.data.multi30k:
        return recipe.data.multi30k[1]
    if recipe.data.tatoeba in TATOEBA_LANGUAGES:
        return TATOEBA_LANGUAGES[recipe.data.tatoeba][1]
    return None


def write_test_metrics(recipe: Recipe) -> dict:
    """Score the recipe's best checkpoint on its held-out test sets and add it to the card."""
    checkpoint = load_checkpoint(recipe.output)
    translator = Translator.from_checkpoint(checkpoint)
    _, _, tests = split_corpora(recipe)
    card = dict(checkpoint.card)
    card["metrics"] = evaluate_test_sets(translator, tests)
    card["metrics_definition"] = (
        "sacreBLEU on detokenized output against one reference: `bleu` cased with the 13a "
        "tokenizer, `bleu_lowercase` the same lower-cased, `chrf` chrF2; greedy = beam 1, "
        "beam5 = beam 5 with length normalisation alpha 1.0. Test sets: multi30k = "
        "test_2016_flickr (1,000 sentences); tatoeba = the held-out split of the recipe "
        "(2% of English sentences, none seen in training). `attention_entropy`: mean over "
        "every output step (</s> included) of the entropy in nats of that step's attention "
        "over the source pieces, on the output of that beam size."
    )
    # The everyday examples are English; other sources take their first test sentences.
    english_source = not (recipe.data.synthetic or recipe.data.reverse)
    sentences = None if english_source else [p.source for p in list(tests.values())[0][:5]]
    card["examples"] = example_translations(translator, sentences=sentences)
    return _write_card(recipe, _with_alignment(recipe, translator, card))


def write_alignment_metrics(recipe: Recipe) -> dict:
    """Score only the card's gold-set alignment (seconds, where test metrics take minutes)."""
    checkpoint = load_checkpoint(recipe.output)
    card = _with_alignment(recipe, Translator.from_checkpoint(checkpoint), dict(checkpoint.card))
    return _write_card(recipe, card)


def _with_alignment(recipe: Recipe, translator: Translator, card: dict) -> dict:
    language = target_language(recipe)
    gold_dir = Path(recipe.data.data_dir) / "gold"
    if language not in GOLD_SETS or not gold_dir.is_dir():
        return card
    reverse = None
    folder = recipe.alignment.reverse_model
    if folder is not None and (recipe.root / folder).is_dir():
        reverse = load(recipe.root / folder)
    card["alignment"] = gold_alignment_metrics(translator, gold_dir, language, reverse)
    if folder is not None and reverse is None:
        card["alignment"]["note"] = f"symmetric methods left out: {folder} is not trained yet"
    return card


def _write_card(recipe: Recipe, card: dict) -> dict:
    text = json.dumps(card, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    write_bytes_atomic(recipe.output / CARD_FILE, text.encode("utf-8"))
    return card


def state_summary(path: Path) -> dict:
    """The saved state's counters (for tests and status lines)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return json.loads(f.metadata()["state"])
