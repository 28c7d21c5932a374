"""``attnviz bench --corpus DATA``: corpus decoding one sentence at a time against batched.

Both ways run in the same process, one after the other, on the same data: ``attnviz eval``'s
work on Multi30k test (1,000 sentences, beam 5, en-fr) and ``attnviz align
--reverse-model``'s on the gold alignment sets (Hansards trial en-fr, Europarl de-en). Each
figure is a wall time with the peak resident memory the process reached while it ran, and
each case says how many sentences came out differently (a near-tie that the last bits of a
batched product ranked the other way round).
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .align import DEFAULT_SYMMETRIC_METHOD, align, align_batch
from .evaluate import corpus_quality, translate_all
from .gold_sets import GOLD_SETS, load_gold
from .locations import model_path
from .translator import load

__all__ = ["format_corpus_bench", "run_corpus_bench"]

EVAL_MODEL = "en-fr-additive"
EVAL_BEAM = 5
# (gold set language, source->target model, its reverse model)
ALIGN_CASES = (
    ("fr", "en-fr-additive", "fr-en-additive"),
    ("de", "en-de-additive", "de-en-additive"),
)


def _resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * 4096


@contextmanager
def _measured(into: dict) -> Iterator[None]:
    """Wall seconds, resident MiB at the start and the peak (sampled every 10 ms) of the
    block, into ``into``."""
    peak = [_resident_bytes()]
    into["start_rss_mib"] = round(peak[0] / 2**20, 1)
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.01):
            peak[0] = max(peak[0], _resident_bytes())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    try:
        yield
    finally:
        into["seconds"] = round(time.perf_counter() - start, 2)
        stop.set()
        sampler.join()
        into["peak_rss_mib"] = round(max(peak[0], _resident_bytes()) / 2**20, 1)


def _both_ways(one: Callable[[], list], batched: Callable[[], list]) -> tuple[dict, list, list]:
    """Time ``one`` (one sentence at a time), then ``batched``; their results and figures."""
    alone, together = {}, {}
    with _measured(alone):
        first = one()
    with _measured(together):
        second = batched()
    figures = {
        "one_at_a_time": alone,
        "batched": together,
        "speedup": round(alone["seconds"] / max(together["seconds"], 1e-9), 2),
        "sentences": len(first),
        "sentences_that_differ": sum(a != b for a, b in zip(first, second, strict=True)),
    }
    return figures, first, second


def _gz_lines(path: Path) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        return [line.rstrip("\n") for line in lines]


def eval_case(data: Path, progress: Callable[[str], None]) -> dict:
    translator = load(model_path(EVAL_MODEL))
    sources = _gz_lines(data / "multi30k/test_2016_flickr.en.gz")
    references = _gz_lines(data / "multi30k/test_2016_flickr.fr.gz")
    progress(f"eval {EVAL_MODEL} on Multi30k test ({len(sources)} sentences, beam {EVAL_BEAM})")

    def one() -> list[str]:
        return [translator.translate(s, beam_size=EVAL_BEAM, top_k=1).text for s in sources]

    def batched() -> list[str]:
        return translate_all(translator, sources, EVAL_BEAM)

    figures, first, second = _both_ways(one, batched)
    figures["bleu_one_at_a_time"] = corpus_quality(first, references).bleu
    figures["bleu_batched"] = corpus_quality(second, references).bleu
    return {"what": f"eval {EVAL_MODEL} Multi30k test beam {EVAL_BEAM}", **figures}


def align_case(
    data: Path, language: str, model: str, reverse_model: str, progress: Callable[[str], None]
) -> dict:
    translator, reverse = load(model_path(model)), load(model_path(reverse_model))
    gold = GOLD_SETS[language]
    pairs, _, _ = load_gold(data / "gold", gold)
    method = DEFAULT_SYMMETRIC_METHOD
    progress(f"align {len(pairs)} pairs of {gold.name} with {model} and {reverse_model}")

    def one() -> list:
        return [align(translator, s, t, method, reverse) for s, t in pairs]

    def batched() -> list:
        return align_batch(translator, pairs, method, reverse)

    figures, _, _ = _both_ways(one, batched)
    return {"what": f"align --reverse-model {reverse_model} ({method}), {gold.name}", **figures}


def run_corpus_bench(data: Path, progress: Callable[[str], None]) -> list[dict]:
    """Every case, timed one at a time and batched."""
    cases = [eval_case(data, progress)]
    for language, model, reverse_model in ALIGN_CASES:
        cases.append(align_case(data, language, model, reverse_model, progress))
    return cases


def format_corpus_bench(cases: list[dict]) -> str:
    lines = ["corpus decoding: one at a time vs batched, same process, one after the other"]
    for case in cases:
        alone, together = case["one_at_a_time"], case["batched"]
        lines.append(
            f"{case['what']}: {alone['seconds']:.1f} s -> {together['seconds']:.1f} s "
            f"({case['speedup']:.2f}x), peak RSS {alone['peak_rss_mib']:.0f} MiB (from "
            f"{alone['start_rss_mib']:.0f}) -> {together['peak_rss_mib']:.0f} MiB (from "
            f"{together['start_rss_mib']:.0f}), {case['sentences_that_differ']} of "
            f"{case['sentences']} differ"
        )
        if "bleu_batched" in case:
            lines.append(f"  BLEU {case['bleu_one_at_a_time']} -> {case['bleu_batched']}")
    return "\n".join(lines)
