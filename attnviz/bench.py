"""``attnviz bench``: interactive latency of the translator, as medians of repeated runs.

With a checkpoint (``-m``, else the bundled default) it times real sentences. Without one
(``ATTNVIZ_MODELS`` pointing to a folder without the default) it says so and times an
untrained model of the flagship's size (hidden 256, 8k vocabulary) with decoding held to a
fixed number of steps, so the figure measures the same amount of work. Progress goes to
standard error, the table to standard output.
"""

from __future__ import annotations

import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import torch

from .alignment_matrix import alignment_matrix
from .checkpoint import RECIPE_FILE
from .figures.heatmap import alignment_heatmap
from .locations import default_model
from .model import AttentionRNN, ModelConfig
from .tokenize import train_tokenizer
from .translator import Translator, load

__all__ = [
    "SENTENCE_WORDS",
    "main",
    "real_sentences",
    "run_bench",
    "time_align_figures",
    "time_call",
    "time_threads",
    "time_training",
]

SENTENCE_WORDS = (5, 20, 40)


def progress(message: str) -> None:
    """One line of progress on standard error (the table goes to standard output)."""
    print(f"bench: {message}", file=sys.stderr, flush=True)


@dataclass
class Timing:
    name: str
    median_ms: float
    p95_ms: float
    runs: int


def time_call(name: str, fn: Callable[[], object], runs: int = 20, warmup: int = 2) -> Timing:
    """Median and 95th percentile wall time of ``fn`` over ``runs`` calls."""
    progress(name)
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return Timing(name, statistics.median(times), p95(times), runs)


def p95(sorted_times: list[float]) -> float:
    """95th percentile (nearest rank) of already sorted times."""
    return sorted_times[min(len(sorted_times) - 1, round(0.95 * (len(sorted_times) - 1)))]


def untrained_flagship(seed: int = 0) -> tuple[Translator, list[str]]:
    """An untrained model of the flagship's size and a tokenizer over pseudo-words."""
    rng = random.Random(seed)
    syllables = [a + b for a in "bdfgklmnprstvz" for b in "aeiou"]
    # Few enough pseudo-words that each becomes one piece, as most words of real text do.
    words = ["".join(rng.choices(syllables, k=rng.randint(1, 3))) for _ in range(4000)]
    texts = [" ".join(rng.choices(words, k=12)) for _ in range(20000)]
    tokenizer = train_tokenizer(texts, vocab_size=8000)
    torch.manual_seed(seed)
    model = AttentionRNN(ModelConfig(vocab_size=tokenizer.vocab_size))
    sentences = [" ".join(rng.choices(words, k=n)) for n in SENTENCE_WORDS]
    return Translator(model, tokenizer, "untrained hidden-256 8k-vocab"), sentences


# 45 words of plain English; the timed sentences are its first 5, 20 and 40 words.
REAL_TEXT = (
    "The little girl in the red coat was running across the old bridge while her brother "
    "waited near the station with two dogs and a large bag of apples for their grandmother "
    "who lived in the small house at the end of the long street"
)


def real_sentences() -> list[str]:
    words = REAL_TEXT.split()
    return [" ".join(words[:n]) + "." for n in SENTENCE_WORDS]


def run_bench(checkpoint: Path | None = None, runs: int = 20) -> dict:
    """Time translation and scoring; returns a JSON-ready dict."""
    if checkpoint is None and default_model().is_dir():
        checkpoint = default_model()
    if checkpoint is not None:
        translator, sentences = load(checkpoint), real_sentences()
    else:
        progress(
            f"no checkpoint at {default_model()} (-m MODEL names one): timing an UNTRAINED "
            "model of the same size on pseudo-words"
        )
        translator, sentences = untrained_flagship()
    timings = []
    for words, sentence in zip(SENTENCE_WORDS, sentences, strict=True):
        pieces = len(translator.source_ids(sentence)[0])
        # An untrained model rarely ends a sentence: hold it to a usual translation length.
        steps = None if checkpoint else round(1.2 * pieces)
        for beam in (1, 5):
            timings.append(
                time_call(
                    f"translate {words} words ({pieces} pieces), beam {beam}, n-best {beam}",
                    lambda s=sentence, b=beam, m=steps: translator.translate(
                        s, beam_size=b, n_best=b, top_k=5, max_len=m
                    ),
                    runs,
                )
            )
    steps = None if checkpoint else round(1.2 * len(translator.source_ids(sentences[1])[0]))
    reference = translator.translate(sentences[1], beam_size=5, max_len=steps).target_pieces
    timings.append(
        time_call(
            f"score (forced decoding) 20 words, {len(reference)} target pieces",
            lambda: translator.score(sentences[1], reference),
            runs,
        )
    )
    timings += time_align_figures(translator, sentences, checkpoint is None, runs)
    return {
        "model": translator.name,
        "machine": machine_description(),
        "torch": torch.__version__,
        "timings": [asdict(t) for t in timings],
        "threads": time_threads(translator, sentences[1], steps, runs),
    }


