"""Training: recipes, the training step's losses, a short real run, resume after SIGKILL,
two-process DDP (gloo), and the output folder that a run may not take from a checkpoint."""

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
import torch

import attnviz
from attnviz import cli
from attnviz.errors import InputError
from attnviz.model import AttentionRNN, ModelConfig
from attnviz.recipe import read_recipe
from attnviz.training.batching import make_batch
from attnviz.training.card import write_alignment_metrics
from attnviz.training.corpora import split_corpora, target_language
from attnviz.training.history import DEV_BLEU, DEV_LOSS, HISTORY_COLUMNS, STEP, TRAIN_LOSS
from attnviz.training.loop import train
from attnviz.training.state import (
    STATE_FILE,
    TrainState,
    load_state,
    save_state,
    state_summary,
)
from attnviz.training.step import adam, train_step

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


def history_rows(root: Path) -> list[dict[str, str]]:
    with open(root / "pretrained/tiny-reversal/history.csv", newline="") as f:
        return list(csv.DictReader(f))


def history_steps(root: Path) -> list[int]:
    return [int(row[STEP]) for row in history_rows(root)]


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


def _tiny_model() -> AttentionRNN:
    torch.manual_seed(0)
    config = ModelConfig(
        vocab_size=24,
        emb_dim=8,
        enc_hidden=8,
        dec_hidden=16,
        attn_dim=8,
        dropout=0.1,
        max_src_len=16,
        max_tgt_len=16,
    )
    return AttentionRNN(config)


def _tiny_batches(steps: int) -> list[tuple]:
    """The same random batches of 8 pairs on every call."""
    rng = random.Random(0)

    def ids() -> list[int]:
        return [rng.randrange(4, 24) for _ in range(rng.randint(1, 6))]

    batches = []
    for _ in range(steps):
        pairs = [(ids(), ids()) for _ in range(8)]
        batches.append(make_batch(pairs, 0, 2, 3))
    return batches


def _tiny_results(model: AttentionRNN, optimizer: torch.optim.Optimizer, batches: list) -> list:
    """(loss, target tokens) of one step per batch, at a rate 0.0025 higher each step."""
    return [
        train_step(
            model,
            optimizer,
            batch,
            clip=1.0,
            label_smoothing=0.1,
            pad_id=model.config.pad_id,
            lr=0.01 * (step + 1) / 4,
        )
        for step, batch in enumerate(batches)
    ]


def _tiny_steps(model: AttentionRNN, optimizer: torch.optim.Optimizer, batches: list) -> list:
    """The losses of one step per batch, from the same dropout masks on every call."""
    torch.manual_seed(1)
    return [loss for loss, _ in _tiny_results(model, optimizer, batches)]


def test_the_training_step_learns_what_it_always_has():
    """Four steps of a tiny model: losses pinned to the values of the training step before it
    became one function shared by the loop, ``attnviz bench`` and the tests, with PyTorch's
    default Adam before the fused one."""
    model = _tiny_model()
    assert (model.config.pad_id, model.config.bos_id, model.config.eos_id) == (0, 2, 3)
    optimizer = adam(model.parameters(), 1e-2)
    results = _tiny_results(model, optimizer, _tiny_batches(4))
    losses, tokens = zip(*results, strict=True)
    assert tokens == (36, 26, 33, 44)
    assert losses == pytest.approx([3.187323, 3.175524, 3.157674, 3.141215], rel=1e-5)
    assert optimizer.param_groups[0]["lr"] == 0.01


def test_the_fused_adam_takes_the_default_adams_steps():
    batches = _tiny_batches(6)
    default, fused = _tiny_model(), _tiny_model()
    default_losses = _tiny_steps(default, torch.optim.Adam(default.parameters(), 1e-2), batches)
    fused_losses = _tiny_steps(fused, adam(fused.parameters(), 1e-2), batches)
    assert fused_losses == pytest.approx(default_losses, rel=1e-6)
    fused_weights = fused.state_dict().values()
    for (name, a), b in zip(default.state_dict().items(), fused_weights, strict=True):
        # atol: Adam divides near-zero gradients by their near-zero root mean square, so a
        # rounding apart in the gradient moves such a weight by up to a few millionths.
        torch.testing.assert_close(b, a, rtol=1e-4, atol=2e-5, msg=name)
    assert default_losses[0] != default_losses[-1]  # the steps did move the weights


