"""Checkpoint folders: round trips, validation of untrusted files, uploaded zips."""

from __future__ import annotations

import copy
import io
import json
import os
import pickle
import random
import shutil
import stat
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file

from attnviz.attention import SCORERS
from attnviz.checkpoint import (
    FORMAT_VERSION,
    MAX_TOKENIZER_BYTES,
    MAX_WEIGHTS_BYTES,
    Checkpoint,
    extract_upload,
    load_checkpoint,
    load_snapshot,
    read_config,
    read_safetensors_header,
    save_checkpoint,
    save_weights,
    upload,
)
from attnviz.errors import CheckpointError
from attnviz.model import AttentionRNN, ModelConfig
from attnviz.tokenize import Tokenizer, train_tokenizer

LETTERS = "abcdefghijklmnopqrstuvwxyz"


# ---------------------------------------------------------------------------------------------
# Fixtures and helpers


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    rng = random.Random(0)
    texts = [
        " ".join(
            "".join(rng.choice(LETTERS) for _ in range(rng.randint(1, 8)))
            for _ in range(rng.randint(3, 12))
        )
        for _ in range(400)
    ]
    return train_tokenizer(texts, vocab_size=300)


def make_model(tok: Tokenizer, scorer: str = "additive", seed: int = 0, **kw: Any) -> AttentionRNN:
    torch.manual_seed(seed)
    config = ModelConfig(
        vocab_size=tok.vocab_size,
        emb_dim=16,
        enc_hidden=16,
        dec_hidden=16,
        attn_dim=16,
        scorer=scorer,
        heads=4 if scorer == "multihead" else 1,
        **kw,
    )
    return AttentionRNN(config).eval()


def rounded_fp16(model: AttentionRNN) -> AttentionRNN:
    """A copy of ``model`` with every weight rounded to float16 and back."""
    ref = copy.deepcopy(model)
    with torch.no_grad():
        for value in ref.state_dict().values():
            value.copy_(value.half().float())
    return ref.eval()


@pytest.fixture
def model(tok: Tokenizer) -> AttentionRNN:
    return make_model(tok)


@pytest.fixture
def folder(tmp_path: Path, model: AttentionRNN, tok: Tokenizer) -> Path:
    return save_checkpoint(tmp_path / "ckpt", model, tok, card={"license": "CC-BY"})


def edit_config(folder: Path, change: Callable[[dict[str, Any]], None]) -> None:
    path = folder / "config.json"
    config = json.loads(path.read_text())
    change(config)
    path.write_text(json.dumps(config))


def edit_weights(path: Path, change: Callable[[dict[str, torch.Tensor]], None]) -> None:
    # Copies: load_file's tensors may map the file that is about to be rewritten.
    tensors = {k: v.clone() for k, v in load_file(str(path)).items()}
    change(tensors)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))


def raw_header(path: Path) -> dict[str, Any]:
    """The JSON header of a safetensors file, parsed independently of attnviz."""
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + length])


def zip_folder(folder: Path, prefix: str = "") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, prefix + path.relative_to(folder).as_posix())
    return buf.getvalue()


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file())