def busy_neighbour() -> subprocess.Popen:
    """Another process that keeps one core busy until it is killed."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def time_threads(translator: Translator, sentence: str, steps: int | None, runs: int) -> dict:
    """The 20-word beam-5 translation with the Translator's one decoding thread and with
    torch's default (one per core), each on an idle machine and next to a busy process."""
    counts = {"one thread (the Translator's default)": 1}
    counts[f"{torch.get_num_threads()} threads (torch's default)"] = torch.get_num_threads()
    cases: dict[str, dict[str, dict]] = {label: {} for label in counts}
    kept = translator.threads
    try:
        for load_name in ("idle", "one busy neighbour"):
            neighbour = busy_neighbour() if load_name != "idle" else None
            try:
                for label, count in counts.items():
                    translator.threads = count
                    timing = time_call(
                        f"translate 20 words, beam 5, {label}, {load_name}",
                        lambda: translator.translate(sentence, beam_size=5, max_len=steps),
                        runs,
                    )
                    cases[label][load_name] = asdict(timing)
            finally:
                if neighbour is not None:
                    neighbour.kill()
                    neighbour.wait()
    finally:
        translator.threads = kept
    return cases


def time_align_figures(
    translator: Translator, sentences: list[str], untrained: bool, runs: int
) -> list[Timing]:
    """Time building the Align view's figure (word heatmap with hard-alignment overlay) of
    each sentence's beam-5 translation: the work of one redraw, decoding excluded."""
    timings = []
    for words, sentence in zip(SENTENCE_WORDS, sentences, strict=True):
        pieces = len(translator.source_ids(sentence)[0])
        steps = round(1.2 * pieces) if untrained else None
        translation = translator.translate(sentence, beam_size=5, max_len=steps)
        shape = f"{len(translation.target_words)}x{len(translation.source_words)} words"
        timings.append(
            time_call(
                f"Align figure {words} words ({shape}), word heatmap + links",
                lambda t=translation: alignment_heatmap(
                    alignment_matrix(t, "words", links=True), translator.name, t.beam_size
                ),
                runs,
            )
        )
    return timings


TRAIN_TARGET_LENGTHS = (8, 10, 12, 14, 16)  # around the training corpora's typical lengths


def time_training(recipe_path: Path, steps: int = 20) -> dict:
    """Target tokens/s of full training steps (forward, backward, Adam) of a recipe's model.

    Batches follow the recipe's budget (``max_tokens`` target tokens, padding included) and
    are length-bucketed as in training; token ids are random, which does not change the work.
    """
    from .recipe import read_recipe
    from .training.batching import make_batch
    from .training.step import adam, train_step

    recipe = read_recipe(recipe_path)
    progress(f"train steps of {recipe.name}")
    model = AttentionRNN(recipe.model_config(recipe.tokenizer.vocab_size)).train()
    cfg = model.config
    first_ordinary = max(cfg.special_ids) + 1  # random tokens, none of them special
    optimizer = adam(model.parameters(), recipe.training.lr)
    step_on = partial(
        train_step,
        model,
        optimizer,
        clip=recipe.training.clip,
        label_smoothing=recipe.training.label_smoothing,
        pad_id=cfg.pad_id,
    )
    rng = random.Random(0)
    rates, times = [], []
    for step in range(steps + 2):
        length = TRAIN_TARGET_LENGTHS[step % len(TRAIN_TARGET_LENGTHS)]
        rows = recipe.training.max_tokens // (length + 1)
        vocab = recipe.tokenizer.vocab_size
        pairs = [
            (
                [rng.randrange(first_ordinary, vocab) for _ in range(length - 1)],
                [rng.randrange(first_ordinary, vocab) for _ in range(length)],
            )
            for _ in range(rows)
        ]
        batch = make_batch(pairs, cfg.pad_id, cfg.bos_id, cfg.eos_id)
        start = time.perf_counter()
        _, tokens = step_on(batch)
        elapsed = time.perf_counter() - start
        if step >= 2:  # the first steps warm up allocators and caches
            rates.append(tokens / elapsed)
            times.append(elapsed * 1000)
    times.sort()
    # The slow tail of throughput is its 5th percentile: the rate of the p95 step time.
    rates.sort(reverse=True)
    return {
        **matrix_products(partial(step_on, batch), tokens, *model.output_layer()[0].shape[::-1]),
        "recipe": recipe.name,
        "batch_target_tokens": recipe.training.max_tokens,
        "target_tokens_per_s_median": statistics.median(rates),
        "target_tokens_per_s_p95": p95(rates),
        "step_ms_median": statistics.median(times),
        "step_ms_p95": p95(times),
        "steps": steps,
    }


