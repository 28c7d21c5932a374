"""The "tokenizer" section of config.json: attnviz's own joint SentencePiece model (the bundled
models tokenize as before) and a toolkit's tokenizer files, checked before anything is built."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from subword_nmt.learn_bpe import learn_bpe

import attnviz
from attnviz.align import align
from attnviz.checkpoint import load_checkpoint
from attnviz.checkpoint.files import CONFIG_FILE, FORMAT_VERSION, WEIGHTS_FILE, write_json_atomic
from attnviz.checkpoint.weights import save_weights
from attnviz.errors import CheckpointError
from attnviz.model import AttentionRNN, ModelConfig
from attnviz.tokenize import EOS_PIECE, SentencePieceTokenizer, ToolkitTokenizer

PRETRAINED = Path(__file__).resolve().parents[1] / "pretrained"
TEXTS = [
    "the red car is fast .",
    "the dog is running in the snow .",
    "a man is cleaning the windows of the red house .",
    "two children are playing near the river .",
] * 3

# Ids the bundled models gave these sentences before tokenizers had kinds.
BUNDLED_IDS = {
    "en-fr-additive": {
        "I don't know what he wants.": [264, 337, 261, 269, 373, 389, 387, 1664, 260],
        "Grüße aus Köln 😀": [1648, 350, 199, 192, 199, 163, 303, 357, 262, 2444, 7975, 626, 328]
        + [266, 244, 163, 156, 132],
    },
    "de-en-additive": {
        "I don't know what he wants.": [268, 353, 265, 269, 359, 383, 343, 935, 260],
        "Grüße aus Köln 😀": [7851, 281, 362, 964, 734, 368, 274, 301, 244, 163, 156, 132],
    },
}


@pytest.mark.parametrize("name", sorted(BUNDLED_IDS))
def test_bundled_models_tokenize_as_before(name: str) -> None:
    checkpoint = load_checkpoint(PRETRAINED / name)
    tokenizer = checkpoint.source_tokenizer
    assert isinstance(tokenizer, SentencePieceTokenizer)
    assert checkpoint.target_tokenizer is tokenizer
    for text, ids in BUNDLED_IDS[name].items():
        assert tokenizer.encode(text) == ids
        assert tokenizer.decode(ids) == text
    assert tokenizer.word_of_piece(tokenizer.pieces("I don't know")) == [0, 1, 1, 1, 2]


def joey_bpe_folder(folder: Path) -> Path:
    """A folder of a Joey NMT BPE model as attnviz imports it: codes, one vocabulary file per
    side (here the same), Joey's special ids, random weights."""
    folder.mkdir()
    codes = io.StringIO()
    learn_bpe(io.StringIO("\n".join(TEXTS) + "\n"), codes, 30, min_frequency=2)
    (folder / "bpe.codes").write_text(codes.getvalue(), encoding="utf-8")
    from subword_nmt.apply_bpe import BPE

    bpe = BPE(io.StringIO(codes.getvalue()))
    units = sorted({u for t in TEXTS for u in bpe.process_line(t).split()})
    vocab = ["<unk>", "<pad>", "<s>", "</s>", *units]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    torch.manual_seed(0)
    config = ModelConfig(len(vocab), 8, 8, 1, 8, attn_dim=8, pad_id=1, unk_id=0, bos_id=2)
    save_weights(folder / WEIGHTS_FILE, AttentionRNN(config).eval())
    tokenizer = {
        "kind": "bpe",
        "toolkit": "joeynmt",
        "source": "bpe.codes",
        "target": "bpe.codes",
        "source_vocab": "vocab.txt",
        "target_vocab": "vocab.txt",
        "lowercase": True,
        "pretokenizer": "none",
        "bpe_separator": "@@",
    }
    write_json_atomic(
        folder / CONFIG_FILE,
        {"format_version": FORMAT_VERSION, "model": config.to_dict(), "tokenizer": tokenizer},
    )
    return folder


def edit_tokenizer(folder: Path, **changes: Any) -> None:
    path = folder / CONFIG_FILE
    config = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            config["tokenizer"].pop(key, None)
        else:
            config["tokenizer"][key] = value
    path.write_text(json.dumps(config))


