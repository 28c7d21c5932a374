#!/usr/bin/env python3
"""Side-by-side training throughput: Joey NMT 2.3.0, OpenNMT-py 3.5.1 and ``attnviz train``.

    tests/peers/make_venvs.sh                                   # once: the peers' venvs
    .venv/bin/python tests/peers/train_side_by_side.py [--minutes 5] [--only joey onmt ...]

One after another, on the same data (Multi30k en-de train from ../shared/data, a joint 8k
SentencePiece model) and 2 cores each (--threads: the peers' torch threads, attnviz's cores
in all), it trains for the same minutes (--minutes) of training loop:
  joey          Joey NMT: bi-GRU encoder 256 per direction, GRU decoder 256, embeddings 256,
                its Bahdanau (MLP) attention, batches of 2,000 target tokens
  attnviz       attnviz train with the same sizes (additive scorer, enc_hidden 256), in
                its default processes (on a CPU one per core of the run, here --threads,
                each with one thread; --attnviz-processes N sets them)
  onmt          OpenNMT-py: bi-GRU encoder 128 per direction, GRU decoder 256, embeddings
                256, mlp attention with input feeding, shared vocabulary, 2,000-token batches
  attnviz-onmt  attnviz train with those sizes (enc_hidden 128)
and prints each one's whole-loop target tokens/s, its peak memory, and the ratios
attnviz/Joey and attnviz-onmt/OpenNMT.

Target tokens are counted the same way by all three: the non-padding target tokens the loss
is taken over (the words and </s>, not <s>). The rate is the whole training loop's (data
loading and the optimizer included; validation is switched off in all three):
  Joey NMT     its log's "Tokens per Sec" of each logging interval, weighted by the interval's
               length from the log's own timestamps, from its "EPOCH" line on;
  OpenNMT-py   likewise from its report lines ("src/tgt tok/s"), from "Start training loop"
               (its bucket is one pass over the corpus, so the loop does not begin by
               reading the corpus 9 times);
  attnviz      the tok_s of its progress bar (target tokens since the loop started / seconds).
Peak memory is the largest sum of the resident set sizes of the run's processes (sampled
every 0.2 s; attnviz's worker processes included) and the largest single process's (GNU
time; n/a when a run that did not end within 60 s of SIGINT was killed, GNU time with it, as
the peers were in the last sitting), setup included.
The peers run in the venvs JOEY_VENV and ONMT_VENV (default /work/venvs/joey, /work/venvs/onmt).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
JOEY = Path(os.environ.get("JOEY_VENV", "/work/venvs/joey"))
ONMT = Path(os.environ.get("ONMT_VENV", "/work/venvs/onmt"))
ENV = {**os.environ, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1", "PYTHONUNBUFFERED": "1"}
NEVER = 10**9  # a step count no run reaches: no validation, no early end

JOEY_CONFIG = """\
name: side-by-side-joey
joeynmt_version: 2.3.0
data:
  train: {work}/train
  dev: {work}/dev
  dataset_type: plain
  src:
    lang: en
    level: bpe
    lowercase: false
    max_length: 50
    voc_limit: 8000
    voc_min_freq: 1
    tokenizer_type: sentencepiece
    tokenizer_cfg:
      model_file: {work}/spm.model
  trg:
    lang: de
    level: bpe
    lowercase: false
    max_length: 50
    voc_limit: 8000
    voc_min_freq: 1
    tokenizer_type: sentencepiece
    tokenizer_cfg:
      model_file: {work}/spm.model
testing:
  beam_size: 1
training:
  random_seed: 1
  optimizer: adam
  normalization: tokens
  learning_rate: 0.001
  clip_grad_norm: 1.0
  label_smoothing: 0.1
  batch_size: 2000
  batch_type: token
  scheduling: plateau
  epochs: 100
  updates: {never}
  validation_freq: {never}
  logging_freq: 5
  model_dir: {work}/joey-model
  overwrite: true
  shuffle: true
  use_cuda: false
  num_workers: 0