def test_a_state_saved_by_the_default_adam_resumes_with_the_fused_one(tmp_path):
    """A run saved before Adam was fused goes on fused, from the same moments."""
    batches = _tiny_batches(4)
    model = _tiny_model()
    optimizer = torch.optim.Adam(model.parameters(), 1e-2)
    _tiny_steps(model, optimizer, batches[:2])
    save_state(tmp_path / STATE_FILE, model, optimizer, TrainState(lr=0.01, step=2))
    expected = _tiny_steps(model, optimizer, batches[2:])

    resumed = _tiny_model()
    resumed_optimizer = adam(resumed.parameters(), 1e-2)
    assert load_state(tmp_path / STATE_FILE, resumed, resumed_optimizer).step == 2
    assert resumed_optimizer.param_groups[0]["fused"] is True
    assert _tiny_steps(resumed, resumed_optimizer, batches[2:]) == pytest.approx(expected, rel=1e-6)


def test_a_short_run_leaves_a_loadable_checkpoint(tmp_path):
    recipe = read_recipe(write_recipe(tmp_path))
    folder = train(recipe)
    rows = history_rows(tmp_path)
    assert [int(row[STEP]) for row in rows] == [20, 40, 60]
    assert list(rows[0]) == list(HISTORY_COLUMNS)
    # What the loop learns, pinned (values from before the loop became a package).
    assert [float(row[TRAIN_LOSS]) for row in rows] == pytest.approx(
        [4.8658, 3.8608, 3.8200], abs=2e-3
    )
    assert [float(row[DEV_LOSS]) for row in rows] == pytest.approx(
        [3.4729, 3.2935, 3.2966], abs=2e-3
    )
    assert [row[DEV_BLEU] for row in rows] == ["0.00"] * 3
    translator = attnviz.load(folder)
    assert translator.translate("a b c", beam_size=2).target_pieces[-1] == "</s>"
    checkpoint = translator.checkpoint
    assert checkpoint.snapshots == ["step-10"]
    assert checkpoint.card["parameters"] == sum(p.numel() for p in checkpoint.model.parameters())
    assert checkpoint.card["training"]["steps"] >= 20
    assert "synthetic reversal" in checkpoint.card["data"][0]["corpus"]
    assert (folder / "recipe.toml").read_text() == recipe.text


def test_a_run_stopped_by_its_time_budget_is_finished(tmp_path):
    """The loop stops and the test sets are scored by one rule on one clock: the run that
    ran out of time gets its test metrics, and resuming it trains no further step."""
    path = write_small_recipe(tmp_path)
    path.write_text(path.read_text().replace("max_steps = 2", "max_steps = 100000"))
    recipe = read_recipe(path)
    recipe.training.max_minutes = 0.01
    folder = train(recipe)
    state = state_summary(folder / STATE_FILE)
    assert state["elapsed_s"] >= 0.6 and 0 < state["step"] < 100000
    assert "metrics" in attnviz.load(folder).checkpoint.card
    train(recipe, resume=True)
    assert state_summary(folder / STATE_FILE)["step"] == state["step"]


def test_resume_after_sigkill_continues_the_same_history(tmp_path):
    recipe_path = write_recipe(tmp_path, max_steps=150, validate_every=5)
    state = tmp_path / "pretrained/tiny-reversal" / STATE_FILE
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

    path = write_recipe(tmp_path)
    path.write_text(path.read_text().replace('synthetic = "reversal"', f'synthetic = "{task}"'))
    train_pairs, dev, tests = split_corpora(read_recipe(path))
    assert list(tests) == [task] and len(train_pairs) > 2000
    held_out = {source_key(p.source) for p in dev + tests[task]}
    assert not any(source_key(p.source) in held_out for p in train_pairs)