class Evil:
    """Unpickling this creates a file: proof that something was unpickled."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.marker, "w"))


# ---------------------------------------------------------------------------------------------
# Round trip


@pytest.mark.parametrize("scorer", SCORERS)
def test_round_trip_every_scorer(tmp_path: Path, tok: Tokenizer, scorer: str) -> None:
    model = make_model(tok, scorer, seed=SCORERS.index(scorer))
    # Make sure rounding is visible, so that "loaded == rounded original" is a real check.
    assert any(not torch.equal(v, v.half().float()) for v in model.state_dict().values())
    folder = save_checkpoint(tmp_path / "m", model, tok, card={"bleu": 1.5}, recipe="x = 1\n")
    loaded = load_checkpoint(folder)
    assert isinstance(loaded, Checkpoint)
    assert loaded.config == model.config
    assert loaded.name == "m"
    assert loaded.card == {"bleu": 1.5}
    assert loaded.recipe == "x = 1\n"
    assert loaded.history_path is None
    assert loaded.snapshots == []
    assert loaded.source_tokenizer.model_proto == tok.model_proto
    assert not loaded.model.training

    ref = rounded_fp16(model)
    got = loaded.model.state_dict()
    want = ref.state_dict()
    assert list(got) == list(want)
    for name in want:
        assert got[name].dtype == torch.float32, name
        assert torch.equal(got[name], want[name]), name

    src = torch.tensor([[5, 9, 12, 7, 3], [8, 6, 3, 0, 0]])
    lengths = torch.tensor([5, 3])
    tgt_in = torch.tensor([[2, 10, 11, 4], [2, 7, 8, 9]])
    with torch.no_grad():
        enc_a, enc_b = ref.encode(src, lengths), loaded.model.encode(src, lengths)
        prev = torch.tensor([2, 2])
        step_a = ref.decode_step(prev, enc_a.state, enc_a)
        step_b = loaded.model.decode_step(prev, enc_b.state, enc_b)
        fwd_a = ref(src, lengths, tgt_in, return_attention=True)
        fwd_b = loaded.model(src, lengths, tgt_in, return_attention=True)
    for a, b in zip(step_a, step_b, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(fwd_a[0], fwd_b[0], rtol=0, atol=0)
    torch.testing.assert_close(fwd_a[1], fwd_b[1], rtol=0, atol=0)


def test_untied_output_round_trip(tmp_path: Path, tok: Tokenizer) -> None:
    model = make_model(tok, tie_output=False)
    loaded = load_checkpoint(save_checkpoint(tmp_path / "m", model, tok))
    assert "output_weight" in loaded.model.state_dict()
    assert torch.equal(loaded.model.output_weight, model.output_weight.half().float())


def test_disk_dtype_is_float16(folder: Path, model: AttentionRNN) -> None:
    header = raw_header(folder / "model.safetensors")
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    assert set(tensors) == set(model.state_dict())
    assert {v["dtype"] for v in tensors.values()} == {"F16"}
    assert read_safetensors_header(folder / "model.safetensors").keys() == tensors.keys()


def test_saved_layout_and_config(folder: Path, model: AttentionRNN) -> None:
    assert sorted(p.name for p in folder.iterdir()) == [
        "card.json",
        "config.json",
        "model.safetensors",
        "spm.model",
    ]  # no temp files left behind
    config, raw = read_config(folder)
    assert config == model.config
    assert raw == {
        "format_version": FORMAT_VERSION,
        "name": "ckpt",
        "model": model.config.to_dict(),
        "tokenizer": {"source": "spm.model", "target": "spm.model"},
    }


def test_save_writes_config_last_and_atomically(
    tmp_path: Path, model: AttentionRNN, tok: Tokenizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    replaced: list[tuple[str, str]] = []
    real_replace = os.replace

    def spy(src: Any, dst: Any) -> None:
        replaced.append((Path(src).name, Path(dst).name))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    save_checkpoint(tmp_path / "m", model, tok, card={}, recipe="r", name="given")
    targets = [dst for _, dst in replaced]
    assert set(targets) == {
        "spm.model",
        "model.safetensors",
        "card.json",
        "recipe.toml",
        "config.json",
    }
    assert targets[-1] == "config.json"
    assert all(src != dst and src.startswith(".") for src, dst in replaced)  # temp next to it
    assert load_checkpoint(tmp_path / "m").name == "given"


def test_save_refuses_weights_beyond_float16(
    tmp_path: Path, model: AttentionRNN, tok: Tokenizer
) -> None:
    with torch.no_grad():
        model.output_bias[0] = 1e6
    with pytest.raises(CheckpointError, match="output_bias.*float16"):
        save_weights(tmp_path / "w.safetensors", model)
    assert list(tmp_path.iterdir()) == []


def test_optional_files_history_and_snapshots(
    folder: Path, model: AttentionRNN, tok: Tokenizer
) -> None:
    (folder / "card.json").unlink()
    (folder / "history.csv").write_text("step,loss\n1,2.0\n")
    other = make_model(tok, seed=7)
    for label in ("step-100", "step-2", "final", "step-10"):
        save_weights(folder / "snapshots" / f"{label}.safetensors", other)
    (folder / "snapshots" / "notes.txt").write_text("ignored")
    loaded = load_checkpoint(folder)
    assert loaded.card == {}
    assert loaded.recipe is None
    assert loaded.history_path == folder.resolve() / "history.csv"
    assert loaded.snapshots == ["final", "step-2", "step-10", "step-100"]
    snap = load_snapshot(loaded, "step-10")
    assert not snap.training
    want = rounded_fp16(other).state_dict()
    assert all(torch.equal(v, want[k]) for k, v in snap.state_dict().items())


@pytest.mark.parametrize("label", ["../model", "a/b", "..", "", "/etc/passwd", "x\\y"])
def test_snapshot_label_must_be_plain(folder: Path, label: str) -> None:
    loaded = load_checkpoint(folder)
    with pytest.raises(CheckpointError, match="snapshot label"):
        load_snapshot(loaded, label)


def test_snapshot_is_validated(folder: Path, tok: Tokenizer) -> None:
    save_weights(folder / "snapshots" / "bad.safetensors", make_model(tok, "dot"))
    loaded = load_checkpoint(folder)
    with pytest.raises(CheckpointError, match="bad.safetensors.*missing tensors"):
        load_snapshot(loaded, "bad")
    with pytest.raises(CheckpointError, match="no snapshot 'gone'"):
        load_snapshot(loaded, "gone")


def test_shared_tokenizer_in_parent_folder(folder: Path) -> None:
    shutil.move(folder / "spm.model", folder.parent / "spm-en-fr.model")
    shared = "../spm-en-fr.model"
    edit_config(folder, lambda c: c.update(tokenizer={"source": shared, "target": shared}))
    loaded = load_checkpoint(folder)
    assert loaded.source_tokenizer.model_proto == (folder.parent / "spm-en-fr.model").read_bytes()


# ---------------------------------------------------------------------------------------------
# Bad checkpoints


def test_missing_folder_and_file_instead_of_folder(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no such checkpoint folder"):
        load_checkpoint(tmp_path / "nope")
    (tmp_path / "f.zip").write_bytes(b"x")
    with pytest.raises(CheckpointError, match="not a folder"):
        load_checkpoint(tmp_path / "f.zip")


@pytest.mark.parametrize("name", ["config.json", "model.safetensors", "spm.model"])
def test_missing_file(folder: Path, name: str) -> None:
    (folder / name).unlink()
    with pytest.raises(CheckpointError, match=rf"{name}: missing"):
        load_checkpoint(folder)


CONFIG_CASES: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("scorer", lambda c: c["model"].update(scorer="cosine"), "unknown attention scorer 'cosine'"),
    ("newer", lambda c: c.update(format_version=FORMAT_VERSION + 1), "newer attnviz; upgrade"),
    ("no-version", lambda c: c.pop("format_version"), "format_version is missing"),
    ("str-version", lambda c: c.update(format_version="1"), "format_version must be a positive"),
    ("bool-version", lambda c: c.update(format_version=True), "format_version must be a positive"),
    ("top-key", lambda c: c.update(extra=1), "unknown config keys extra"),
    ("model-key", lambda c: c["model"].update(layers=2), "unknown model config keys: layers"),
    ("size", lambda c: c["model"].update(emb_dim=0), "emb_dim must be a positive integer"),
    ("type", lambda c: c["model"].update(tie_output="yes"), "tie_output must be of type bool"),
    ("float-size", lambda c: c["model"].update(dec_hidden=16.0), "dec_hidden must be of type"),
    ("heads", lambda c: c["model"].update(scorer="multihead", heads=3), "heads=3 must divide"),
    ("model-missing", lambda c: c.pop("model"), "'model' must be an object"),
    ("tok-missing", lambda c: c.pop("tokenizer"), "'tokenizer' must be an object"),
    ("special", lambda c: c["model"].update(bos_id=5), "tokenizer reserves"),
    ("vocab", lambda c: c["model"].update(vocab_size=c["model"]["vocab_size"] + 1), "vocab_size"),
]


@pytest.mark.parametrize(
    "change,message", [c[1:] for c in CONFIG_CASES], ids=[c[0] for c in CONFIG_CASES]
)
def test_bad_config(folder: Path, change: Callable[[dict[str, Any]], None], message: str) -> None:
    edit_config(folder, change)
    with pytest.raises(CheckpointError, match=rf"config\.json.*{message}"):
        load_checkpoint(folder)


def test_vocab_mismatch_with_other_tokenizer(folder: Path) -> None:
    other = train_tokenizer(["hello world again and again"] * 50 + ["xyz qrs"] * 50, 280)
    assert other.vocab_size != load_checkpoint(folder).config.vocab_size
    (folder / "spm.model").write_bytes(other.model_proto)
    with pytest.raises(CheckpointError, match=r"vocab_size is \d+ but the source tokenizer"):
        load_checkpoint(folder)


@pytest.mark.parametrize(
    "content,message",
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"format_version": 1, "format_version": 1}', "duplicate key"),
        (b"{}" + b" " * (1024 * 1024), "over the 1.0 MB limit"),
    ],
)
def test_config_not_a_json_object(folder: Path, content: bytes, message: str) -> None:
    (folder / "config.json").write_bytes(content)
    with pytest.raises(CheckpointError, match=rf"config\.json.*{message}"):
        load_checkpoint(folder)


@pytest.mark.parametrize(
    "entry", ["../../spm.model", "/tmp/spm.model", "spm.txt", "sub/../../../x.model", "a\\b.model"]
)
def test_tokenizer_path_must_stay_in_folder_or_parent(folder: Path, entry: str) -> None:
    edit_config(folder, lambda c: c["tokenizer"].update(source=entry, target=entry))
    with pytest.raises(CheckpointError, match="tokenizer file .* is not allowed"):
        load_checkpoint(folder)


def test_tokenizer_symlink_out_of_folder_refused(folder: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    shutil.move(folder / "spm.model", outside / "spm.model")
    (folder / "spm.model").symlink_to(outside / "spm.model")
    with pytest.raises(CheckpointError, match="not allowed"):
        load_checkpoint(folder)


def test_bad_tokenizer_file(folder: Path) -> None:
    (folder / "spm.model").write_bytes(os.urandom(2000))
    with pytest.raises(CheckpointError, match="spm.model.*SentencePiece"):
        load_checkpoint(folder)


def test_source_and_target_tokenizers_must_agree(folder: Path, tok: Tokenizer) -> None:
    other = train_tokenizer(["hello world again and again"] * 50, 280)
    (folder / "other.model").write_bytes(other.model_proto)
    edit_config(folder, lambda c: c["tokenizer"].update(target="other.model"))
    with pytest.raises(CheckpointError, match="one joint SentencePiece model"):
        load_checkpoint(folder)


def test_oversize_tokenizer(folder: Path) -> None:
    os.truncate(folder / "spm.model", MAX_TOKENIZER_BYTES + 1)  # sparse: no disk spent
    with pytest.raises(CheckpointError, match=r"spm.model.*over the 16\.0 MB limit"):
        load_checkpoint(folder)


def test_bad_card(folder: Path) -> None:
    (folder / "card.json").write_text("not json")
    with pytest.raises(CheckpointError, match="card.json.*not valid JSON"):
        load_checkpoint(folder)


def test_wrong_tensor_name(folder: Path) -> None:
    def rename(t: dict[str, torch.Tensor]) -> None:
        t["embed.weights"] = t.pop("embed.weight")

    edit_weights(folder / "model.safetensors", rename)
    with pytest.raises(
        CheckpointError, match="missing tensors embed.weight; unexpected tensors embed.weights"
    ):
        load_checkpoint(folder)


def test_extra_tensor(folder: Path) -> None:
    edit_weights(
        folder / "model.safetensors", lambda t: t.update(output_weight=t["embed.weight"].clone())
    )
    with pytest.raises(CheckpointError, match="unexpected tensors output_weight"):
        load_checkpoint(folder)


def test_wrong_shape(folder: Path) -> None:
    edit_weights(
        folder / "model.safetensors", lambda t: t.update(output_bias=t["output_bias"][:-1])
    )
    with pytest.raises(CheckpointError, match=r"'output_bias' has shape \[\d+\] but config.json"):
        load_checkpoint(folder)


@pytest.mark.parametrize(
    "dtype,name", [(torch.int32, "I32"), (torch.float64, "F64"), (torch.uint8, "U8")]
)
def test_wrong_dtype(folder: Path, dtype: torch.dtype, name: str) -> None:
    edit_weights(
        folder / "model.safetensors", lambda t: t.update(output_bias=t["output_bias"].to(dtype))
    )
    with pytest.raises(
        CheckpointError, match=rf"'output_bias' has dtype {name}; expected one of F16"
    ):
        load_checkpoint(folder)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_other_float_dtypes_load(folder: Path, dtype: torch.dtype) -> None:
    edit_weights(
        folder / "model.safetensors", lambda t: t.update({k: v.to(dtype) for k, v in t.items()})
    )
    loaded = load_checkpoint(folder)
    assert all(v.dtype == torch.float32 for v in loaded.model.state_dict().values())


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_weight(folder: Path, value: float) -> None:
    def poison(t: dict[str, torch.Tensor]) -> None:
        t["gru_hidden.weight"][3, 4] = value

    edit_weights(folder / "model.safetensors", poison)
    with pytest.raises(CheckpointError, match="'gru_hidden.weight' contains NaN or Inf"):
        load_checkpoint(folder)


def test_oversize_weights_checked_before_reading(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    os.truncate(folder / "model.safetensors", MAX_WEIGHTS_BYTES + 1)  # sparse: no disk spent
    opened: list[str] = []
    real_open = open

    def spy_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(Path(file).name)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", spy_open)
    with pytest.raises(
        CheckpointError,
        match=r"model\.safetensors: the weights file is .*, over the 512\.0 MB limit",
    ):
        load_checkpoint(folder)
    assert "model.safetensors" not in opened
    assert "spm.model" in opened  # the spy did see the reads that happened


def test_truncated_weights(folder: Path) -> None:
    path = folder / "model.safetensors"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(CheckpointError, match="not a valid safetensors file.*truncated"):
        load_checkpoint(folder)


def test_truncated_inside_header(folder: Path) -> None:
    path = folder / "model.safetensors"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="header length \\d+ is impossible"):
        load_checkpoint(folder)


@pytest.mark.parametrize(
    "content,message",
    [
        (os.urandom(4096), "not a valid safetensors file"),
        (b"", "only 0 bytes long"),
        (struct.pack("<Q", 10) + b"not json!!" + bytes(64), "header is not JSON"),
        (struct.pack("<Q", 2) + b"[]", "not a JSON object"),
        (
            struct.pack("<Q", 61)
            + b'{"output_bias":{"dtype":"F16","shape":[4],"data_offsets":[0,8]}}'[:61]
            + bytes(8),
            "header is not JSON",
        ),
    ],
)
def test_not_safetensors(folder: Path, content: bytes, message: str) -> None:
    (folder / "model.safetensors").write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(folder)


def _safetensors(header: dict[str, Any], data: bytes) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


@pytest.mark.parametrize(
    "header,data,message",
    [
        ({"a": {"dtype": "F16", "shape": [4], "data_offsets": [0, 4]}}, bytes(4), "needs 8 bytes"),
        ({"a": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]}}, bytes(8), "cover 4 of 8"),
        ({"a": {"dtype": "Q9", "shape": [2], "data_offsets": [0, 4]}}, bytes(4), "unknown dtype"),
        ({"a": {"dtype": "F16", "shape": [-2], "data_offsets": [0, 4]}}, bytes(4), "shape"),
        ({"a": {"dtype": "F16", "shape": [2], "data_offsets": [4, 0]}}, bytes(4), "data_offsets"),
        (
            {
                "a": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]},
                "b": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]},
            },
            bytes(8),
            "overlap",
        ),
        ({"__metadata__": {"x": 1}}, b"", "__metadata__"),
    ],
)
def test_inconsistent_header(tmp_path: Path, header: dict, data: bytes, message: str) -> None:
    path = tmp_path / "w.safetensors"
    path.write_bytes(_safetensors(header, data))
    with pytest.raises(CheckpointError, match=message):
        read_safetensors_header(path)


def test_pickle_renamed_is_never_unpickled(folder: Path, tmp_path: Path) -> None:
    # The payload is live: unpickling it does create its marker file.
    proof = tmp_path / "proof"
    pickle.loads(pickle.dumps(Evil(str(proof))))
    assert proof.exists()

    marker = tmp_path / "pwned"
    for protocol in (0, 2, pickle.HIGHEST_PROTOCOL):
        (folder / "model.safetensors").write_bytes(pickle.dumps(Evil(str(marker)), protocol))
        with pytest.raises(CheckpointError, match="never unpickles"):
            load_checkpoint(folder)
        assert not marker.exists()


def test_torch_save_renamed_is_never_unpickled(folder: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    state = {k: v.clone() for k, v in load_file(str(folder / "model.safetensors")).items()}
    torch.save({**state, "payload": Evil(str(marker))}, folder / "model.safetensors")
    with pytest.raises(CheckpointError, match="not a valid safetensors file"):
        load_checkpoint(folder)
    assert not marker.exists()


# ---------------------------------------------------------------------------------------------
# Uploads


@pytest.mark.parametrize("prefix,sub", [("", "checkpoint"), ("en-fr/", "en-fr")])
def test_upload_good_zip(folder: Path, tmp_path: Path, prefix: str, sub: str) -> None:
    dest = tmp_path / "upload"
    got = extract_upload(zip_folder(folder, prefix), dest)
    assert got == dest.resolve() / sub
    loaded = load_checkpoint(got)
    assert loaded.name == "ckpt"
    assert loaded.card == {"license": "CC-BY"}


def test_upload_with_snapshots_and_macos_junk(folder: Path, tok: Tokenizer, tmp_path: Path) -> None:
    save_weights(folder / "snapshots" / "step-1.safetensors", make_model(tok, seed=3))
    data = zip_folder(folder, "m/")
    buf = io.BytesIO(data)
    with zipfile.ZipFile(buf, "a") as zf:
        zf.writestr("__MACOSX/m/._config.json", b"junk")
    got = extract_upload(buf.getvalue(), tmp_path / "u")
    assert load_checkpoint(got).snapshots == ["step-1"]
    assert not (tmp_path / "u" / "__MACOSX").exists()


def _zip_with(members: list[tuple[str | zipfile.ZipInfo, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in members:
            zf.writestr(name, content)
    return buf.getvalue()


@pytest.mark.parametrize(
    "evil_name", ["../evil", "ckpt/../../evil", "/tmp/evil", "ckpt/./x", "..\\evil", "C:/evil"]
)
def test_upload_path_traversal(folder: Path, tmp_path: Path, evil_name: str) -> None:
    members = [("ckpt/" + p.name, p.read_bytes()) for p in files_under(folder)]
    data = _zip_with([*members, (evil_name, b"gotcha")])
    dest = tmp_path / "sandbox" / "dest"
    with pytest.raises(CheckpointError, match="unsafe path|absolute"):
        extract_upload(data, dest)
    assert not (tmp_path / "evil").exists()
    assert not (tmp_path / "sandbox" / "evil").exists()
    assert not dest.exists() or files_under(dest) == []


def test_upload_symlink_member(folder: Path, tmp_path: Path) -> None:
    link = zipfile.ZipInfo("ckpt/spm.model")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    members = [
        ("ckpt/" + p.name, p.read_bytes()) for p in files_under(folder) if p.name != "spm.model"
    ]
    with pytest.raises(CheckpointError, match="symlink"):
        extract_upload(_zip_with([*members, (link, b"/etc/passwd")]), tmp_path / "dest")
    assert not (tmp_path / "dest").exists() or files_under(tmp_path / "dest") == []


def test_upload_zip_bomb_by_ratio(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ckpt/config.json", b"{}")
        info = zipfile.ZipInfo("ckpt/model.safetensors")
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w", force_zip64=True) as f:
            zeros = bytes(1 << 20)
            for _ in range(300):
                f.write(zeros)
    data = buf.getvalue()
    assert len(data) < 2 << 20
    with pytest.raises(CheckpointError, match="zip bomb"):
        extract_upload(data, tmp_path / "dest")
    assert not (tmp_path / "dest").exists() or files_under(tmp_path / "dest") == []


def test_upload_member_lying_about_its_size(tmp_path: Path) -> None:
    """A member that declares 100 bytes but holds 2 MB: caught while extracting."""
    payload = os.urandom(2 << 20)
    data = bytearray(_zip_with([("ckpt/config.json", b"{}"), ("ckpt/model.safetensors", payload)]))
    real = struct.pack("<I", len(payload))
    # Patch the uncompressed size in the local header and in the central directory.
    count = 0
    start = 0
    while (i := data.find(b"ckpt/model.safetensors", start)) != -1:
        for offset in (i - 30 + 22, i - 46 + 24):  # local header / central directory entry
            if data[offset : offset + 4] == real:
                data[offset : offset + 4] = struct.pack("<I", 100)
                count += 1
        start = i + 1
    assert count == 2
    assert zipfile.ZipFile(io.BytesIO(data)).getinfo("ckpt/model.safetensors").file_size == 100
    dest = tmp_path / "dest"
    with pytest.raises(CheckpointError):
        extract_upload(bytes(data), dest)
    assert files_under(dest) == []  # what was written is removed


def test_upload_caps(folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = zip_folder(folder, "ckpt/")
    monkeypatch.setattr(upload, "MAX_UPLOAD_BYTES", len(data) - 1)
    with pytest.raises(CheckpointError, match="the zip is .* over the"):
        extract_upload(data, tmp_path / "a")
    monkeypatch.undo()
    size = (folder / "model.safetensors").stat().st_size
    monkeypatch.setattr(upload, "MAX_UPLOAD_MEMBER_BYTES", size - 1)
    with pytest.raises(CheckpointError, match="model.safetensors.* uncompressed, over"):
        extract_upload(data, tmp_path / "b")
    monkeypatch.undo()
    monkeypatch.setattr(upload, "MAX_UPLOAD_TOTAL_BYTES", size + 10)
    with pytest.raises(CheckpointError, match="add up to over"):
        extract_upload(data, tmp_path / "c")
    for name in "abc":
        assert not (tmp_path / name).exists() or files_under(tmp_path / name) == []


def test_upload_too_many_members(tmp_path: Path) -> None:
    data = _zip_with([("config.json", b"{}")] + [(f"f{i}.txt", b"x") for i in range(64)])
    with pytest.raises(CheckpointError, match="65 entries; at most 64"):
        extract_upload(data, tmp_path / "dest")


@pytest.mark.parametrize("data", [b"", b"PK\x03\x04 nope", os.urandom(1000), b"hello world"])
def test_upload_not_a_zip(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(CheckpointError, match="not a zip"):
        extract_upload(data, tmp_path / "dest")


@pytest.mark.parametrize(
    "names,message",
    [
        (["a/config.json", "b/model.safetensors"], "found top-level entries a, b"),
        (["a/model.safetensors", "a/spm.model"], "no config.json"),
        (["readme.txt", "a/config.json"], "top-level entries"),
        ([], "empty"),
    ],
)
def test_upload_layout(tmp_path: Path, names: list[str], message: str) -> None:
    with pytest.raises(CheckpointError, match=message):
        extract_upload(_zip_with([(n, b"{}") for n in names]), tmp_path / "dest")


def test_upload_dest_must_be_empty(folder: Path, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "old").write_text("keep me")
    with pytest.raises(CheckpointError, match="must be empty"):
        extract_upload(zip_folder(folder), dest)
    assert (dest / "old").read_text() == "keep me"


def test_upload_cannot_reach_tokenizer_outside_dest(folder: Path, tmp_path: Path) -> None:
    """Root-layout uploads are unpacked one level down, so '../x.model' cannot leave dest."""
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    shutil.copy(folder / "spm.model", uploads / "secret.model")  # a server-side file
    (folder / "spm.model").unlink()
    edit_config(
        folder, lambda c: c["tokenizer"].update(source="../secret.model", target="../secret.model")
    )
    got = extract_upload(zip_folder(folder), uploads / "u1")
    with pytest.raises(CheckpointError, match="secret.model: missing"):
        load_checkpoint(got)