model:
  initializer: xavier_uniform
  embed_initializer: normal
  embed_init_weight: 0.1
  tied_softmax: true
  encoder:
    type: recurrent
    rnn_type: gru
    embeddings:
      embedding_dim: 256
    hidden_size: 256
    bidirectional: true
    dropout: 0.3
    num_layers: 1
  decoder:
    type: recurrent
    rnn_type: gru
    embeddings:
      embedding_dim: 256
    hidden_size: 256
    dropout: 0.3
    hidden_dropout: 0.3
    num_layers: 1
    input_feeding: true
    init_hidden: bridge
    attention: bahdanau
"""

ONMT_CONFIG = """\
save_data: {work}/onmt
src_vocab: {work}/onmt.vocab
share_vocab: true
overwrite: true
data:
  corpus_1:
    path_src: {work}/train.en
    path_tgt: {work}/train.de
    transforms: [sentencepiece, filtertoolong]
src_subword_model: {work}/spm.model
tgt_subword_model: {work}/spm.model
src_seq_length: 50
tgt_seq_length: 50
save_model: {work}/onmt-model
save_checkpoint_steps: {never}
train_steps: {never}
report_every: 5
seed: 1
num_workers: 0
# about one pass over the corpus (the default, 262,144 examples, cycles it 9 times before
# the first step: data loading that the other two do before their loop)
bucket_size: 32768
model_type: text
encoder_type: brnn
decoder_type: rnn
rnn_type: GRU
layers: 1
hidden_size: 256
word_vec_size: 256
global_attention: mlp
input_feed: 1
share_embeddings: true
dropout: [0.3]
optim: adam
learning_rate: 0.001
max_grad_norm: 1.0
label_smoothing: 0.1
batch_type: tokens
batch_size: 2000
"""

ATTNVIZ_RECIPE = """\
name = "{name}"
seed = 1

[data]
data_dir = "{data}"
multi30k = ["en", "de"]
max_pieces = 50
max_ratio = 3.0
bleu_sentences = 10

[tokenizer]
vocab_size = 8000

[model]
emb_dim = 256
enc_hidden = {enc_hidden}
dec_hidden = 256
attn_dim = 256
scorer = "additive"
dropout = 0.3
tie_output = true