def test_a_toolkit_folder_translates_with_its_tokenizers(tmp_path: Path) -> None:
    translator = attnviz.load(joey_bpe_folder(tmp_path / "joey"))
    tokenizer = translator.source_tokenizer
    assert isinstance(tokenizer, ToolkitTokenizer) and tokenizer.toolkit == "joeynmt"
    t = translator.translate("The red WINDOWS  is fast .", beam_size=2)
    assert t.source_pieces[-1] == EOS_PIECE
    assert t.source_pieces[:-1] == tokenizer.pieces("the red windows is fast .")
    assert any(p.endswith("@@") for p in t.source_pieces)
    assert t.source_words[:-1] == ["the", "red", "windows", "is", "fast", "."]
    assert t.source_word_of_piece == tokenizer.word_of_piece(t.source_pieces)
    ids = [translator.target_tokenizer.piece_to_id(p) for p in t.target_pieces]
    assert t.text == translator.target_tokenizer.decode(ids)
    s = translator.score("the red car is fast .", "the red car is fast .")
    assert s.text == "the red car is fast ."


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"kind": "char"}, "tokenizer kind 'char' is not supported; expected one of"),
        ({"toolkit": "fairseq"}, "tokenizer toolkit 'fairseq' is not supported"),
        ({"pretokenizer": "spacy"}, "tokenizer pretokenizer 'spacy' is not supported"),
        ({"dropout": 0.1}, "unknown tokenizer keys dropout"),
        ({"normalize": 1}, "tokenizer.normalize must be of type bool"),
        ({"lowercase": "yes"}, "tokenizer.lowercase must be of type bool"),
        ({"pretokenizer": "moses"}, "Moses pretokenizer needs tokenizer.source_lang"),
        ({"source_lang": "english"}, "source_lang must be a language code"),
        ({"bpe_separator": "@@ "}, "bpe_separator must be 1-8 characters without spaces"),
        ({"target_vocab": None}, "names the files source, source_vocab, target, target_vocab"),
        ({"kind": "word"}, "a word tokenizer of joeynmt names the files source_vocab"),
        ({"toolkit": None}, "need tokenizer.toolkit"),
        ({"source_vocab": "../../vocab.txt"}, "tokenizer file '../../vocab.txt' is not allowed"),
        ({"source_vocab": "missing.txt"}, "missing.txt"),
        ({"source": "vocab.txt"}, "line 1 '<unk>' is not two units"),
    ],
)
def test_bad_tokenizer_sections_are_refused(tmp_path: Path, changes: dict, message: str) -> None:
    folder = joey_bpe_folder(tmp_path / "joey")
    edit_tokenizer(folder, **changes)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(folder)


def test_model_ids_must_be_the_vocabularys(tmp_path: Path) -> None:
    folder = joey_bpe_folder(tmp_path / "joey")
    path = folder / CONFIG_FILE
    config = json.loads(path.read_text())
    config["model"].update(pad_id=0, unk_id=1)
    path.write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"ids are \(0, 1, 2, 3\); the source tokenizer "):
        load_checkpoint(folder)


def test_vocabulary_size_must_be_the_models(tmp_path: Path) -> None:
    folder = joey_bpe_folder(tmp_path / "joey")
    with (folder / "vocab.txt").open("a", encoding="utf-8") as f:
        f.write("extra\n")
    with pytest.raises(CheckpointError, match="but the source tokenizer has"):
        load_checkpoint(folder)


def test_alignment_links_words_of_a_bpe_model(tmp_path: Path) -> None:
    translator = attnviz.load(joey_bpe_folder(tmp_path / "joey"))
    source, target = "the red windows is fast .", "the windows"
    assert len(translator.source_tokenizer.pieces(source)) > len(source.split())
    for method in ("argmax", "pieces"):
        links = align(translator, source, target, method)
        assert links and all(0 <= s < 6 and 0 <= t < 2 for s, t in links)  # words, not units
    assert {t for _, t in align(translator, source, target, "argmax")} == {0, 1}
