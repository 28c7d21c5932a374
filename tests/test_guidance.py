"""Guided alignment training: the recipe's [guidance] table, word links -> piece targets,
the loss, the links file of a run, resume, and guided attention aligning sooner than
unguided attention on the synthetic tasks (gold links known)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import attnviz
from attnviz.align.gold import GoldAlignment, alignment_scores, write_pharaoh
from attnviz.align.links import attention_links
from attnviz.data import Pair
from attnviz.errors import InputError
from attnviz.recipe import GuidanceSpec, read_recipe
from attnviz.synthetic import date_pairs, gold_pair, reversal_pairs
from attnviz.tokenize import word_of_piece
from attnviz.training.corpora import kept_indices, split_corpora
from attnviz.training.guidance import LINKS_FILE, guidance_loss, link_targets, piece_links
from attnviz.training.history import GUIDANCE_LOSS, TRAIN_LOSS
from attnviz.training.loop import train

RECIPE = """
name = "guided"
output = "run"
seed = 3
[data]
synthetic = "{task}"
synthetic_pairs = {pairs}
bleu_sentences = 5
test_fraction = 0.005
max_pieces = 30
max_ratio = 10.0
[tokenizer]
vocab_size = {vocab}
[model]
emb_dim = 16
enc_hidden = 16
dec_hidden = 32
attn_dim = 16
dropout = {dropout}
[training]
max_tokens = 400
lr = 0.01
warmup_steps = 10
validate_every = {validate_every}
max_steps = {steps}
patience = 1000
threads = 1
"""


def write_recipe(
    root: Path,
    task: str = "reversal",
    steps: int = 10,
    validate_every: int = 5,
    guidance: str = "",
    pairs: int = 500,
    dropout: float = 0.1,
) -> Path:
    (root / "pyproject.toml").write_text("")
    path = root / "recipe.toml"
    vocab = {"reversal": 340, "dates": 600}[task]
    text = RECIPE.format(
        task=task,
        steps=steps,
        validate_every=validate_every,
        pairs=pairs,
        vocab=vocab,
        dropout=dropout,
    )
    path.write_text(text + guidance)
    return path


def write_gold_links(path: Path) -> None:
    """The synthetic task's gold links of the recipe's training pairs, as the aligner would."""
    recipe = read_recipe(path)
    train_pairs, _, _ = split_corpora(recipe)
    recipe.output.mkdir(parents=True, exist_ok=True)
    links = [gold_pair(recipe.data.synthetic, p.source).alignment for p in train_pairs]
    write_pharaoh(recipe.output / LINKS_FILE, links)


def history(folder: Path) -> list[dict[str, str]]:
    with open(folder / "history.csv", newline="") as f:
        return list(csv.DictReader(f))


# -- the recipe ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "table, message",
    [
        ("weight = -1", "weight must be a number >= 0"),
        ('weight = "high"', "weight must be a number >= 0"),
        ("weight = nan", "weight must be a number >= 0"),
        ("decay = 0", r"decay must be a number in \(0, 1\]"),
        ("decay = 1.5", r"decay must be a number in \(0, 1\]"),
        ("decay_steps = 0", "decay_steps must be a positive integer"),
        ("decay_steps = 2.5", "decay_steps must be a positive integer"),
        ('heads = "some"', 'heads must be "all" or a head index'),
        ("heads = -1", 'heads must be "all" or a head index'),
        ("heads = 1", "heads = 1, but the model has 1 head"),
        ("wieght = 0.1", "unknown keys wieght"),
    ],
)
def test_bad_guidance_tables_are_rejected_with_a_reason(tmp_path, table, message):
    path = write_recipe(tmp_path, guidance=f"[guidance]\n{table}\n")
    with pytest.raises(InputError, match=rf"\[guidance\]: .*{message}"):
        read_recipe(path)


def test_the_guidance_table_reads_and_its_weight_decays_with_the_step(tmp_path):
    assert not read_recipe(write_recipe(tmp_path)).guidance.enabled
    table = '[guidance]\nweight = 0.5\ndecay = 0.5\ndecay_steps = 100\nheads = "all"\n'
    path = write_recipe(tmp_path, guidance=table)
    spec = read_recipe(path).guidance
    assert spec == GuidanceSpec(weight=0.5, decay=0.5, decay_steps=100, heads="all")
    assert [spec.weight_at(s) for s in (0, 100, 200)] == pytest.approx([0.5, 0.25, 0.125])
    assert spec.weight_at(50) == pytest.approx(0.5 * 0.5**0.5)
    multihead = path.read_text().replace("[model]", '[model]\nscorer = "multihead"\nheads = 4')
    path.write_text(multihead.replace('heads = "all"', "heads = 3"))
    assert read_recipe(path).guidance.heads == 3


# -- word links -> piece targets -> loss ---------------------------------------------------


def test_word_links_become_piece_links_with_an_equal_share_per_source_word():
    # source "the reddish car" -> pieces ▁the ▁red d ish ▁car; target "la voiture rougeâtre"
    # -> ▁la ▁voiture ▁rouge âtre
    source = word_of_piece(["▁the", "▁red", "d", "ish", "▁car"])
    target = word_of_piece(["▁la", "▁voiture", "▁rouge", "âtre"])
    links = piece_links({(0, 0), (2, 1), (1, 2), (2, 2), (5, 0)}, source, target)
    by_link = dict(zip(map(tuple, links.pieces.tolist()), links.weights.tolist(), strict=True))
    assert by_link == pytest.approx(
        {
            (0, 0): 1.0,  # the - la
            (4, 1): 1.0,  # car - voiture
            # rougeâtre's two pieces each link reddish (3 pieces) and car, half to each word
            **{(i, j): 1 / 6 for i in (1, 2, 3) for j in (2, 3)},
            (4, 2): 0.5,
            (4, 3): 0.5,
            (5, 4): 1.0,  # </s> - </s>; the link to word 5, which has no piece, is left out
        }
    )
    targets = link_targets([links], src_len=7, tgt_len=6)
    assert targets.shape == (1, 6, 7)
    assert targets[0].sum(-1).tolist() == pytest.approx([1, 1, 1, 1, 1, 0])  # row 5: padding


def test_null_links_point_the_aligners_unaligned_target_words_at_the_source_eos():
    source = word_of_piece(["▁the", "▁car"])  # "</s>" at 2
    target = word_of_piece(["▁la", "▁voi", "ture", "▁!"])  # words la voiture !
    links = {(0, 0), (1, 1)}  # "!" unaligned
    plain = piece_links(links, source, target)
    null = piece_links(links, source, target, null=True)

    def as_dict(found):
        return dict(zip(map(tuple, found.pieces.tolist()), found.weights.tolist(), strict=True))

    assert as_dict(null) == {**as_dict(plain), (2, 3): 1.0}  # "▁!" -> "</s>"
    assert (2, 3) not in as_dict(plain)


def test_the_loss_is_the_cross_entropy_of_the_linked_rows_only():
    attention = torch.tensor([[[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4]]])
    targets = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.5, 0.5]]])
    heads = torch.stack([attention, torch.full_like(attention, 1 / 3)], dim=2)  # two heads
    expected = -(np.log(0.7) + 0.5 * np.log(0.3) + 0.5 * np.log(0.4)) / 2  # row 1 unlinked
    assert float(guidance_loss(heads, targets, 0)) == pytest.approx(expected)
    mean = -(
        np.log(0.7 / 2 + 1 / 6) + 0.5 * np.log(0.3 / 2 + 1 / 6) + 0.5 * np.log(0.4 / 2 + 1 / 6)
    )
    assert float(guidance_loss(heads, targets, "all")) == pytest.approx(mean / 2, rel=1e-5)
    exact = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.5, 0.5]]])
    assert float(guidance_loss(exact[:, :, None], targets, "all")) == pytest.approx(np.log(2) / 2)


def test_links_follow_their_pairs_through_the_length_filter():
    pairs = [Pair("a", "b"), Pair("c", "d"), Pair("a", "b"), Pair("e", "f"), Pair("g", "h")]
    kept = [pairs[0], pairs[2], pairs[4]]
    assert kept_indices(pairs, kept) == [0, 2, 4]


# -- the links file of a run ---------------------------------------------------------------


def test_a_guided_run_with_bad_links_stops_and_keeps_them(tmp_path):
    path = write_recipe(tmp_path, guidance="[guidance]\nweight = 1.0\n")
    write_gold_links(path)
    links = tmp_path / "run" / LINKS_FILE
    lines = links.read_text().splitlines()
    links.write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(InputError, match=f"has {len(lines) - 1} lines but the text has"):
        train(read_recipe(path))
    links.write_text("0-7\n" + "\n".join(lines[1:]) + "\n")
    with pytest.raises(InputError, match="line 1: link 0-7 .* points past the end"):
        train(read_recipe(path))
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [LINKS_FILE]


def test_a_zero_weight_trains_exactly_as_without_guidance(tmp_path):
    """Bit for bit: the same weights and history (the second run reuses the first's
    tokenizer, as SentencePiece's multi-threaded training need not repeat itself)."""
    path = write_recipe(tmp_path)
    plain = train(read_recipe(path))
    text = path.read_text().replace('output = "run"', 'output = "zero"')
    text = text.replace("[tokenizer]", '[tokenizer]\nmodel = "run/spm.model"')
    path.write_text(text + "[guidance]\nweight = 0\ndecay = 0.5\n")
    zero = train(read_recipe(path))
    weights = [load_file(folder / "model.safetensors") for folder in (plain, zero)]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][name], weights[1][name]) for name in weights[0])
    curves = [
        [(r[TRAIN_LOSS], r["dev_loss"], r[GUIDANCE_LOSS]) for r in history(f)]
        for f in (plain, zero)
    ]
    assert curves[0] == curves[1] and curves[0][0][2] == ""