def test_unknown_synthetic_task_is_refused(tmp_path):
    path = write_recipe(tmp_path)
    path.write_text(path.read_text().replace('synthetic = "reversal"', 'synthetic = "sorting"'))
    with pytest.raises(InputError, match="unknown synthetic task 'sorting'"):
        split_corpora(read_recipe(path))


def test_a_reverse_recipe_holds_out_the_same_sentences_the_other_way(tmp_path, shared_data):
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

    (tmp_path / "pyproject.toml").write_text("")
    shutil.copytree(reversal_checkpoint, tmp_path / "pretrained/x")
    recipe = tmp_path / "r.toml"
    text = (
        f'name = "x"\noutput = "pretrained/x"\n[data]\ndata_dir = "{shared_data}"\n'
        'multi30k = ["en", "fr"]\n'
        '[alignment]\nreverse_model = "pretrained/{reverse}"\n'
    )
    # A folder holding only the reverse model's recipe (its run has not ended) is not one yet.
    (tmp_path / "pretrained/not-trained").mkdir()
    (tmp_path / "pretrained/not-trained/recipe.toml").write_text('name = "not-trained"\n')
    recipe.write_text(text.format(reverse="not-trained"))
    card = write_alignment_metrics(read_recipe(recipe))
    assert "intersect" not in card["alignment"]["methods"]
    assert "pretrained/not-trained is not trained yet" in card["alignment"]["note"]
    recipe.write_text(text.format(reverse="x"))
    write_alignment_metrics(read_recipe(recipe))
    card = json.loads((tmp_path / "pretrained/x/card.json").read_text())
    assert {"pieces", "intersect", "grow-diag"} <= set(card["alignment"]["methods"])
    assert "note" not in card["alignment"] and card["data"].startswith("synthetic")


# -- the output folder ---------------------------------------------------------------------


def write_small_recipe(root: Path) -> Path:
    """The tiny recipe for 2 steps on fewer pairs: a few seconds, test-set scoring included."""
    path = write_recipe(root, max_steps=2, validate_every=2)
    path.write_text(path.read_text().replace("synthetic_pairs = 3000", "synthetic_pairs = 500"))
    return path


def train_cli(capsys, recipe_path: Path, *options: str) -> tuple[int, str]:
    """``attnviz train`` in this process: exit code and stderr."""
    code = cli.main(["train", str(recipe_path), *options])
    return code, capsys.readouterr().err


def test_a_recipe_without_output_trains_into_runs(tmp_path):
    path = write_small_recipe(tmp_path)
    path.write_text(path.read_text().replace('output = "pretrained/tiny-reversal"\n', ""))
    recipe = read_recipe(path)
    assert recipe.output == tmp_path / "runs/tiny-reversal"
    assert train(recipe) == recipe.output
    assert attnviz.load(recipe.output).name == "tiny-reversal"
    assert state_summary(recipe.output / STATE_FILE)["step"] == 2