[training]
max_tokens = 2000
lr = 0.001
label_smoothing = 0.1
max_minutes = {minutes}
validate_every = {never}
threads = {threads}
"""


@dataclass
class Result:
    name: str
    tokens_per_s: float | None
    peak_rss_mb: float | None
    peak_total_mb: float | None
    note: str = ""


def prepare_data(data: Path, work: Path) -> None:
    """Multi30k en-de train as plain text and a joint 8k SentencePiece model (cached in work)."""
    work.mkdir(parents=True, exist_ok=True)
    if (work / "spm.model").exists():
        return
    for lang in ("en", "de"):
        for split, name in (("train", "train"), ("val", "dev")):
            with gzip.open(data / "multi30k" / f"{split}.{lang}.gz", "rt", encoding="utf-8") as f:
                (work / f"{name}.{lang}").write_text(f.read(), encoding="utf-8")
    code = (
        "import sentencepiece as spm, sys; spm.SentencePieceTrainer.train(input=sys.argv[1:3], "
        "model_prefix=sys.argv[3], vocab_size=8000, character_coverage=1.0, num_threads=2)"
    )
    subprocess.run(
        [
            str(JOEY / "bin/python"),
            "-c",
            code,
            str(work / "train.en"),
            str(work / "train.de"),
            str(work / "spm"),
        ],
        env=ENV,
        check=True,
        capture_output=True,
    )


def run_timed(
    name: str,
    command: list[str],
    started: re.Pattern,
    minutes: float,
    work: Path,
    stop_itself: bool = False,
) -> tuple[str, float | None]:
    """Run ``command`` under GNU time; stop it ``minutes`` after ``started`` first appears.

    Returns the whole output, the peak RSS of its largest process and the peak of the sum
    over its processes, in MB. A run that stops by itself (``stop_itself``) gets 30 s of
    grace after its deadline before it is interrupted.
    """
    rss_file = work / f"{name}.rss"
    process = subprocess.Popen(
        ["/usr/bin/time", "-v", "-o", str(rss_file), *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=ENV,
        cwd=work,
        start_new_session=True,
    )
    chunks: list[str] = []
    seen = threading.Event()

    def read() -> None:
        for raw in iter(lambda: process.stdout.read1(65536), b""):
            text = raw.decode("utf-8", "replace")
            chunks.append(text)
            if not seen.is_set() and started.search("".join(chunks[-2:])):
                seen.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    peak_total = [0]
    sampler = threading.Thread(target=sample_group_rss, args=(process, peak_total), daemon=True)
    sampler.start()
    while not seen.wait(1.0):
        if process.poll() is not None:
            break
    if seen.is_set():
        deadline = time.monotonic() + 60 * minutes + (30 if stop_itself else 0)
        while time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.5)
    for sig, wait in ((signal.SIGINT, 60), (signal.SIGKILL, 10)):
        if process.poll() is None:
            os.killpg(process.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(wait)
    reader.join(10)
    sampler.join(10)
    output = "".join(chunks)
    (work / f"{name}.log").write_text(output, encoding="utf-8")
    match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", rss_file.read_text())
    return output, int(match.group(1)) / 1024 if match else None, peak_total[0] / 1024


def sample_group_rss(process: subprocess.Popen, peak_kb: list[int]) -> None:
    """Until ``process`` ends, keep in ``peak_kb[0]`` the largest sum of the resident set
    sizes (kB) of the processes in its process group (its session: GNU time, the tool and
    every process the tool starts)."""
    while process.poll() is None:
        total = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == process.pid:  # field 5, the process group
                    total += int(fields[21]) * os.sysconf("SC_PAGE_SIZE") // 1024  # rss
        peak_kb[0] = max(peak_kb[0], total)
        time.sleep(0.2)


def interval_rate(output: str, start: re.Pattern, interval: re.Pattern, stamp: str) -> float | None:
    """Tokens/s over the loop: each logged interval's rate weighted by its length.

    ``start`` and ``interval`` match whole log lines whose group ``ts`` is the logger's
    timestamp (format ``stamp``); ``interval``'s group ``rate`` is that interval's tokens/s.
    """
    tokens = seconds = 0.0
    previous = None
    for line in re.split(r"[\r\n]+", output):
        if m := start.search(line):
            previous = datetime.strptime(m["ts"], stamp)
        elif (m := interval.search(line)) and previous is not None:
            now = datetime.strptime(m["ts"], stamp)
            span = (now - previous).total_seconds()
            tokens += float(m["rate"]) * span
            seconds += span
            previous = now
    return tokens / seconds if seconds else None


def run_joey(work: Path, minutes: float) -> Result:
    config = work / "joey.yaml"
    config.write_text(JOEY_CONFIG.format(work=work, never=NEVER), encoding="utf-8")
    command = [str(JOEY / "bin/python"), "-m", "joeynmt", "train", str(config), "--skip-test"]
    ts = r"(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})"
    start = re.compile(ts + r" - INFO - joeynmt\.training - EPOCH +\d+")
    output, rss, total = run_timed("joey", command, start, minutes, work)
    interval = re.compile(
        ts + r" - INFO - joeynmt\.training - Epoch .*Tokens per Sec: +(?P<rate>\d+)"
    )
    return Result(
        "Joey NMT 2.3.0",
        interval_rate(output, start, interval, "%Y-%m-%d %H:%M:%S,%f"),
        rss,
        total,
    )


def run_onmt(work: Path, minutes: float) -> Result:
    config = work / "onmt.yaml"
    config.write_text(ONMT_CONFIG.format(work=work, never=NEVER), encoding="utf-8")
    if not (work / "onmt.vocab").exists():
        subprocess.run(
            [str(ONMT / "bin/onmt_build_vocab"), "-config", str(config), "-n_sample", "-1"],
            env=ENV,
            check=True,
            capture_output=True,
        )
    command = [str(ONMT / "bin/onmt_train"), "-config", str(config)]
    ts = r"\[(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO\]"
    start = re.compile(ts + r" Start training loop")
    output, rss, total = run_timed("onmt", command, start, minutes, work)
    interval = re.compile(ts + r" Step .*; +\d+/ *(?P<rate>\d+) tok/s;")
    return Result(
        "OpenNMT-py 3.5.1",
        interval_rate(output, start, interval, "%Y-%m-%d %H:%M:%S,%f"),
        rss,
        total,
    )


def run_attnviz(
    work: Path, minutes: float, data: Path, enc_hidden: int, processes: int | None
) -> Result:
    name = f"side-by-side-attnviz-{enc_hidden}"
    recipe = work / f"{name}.toml"
    recipe.write_text(
        ATTNVIZ_RECIPE.format(
            name=name,
            data=data,
            enc_hidden=enc_hidden,
            minutes=minutes,
            never=NEVER,
            threads=ENV["OMP_NUM_THREADS"],
        ),
        encoding="utf-8",
    )
    command = [
        sys.executable,
        "-m",
        "attnviz",
        "train",
        str(recipe),
        "--output",
        str(work / name),
        "--overwrite",
        *(["--processes", str(processes)] if processes else []),
    ]
    output, rss, total = run_timed(
        name, command, re.compile(re.escape(name) + ":"), minutes, work, stop_itself=True
    )
    rates = re.findall(r"tok_s=(\d+)", output)
    return Result(
        f"attnviz train (enc_hidden {enc_hidden})",
        float(rates[-1]) if rates else None,
        rss,
        total,
    )


def ratio(a: Result, b: Result) -> str:
    if a.tokens_per_s and b.tokens_per_s:
        return f"{a.tokens_per_s / b.tokens_per_s:.2f}x"
    return "n/a"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="training minutes per run")
    parser.add_argument(
        "--only",
        nargs="+",
        default=["joey", "attnviz", "onmt", "attnviz-onmt"],
        choices=["joey", "attnviz", "onmt", "attnviz-onmt"],
    )
    parser.add_argument(
        "--threads", type=int, default=2, help="torch threads of every run (attnviz: in all)"
    )
    parser.add_argument(
        "--attnviz-processes",
        type=int,
        help="attnviz's training processes (default: its own choice, one per thread)",
    )
    parser.add_argument("--work", type=Path, default=Path("/tmp/attnviz-side-by-side"))
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    ENV["OMP_NUM_THREADS"] = ENV["MKL_NUM_THREADS"] = str(args.threads)
    data = args.data.resolve()
    prepare_data(data, args.work)
    runs = {
        "joey": lambda: run_joey(args.work, args.minutes),
        "attnviz": lambda: run_attnviz(args.work, args.minutes, data, 256, args.attnviz_processes),
        "onmt": lambda: run_onmt(args.work, args.minutes),
        "attnviz-onmt": lambda: run_attnviz(
            args.work, args.minutes, data, 128, args.attnviz_processes
        ),
    }
    results = {}
    for key in args.only:
        print(f"training {key} for {args.minutes:g} min ...", flush=True)
        results[key] = runs[key]()
    header = f"{'run':34} {'target tokens/s':>16} {'peak MB, all':>13} {'largest':>8}"
    print(f"\n{header}")
    for result in results.values():
        rate = f"{result.tokens_per_s:.0f}" if result.tokens_per_s else "n/a"
        rss = f"{result.peak_rss_mb:.0f}" if result.peak_rss_mb else "n/a"
        total = f"{result.peak_total_mb:.0f}" if result.peak_total_mb else "n/a"
        print(f"{result.name:34} {rate:>16} {total:>13} {rss:>8}")
    if "joey" in results and "attnviz" in results:
        print(f"attnviz / Joey NMT:   {ratio(results['attnviz'], results['joey'])}")
    if "onmt" in results and "attnviz-onmt" in results:
        print(f"attnviz / OpenNMT-py: {ratio(results['attnviz-onmt'], results['onmt'])}")
    return 0 if all(r.tokens_per_s for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