def test_a_resumed_guided_run_keeps_the_loss_curve(tmp_path):
    """Stopped at step 6 and resumed to 12, a guided run whose weight decays over the steps
    writes the same losses as one that ran straight through (with the same tokenizer)."""
    guidance = "[guidance]\nweight = 2.0\ndecay = 0.5\ndecay_steps = 4\n"
    path = write_recipe(tmp_path, steps=12, validate_every=3, guidance=guidance)
    write_gold_links(path)
    straight = train(read_recipe(path))
    text = path.read_text().replace('output = "run"', 'output = "resumed"')
    path.write_text(text.replace("[tokenizer]", '[tokenizer]\nmodel = "run/spm.model"'))
    write_gold_links(path)
    recipe = read_recipe(path)
    recipe.training.max_steps = 6
    train(recipe)
    recipe.training.max_steps = 12
    resumed = train(recipe, resume=True)
    curves = [
        [(r["step"], r[TRAIN_LOSS], r[GUIDANCE_LOSS], r["dev_loss"]) for r in history(f)]
        for f in (straight, resumed)
    ]
    assert [step for step, *_ in curves[0]] == ["3", "6", "9", "12"]
    assert all(float(guided) > 0 for _, _, guided, _ in curves[0])
    assert curves[1] == curves[0]