def test_training_refuses_to_replace_a_checkpoint_unless_told(tmp_path, capsys):
    """A recipe whose output holds a checkpoint (as the shipped recipes' do) is refused, with
    --resume too; --output trains elsewhere, --overwrite replaces it."""
    path = write_small_recipe(tmp_path)
    shipped = tmp_path / "pretrained/tiny-reversal"
    assert train_cli(capsys, path)[0] == 0
    (shipped / STATE_FILE).unlink()  # shipped checkpoints come without the run's state
    before = {p.name: p.read_bytes() for p in shipped.iterdir() if p.is_file()}
    for options in ([], ["--resume"]):
        code, err = train_cli(capsys, path, *options)
        assert code == 2
        assert f"{shipped}" in err and "--overwrite" in err and "--output" in err
        assert {p.name: p.read_bytes() for p in shipped.iterdir() if p.is_file()} == before
    assert not (tmp_path / "runs").exists()

    assert train_cli(capsys, path, "--output", str(tmp_path / "elsewhere"))[0] == 0
    assert attnviz.load(tmp_path / "elsewhere").name == "tiny-reversal"
    assert {p.name: p.read_bytes() for p in shipped.iterdir() if p.is_file()} == before
    code, err = train_cli(capsys, path, "--output", str(tmp_path / "elsewhere"))
    assert code == 2 and "continue that run with --resume" in err

    path.write_text(path.read_text().replace("seed = 3", "seed = 4"))
    assert train_cli(capsys, path, "--overwrite")[0] == 0
    assert attnviz.load(shipped).checkpoint.card["training"]["steps"] == 2
    assert (shipped / "model.safetensors").read_bytes() != before["model.safetensors"]
    assert (shipped / "recipe.toml").read_text() == path.read_text()


def test_a_failed_run_leaves_no_folder_behind(tmp_path, capsys):
    path = write_recipe(tmp_path)
    text = path.read_text().replace('synthetic = "reversal"', 'tatoeba = "eng-fra"')
    path.write_text(text.replace("[data]", f'[data]\ndata_dir = "{tmp_path / "no-data"}"'))
    code, err = train_cli(capsys, path)
    assert code == 2 and "no such file" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pyproject.toml", "tiny.toml"]


# -- starting from a trained checkpoint ------------------------------------------------------


def test_a_run_can_start_from_a_trained_checkpoint(tmp_path):
    """init_from copies the checkpoint's weights in: with a learning rate of 0 the new run's
    checkpoint has exactly the weights it started from, and its card says where from."""
    first = read_recipe(write_small_recipe(tmp_path))
    train(first)
    path = tmp_path / "again.toml"
    text = path.with_name("tiny.toml").read_text()
    text = text.replace('name = "tiny-reversal"', 'name = "tiny-again"')
    text = text.replace('output = "pretrained/tiny-reversal"', 'output = "runs/tiny-again"')
    text = text.replace("lr = 0.01", "lr = 0.0")
    text = text.replace("threads = 1", 'threads = 1\ninit_from = "pretrained/tiny-reversal"')
    text = text.replace("vocab_size = 340", 'model = "pretrained/tiny-reversal/spm.model"')
    path.write_text(text)
    again = train(read_recipe(path))
    start, end = attnviz.load(first.output).checkpoint, attnviz.load(again).checkpoint
    for name, tensor in start.model.state_dict().items():
        assert torch.equal(end.model.state_dict()[name], tensor), name
    assert end.card["training"]["init_from"] == "pretrained/tiny-reversal"


def test_init_from_refuses_a_checkpoint_of_another_model_or_tokenizer(tmp_path):
    from attnviz.tokenize import SentencePieceTokenizer
    from attnviz.training.warm_start import load_initial_weights

    recipe = read_recipe(write_small_recipe(tmp_path))
    train(recipe)
    tokenizer = attnviz.load(recipe.output).checkpoint.source_tokenizer
    config = recipe.model_config(tokenizer.vocab_size)
    wider = AttentionRNN(ModelConfig.from_dict({**config.to_dict(), "emb_dim": 24}))
    with pytest.raises(InputError, match="model configuration differs"):
        load_initial_weights(wider, tokenizer, recipe.output)
    other = SentencePieceTokenizer.from_file(PRETRAINED / "reversal-dot" / "spm.model")
    with pytest.raises(InputError, match="tokenizer differs"):
        load_initial_weights(AttentionRNN(config), other, recipe.output)
    path = tmp_path / "tiny.toml"
    path.write_text(path.read_text().replace("threads = 1", 'threads = 1\ninit_from = "nowhere"'))
    with pytest.raises(InputError, match="init_from .*nowhere is not a folder"):
        read_recipe(path)
