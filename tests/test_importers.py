"""Reading Joey NMT and OpenNMT-py files: safe loading, configurations, tensor tables.

The checkpoints here are built in the test from small PyTorch modules arranged as the
toolkits arrange theirs (module names and shapes taken from joeynmt 2.3 and OpenNMT-py 3.5.1
source), and saved with ``torch.save`` as the toolkits save them. Parity with models the
toolkits trained themselves is tested on the toolkit fixtures.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import pickle
import zipfile
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from torch import nn

from attnviz import CheckpointError
from attnviz.importers import load_toolkit_checkpoint, read_joey_model, read_onmt_checkpoint
from attnviz.importers.provenance import json_safe

# ---------------------------------------------------------------------------------------------
# Payloads


class Evil:
    """Unpickling this creates a file: proof that something was unpickled."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.marker, "w"))


def torch_bytes(obj: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------
# A Joey NMT model folder (joeynmt/model.py build_model, encoders.py, decoders.py)


class JoeyEmbeddings(nn.Module):
    def __init__(self, vocab: int, dim: int) -> None:
        super().__init__()
        self.lut = nn.Embedding(vocab, dim, padding_idx=1)


class JoeyEncoder(nn.Module):
    def __init__(self, cell: type, emb: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.rnn = cell(emb, hidden, layers, batch_first=True, bidirectional=True)


class JoeyAttention(nn.Module):
    def __init__(self, kind: str, hidden: int, key: int) -> None:
        super().__init__()
        self.key_layer = nn.Linear(key, hidden, bias=False)
        if kind == "bahdanau":
            self.query_layer = nn.Linear(hidden, hidden, bias=False)
            self.energy_layer = nn.Linear(hidden, 1, bias=False)


class JoeyDecoder(nn.Module):
    def __init__(self, cell: type, emb: int, hidden: int, layers: int, key: int, vocab: int,
                 attention: str, feeding: bool, bridge: bool) -> None:  # fmt: skip
        super().__init__()
        self.rnn = cell(emb + hidden if feeding else emb, hidden, layers, batch_first=True)
        self.att_vector_layer = nn.Linear(hidden + key, hidden, bias=True)
        self.output_layer = nn.Linear(hidden, vocab, bias=False)
        self.attention = JoeyAttention(attention, hidden, key)
        if bridge:
            self.bridge_layer = nn.Linear(key, hidden, bias=True)


class JoeyModel(nn.Module):
    def __init__(self, cfg: dict[str, Any], src_vocab: int, trg_vocab: int) -> None:
        super().__init__()
        enc, dec = cfg["encoder"], cfg["decoder"]
        cell = nn.GRU if enc.get("rnn_type", "gru") == "gru" else nn.LSTM
        emb = enc["embeddings"]["embedding_dim"]
        self.src_embed = JoeyEmbeddings(src_vocab, emb)
        tied = cfg.get("tied_embeddings", False)
        self.trg_embed = self.src_embed if tied else JoeyEmbeddings(trg_vocab, emb)
        self.encoder = JoeyEncoder(cell, emb, enc["hidden_size"], enc.get("num_layers", 1))
        key = 2 * enc["hidden_size"]
        self.decoder = JoeyDecoder(
            cell, emb, dec["hidden_size"], dec.get("num_layers", 1), key, trg_vocab,
            dec.get("attention", "bahdanau"), dec.get("input_feeding", True),
            dec.get("init_hidden", "bridge") == "bridge",
        )  # fmt: skip
        if cfg.get("tied_softmax", False):
            self.decoder.output_layer.weight = self.trg_embed.lut.weight


JOEY_VOCAB = ["<unk>", "<pad>", "<s>", "</s>", "the", "a", "▁house", "▁haus", "s"]


def joey_config(**model: Any) -> dict[str, Any]:
    base = {
        "encoder": {
            "type": "recurrent",
            "rnn_type": "gru",
            "hidden_size": 6,
            "num_layers": 1,
            "embeddings": {"embedding_dim": 5},
        },
        "decoder": {
            "type": "recurrent",
            "rnn_type": "gru",
            "hidden_size": 7,
            "num_layers": 1,
            "attention": "bahdanau",
            "init_hidden": "bridge",
            "input_feeding": True,
            "embeddings": {"embedding_dim": 5},
        },
    }
    for key, value in model.items():
        if key in ("encoder", "decoder"):
            base[key].update(value)
        else:
            base[key] = value
    return {
        "name": "tiny",
        "joeynmt_version": "2.3.0",
        "data": {
            "src": {
                "lang": "en",
                "level": "bpe",
                "lowercase": False,
                "voc_file": "/home/someone/data/vocab.txt",
                "tokenizer_type": "sentencepiece",
                "tokenizer_cfg": {"model_file": "/home/someone/data/sp.model"},
            },
            "trg": {
                "lang": "de",
                "level": "bpe",
                "voc_file": "/home/someone/data/vocab.txt",
                "tokenizer_type": "sentencepiece",
                "tokenizer_cfg": {"model_file": "/home/someone/data/sp.model"},
            },
        },
        "testing": {"beam_size": 5, "beam_alpha": 1.0},
        "training": {"model_dir": "/home/someone/models/tiny", "batch_size": 32},
        "model": base,
    }


def write_joey_folder(folder: Path, cfg: dict[str, Any], seed: int = 0) -> JoeyModel:
    """A model folder as Joey writes it: config.yaml, vocabularies, the SentencePiece file,
    1200.ckpt and 800.ckpt, best.ckpt and latest.ckpt as symlinks."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    for side in ("src", "trg"):
        (folder / f"{side}_vocab.txt").write_text("\n".join(JOEY_VOCAB) + "\n", encoding="utf-8")
    (folder / "sp.model").write_bytes(b"sentencepiece model bytes")
    torch.manual_seed(seed)
    model = JoeyModel(cfg["model"], len(JOEY_VOCAB), len(JOEY_VOCAB))
    for step in (800, 1200):
        state = {
            "model_state": model.state_dict(),
            "optimizer_state": {"state": {}, "param_groups": [{"lr": 0.001, "params": [0]}]},
            "scaler_state": None,
            "scheduler_state": {"best": float("inf"), "_last_lr": [0.001]},
            "train_iter_state": torch.Generator().get_state(),
            "stats_state": {"steps": step, "best_ckpt_score": 3.5, "best_ckpt_iter": 1200},
        }
        torch.save(state, folder / f"{step}.ckpt")
        if step == 800:
            with torch.no_grad():  # the two checkpoints differ; the model is 1200.ckpt's
                for p in model.parameters():
                    p.add_(1.0)
    (folder / "best.ckpt").symlink_to("1200.ckpt")
    (folder / "latest.ckpt").symlink_to("1200.ckpt")
    return model


@pytest.fixture
def joey_folder(tmp_path: Path) -> Path:
    write_joey_folder(tmp_path / "model", joey_config())
    return tmp_path / "model"


# ---------------------------------------------------------------------------------------------
# An OpenNMT-py checkpoint (onmt/model_builder.py, rnn_encoder.py, decoder.py, stacked_rnn.py)


class OnmtEmbeddings(nn.Module):
    def __init__(self, vocab: int, dim: int) -> None:
        super().__init__()
        self.make_embedding = nn.Sequential()
        self.make_embedding.add_module(
            "emb_luts", nn.ModuleList([nn.Embedding(vocab, dim, padding_idx=1)])
        )


class OnmtStacked(nn.Module):
    def __init__(self, cell: type, layers: int, input_size: int, hidden: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            cell(input_size if i == 0 else hidden, hidden) for i in range(layers)
        )


class OnmtAttention(nn.Module):
    def __init__(self, dim: int, kind: str) -> None:
        super().__init__()
        if kind == "general":
            self.linear_in = nn.Linear(dim, dim, bias=False)
        elif kind == "mlp":
            self.linear_context = nn.Linear(dim, dim, bias=False)
            self.linear_query = nn.Linear(dim, dim, bias=True)
            self.v = nn.Linear(dim, 1, bias=False)
        self.linear_out = nn.Linear(dim * 2, dim, bias=kind == "mlp")


class OnmtModel(nn.Module):
    def __init__(self, opt: argparse.Namespace, vocab: int) -> None:
        super().__init__()
        lstm = opt.rnn_type == "LSTM"
        brnn = opt.encoder_type == "brnn"
        # ArgumentParser.update_model_opts: -layers and -hidden_size set both sides.
        hidden = opt.hidden_size if opt.hidden_size > 0 else opt.dec_hid_size
        layers = opt.layers if opt.layers > 0 else opt.enc_layers
        per_dir = hidden // (2 if brnn else 1)
        emb = opt.src_word_vec_size
        self.encoder = nn.Module()
        self.encoder.embeddings = OnmtEmbeddings(vocab, emb)
        rnn = nn.LSTM if lstm else nn.GRU
        self.encoder.rnn = rnn(emb, per_dir, layers, batch_first=True, bidirectional=brnn)
        if opt.bridge:
            total = per_dir * layers
            self.encoder.bridge = nn.ModuleList(
                nn.Linear(total, total) for _ in range(2 if lstm else 1)
            )
        self.decoder = nn.Module()
        self.decoder.embeddings = OnmtEmbeddings(vocab, emb)
        if opt.input_feed:
            cell = nn.LSTMCell if lstm else nn.GRUCell
            self.decoder.rnn = OnmtStacked(cell, layers, emb + hidden, hidden)
        else:
            self.decoder.rnn = rnn(emb, hidden, layers, batch_first=True)
        self.decoder.attn = OnmtAttention(hidden, opt.global_attention)
        self.generator = nn.Linear(hidden, vocab)


ONMT_VOCAB = ["<unk>", "<blank>", "<s>", "</s>", "▁the", "▁house", "s", "▁haus"]


def onmt_options(**changes: Any) -> argparse.Namespace:
    opt = argparse.Namespace(
        encoder_type="brnn",
        decoder_type="rnn",
        rnn_type="LSTM",
        enc_layers=2,
        dec_layers=2,
        layers=-1,
        enc_hid_size=8,
        dec_hid_size=8,
        hidden_size=-1,
        src_word_vec_size=6,
        tgt_word_vec_size=6,
        word_vec_size=-1,
        global_attention="general",
        input_feed=1,
        bridge=False,
        transforms=["sentencepiece", "filtertoolong"],
        _all_transform={"sentencepiece", "filtertoolong"},
        src_subword_model="/data/spm.model",
        tgt_subword_model="/data/spm.model",
        data={"corpus_1": {"path_src": "/data/train.en", "weight": 1}},
        seed=-1,
        label_smoothing=float("nan"),
    )
    for key, value in changes.items():
        setattr(opt, key, value)
    return opt


def write_onmt_checkpoint(path: Path, opt: argparse.Namespace, seed: int = 0) -> OnmtModel:
    torch.manual_seed(seed)
    model = OnmtModel(opt, len(ONMT_VOCAB))
    state = {k: v for k, v in model.state_dict().items() if "generator" not in k}
    checkpoint = {
        "model": state,
        "generator": model.generator.state_dict(),
        "vocab": {
            "src": ONMT_VOCAB,
            "tgt": ONMT_VOCAB,
            "data_task": "seq2seq",
            "decoder_start_token": "<s>",
        },
        "opt": opt,
        "optim": {"training_step": 100, "decay_step": 100, "optimizer": {"state": {}}},
    }
    torch.save(checkpoint, path)
    return model


@pytest.fixture
def spm_file(tmp_path: Path) -> Path:
    path = tmp_path / "given" / "spm.model"
    path.parent.mkdir()
    path.write_bytes(b"the sentencepiece model")
    return path


# ---------------------------------------------------------------------------------------------
# Safe loading


def test_payload_is_live_and_never_runs(tmp_path: Path) -> None:
    """A torch.save file carrying a __reduce__ payload: a plain torch.load runs it; attnviz
    refuses the file, names the class, and the payload never runs."""
    proof, marker = tmp_path / "proof", tmp_path / "pwned"
    torch.load(io.BytesIO(torch_bytes({"x": Evil(str(proof))})), weights_only=False)
    assert proof.exists()
    path = tmp_path / "best.ckpt"
    path.write_bytes(torch_bytes({"model_state": {"w": torch.ones(2)}, "x": Evil(str(marker))}))
    with pytest.raises(CheckpointError, match=r"needs class (io|builtins)\.open") as error:
        load_toolkit_checkpoint(path, (), "Joey NMT")
    assert "never runs code" in str(error.value)
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_raw_pickle_payload_never_runs(tmp_path: Path, protocol: int) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "model.pt"
    path.write_bytes(pickle.dumps({"model": Evil(str(marker))}, protocol))
    with pytest.raises(CheckpointError, match="refused|not a readable"):
        load_toolkit_checkpoint(path, (argparse.Namespace,), "OpenNMT-py")
    assert not marker.exists()


def test_allowlist_is_per_toolkit(tmp_path: Path) -> None:
    """argparse.Namespace is read for OpenNMT-py and refused, by name, for Joey NMT."""
    path = tmp_path / "x.pt"
    path.write_bytes(torch_bytes({"opt": argparse.Namespace(a=1), "w": torch.zeros(3)}))
    loaded = load_toolkit_checkpoint(path, (argparse.Namespace,), "OpenNMT-py")
    assert loaded.content["opt"].a == 1
    assert loaded.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(CheckpointError, match=r"argparse\.Namespace"):
        load_toolkit_checkpoint(path, (), "Joey NMT")


def test_size_cap_and_damaged_files(tmp_path: Path) -> None:
    path = tmp_path / "big.pt"
    path.write_bytes(torch_bytes({"w": torch.zeros(1000)}))
    with pytest.raises(CheckpointError, match="over the"):
        load_toolkit_checkpoint(path, (), "Joey NMT", max_bytes=1000)
    path.write_bytes(b"PK\x03\x04 not really a zip" + bytes(100))
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        load_toolkit_checkpoint(path, (), "Joey NMT")
    with pytest.raises(CheckpointError, match="missing"):
        load_toolkit_checkpoint(tmp_path / "absent.pt", (), "Joey NMT")


def test_compressed_members_are_refused(tmp_path: Path) -> None:
    """torch.save writes stored members; a deflated one (a likely zip bomb) is refused before
    PyTorch would decompress it."""
    original = torch_bytes({"w": torch.zeros(100_000)})
    recompressed = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(original)) as source,
        zipfile.ZipFile(recompressed, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            target.writestr(info.filename, source.read(info))
    path = tmp_path / "bomb.pt"
    path.write_bytes(recompressed.getvalue())
    assert len(recompressed.getvalue()) < len(original) / 10  # it really is compressed
    with pytest.raises(CheckpointError, match="is compressed"):
        load_toolkit_checkpoint(path, (), "Joey NMT")


# ---------------------------------------------------------------------------------------------
# Joey NMT


def test_joey_gru_bahdanau_bridge(joey_folder: Path) -> None:
    imported = read_joey_model(joey_folder)
    m = imported.model
    assert (m["cell"], m["decoder_order"], m["scorer"], m["init_state"]) == (
        "gru",
        "luong",
        "additive",
        "bridge",
    )
    assert (m["enc_hidden"], m["dec_hidden"], m["emb_dim"], m["attn_dim"]) == (6, 7, 5, 7)
    assert m["input_feeding"] and not m["memory_proj"] and m["source_eos"]
    assert (m["output_bias"], m["tie_output"], m["src_vocab_size"]) == (False, False, 9)
    assert (m["pad_id"], m["unk_id"], m["bos_id"], m["eos_id"]) == (1, 0, 2, 3)
    loaded = torch.load(joey_folder / "1200.ckpt", weights_only=True)["model_state"]
    t = imported.tensors
    assert torch.equal(
        t["scorer.query_proj.weight"], loaded["decoder.attention.query_layer.weight"]
    )
    assert torch.equal(t["scorer.key_proj.bias"], torch.zeros(7))
    assert torch.equal(t["attn_out.weight"], loaded["decoder.att_vector_layer.weight"])
    assert torch.equal(t["decoder_cells.0.weight_ih"], loaded["decoder.rnn.weight_ih_l0"])
    assert t["decoder_cells.0.weight_ih"].shape == (21, 5 + 7)  # [e(y); a_t-1]
    assert torch.equal(
        t["encoder.weight_hh_l0_reverse"], loaded["encoder.rnn.weight_hh_l0_reverse"]
    )
    assert t["bridge.weight"].shape == (7, 12) and t["output_weight"].shape == (9, 7)
    assert all(v.dtype == torch.float32 and v.is_contiguous() for v in t.values())


def test_joey_files_are_found_by_name(joey_folder: Path) -> None:
    """config.yaml's paths point at the training machine; the folder's files are used."""
    imported = read_joey_model(joey_folder)
    tok = imported.tokenizer
    assert tok["kind"] == "sentencepiece" and tok["source"] == tok["target"] == "spm.model"
    assert imported.files["spm.model"] == b"sentencepiece model bytes"
    assert imported.files[tok["source_vocab"]].decode().splitlines() == JOEY_VOCAB
    assert (tok["source_lang"], tok["target_lang"], tok["pretokenizer"]) == ("en", "de", "none")
    (joey_folder / "sp.model").unlink()
    with pytest.raises(CheckpointError, match="'sp.model'.*not in the model folder"):
        read_joey_model(joey_folder)


def test_joey_vocabulary_gets_its_specials_first(joey_folder: Path) -> None:
    """A vocabulary file without the special symbols reads as Joey reads it: specials first,
    repeats dropped; its size must match the embedding."""
    (joey_folder / "trg_vocab.txt").write_text("the\n<s>\nhaus\n", encoding="utf-8")
    with pytest.raises(CheckpointError, match=r"'trg_embed\.lut\.weight' has shape \[9, 5\]"):
        read_joey_model(joey_folder)
    (joey_folder / "trg_vocab.txt").write_text("the\n<s>\nhaus\nx\ny\nz\n", encoding="utf-8")
    tokens = read_joey_model(joey_folder).files["target_vocab.txt"].decode().splitlines()
    assert tokens == ["<unk>", "<pad>", "<s>", "</s>", "the", "haus", "x", "y", "z"]


def test_joey_subword_nmt_with_moses(joey_folder: Path) -> None:
    cfg = yaml.safe_load((joey_folder / "config.yaml").read_text())
    for side in ("src", "trg"):
        cfg["data"][side].update(
            tokenizer_type="subword-nmt",
            lowercase=True,
            tokenizer_cfg={"codes": "/home/someone/bpe.codes", "pretokenizer": "moses"},
        )
    (joey_folder / "config.yaml").write_text(yaml.safe_dump(cfg))
    (joey_folder / "bpe.codes").write_text("#version: 0.2\nt h\n", encoding="utf-8")
    tok = read_joey_model(joey_folder).tokenizer
    assert (tok["kind"], tok["source"], tok["bpe_separator"]) == ("bpe", "bpe.codes", "@@")
    assert (tok["lowercase"], tok["pretokenizer"]) == (True, "moses")
    cfg["data"]["trg"]["tokenizer_cfg"]["pretokenizer"] = "none"
    (joey_folder / "config.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(CheckpointError, match="pretokenizer"):
        read_joey_model(joey_folder)
    cfg["data"]["src"]["level"] = "char"
    (joey_folder / "config.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(CheckpointError, match="'char' level tokenization"):
        read_joey_model(joey_folder)


def test_joey_checkpoint_choice_and_provenance(joey_folder: Path) -> None:
    best = read_joey_model(joey_folder)
    other = read_joey_model(joey_folder, checkpoint="800.ckpt")
    assert best.provenance["file"] == "1200.ckpt"
    assert other.provenance["file"] == "800.ckpt"
    digest = hashlib.sha256((joey_folder / "800.ckpt").read_bytes()).hexdigest()
    assert other.provenance["sha256"] == digest
    assert not torch.equal(best.tensors["embed.weight"], other.tensors["embed.weight"])
    p = best.provenance
    assert (p["toolkit"], p["version"]) == ("joeynmt", "2.3.0")
    assert p["config"]["model"]["decoder"]["attention"] == "bahdanau"
    assert set(p["files"]) == {"config.yaml", "src_vocab.txt", "trg_vocab.txt", "sp.model"}
    json.dumps(p, allow_nan=False)
    with pytest.raises(CheckpointError, match=r"no such checkpoint file; the folder has .*1200"):
        read_joey_model(joey_folder, checkpoint="5.ckpt")


def test_joey_symlink_out_of_the_folder_is_refused(joey_folder: Path, tmp_path: Path) -> None:
    """best.ckpt pointing outside the folder is never opened (here: a live payload)."""
    marker = tmp_path / "pwned"
    outside = tmp_path / "elsewhere.ckpt"
    outside.write_bytes(pickle.dumps(Evil(str(marker))))
    (joey_folder / "best.ckpt").unlink()
    (joey_folder / "best.ckpt").symlink_to(outside)
    with pytest.raises(CheckpointError, match="leads outside the model folder"):
        read_joey_model(joey_folder)
    with pytest.raises(CheckpointError, match="leads outside the model folder"):
        read_joey_model(joey_folder, checkpoint="../elsewhere.ckpt")
    assert not marker.exists()
    (joey_folder / "best.ckpt").unlink()  # without best.ckpt Joey takes latest.ckpt
    assert read_joey_model(joey_folder).provenance["file"] == "1200.ckpt"


def test_joey_lstm_luong_tied_two_layers(tmp_path: Path) -> None:
    cfg = joey_config(
        encoder={"rnn_type": "lstm", "hidden_size": 4, "num_layers": 2},
        decoder={
            "rnn_type": "lstm",
            "hidden_size": 5,
            "num_layers": 2,
            "attention": "luong",
            "init_hidden": "zero",
            "input_feeding": False,
        },
        tied_embeddings=True,
        tied_softmax=True,
    )
    model = write_joey_folder(tmp_path / "m", cfg)
    imported = read_joey_model(tmp_path / "m")
    m, t = imported.model, imported.tensors
    assert (m["cell"], m["scorer"], m["init_state"], m["dec_layers"]) == (
        "lstm",
        "general",
        "zero",
        2,
    )
    assert m["src_vocab_size"] is None and m["tie_output"] and not m["input_feeding"]
    assert "src_embed.weight" not in t and "output_weight" not in t and "bridge.weight" not in t
    assert t["decoder_cells.0.weight_ih"].shape == (20, 5) and t[
        "decoder_cells.1.weight_ih"
    ].shape == (20, 5)
    assert t["encoder.weight_ih_l1_reverse"].shape == (16, 8)
    assert t["scorer.key_proj.weight"].shape == (5, 8)
    assert imported.tokenizer["source_vocab"] == imported.tokenizer["target_vocab"] == "vocab.txt"
    # Luong general: Joey scores h . (W m); the engine's general scorer projects keys the same.
    h, memory = torch.randn(5), torch.randn(3, 8)
    joey = memory @ model.decoder.attention.key_layer.weight.t() @ h
    assert torch.allclose(memory @ t["scorer.key_proj.weight"].t() @ h, joey)


def test_joey_tied_tensors_must_agree(tmp_path: Path) -> None:
    cfg = joey_config(tied_embeddings=True)
    write_joey_folder(tmp_path / "m", cfg)
    ckpt = torch.load(tmp_path / "m" / "1200.ckpt", weights_only=True)
    ckpt["model_state"]["src_embed.lut.weight"] = ckpt["model_state"]["src_embed.lut.weight"] + 1
    torch.save(ckpt, tmp_path / "m" / "1200.ckpt")
    with pytest.raises(CheckpointError, match="'src_embed.lut.weight' should be the same"):
        read_joey_model(tmp_path / "m")


@pytest.mark.parametrize(
    ("model", "feature"),
    [
        ({"decoder": {"type": "transformer"}}, "'transformer' decoder"),
        ({"encoder": {"type": "transformer"}}, "'transformer' encoder"),
        ({"encoder": {"bidirectional": False}}, "unidirectional encoder"),
        ({"decoder": {"embeddings": {"embedding_dim": 5, "scale": True}}}, "embedding scaling"),
        ({"decoder": {"rnn_type": "lstm"}}, "rnn_type"),
        ({"decoder": {"activation": "relu"}}, "activation"),
    ],
)
def test_joey_unsupported_architectures(tmp_path: Path, model: dict, feature: str) -> None:
    cfg = joey_config()
    write_joey_folder(tmp_path / "m", cfg)
    for key, value in model.items():
        cfg["model"][key].update(value)
    (tmp_path / "m" / "config.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(CheckpointError, match=feature) as error:
        read_joey_model(tmp_path / "m")
    assert "attnviz imports Joey NMT recurrent models" in str(error.value)


def test_joey_decoder_type_defaults_to_transformer(joey_folder: Path) -> None:
    cfg = yaml.safe_load((joey_folder / "config.yaml").read_text())
    del cfg["model"]["decoder"]["type"]
    (joey_folder / "config.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(CheckpointError, match="'transformer' decoder"):
        read_joey_model(joey_folder)


def test_joey_missing_and_misshapen_tensors(joey_folder: Path) -> None:
    path = joey_folder / "1200.ckpt"
    ckpt = torch.load(path, weights_only=True)
    state = ckpt["model_state"]
    del state["decoder.bridge_layer.bias"]
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match=r"tensor 'decoder\.bridge_layer\.bias' is missing"):
        read_joey_model(joey_folder)
    state["decoder.bridge_layer.bias"] = torch.zeros(7)
    state["decoder.att_vector_layer.weight"] = torch.zeros(7, 18)
    torch.save(ckpt, path)
    with pytest.raises(
        CheckpointError, match=r"'decoder\.att_vector_layer\.weight' has shape \[7, 18\].*\[7, 19\]"
    ):
        read_joey_model(joey_folder)
    state["decoder.att_vector_layer.weight"] = torch.zeros(7, 19)
    state["decoder.coverage.weight"] = torch.zeros(7)
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match=r"does not know: decoder\.coverage\.weight"):
        read_joey_model(joey_folder)
    del state["decoder.coverage.weight"]
    state["decoder.att_vector_layer.bias"] = torch.full((7,), float("nan"))
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match="NaN"):
        read_joey_model(joey_folder)


def test_joey_decoding_defaults(joey_folder: Path) -> None:
    assert read_joey_model(joey_folder).decoding == {
        "length_penalty": "gnmt",
        "alpha": 1.0,
        "max_len_a": 1.5,
        "max_len_b": 0,
        "beam_stop": "joey",
        "beam_size": 5,
    }
    cfg = yaml.safe_load((joey_folder / "config.yaml").read_text())
    cfg["testing"] = {"max_output_length": 40}
    (joey_folder / "config.yaml").write_text(yaml.safe_dump(cfg))
    imported = read_joey_model(joey_folder)
    assert imported.decoding["length_penalty"] == "none" and imported.decoding["beam_size"] == 1
    assert (imported.decoding["max_len_a"], imported.decoding["max_len_b"]) == (0.0, 40)
    assert imported.model["max_tgt_len"] == 40


# ---------------------------------------------------------------------------------------------
# OpenNMT-py


def test_onmt_lstm_general_input_feed(tmp_path: Path, spm_file: Path) -> None:
    path = tmp_path / "model_step_100.pt"
    model = write_onmt_checkpoint(path, onmt_options())
    imported = read_onmt_checkpoint(path, src_tokenizer=spm_file)
    m, t = imported.model, imported.tensors
    assert (m["cell"], m["scorer"], m["init_state"], m["decoder_order"]) == (
        "lstm",
        "general",
        "encoder_final",
        "luong",
    )
    assert (m["enc_hidden"], m["enc_layers"], m["dec_layers"], m["bidirectional"]) == (
        4,
        2,
        2,
        True,
    )
    assert (m["attn_out_bias"], m["attn_out_activation"], m["source_eos"]) == (False, "tanh", False)
    assert (m["pad_id"], m["unk_id"], m["bos_id"], m["eos_id"]) == (1, 0, 2, 3)
    assert m["output_bias"] and not m["tie_output"] and m["src_vocab_size"] == 8
    attn = model.decoder.attn
    # general: OpenNMT scores (W_in h) . m; the engine's key projection gives the same scores.
    h, memory = torch.randn(8), torch.randn(3, 8)
    onmt = memory @ (attn.linear_in.weight @ h)
    assert torch.allclose((memory @ t["scorer.key_proj.weight"].t()) @ h, onmt)
    # linear_out: OpenNMT reads [c; h]; the engine's canonical input is [h; c].
    c = torch.randn(8)
    onmt_out = attn.linear_out.weight @ torch.cat([c, h])
    assert torch.allclose(t["attn_out.weight"] @ torch.cat([h, c]), onmt_out)
    cell = model.decoder.rnn.layers[1]
    assert torch.equal(t["decoder_cells.1.weight_hh"], cell.weight_hh)
    assert t["decoder_cells.0.weight_ih"].shape == (32, 6 + 8)
    assert torch.equal(t["output_bias"], model.generator.bias)
    tok = imported.tokenizer
    assert tok["kind"] == "sentencepiece" and imported.files[tok["source"]] == spm_file.read_bytes()
    assert imported.files[tok["target_vocab"]].decode().splitlines() == ONMT_VOCAB
    assert imported.decoding == {
        "length_penalty": "length_norm",
        "alpha": 1.0,
        "max_len_a": 1.25,
        "max_len_b": 5,
        "beam_stop": "onmt",
        "beam_size": 5,
    }
    p = imported.provenance
    assert (p["toolkit"], p["file"]) == ("opennmt-py", "model_step_100.pt")
    assert p["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert p["config"]["_all_transform"] == ["filtertoolong", "sentencepiece"]
    assert p["config"]["label_smoothing"] == "nan"
    json.dumps(p, allow_nan=False)


def test_onmt_gru_mlp_shared_without_input_feed(tmp_path: Path) -> None:
    opt = onmt_options(
        rnn_type="GRU",
        global_attention="mlp",
        input_feed=0,
        layers=1,
        share_embeddings=True,
        share_decoder_embeddings=True,
        hidden_size=6,
        transforms=[],
        _all_transform=set(),
    )
    path = tmp_path / "m.pt"
    torch.manual_seed(1)
    model = OnmtModel(opt, len(ONMT_VOCAB))
    model.decoder.embeddings.make_embedding.emb_luts[
        0
    ].weight = model.encoder.embeddings.make_embedding.emb_luts[0].weight
    model.generator.weight = model.decoder.embeddings.make_embedding.emb_luts[0].weight
    state = {k: v for k, v in model.state_dict().items() if "generator" not in k}
    vocab = {"src": ONMT_VOCAB, "tgt": ONMT_VOCAB, "data_task": "seq2seq"}
    torch.save(
        {"model": state, "generator": model.generator.state_dict(), "vocab": vocab, "opt": opt},
        path,
    )
    imported = read_onmt_checkpoint(path)
    m, t = imported.model, imported.tensors
    assert (m["scorer"], m["attn_out_bias"], m["attn_out_activation"]) == ("additive", True, "none")
    assert (m["init_state"], m["enc_layers"], m["input_feeding"]) == ("encoder_final", 1, False)
    assert m["src_vocab_size"] is None and m["tie_output"]
    assert torch.equal(t["decoder_cells.0.weight_ih"], model.decoder.rnn.weight_ih_l0)
    # mlp: v . tanh(W_q h + b_q + U m) equals the additive scorer with the bias on the keys.
    attn = model.decoder.attn
    h, memory = torch.randn(6), torch.randn(4, 6)
    onmt = torch.tanh(attn.linear_query(h) + attn.linear_context(memory)) @ attn.v.weight[0]
    keys = memory @ t["scorer.key_proj.weight"].t() + t["scorer.key_proj.bias"]
    engine = torch.tanh(keys + t["scorer.query_proj.weight"] @ h) @ t["scorer.energy.weight"][0]
    assert torch.allclose(engine, onmt)
    assert imported.tokenizer["kind"] == "word" and "source" not in imported.tokenizer


@pytest.mark.parametrize(
    ("changes", "feature"),
    [
        ({"copy_attn": True}, "copy attention"),
        ({"coverage_attn": True}, "coverage attention"),
        ({"encoder_type": "transformer"}, "'transformer' encoder"),
        ({"decoder_type": "transformer"}, "'transformer' decoder"),
        ({"context_gate": "both"}, "context gate"),
        ({"bridge": True}, "ReLU bridge"),
        ({"global_attention_function": "sparsemax"}, "sparsemax"),
        ({"position_encoding": True}, "position encoding"),
        ({"rnn_type": "SRU"}, "SRU"),
        ({"dec_layers": 1}, "depths"),
        ({"transforms": ["onmt_tokenize"], "_all_transform": {"onmt_tokenize"}}, "onmt_tokenize"),
    ],
)
def test_onmt_unsupported_features(tmp_path: Path, changes: dict, feature: str) -> None:
    path = tmp_path / "m.pt"
    write_onmt_checkpoint(path, onmt_options())
    ckpt = torch.load(path, weights_only=False)
    for key, value in changes.items():
        setattr(ckpt["opt"], key, value)
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match=feature) as error:
        read_onmt_checkpoint(path, src_tokenizer=path)
    assert "attnviz imports OpenNMT-py RNN models" in str(error.value)


def test_onmt_tokenizer_must_be_given(tmp_path: Path, spm_file: Path) -> None:
    path = tmp_path / "m.pt"
    write_onmt_checkpoint(path, onmt_options(tgt_subword_model="/data/spm.de.model"))
    with pytest.raises(CheckpointError, match=r"'/data/spm.model'.*--src-tokenizer"):
        read_onmt_checkpoint(path)
    with pytest.raises(CheckpointError, match=r"target SentencePiece model '/data/spm.de.model'"):
        read_onmt_checkpoint(path, src_tokenizer=spm_file)
    other = spm_file.with_name("de.model")
    other.write_bytes(b"another model")
    imported = read_onmt_checkpoint(path, src_tokenizer=spm_file, tgt_tokenizer=other)
    assert (imported.tokenizer["source"], imported.tokenizer["target"]) == (
        "source_spm.model",
        "target_spm.model",
    )
    assert imported.files["target_spm.model"] == b"another model"


def test_onmt_misshapen_and_missing(tmp_path: Path, spm_file: Path) -> None:
    path = tmp_path / "m.pt"
    write_onmt_checkpoint(path, onmt_options())
    ckpt = torch.load(path, weights_only=False)
    ckpt["model"]["decoder.attn.linear_in.weight"] = torch.zeros(8, 6)
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match=r"'decoder\.attn\.linear_in\.weight' has shape"):
        read_onmt_checkpoint(path, src_tokenizer=spm_file)
    del ckpt["generator"]["bias"]
    ckpt["model"]["decoder.attn.linear_in.weight"] = torch.zeros(8, 8)
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match=r"'generator\.bias' is missing"):
        read_onmt_checkpoint(path, src_tokenizer=spm_file)
    ckpt["model"] = None
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match="save_format"):
        read_onmt_checkpoint(path, src_tokenizer=spm_file)


def test_json_safe_is_budgeted() -> None:
    """A YAML alias bomb would expand to billions of values; the walk refuses it."""
    node: Any = ["x"]
    for _ in range(40):
        node = [node, node]
    with pytest.raises(CheckpointError, match="over 100000 values"):
        json_safe(node)
    assert json_safe({"a": (1, {2}), 3: float("inf")}) == {"a": [1, [2]], "3": "inf"}


# ---------------------------------------------------------------------------------------------
# Models the toolkits trained themselves (tests/fixtures/toolkits, made by make_fixtures.py)

TOOLKITS = Path(__file__).parent / "fixtures" / "toolkits"


def toolkit_fixture(name: str) -> Path:
    folder = TOOLKITS / name
    if not folder.is_dir():
        pytest.skip(f"toolkit fixture {name} not present")
    return folder


@pytest.mark.parametrize(
    ("name", "cell", "scorer"),
    [("joey-gru-bahdanau", "gru", "additive"), ("joey-lstm-luong", "lstm", "general")],
)
def test_real_joey_models(name: str, cell: str, scorer: str) -> None:
    folder = toolkit_fixture(name)
    imported = read_joey_model(folder)
    assert (imported.model["cell"], imported.model["scorer"]) == (cell, scorer)
    state = torch.load(folder / "best.ckpt", weights_only=True)["model_state"]
    for engine, tensor in imported.tensors.items():
        if engine.startswith(("encoder.", "decoder.")):
            assert torch.equal(tensor, state[engine.replace(".", ".rnn.", 1)])
    assert imported.provenance["file"] == (folder / "best.ckpt").resolve().name
    json.dumps(imported.provenance, allow_nan=False)


@pytest.mark.parametrize(
    ("name", "scorer"), [("onmt-lstm-general", "general"), ("onmt-gru-mlp", "additive")]
)
def test_real_onmt_models(name: str, scorer: str) -> None:
    folder = toolkit_fixture(name)
    imported = read_onmt_checkpoint(folder / "model.pt", src_tokenizer=folder / "spm.model")
    assert imported.model["scorer"] == scorer
    assert imported.tokenizer["kind"] == "sentencepiece"
    assert imported.files["spm.model"] == (folder / "spm.model").read_bytes()
    json.dumps(imported.provenance, allow_nan=False)


@pytest.mark.parametrize(
    ("name", "feature"),
    [("onmt-transformer", "'transformer' encoder"), ("onmt-copy-attn", "copy attention")],
)
def test_real_onmt_refusals(name: str, feature: str) -> None:
    folder = toolkit_fixture(name)
    with pytest.raises(CheckpointError, match=feature):
        read_onmt_checkpoint(folder / "model.pt")


def test_joey_custom_special_symbols_are_refused(joey_folder: Path) -> None:
    cfg = yaml.safe_load((joey_folder / "config.yaml").read_text())
    cfg["data"]["special_symbols"] = {"bos_token": "<bos>"}
    (joey_folder / "config.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(CheckpointError, match="special symbols other than <unk>, <pad>, <s>"):
        read_joey_model(joey_folder)
