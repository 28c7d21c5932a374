"""The fused output layer and label-smoothed loss: the value and gradients of F.linear then
F.cross_entropy, and the training steps that use it learning what they learned before."""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn.functional as F

from attnviz.model import AttentionRNN, ModelConfig
from attnviz.training.batching import make_batch
from attnviz.training.loop import dev_loss
from attnviz.training.output_loss import output_loss
from attnviz.training.step import batch_loss, guided_train_step, train_step

PAD = 0


def output_problem(bias: bool, rows: int = 37, vocab: int = 50, seed: int = 0):
    """features (rows, 16), weight (vocab, 16), bias or None, targets (rows,) with padding."""
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(rows, 16, generator=generator).requires_grad_()
    weight = torch.randn(vocab, 16, generator=generator).requires_grad_()
    bias_param = torch.randn(vocab, generator=generator).requires_grad_() if bias else None
    targets = torch.randint(1, vocab, (rows,), generator=generator)
    targets[::4] = PAD
    return features, weight, bias_param, targets


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("chunk_rows", [1, 8, 128])
def test_value_and_gradients_equal_cross_entropy_over_the_non_padding_rows(
    smoothing, bias, chunk_rows
):
    features, weight, bias_param, targets = output_problem(bias)
    params = [p for p in (features, weight, bias_param) if p is not None]
    expected = F.cross_entropy(
        F.linear(features, weight, bias_param),
        targets,
        ignore_index=PAD,
        label_smoothing=smoothing,
    )
    expected_grads = torch.autograd.grad(3.0 * expected, params)
    kept = targets != PAD
    got = output_loss(features[kept], weight, bias_param, targets[kept], smoothing, chunk_rows)
    got_grads = torch.autograd.grad(3.0 * got, params)
    torch.testing.assert_close(got, expected)
    for got_grad, expected_grad in zip(got_grads, expected_grads, strict=True):
        torch.testing.assert_close(got_grad, expected_grad)


def test_without_gradients_the_value_is_the_same():
    features, weight, bias, targets = output_problem(bias=True)
    with_grad = output_loss(features, weight, bias, targets, 0.1, chunk_rows=8)
    with torch.no_grad():
        without = output_loss(features, weight, bias, targets, 0.1, chunk_rows=8)
    assert not without.requires_grad
    torch.testing.assert_close(without, with_grad.detach())


def test_large_logits_do_not_overflow():
    features, weight, bias, targets = output_problem(bias=True)
    features = (features.detach() * 200).requires_grad_()
    expected = F.cross_entropy(F.linear(features, weight, bias), targets, label_smoothing=0.1)
    got = output_loss(features, weight, bias, targets, 0.1, chunk_rows=8)
    assert torch.isfinite(got)
    torch.testing.assert_close(got, expected)


# -- the training steps, pinned to the losses they gave with F.cross_entropy on the logits --


def small_model(**variant) -> tuple[ModelConfig, AttentionRNN, torch.optim.Optimizer]:
    torch.manual_seed(0)
    config = ModelConfig(
        vocab_size=300,
        emb_dim=16,
        enc_hidden=8,
        dec_hidden=16,
        attn_dim=8,
        dropout=0.1,
        max_src_len=16,
        max_tgt_len=16,
        **variant,
    )
    model = AttentionRNN(config)
    return config, model, torch.optim.Adam(model.parameters(), lr=1e-2)


def random_batches(count: int, seed: int) -> list[list[tuple[list[int], list[int]]]]:
    """``count`` batches of 8 pairs of 1 to 9 random ids each (so with padding)."""
    rng = random.Random(seed)

    def ids() -> list[int]:
        return [rng.randrange(4, 300) for _ in range(rng.randint(1, 9))]

    return [[(ids(), ids()) for _ in range(8)] for _ in range(count)]


def plain_steps(smoothing: float, **variant) -> tuple[list[float], AttentionRNN]:
    config, model, optimizer = small_model(**variant)
    losses = []
    for pairs in random_batches(5, seed=0):
        batch = make_batch(pairs, config.pad_id, config.bos_id, config.eos_id)
        loss, _ = train_step(
            model, optimizer, batch, clip=1.0, label_smoothing=smoothing, pad_id=config.pad_id
        )
        losses.append(loss)
    return losses, model


LUONG = {
    "decoder_order": "luong",
    "cell": "lstm",
    "input_feeding": True,
    "dec_layers": 2,
    "enc_layers": 2,
    "tie_output": False,
    "output_bias": False,
    "memory_proj": False,
    "init_state": "bridge",
}


@pytest.mark.parametrize(
    "smoothing, variant, expected",
    [
        (0.1, {}, [5.726094, 5.678668, 5.660888, 5.659047, 5.704850]),
        (0.0, {}, [5.727319, 5.674386, 5.654449, 5.651179, 5.704058]),
        (0.1, LUONG, [5.719929, 5.703063, 5.703213, 5.667769, 5.655385]),
    ],
)
def test_training_steps_learn_what_they_learned_before(smoothing, variant, expected):
    """Five steps of a small model on padded batches: each step's loss depends on every
    earlier step's gradients, so these pin the gradients as well as the loss."""
    losses, _ = plain_steps(smoothing, **variant)
    assert losses == pytest.approx(expected, abs=1e-4)


def test_guided_steps_learn_what_they_learned_before():
    config, model, optimizer = small_model(scorer="multihead", heads=2)
    generator = torch.Generator().manual_seed(1)
    results = []
    for pairs in random_batches(5, seed=2):
        batch = make_batch(pairs, config.pad_id, config.bos_id, config.eos_id)
        src, _, tgt_in, _ = batch
        shape = (src.shape[0], tgt_in.shape[1], src.shape[1])
        targets = torch.rand(shape, generator=generator).softmax(-1)
        translation, guidance, _ = guided_train_step(
            model,
            optimizer,
            batch,
            targets,
            weight=0.5,
            heads="all",
            clip=1.0,
            label_smoothing=0.1,
            pad_id=config.pad_id,
        )
        results.append((translation, guidance))
    translations, guidances = zip(*results, strict=True)
    assert translations == pytest.approx(
        [5.691415, 5.653939, 5.638836, 5.650081, 5.581933], abs=1e-4
    )
    assert guidances == pytest.approx(
        [13.473346, 13.980756, 7.500305, 7.436617, 9.738832], abs=1e-4
    )


def test_dev_loss_is_what_it_was():
    _, model = plain_steps(0.1)
    dev = [pair for batch in random_batches(2, seed=5) for pair in batch]
    assert dev_loss(model, dev, 40, "cpu") == pytest.approx(5.610818, abs=1e-4)


def test_batch_loss_equals_cross_entropy_of_the_logits():
    config, model, _ = small_model()
    model.eval()
    batch = make_batch(random_batches(1, seed=9)[0], config.pad_id, config.bos_id, config.eos_id)
    src, src_lengths, tgt_in, tgt_out = batch
    logits, _ = model(src, src_lengths, tgt_in)
    expected = F.cross_entropy(
        logits.flatten(0, 1), tgt_out.flatten(), ignore_index=config.pad_id, label_smoothing=0.2
    )
    loss, tokens = batch_loss(model, *batch, label_smoothing=0.2, pad_id=config.pad_id)
    torch.testing.assert_close(loss, expected)
    assert tokens == int((tgt_out != config.pad_id).sum())