# The matrix-product operations whose arithmetic the profiler counts (forward and backward).
MATRIX_OPS = ("aten::mm", "aten::addmm", "aten::bmm")


def matrix_products(step: Callable[[], object], rows: int, features: int, vocab: int) -> dict:
    """How much of a training step is the arithmetic of its matrix products: their floating
    point operations in one ``step`` (counted by torch's profiler), and the rate this machine
    reaches on the step's largest products, the output layer's three (forward, and the
    gradients of its input and weight, for ``rows`` x ``features`` by ``features`` x
    ``vocab``): the fastest one's median of 5. At that rate the step's products would take
    ``matrix_gflop_per_step / matrix_gflops_rate`` seconds, a floor for any implementation of
    the same model and batch on these cores."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
        step()
    flops = sum(e.flops for e in prof.key_averages() if e.key in MATRIX_OPS)
    x, w, g = torch.randn(rows, features), torch.randn(vocab, features), torch.randn(rows, vocab)
    products = {
        "output layer forward": lambda: x @ w.t(),
        "output layer input gradient": lambda: g @ w,
        "output layer weight gradient": lambda: g.t() @ x,
    }
    fastest_ms = min(time_call(name, fn, runs=5).median_ms for name, fn in products.items())
    rate = 2 * rows * features * vocab / (fastest_ms / 1000)
    return {"matrix_gflop_per_step": flops / 1e9, "matrix_gflops_rate": rate / 1e9}


def format_matrix_products(training: dict) -> str:
    """One line: the step's matrix arithmetic against the step's median time."""
    floor_ms = training["matrix_gflop_per_step"] / training["matrix_gflops_rate"] * 1000
    return (
        f"train step matrix products: {training['matrix_gflop_per_step']:.1f} GFLOP; at "
        f"{training['matrix_gflops_rate']:.0f} GFLOP/s (the output layer's fastest product "
        f"here) they take {floor_ms:.0f} ms of the {training['step_ms_median']:.0f} ms median "
        f"step ({floor_ms / training['step_ms_median']:.0%})"
    )


def training_timing(training: dict) -> Timing:
    """The training figures as a row of the table."""
    return Timing(
        f"train step {training['recipe']}, {training['batch_target_tokens']} target tokens "
        f"({training['target_tokens_per_s_median']:.0f} tokens/s median, "
        f"{training['target_tokens_per_s_p95']:.0f} p95)",
        training["step_ms_median"],
        training["step_ms_p95"],
        training["steps"],
    )


def machine_description() -> str:
    """CPU model, core count and torch's thread count."""
    cpu = platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [
            ln.split(":", 1)[1].strip()
            for ln in cpuinfo.read_text().splitlines()
            if ln.startswith("model name")
        ]
        cpu = names[0] if names else cpu
    return f"{cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"


def format_table(result: dict) -> str:
    rows = result["timings"]
    width = max([58, *(len(t["name"]) for t in rows)])
    lines = [
        f"model: {result['model']}",
        f"machine: {result['machine']}, torch {result['torch']}",
        f"{'what':{width}} {'median ms':>10} {'p95 ms':>8} {'runs':>5}",
    ]
    for t in rows:
        lines.append(
            f"{t['name']:{width}} {t['median_ms']:10.1f} {t['p95_ms']:8.1f} {t['runs']:5d}"
        )
    if "training" in result:
        lines.append(format_matrix_products(result["training"]))
    if "threads" in result:
        lines += ["", *format_threads(result["threads"])]
    return "\n".join(lines)


def format_threads(cases: dict[str, dict[str, dict]]) -> list[str]:
    """The thread comparison as a small table: idle and busy side by side."""
    loads = list(next(iter(cases.values())))
    width = max(len(label) for label in cases)
    lines = [
        "translate 20 words, beam 5: median / p95 ms",
        f"{'decoding threads':{width}} " + " ".join(f"{name:>20}" for name in loads),
    ]
    for label, by_load in cases.items():
        cells = [f"{t['median_ms']:.1f} / {t['p95_ms']:.1f}" for t in by_load.values()]
        lines.append(f"{label:{width}} " + " ".join(f"{c:>20}" for c in cells))
    return lines


def main(
    checkpoint: str | None,
    runs: int,
    json_path: str | None,
    threads: int | None,
    training: bool = True,
    recipe: Path | None = None,
) -> int:
    if threads:
        torch.set_num_threads(threads)
    result = run_bench(Path(checkpoint) if checkpoint else None, runs)
    recipe = recipe or default_model() / RECIPE_FILE
    if training and recipe.is_file():
        result["training"] = time_training(recipe)
        result["timings"].append(asdict(training_timing(result["training"])))
    print(format_table(result))
    if json_path:
        Path(json_path).write_text(json.dumps(result, indent=2))
    return 0
