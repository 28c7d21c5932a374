"""The committed Joey NMT and OpenNMT-py fixtures are whole and agree with each other.

These read only the committed files (tests/fixtures/toolkits/, made by make_fixtures.py with
the real toolkits); the parity of attnviz's imports with these outputs is tested elsewhere.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import sentencepiece as spm

TOOLKITS = Path(__file__).resolve().parent / "fixtures" / "toolkits"
DECODED = ["joey-gru-bahdanau", "joey-lstm-luong", "onmt-lstm-general", "onmt-gru-mlp"]
REFUSED = ["onmt-transformer", "onmt-copy-attn"]
# SentencePiece fixtures: the source columns of the attention are the pieces, plus the </s>
# that Joey NMT appends to the source (OpenNMT-py appends none).
SOURCE_EOS = {"joey-gru-bahdanau": 1, "onmt-lstm-general": 0, "onmt-gru-mlp": 0}


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


@pytest.mark.parametrize("name", DECODED)
def test_outputs_cover_every_source_line(name: str) -> None:
    folder = TOOLKITS / name
    source = lines(folder / "src.txt")
    greedy, beam = lines(folder / "greedy.txt"), lines(folder / "beam5.txt")
    assert len(source) >= 100
    assert len(greedy) == len(beam) == len(source)
    assert all(line.strip() for line in greedy + beam)
    # Trained, not degenerate: the outputs differ per sentence, and beam search changes some.
    assert len(set(greedy)) > len(greedy) // 2
    assert any(g != b for g, b in zip(greedy, beam, strict=True))


@pytest.mark.parametrize("name", DECODED)
def test_greedy_attention_has_one_distribution_per_output_step(name: str) -> None:
    folder = TOOLKITS / name
    source = lines(folder / "src.txt")
    with np.load(folder / "attention_greedy.npz") as npz:
        assert sorted(npz.files, key=int) == [str(i) for i in range(len(source))]
        matrices = [npz[str(i)] for i in range(len(source))]
    for matrix in matrices:
        assert matrix.ndim == 2 and matrix.shape[0] >= 1
        assert np.all(matrix >= 0)
        np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-4)
    if name in SOURCE_EOS:
        tokenizer = spm.SentencePieceProcessor(model_file=str(folder / "spm.model"))
        widths = [len(tokenizer.encode(line, out_type=str)) + SOURCE_EOS[name] for line in source]
        assert [m.shape[1] for m in matrices] == widths


def test_joey_folders_are_as_joey_writes_them() -> None:
    for name in ("joey-gru-bahdanau", "joey-lstm-luong"):
        folder = TOOLKITS / name
        best = folder / "best.ckpt"
        assert best.is_symlink() and best.resolve().is_file()
        for file in ("config.yaml", "src_vocab.txt", "trg_vocab.txt"):
            assert (folder / file).is_file()
        assert lines(folder / "src_vocab.txt")[:4] == ["<unk>", "<pad>", "<s>", "</s>"]
    assert (TOOLKITS / "joey-gru-bahdanau" / "spm.model").is_file()
    assert (TOOLKITS / "joey-lstm-luong" / "bpe.codes").is_file()


def test_onmt_checkpoints_and_refusal_fixtures_exist() -> None:
    for name in ("onmt-lstm-general", "onmt-gru-mlp", *REFUSED):
        assert (TOOLKITS / name / "model.pt").stat().st_size > 10_000
        assert (TOOLKITS / name / "commands.txt").is_file()


def test_fixtures_stay_small() -> None:
    total = sum(f.stat().st_size for f in TOOLKITS.rglob("*") if f.is_file() and not f.is_symlink())
    assert total < 8 * 2**20
