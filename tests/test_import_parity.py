"""`attnviz import` on models the real toolkits trained: attnviz prints what the toolkit printed.

The fixtures (tests/fixtures/toolkits/, see its README) hold Joey NMT 2.3 and OpenNMT-py 3.5.1
models with the toolkits' own greedy and beam-5 outputs and greedy attention. Each is imported
through the command line into a temporary folder, loaded like any checkpoint and decoded in
batches with the decoding defaults the import wrote.
"""

from __future__ import annotations

import argparse
import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from attnviz import cli
from attnviz.checkpoint import read_safetensors_header
from attnviz.translator import Translator, load

TOOLKITS = Path(__file__).resolve().parent / "fixtures" / "toolkits"
FIXTURES = ["joey-gru-bahdanau", "joey-lstm-luong", "onmt-lstm-general", "onmt-gru-mlp"]


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def import_args(name: str, output: Path) -> list[str]:
    folder = TOOLKITS / name
    if name.startswith("joey"):
        return ["import", "joey", str(folder), "-o", str(output)]
    return [
        "import",
        "onmt",
        str(folder / "model.pt"),
        "-o",
        str(output),
        "--src-tokenizer",
        str(folder / "spm.model"),
    ]


@pytest.fixture(scope="module")
def imported(tmp_path_factory) -> dict[str, Path]:
    """Every fixture imported with `attnviz import`, once for this module."""
    root = tmp_path_factory.mktemp("imported")
    folders = {}
    for name in FIXTURES:
        assert cli.main(import_args(name, root / name)) == 0
        folders[name] = root / name
    return folders


@pytest.fixture(scope="module")
def translators(imported: dict[str, Path]) -> dict[str, Translator]:
    return {name: load(folder) for name, folder in imported.items()}


@pytest.mark.parametrize("name", FIXTURES)
def test_greedy_output_and_attention_equal_the_toolkits(name: str, translators) -> None:
    folder = TOOLKITS / name
    source = lines(folder / "src.txt")
    found = translators[name].translate_batch(source, beam_size=1, batch_size=32)
    assert [t.text for t in found] == lines(folder / "greedy.txt")
    with np.load(folder / "attention_greedy.npz") as npz:
        for index, translation in enumerate(found):
            expected = npz[str(index)]
            assert translation.attention.shape == expected.shape, index
            np.testing.assert_allclose(translation.attention, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", FIXTURES)
def test_beam_5_output_equals_the_toolkits(name: str, translators) -> None:
    """With the decoding defaults the import wrote (beam 5, the toolkit's length penalty,
    length limit and stopping rule), on at least 99% of the lines."""
    folder = TOOLKITS / name
    translator = translators[name]
    assert translator.decoding.beam_size == 5
    found = translator.translate_batch(lines(folder / "src.txt"), batch_size=32)
    expected = lines(folder / "beam5.txt")
    same = sum(t.text == e for t, e in zip(found, expected, strict=True))
    assert same >= 0.99 * len(expected)


def test_the_folder_is_an_ordinary_float32_checkpoint(imported: dict[str, Path]) -> None:
    folder = imported["joey-lstm-luong"]
    config = json.loads((folder / "config.json").read_text())
    assert set(config) == {"format_version", "name", "model", "tokenizer", "decoding"}
    assert config["tokenizer"]["toolkit"] == "joeynmt"
    assert config["tokenizer"]["kind"] == "bpe"
    assert (folder / config["tokenizer"]["source"]).read_bytes() == (
        TOOLKITS / "joey-lstm-luong" / "bpe.codes"
    ).read_bytes()
    assert config["decoding"]["beam_stop"] == "joey"
    header = read_safetensors_header(folder / "model.safetensors")
    assert {entry["dtype"] for key, entry in header.items() if key != "__metadata__"} == {"F32"}
    source = imported["onmt-gru-mlp"] / "card.json"
    provenance = json.loads(source.read_text())["imported_from"]
    assert (provenance["toolkit"], provenance["file"]) == ("opennmt-py", "model.pt")
    assert provenance["config"]["global_attention"] == "mlp"
    assert provenance["files"]["spm.model"]


def test_translate_command_decodes_as_the_toolkit(imported, monkeypatch, capsys) -> None:
    """`attnviz translate -m FOLDER` uses the imported decoding defaults (beam 5)."""
    folder = TOOLKITS / "onmt-lstm-general"
    source = lines(folder / "src.txt")[:6]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(source) + "\n"))
    assert cli.main(["translate", "-m", str(imported["onmt-lstm-general"])]) == 0
    assert capsys.readouterr().out.splitlines() == lines(folder / "beam5.txt")[:6]