# -- guided attention aligns sooner --------------------------------------------------------


def attention_aer(folder: Path, task: str, method: str) -> float:
    """AER of the links read off the model's attention (forced decoding of the gold target)
    on 40 new pairs of the task."""
    translator = attnviz.load(folder)
    pairs = reversal_pairs(40, seed=99) if task == "reversal" else date_pairs(40, seed=99)
    scores = translator.score_batch([(p.source, p.target) for p in pairs])
    links = [
        attention_links(s, p.source, p.target, method) for s, p in zip(scores, pairs, strict=True)
    ]
    return alignment_scores(links, [GoldAlignment.of(p.alignment) for p in pairs]).aer


@pytest.mark.parametrize(
    "task, method, most, margin",
    [
        # each target letter links one source letter: each piece's most attended word
        # (guided AER 0.15 to 0.27 when only the float rounding of the loss's gradient
        # changes: 100 steps amplify it)
        ("reversal", "pieces", 0.3, 0.5),
        # the one target word links three source words: every word with 0.3 of its attention
        ("dates", "threshold", 0.4, 0.25),
    ],
)
def test_guided_attention_aligns_sooner_than_unguided(tmp_path, task, method, most, margin):
    """At the same 100 steps, the model trained with the gold links as guidance has attention
    that aligns far better than the same model trained without (measured here: reversal
    AER 0.15 guided vs 0.82 unguided, dates 0.30 vs 0.69)."""
    aer = {}
    for weight in (0, 3):
        root = tmp_path / f"weight-{weight}"
        root.mkdir()
        path = write_recipe(
            root,
            task=task,
            steps=100,
            validate_every=100,
            pairs=2000,
            dropout=0.0,
            guidance=f"[guidance]\nweight = {weight}\n",
        )
        if weight:
            write_gold_links(path)
        aer[weight] = attention_aer(train(read_recipe(path)), task, method)
    assert aer[3] <= most
    assert aer[3] <= aer[0] - margin
