"""The loop behind ``attnviz train``: validation, the best checkpoint, plateau decay, stops.

The run writes into the recipe's output folder (``runs/<name>/`` unless the recipe or
``--output`` says otherwise): the best checkpoint (by greedy dev BLEU), its history.csv and
snapshots, and the resumable state (weights, Adam moments, RNG, position in the data). Every
file is replaced atomically, so a kill at any moment leaves a loadable checkpoint. At each
validation the history row is written before the state; ``--resume`` drops history rows past
the state's step, so the history never has a gap or a repeated step. A run that ends by its
own rules then scores its best checkpoint on the held-out test sets (``card``).

A recipe with a ``[guidance]`` weight adds the guidance loss on the attention
(``guidance``); the progress bar and history.csv show it next to the translation loss.

With ``--processes N`` (:mod:`attnviz.training.workers`; by default one per core on a CPU) or
``torchrun --nproc_per_node N`` each process trains on its share of every global batch and
DistributedDataParallel averages the gradients; process 0 validates and writes. The
recipe's ``threads`` are the cores of the whole run, shared out among the processes.
"""

from __future__ import annotations

import copy
import random
import time
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm import tqdm

from ..checkpoint import (
    CONFIG_FILE,
    HISTORY_FILE,
    TOKENIZER_FILE,
    save_checkpoint,
    save_weights,
    snapshot_path,
    step_label,
    write_bytes_atomic,
)
from ..data import EncodedPair, Pair, bucket_batches
from ..evaluate import corpus_quality, translate_all
from ..model import AttentionRNN
from ..recipe import Recipe
from ..sharding import init_distributed
from ..tokenize import SentencePieceTokenizer, Tokenizer
from ..translator import Translator
from .allocator import reuse_freed_memory
from .batching import make_batch, process_share
from .card import training_card, write_test_metrics
from .corpora import PreparedData, prepare_data, recipe_tokenizer, split_corpora
from .guidance import link_targets
from .history import History, HistoryRow
from .output import claim_output, removed_on_failure
from .state import STATE_FILE, TrainState, load_state, save_state
from .step import adam, batch_loss, guided_train_step, train_step
from .warm_start import load_initial_weights
from .word_links import ensure_training_links
from .workers import threads_per_process

__all__ = ["Trainer", "train"]


def train(
    recipe: Recipe, resume: bool = False, device: str = "cpu", overwrite: bool = False
) -> Path:
    """Run (or with ``resume`` continue) the recipe into ``recipe.output``; returns that folder.

    Raises :class:`InputError` before writing anything when the folder holds a checkpoint or
    files this run did not create, unless ``overwrite`` (see ``output.claim_output``).
    """
    spec = recipe.training
    reuse_freed_memory()
    resume = claim_output(recipe.output, resume=resume, overwrite=overwrite)
    rank, world = init_distributed(device)
    if spec.threads or world > 1:
        torch.set_num_threads(threads_per_process(spec.threads, world))
    with removed_on_failure(recipe.output, enabled=rank == 0):
        random.seed(recipe.seed)
        torch.manual_seed(recipe.seed)
        recipe.output.mkdir(parents=True, exist_ok=True)
        tokenizer = run_tokenizer(recipe, rank, world, resume)
        if recipe.guidance.enabled:
            run_word_aligner(recipe, rank, world)
        data = prepare_data(recipe, tokenizer)
        model = AttentionRNN(recipe.model_config(tokenizer.vocab_size))
        if spec.init_from is not None and not resume:
            load_initial_weights(model, tokenizer, recipe.root / spec.init_from)
        model = model.to(device)
        optimizer = adam(model.parameters(), spec.lr)
        state_path = recipe.output / STATE_FILE
        state = load_state(state_path, model, optimizer) if resume else TrainState(lr=spec.lr)
        history = History(recipe.output / HISTORY_FILE)
        if rank == 0:
            history.truncate_after(state.step)
        trainer = Trainer(recipe, model, optimizer, state, data, history, device, rank, world)
        trainer.run()
        if rank == 0 and not (recipe.output / CONFIG_FILE).is_file():
            trainer.save_best()  # a run too short to validate still leaves a checkpoint
    if rank == 0 and state.done(spec):
        write_test_metrics(recipe)
    if world > 1:
        dist.barrier()
    return recipe.output


def run_tokenizer(recipe: Recipe, rank: int, world: int, resume: bool) -> SentencePieceTokenizer:
    """Process 0 trains the tokenizer (or a resumed run reuses its own); the others read it."""
    path = recipe.output / TOKENIZER_FILE
    if not (resume and path.is_file()):
        if rank == 0:
            train, _, _ = split_corpora(recipe)
            write_bytes_atomic(path, recipe_tokenizer(recipe, train).model_proto)
        if world > 1:
            dist.barrier()
    return SentencePieceTokenizer.from_file(path)


def run_word_aligner(recipe: Recipe, rank: int, world: int) -> None:
    """Process 0 aligns the training pairs for guidance (once per run); the others wait."""
    if rank == 0:
        ensure_training_links(recipe, split_corpora(recipe)[0])
    if world > 1:
        dist.barrier()