def test_align_command_maps_moses_words_back_to_the_typed_words(imported, monkeypatch, capsys):
    """joey-lstm-luong reads Moses tokens ("shirt," is "shirt" ","): `attnviz align` still
    gives Pharaoh links over the whitespace words of each line, and a line it cannot read is
    an error message for that line only."""
    pairs = [
        "A man in a blue shirt, smiling. ||| Ein Mann in einem blauen Hemd, lächelnd.",
        "Two dogs. ||| ",
        "Dogs run. ||| Hunde laufen.",
    ]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(pairs) + "\n"))
    code = cli.main(["align", "-m", str(imported["joey-lstm-luong"]), "--method", "argmax"])
    out, err = capsys.readouterr()
    assert code == 1 and "line 2:" in err and "Traceback" not in err
    first, second, third = out.splitlines()
    links = [tuple(map(int, link.split("-"))) for link in first.split()]
    assert {t for _, t in links} == set(range(7))  # argmax: one link per target word
    assert all(s < 7 for s, _ in links)
    assert second == "" and third


# ---------------------------------------------------------------------------------------------
# Refusals, through the command line


def run_import(args: list[str], capsys) -> tuple[int, str]:
    code = cli.main(args)
    return code, capsys.readouterr().err


def test_a_folder_that_holds_anything_is_refused_unless_overwrite(tmp_path, capsys) -> None:
    output = tmp_path / "out"
    output.mkdir()
    (output / "notes.txt").write_text("mine")
    code, err = run_import(import_args("onmt-gru-mlp", output), capsys)
    assert code == 2 and "already holds files" in err and "--overwrite" in err
    assert sorted(p.name for p in output.iterdir()) == ["notes.txt"]
    assert cli.main([*import_args("onmt-gru-mlp", output), "--overwrite"]) == 0
    assert (output / "notes.txt").read_text() == "mine"  # not a checkpoint file: kept
    assert load(output).config.cell == "gru"
    code, err = run_import(import_args("joey-gru-bahdanau", output), capsys)
    assert code == 2 and "already holds a checkpoint" in err
    assert cli.main([*import_args("joey-gru-bahdanau", output), "--overwrite"]) == 0
    # The OpenNMT-py model's files are gone (its joint vocab.txt), the Joey model's are there.
    names = sorted(p.name for p in output.iterdir())
    assert names == [
        "card.json",
        "config.json",
        "model.safetensors",
        "notes.txt",
        "source_vocab.txt",
        "spm.model",
        "target_vocab.txt",
    ]
    assert load(output).config.cell == "gru" and load(output).config.src_vocab_size


@pytest.mark.parametrize(
    ("name", "feature"),
    [("onmt-transformer", "'transformer' encoder"), ("onmt-copy-attn", "copy attention")],
)
def test_real_unsupported_checkpoints_are_refused(name, feature, tmp_path, capsys) -> None:
    output = tmp_path / "out"
    code, err = run_import(
        ["import", "onmt", str(TOOLKITS / name / "model.pt"), "-o", str(output)], capsys
    )
    assert code == 2 and feature in err and "attnviz imports OpenNMT-py RNN models" in err
    assert not output.exists()


def onmt_content(name: str) -> dict[str, Any]:
    with torch.serialization.safe_globals([argparse.Namespace]):
        return torch.load(TOOLKITS / name / "model.pt", weights_only=True)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("missing", r"tensor 'decoder\.attn\.linear_out\.weight' is missing"),
        ("misshapen", r"tensor 'decoder\.attn\.linear_out\.weight' has shape \[64, 127\]"),
    ],
)
def test_missing_or_misshapen_tensor_is_named(change, message, tmp_path, capsys) -> None:
    content = onmt_content("onmt-lstm-general")
    key = "decoder.attn.linear_out.weight"
    if change == "missing":
        del content["model"][key]
    else:
        content["model"][key] = content["model"][key][:, :-1].clone()
    path = tmp_path / "model.pt"
    torch.save(content, path)
    spm = TOOLKITS / "onmt-lstm-general" / "spm.model"
    args = ["import", "onmt", str(path), "-o", str(tmp_path / "out"), "--src-tokenizer", str(spm)]
    code, err = run_import(args, capsys)
    assert code == 2
    assert re.search(message, err), err


class Payload:
    """Unpickling this object opens (creates) ``marker``: a stand-in for any code."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.marker, "w"))


def test_reduce_payload_in_a_real_checkpoint_never_runs(tmp_path, capsys) -> None:
    marker = tmp_path / "pwned"
    content = onmt_content("onmt-gru-mlp")
    content["extra"] = Payload(str(marker))
    path = tmp_path / "model.pt"
    torch.save(content, path)
    assert not marker.exists()
    spm = TOOLKITS / "onmt-gru-mlp" / "spm.model"
    args = ["import", "onmt", str(path), "-o", str(tmp_path / "out"), "--src-tokenizer", str(spm)]
    code, err = run_import(args, capsys)
    assert code == 2 and "refused" in err and "open" in err
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


def test_options_of_the_other_toolkit_are_refused(tmp_path, capsys) -> None:
    args = [*import_args("joey-gru-bahdanau", tmp_path / "out"), "--src-tokenizer", "x.model"]
    code, err = run_import(args, capsys)
    assert code == 2 and "--src-tokenizer is not an option of `attnviz import joey`" in err
