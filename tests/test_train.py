"""Training: recipes, a short real run, resume after SIGKILL, and two-process DDP (gloo)."""

from __future__ import annotations

import csv
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import attnviz
from attnviz.errors import InputError
from attnviz.recipe import read_recipe
from attnviz.train import state_summary, train

PRETRAINED = Path(__file__).resolve().parents[1] / "pretrained"

TINY_RECIPE = """
name = "tiny-reversal"
output = "pretrained/tiny-reversal"
seed = 3
[data]
synthetic = "reversal"
synthetic_pairs = 3000
bleu_sentences = 40
max_pieces = 16
[tokenizer]
vocab_size = 340
[model]
emb_dim = 16
enc_hidden = 16
dec_hidden = 32
attn_dim = 16
dropout = 0.1
[training]
max_tokens = 400
lr = 0.01
warmup_steps = 10
validate_every = {validate_every}
max_steps = {max_steps}
snapshots = [10]
patience = 1000
threads = 1
"""


def write_recipe(root: Path, max_steps: int = 60, validate_every: int = 20) -> Path:
    (root / "pyproject.toml").write_text("")
    path = root / "tiny.toml"
    path.write_text(TINY_RECIPE.format(max_steps=max_steps, validate_every=validate_every))
    return path


def history_steps(root: Path) -> list[int]:
    with open(root / "pretrained/tiny-reversal/history.csv", newline="") as f:
        return [int(row["step"]) for row in csv.DictReader(f)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_cli(*args: str, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "attnviz", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize(
    "text, message",
    [
        ('name = "x"\n[training]\nbatch = 3\n', "unknown keys batch"),
        ('name = "x"\n[model]\nscorer = "cosine"\n', "unknown attention scorer"),
        ("name = \n", "not valid TOML"),
        ('nom = "x"\n', "needs `name`"),
    ],
)
def test_bad_recipes_are_rejected_with_a_reason(tmp_path, text, message):
    path = tmp_path / "r.toml"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        read_recipe(path)


def test_a_short_run_leaves_a_loadable_checkpoint(tmp_path):
    recipe = read_recipe(write_recipe(tmp_path))
    folder = train(recipe)
    assert history_steps(tmp_path) == [20, 40, 60]
    translator = attnviz.load(folder)
    assert translator.translate("a b c", beam_size=2).target_pieces[-1] == "</s>"
    checkpoint = translator.checkpoint
    assert checkpoint.snapshots == ["step-10"]
    assert checkpoint.card["parameters"] == sum(p.numel() for p in checkpoint.model.parameters())
    assert checkpoint.card["training"]["steps"] >= 20
    assert "synthetic reversal" in checkpoint.card["data"][0]["corpus"]
    assert (folder / "recipe.toml").read_text() == recipe.text


def test_resume_after_sigkill_continues_the_same_history(tmp_path):
    recipe_path = write_recipe(tmp_path, max_steps=150, validate_every=5)
    state = tmp_path / "runs/tiny-reversal/state.safetensors"
    rng = random.Random(7)
    for attempt in range(3):
        args = ["train", str(recipe_path)] + (["--resume"] if attempt else [])
        process = run_cli(*args, cwd=tmp_path)
        deadline = time.monotonic() + 120
        while not state.is_file() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.3, 2.0))  # a random moment, often in the middle of a save
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert attnviz.load(tmp_path / "pretrained/tiny-reversal").name == "tiny-reversal"
    process = run_cli("train", str(recipe_path), "--resume", cwd=tmp_path)
    assert process.wait(timeout=300) == 0, process.stderr.read()
    assert history_steps(tmp_path) == list(range(5, 151, 5))
    assert state_summary(state)["step"] == 150


def test_two_process_ddp_run_with_gloo(tmp_path):
    recipe_path = write_recipe(tmp_path, max_steps=8, validate_every=4)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        f"--master_port={free_port()}",
        "-m",
        "attnviz",
        "train",
        str(recipe_path),
    ]
    result = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert history_steps(tmp_path) == [4, 8]
    translator = attnviz.load(tmp_path / "pretrained/tiny-reversal")
    assert translator.checkpoint.card["training"]["processes"] == 2


def test_every_bundled_checkpoint_loads_and_translates():
    folders = sorted(p.parent for p in PRETRAINED.glob("*/config.json"))
    if not folders:
        pytest.skip("no checkpoint in pretrained/ yet")
    for folder in folders:
        translator = attnviz.load(folder)
        t = translator.translate("Where do you live?", beam_size=2)
        assert t.text.strip()
        assert t.attention.shape == (len(t.target_pieces), len(t.source_pieces))


@pytest.mark.parametrize("task", ["reversal", "dates"])
def test_synthetic_tasks_split_without_overlap(tmp_path, task):
    from attnviz.data import source_key
    from attnviz.train import split_corpora

    path = write_recipe(tmp_path)
    path.write_text(path.read_text().replace('synthetic = "reversal"', f'synthetic = "{task}"'))
    train_pairs, dev, tests = split_corpora(read_recipe(path))
    assert list(tests) == [task] and len(train_pairs) > 2000
    held_out = {source_key(p.source) for p in dev + tests[task]}
    assert not any(source_key(p.source) in held_out for p in train_pairs)


def test_unknown_synthetic_task_is_refused(tmp_path):
    from attnviz.train import split_corpora

    path = write_recipe(tmp_path)
    path.write_text(path.read_text().replace('synthetic = "reversal"', 'synthetic = "sorting"'))
    with pytest.raises(InputError, match="unknown synthetic task 'sorting'"):
        split_corpora(read_recipe(path))


def test_a_reverse_recipe_holds_out_the_same_sentences_the_other_way(tmp_path, shared_data):
    from attnviz.train import split_corpora, target_language

    recipe = tmp_path / "r.toml"
    text = f'name = "x"\n[data]\ndata_dir = "{shared_data}"\nmulti30k = ["en", "fr"]\n'
    recipe.write_text(text)
    forward = split_corpora(read_recipe(recipe))
    recipe.write_text(text + "reverse = true\n")
    backward = split_corpora(read_recipe(recipe))
    assert target_language(read_recipe(recipe)) == "en"
    for there, back in zip(forward, backward, strict=True):
        pairs = there if isinstance(there, list) else there["multi30k"]
        swapped = back if isinstance(back, list) else back["multi30k"]
        assert [(p.target, p.source) for p in pairs] == [(p.source, p.target) for p in swapped]


def test_alignment_only_rescores_the_card_with_the_reverse_model(
    tmp_path, shared_data, reversal_checkpoint
):
    import json
    import shutil

    from attnviz.train import write_alignment_metrics

    (tmp_path / "pyproject.toml").write_text("")
    shutil.copytree(reversal_checkpoint, tmp_path / "pretrained/x")
    recipe = tmp_path / "r.toml"
    text = (
        f'name = "x"\n[data]\ndata_dir = "{shared_data}"\nmulti30k = ["en", "fr"]\n'
        '[alignment]\nreverse_model = "pretrained/{reverse}"\n'
    )
    recipe.write_text(text.format(reverse="not-trained"))
    card = write_alignment_metrics(read_recipe(recipe))
    assert "intersect" not in card["alignment"]["methods"]
    assert "pretrained/not-trained is not trained yet" in card["alignment"]["note"]
    recipe.write_text(text.format(reverse="x"))
    write_alignment_metrics(read_recipe(recipe))
    card = json.loads((tmp_path / "pretrained/x/card.json").read_text())
    assert {"pieces", "intersect", "grow-diag"} <= set(card["alignment"]["methods"])
    assert "note" not in card["alignment"] and card["data"].startswith("synthetic")