def dev_loss(model: AttentionRNN, dev: list[EncodedPair], max_tokens: int, device: str) -> float:
    """Mean cross-entropy per target token of the dev pairs, without label smoothing."""
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
            # Gradients live in DDP's buckets: no copy into them and back each step, one
            # model's gradients less memory per process.
            self.ddp = torch.nn.parallel.DistributedDataParallel(
                model, gradient_as_bucket_view=True
            )
        self.started = time.monotonic() - state.elapsed_s
        self.session_tokens = 0
        self.session_start = time.monotonic()

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """This process's batches of an epoch: its share of one process's (``process_share``)."""
        batches = bucket_batches(
            self.data.train, self.recipe.training.max_tokens, seed=self.recipe.seed * 1000 + epoch
        )
        return process_share(batches, self.rank, self.world)

    def should_stop(self) -> bool:
        self.state.elapsed_s = self.elapsed()
        if self.world > 1 and self.recipe.training.max_minutes is not None:
            # Each process has its own clock; all must stop at the same step (a process that
            # trained one more would wait forever for the others' gradients): the latest.
            elapsed = torch.tensor([self.state.elapsed_s], dtype=torch.float64)
            dist.all_reduce(elapsed, op=dist.ReduceOp.MAX)
            self.state.elapsed_s = float(elapsed)
        return self.state.done(self.recipe.training)

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
                loss, guided = self.train_on(batches[state.batch_in_epoch])
                state.batch_in_epoch += 1
                bar.update(1)
                rate = self.session_tokens / max(time.monotonic() - self.session_start, 1e-9)
                bar.set_postfix(
                    {
                        "loss": f"{loss:.3f}",
                        **({"guide": f"{guided:.3f}"} if guided is not None else {}),
                        "tok_s": f"{rate:.0f}",
                        "bleu": state.best_bleu,
                    },
                    refresh=False,
                )
                if state.step in spec.snapshots and self.rank == 0:
                    path = snapshot_path(self.recipe.output, step_label(state.step))
                    save_weights(path, self.model)
                if state.step % spec.validate_every == 0:
                    self.validate()
            if state.batch_in_epoch >= len(batches):
                state.epoch += 1
                state.batch_in_epoch = 0
        if state.loss_count:
            self.validate()
        elif self.rank == 0:
            self.save_state()  # with the time of the stop, so that a resumed run sees it
        bar.close()

    def train_on(self, batch: list[int]) -> tuple[float, float | None]:
        """One training step on the batch of these indices into the training pairs; returns
        its translation loss and its guidance loss (None when the recipe does not guide)."""
        cfg, spec, state = self.model.config, self.recipe.training, self.state
        self.model.train()
        pairs = [self.data.train[i] for i in batch]
        tensors = tuple(
            t.to(self.device) for t in make_batch(pairs, cfg.pad_id, cfg.bos_id, cfg.eos_id)
        )
        options = {
            "clip": spec.clip,
            "label_smoothing": spec.label_smoothing,
            "pad_id": cfg.pad_id,
            "lr": learning_rate(self.recipe, state),
        }
        guidance = self.recipe.guidance
        if self.data.train_links is None:
            loss, tokens = train_step(self.ddp, self.optimizer, tensors, **options)
            guided = None
        else:
            src, _, tgt_in, _ = tensors
            links = [self.data.train_links[i] for i in batch]
            targets = link_targets(links, src.shape[1], tgt_in.shape[1]).to(self.device)
            loss, guided, tokens = guided_train_step(
                self.ddp,
                self.optimizer,
                tensors,
                targets,
                weight=guidance.weight_at(state.step),
                heads=guidance.heads,
                **options,
            )
            state.guidance_loss_sum += guided
        state.step += 1
        state.target_tokens += tokens * self.world
        self.session_tokens += tokens * self.world
        state.loss_sum += loss
        state.loss_count += 1
        return loss, guided

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
                HistoryRow(
                    step=state.step,
                    epoch=state.epoch,
                    lr=f"{learning_rate(self.recipe, state):.3g}",
                    train_loss=f"{state.loss_sum / max(state.loss_count, 1):.4f}",
                    dev_loss=f"{loss:.4f}",
                    dev_bleu=f"{bleu:.2f}",
                    target_tokens=state.target_tokens,
                    tokens_per_s=f"{rate:.0f}",
                    elapsed_s=f"{state.elapsed_s:.0f}",
                    guidance_loss=self.mean_guidance_loss(),
                )
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
        state.loss_sum, state.loss_count, state.guidance_loss_sum = 0.0, 0, 0.0
        if self.rank == 0:
            self.save_state()

    def mean_guidance_loss(self) -> str:
        """The guidance loss since the last validation, as history.csv writes it."""
        if self.data.train_links is None:
            return ""
        return f"{self.state.guidance_loss_sum / max(self.state.loss_count, 1):.4f}"

    def save_state(self) -> None:
        save_state(self.recipe.output / STATE_FILE, self.model, self.optimizer, self.state)

    def save_best(self) -> None:
        save_checkpoint(
            self.recipe.output,
            self.model,
            self.data.tokenizer,
            card=training_card(self.recipe, self.model, self.data, self.state, self.world),
            recipe=self.recipe.text,
            name=self.recipe.name,
        )
