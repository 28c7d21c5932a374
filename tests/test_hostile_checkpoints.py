"""A corpus of hostile checkpoint uploads, each refused with a clear CheckpointError.

Every case runs under a watchdog (a 20 s alarm), with memory tracked (Python allocations and
the process's peak RSS) and with the folder around the sandbox listed before and after, so a
case passes only if it is refused quickly, cheaply, and without writing anything outside its
sandbox. Payloads are built here, never committed. Pickle payloads are live: unpickling one
creates a marker file, which must never appear.

Cases already in tests/test_checkpoint.py, not repeated here: a raw pickle and a torch.save
file renamed model.safetensors in a folder (test_pickle_renamed_is_never_unpickled,
test_torch_save_renamed_is_never_unpickled); zip members named ../evil, ckpt/../../evil,
/tmp/evil, ckpt/./x, ..\\evil, C:/evil (test_upload_path_traversal); a symlink member
(test_upload_symlink_member); one member of 300 MB zeros (test_upload_zip_bomb_by_ratio); a
member lying about its size (test_upload_member_lying_about_its_size); caps on the zip, a
member and the total (test_upload_caps, test_upload_too_many_members); a weights file one
byte over the cap (test_oversize_weights_checked_before_reading); truncated, random and
inconsistent safetensors headers (test_truncated_*, test_not_safetensors,
test_inconsistent_header); a tensor of the wrong shape, dtype or name (test_wrong_*,
test_extra_tensor); NaN/Inf in model.safetensors (test_non_finite_weight); config vocab_size
against the tokenizer (test_bad_config[vocab], test_vocab_mismatch_with_other_tokenizer).
"""

from __future__ import annotations

import io
import json
import mmap
import pickle
import resource
import shutil
import signal
import stat
import struct
import time
import tracemalloc
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file

from attnviz.checkpoint import MAX_HEADER_BYTES, extract_upload, load_checkpoint, load_snapshot
from attnviz.errors import CheckpointError

SHIPPED = Path(__file__).resolve().parents[1] / "pretrained" / "reversal-additive"
GB = 1024**3
MB = 1024**2
SECONDS = 20  # a generous watchdog: every refusal here takes well under a second
MAX_PYTHON_BYTES = 200 * MB  # peak Python allocations while refusing one case
MAX_RSS_GROWTH = 400 * MB  # growth of the process's peak resident memory


class Evil:
    """Unpickling this creates ``marker``: proof that something was unpickled."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.marker, "w"))


# ---------------------------------------------------------------------------------------------
# The guard


def listing(root: Path, skip: Path) -> set[Path]:
    """Every path under ``root`` except those under ``skip``."""
    return {p for p in root.rglob("*") if not p.is_relative_to(skip)}


@contextmanager
def contained(tmp_path: Path) -> Iterator[None]:
    """The block must finish within SECONDS, stay within the memory bounds, create no marker
    and write nothing outside ``tmp_path / "sandbox"``."""
    sandbox = tmp_path / "sandbox"
    before = listing(tmp_path.parent, sandbox)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def timeout(signum: int, frame: object) -> None:
        raise TimeoutError(f"not refused within {SECONDS} s")

    previous = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(SECONDS)
    tracemalloc.start()
    try:
        yield
    finally:
        _, python_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    rss_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss_before
    assert python_peak < MAX_PYTHON_BYTES, f"{python_peak / MB:.0f} MB of Python allocations"
    assert rss_growth < MAX_RSS_GROWTH, f"peak RSS grew by {rss_growth / MB:.0f} MB"
    assert not (tmp_path / "pwned").exists(), "a pickle payload ran"
    assert listing(tmp_path.parent, sandbox) == before, "something was written outside"


def refused(tmp_path: Path, action: Callable[[], object], message: str) -> CheckpointError:
    """Run ``action`` contained; it must raise CheckpointError matching ``message``."""
    with contained(tmp_path), pytest.raises(CheckpointError, match=message) as info:
        action()
    return info.value


# ---------------------------------------------------------------------------------------------
# Building payloads


@pytest.fixture(scope="module", autouse=True)
def torch_warmed_up() -> None:
    """The first model built in a process initialises parts of torch (about a second, several
    under tracemalloc); done here, so that the bounds measure the hostile input alone."""
    if (SHIPPED / "config.json").is_file():
        load_checkpoint(SHIPPED)


@pytest.fixture
def marker(tmp_path: Path) -> str:
    """Where a pickle payload would write: outside the sandbox."""
    return str(tmp_path / "pwned")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A copy of a shipped checkpoint (with snapshots) inside the sandbox."""
    if not (SHIPPED / "config.json").is_file():
        pytest.skip(f"needs the shipped checkpoint {SHIPPED}")
    return Path(shutil.copytree(SHIPPED, tmp_path / "sandbox" / "ckpt"))


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    return tmp_path / "sandbox" / "upload"


def tensors_of(path: Path) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in load_file(str(path)).items()}


def edit_weights(path: Path, change: Callable[[dict[str, torch.Tensor]], None]) -> None:
    tensors = tensors_of(path)
    change(tensors)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))


def edit_config(folder: Path, **model: Any) -> None:
    path = folder / "config.json"
    config = json.loads(path.read_text())
    config["model"].update(model)
    path.write_text(json.dumps(config))


def torch_pickle(folder: Path, marker: str) -> bytes:
    """A torch.save file of the real weights plus a payload that runs on torch.load."""
    buffer = io.BytesIO()
    torch.save({**tensors_of(folder / "model.safetensors"), "x": Evil(marker)}, buffer)
    return buffer.getvalue()


def zip_of(members: list[tuple[str | zipfile.ZipInfo, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members:
            archive.writestr(name, content)
    return buffer.getvalue()


def folder_members(folder: Path, prefix: str = "ckpt/", skip: tuple[str, ...] = ()) -> list:
    return [
        (prefix + p.name, p.read_bytes())
        for p in sorted(folder.iterdir())
        if p.is_file() and p.name not in skip
    ]


def sparse_file(path: Path, size: int, start: bytes = b"") -> Path:
    """A file of ``size`` bytes that takes no disk space beyond ``start``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(start)
        f.truncate(size)
    return path


def safetensors_start(header: dict[str, Any]) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text


# ---------------------------------------------------------------------------------------------
# Pickles that would run code


def test_payloads_are_live(folder: Path, tmp_path: Path) -> None:
    """The corpus is real: a naive loader would run these payloads."""
    proof = tmp_path / "sandbox" / "proof"
    torch.load(io.BytesIO(torch_pickle(folder, str(proof))), weights_only=False)
    assert proof.exists()
    proof.unlink()
    pickle.loads(pickle.dumps(Evil(str(proof))))
    assert proof.exists()


@pytest.mark.parametrize("name", ["model.pt", "pytorch_model.bin", "model.pth", "model.ckpt"])
@pytest.mark.parametrize("kind", ["torch.save", "pickle"])
def test_pickled_weights_next_to_the_config(
    folder: Path, tmp_path: Path, marker: str, name: str, kind: str
) -> None:
    data = torch_pickle(folder, marker) if kind == "torch.save" else pickle.dumps(Evil(marker))
    (folder / "model.safetensors").unlink()
    (folder / name).write_bytes(data)
    error = refused(tmp_path, lambda: load_checkpoint(folder), "model.safetensors: missing")
    assert name in str(error) and "never unpickles" in str(error)


@pytest.mark.parametrize(
    "name,kind",
    [
        ("model.safetensors", "torch.save"),
        ("model.safetensors", "pickle"),
        ("model.pt", "torch.save"),
        ("pytorch_model.bin", "pickle"),
    ],
)
def test_pickled_weights_in_an_upload(
    folder: Path, tmp_path: Path, dest: Path, marker: str, name: str, kind: str
) -> None:
    data = torch_pickle(folder, marker) if kind == "torch.save" else pickle.dumps(Evil(marker))
    upload = zip_of([*folder_members(folder, skip=("model.safetensors",)), (f"ckpt/{name}", data)])
    with contained(tmp_path):
        unpacked = extract_upload(upload, dest)
    refused(tmp_path, lambda: load_checkpoint(unpacked), "never unpickles")


def test_a_torch_save_file_uploaded_as_the_zip(
    folder: Path, tmp_path: Path, dest: Path, marker: str
) -> None:
    """torch.save writes a zip holding data.pkl: it unpacks to no checkpoint, unread."""
    data = torch_pickle(folder, marker)
    assert zipfile.is_zipfile(io.BytesIO(data))
    refused(tmp_path, lambda: extract_upload(data, dest), "no config.json in the zip's folder")


# ---------------------------------------------------------------------------------------------
# Zip bombs


def test_many_small_members_that_each_expand_1000_times(
    folder: Path, tmp_path: Path, dest: Path
) -> None:
    """Each member stays under the per-file ratio check (1 MB); together 63 MB from 70 KB."""
    zeros = bytes(MB)
    members = folder_members(folder) + [(f"ckpt/pad{i}.txt", zeros) for i in range(57)]
    upload = zip_of(members)
    assert len(upload) < 400_000
    refused(tmp_path, lambda: extract_upload(upload, dest), "zip bomb")
    assert not dest.exists() or not any(dest.iterdir())


def test_many_members_that_each_expand_1000_times(tmp_path: Path, dest: Path) -> None:
    zeros = bytes(2 * MB)
    upload = zip_of([("ckpt/config.json", b"{}")] + [(f"ckpt/w{i}", zeros) for i in range(60)])
    refused(tmp_path, lambda: extract_upload(upload, dest), "zip bomb")


def overlapping_entries(copies: int) -> bytes:
    """A non-recursive zip bomb: many central-directory entries share one compressed member,
    so the declared content grows with each entry while the zip does not."""
    upload = zip_of([("ckpt/config.json", b"{}"), ("ckpt/w", bytes(MB - 1))])
    end = upload.rindex(b"PK\x05\x06")
    count, cd_size, cd_offset = struct.unpack("<HII", upload[end + 10 : end + 20])
    directory = upload[cd_offset : cd_offset + cd_size]
    shared = directory[directory.index(b"PK\x01\x02", 4) :]  # the entry of ckpt/w
    name_length = struct.unpack("<H", shared[28:30])[0]
    copied = [
        shared[:28] + struct.pack("<H", len(name)) + shared[30:46] + name
        for name in (f"ckpt/w{i:02d}".encode() for i in range(copies))
    ]
    assert shared[46 : 46 + name_length] == b"ckpt/w"
    directory += b"".join(copied)
    total = count + copies
    tail = upload[end : end + 8] + struct.pack("<HHII", total, total, len(directory), cd_offset)
    return upload[:cd_offset] + directory + tail + upload[end + 20 :]


def test_overlapping_entries_bomb(tmp_path: Path, dest: Path) -> None:
    upload = overlapping_entries(60)
    assert len(zipfile.ZipFile(io.BytesIO(upload)).infolist()) == 62
    refused(tmp_path, lambda: extract_upload(upload, dest), "zip bomb|could not unpack")
    assert not dest.exists() or not any(dest.iterdir())


def test_member_declaring_2_gb(tmp_path: Path, dest: Path) -> None:
    upload = bytearray(zip_of([("ckpt/config.json", b"{}"), ("ckpt/model.safetensors", b"x")]))
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = 0
        while (i := upload.find(signature, start)) != -1:
            name_at = i + (30 if signature == b"PK\x03\x04" else 46)
            if upload[name_at : name_at + 22] == b"ckpt/model.safetensors":
                upload[i + offset : i + offset + 4] = struct.pack("<I", 2 * GB)
            start = i + 1
    refused(tmp_path, lambda: extract_upload(bytes(upload), dest), r"2048\.0 MB uncompressed")


# ---------------------------------------------------------------------------------------------
# Unsafe names and member kinds


@pytest.mark.parametrize(
    "name",
    [
        "ckpt/a/..",
        "ckpt//x",
        "./ckpt/x",
        "ckpt/" + "a" * 300,
        "ckpt/c:x",
        "\\\\server\\share\\x",
        "ckpt/x/../../../../etc/cron.d/x",
    ],
)
def test_unsafe_member_names(folder: Path, tmp_path: Path, dest: Path, name: str) -> None:
    upload = zip_of([*folder_members(folder), (name, b"gotcha")])
    refused(tmp_path, lambda: extract_upload(upload, dest), "unsafe path|absolute")


def member(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # Unix: the high bits of external_attr hold st_mode
    info.external_attr = mode << 16
    return info


def test_symlinked_folder_then_a_file_through_it(folder: Path, tmp_path: Path, dest: Path) -> None:
    """The classic two-step escape: a link to the outside, then a file written through it."""
    members = [
        *folder_members(folder),
        (member("ckpt/out", stat.S_IFLNK | 0o777), str(tmp_path).encode()),
        ("ckpt/out/pwned", b"gotcha"),
    ]
    refused(tmp_path, lambda: extract_upload(zip_of(members), dest), "symlink")


@pytest.mark.parametrize("kind", [stat.S_IFIFO, stat.S_IFCHR, stat.S_IFBLK, stat.S_IFSOCK])
def test_special_file_members(folder: Path, tmp_path: Path, dest: Path, kind: int) -> None:
    members = [*folder_members(folder), (member("ckpt/dev", kind | 0o644), b"")]
    refused(tmp_path, lambda: extract_upload(zip_of(members), dest), "not a regular file")


# ---------------------------------------------------------------------------------------------
# A 2 GB file (sparse: no disk or memory is spent on it)


@pytest.mark.parametrize(
    "name,message",
    [
        ("model.safetensors", "weights file is 2048.0 MB, over the 512.0 MB limit"),
        ("spm.model", "source tokenizer is 2048.0 MB, over the 16.0 MB limit"),
        ("config.json", "config.json is 2048.0 MB, over the 1.0 MB limit"),
        ("card.json", "model card is 2048.0 MB, over the 1.0 MB limit"),
    ],
)
def test_2_gb_file_in_the_folder(folder: Path, tmp_path: Path, name: str, message: str) -> None:
    # Starting like a safetensors file of one 2 GB tensor, so only the size check can refuse.
    header = {"w": {"dtype": "U8", "shape": [2 * GB - 100], "data_offsets": [0, 2 * GB - 100]}}
    sparse_file(folder / name, 2 * GB, safetensors_start(header))
    refused(tmp_path, lambda: load_checkpoint(folder), message)


def test_2_gb_snapshot(folder: Path, tmp_path: Path) -> None:
    checkpoint = load_checkpoint(folder)
    sparse_file(folder / "snapshots" / "step-100.safetensors", 2 * GB)
    refused(tmp_path, lambda: load_snapshot(checkpoint, "step-100"), "over the 512.0 MB limit")


def test_2_gb_upload(tmp_path: Path, dest: Path) -> None:
    """The upload handed over as a memory map of a sparse 2 GB file: refused by its length
    before a page of it is read."""
    path = sparse_file(tmp_path / "sandbox" / "huge.zip", 2 * GB, b"PK\x03\x04")
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        refused(tmp_path, lambda: extract_upload(data, dest), "2048.0 MB, over the 256.0 MB")


# ---------------------------------------------------------------------------------------------
# Safetensors headers that lie


def write_header(folder: Path, header: dict[str, Any] | bytes, data_bytes: int) -> None:
    start = header if isinstance(header, bytes) else safetensors_start(header)
    (folder / "model.safetensors").write_bytes(start + bytes(data_bytes))


@pytest.mark.parametrize(
    "header,message",
    [
        # A tensor claiming 2^80 elements (more than int64 counts) in a file of 64 bytes.
        ({"w": {"dtype": "F16", "shape": [2**40, 2**40], "data_offsets": [0, 64]}}, "needs"),
        # Offsets beyond 2^64.
        ({"w": {"dtype": "F16", "shape": [32], "data_offsets": [2**70, 2**70 + 64]}}, "do not"),
        # Two tensors on the same bytes (aliasing): one's writes would be the other's.
        (
            {
                "a": {"dtype": "F16", "shape": [16], "data_offsets": [0, 32]},
                "b": {"dtype": "F16", "shape": [16], "data_offsets": [0, 32]},
                "c": {"dtype": "F16", "shape": [16], "data_offsets": [32, 64]},
            },
            "overlap",
        ),
        ({"w": {"dtype": "F16", "shape": [32.0], "data_offsets": [0, 64]}}, "invalid shape"),
        ({"w": {"dtype": "F16", "shape": [True], "data_offsets": [0, 2]}}, "invalid shape"),
        ({"w": {"dtype": "F16", "shape": [32], "data_offsets": [0.0, 64]}}, "data_offsets"),
        ({"w": {"dtype": "F16", "shape": [1] * 100, "data_offsets": [0, 2]}}, "invalid shape"),
        ({"w": {"dtype": "F16", "shape": [32], "data_offsets": [0, 64], "x": 1}}, "exactly"),
    ],
)
def test_header_lies_about_offsets_and_shapes(
    folder: Path, tmp_path: Path, header: dict, message: str
) -> None:
    write_header(folder, header, 64)
    refused(tmp_path, lambda: load_checkpoint(folder), message)


@pytest.mark.parametrize(
    "start,message",
    [
        (struct.pack("<Q", 2**64 - 1), "header length 18446744073709551615 is impossible"),
        (struct.pack("<Q", MAX_HEADER_BYTES + 1), "is impossible"),  # over the header cap
        # Within the cap, but nested 200,000 deep: the JSON parser must not crash.
        (struct.pack("<Q", 400_000) + b"[" * 200_000 + b"]" * 200_000, "not JSON"),
    ],
)
def test_huge_or_deep_header(folder: Path, tmp_path: Path, start: bytes, message: str) -> None:
    sparse_file(folder / "model.safetensors", len(start) + 32 * MB, start)
    refused(tmp_path, lambda: load_checkpoint(folder), message)


def test_header_as_big_as_allowed(folder: Path, tmp_path: Path) -> None:
    """A header filled to its cap with tiny tensors: parsed within bounds, refused briefly."""
    count = MAX_HEADER_BYTES // 80
    header = {
        f"t{i:06d}": {"dtype": "U8", "shape": [1], "data_offsets": [i, i + 1]} for i in range(count)
    }
    assert len(safetensors_start(header)) <= MAX_HEADER_BYTES
    write_header(folder, header, count)
    error = refused(tmp_path, lambda: load_checkpoint(folder), "missing tensors .* unexpected")
    assert len(str(error)) < 1000  # six names are listed, the rest counted
    assert f"and {count - 6} more" in str(error)


# ---------------------------------------------------------------------------------------------
# Weights that do not fit the config


def test_transposed_matrix(folder: Path, tmp_path: Path) -> None:
    """Same number of elements, wrong layout: refused by shape, not silently reshaped."""
    edit_weights(
        folder / "model.safetensors", lambda t: t.update({"bridge.weight": t["bridge.weight"].T})
    )
    refused(tmp_path, lambda: load_checkpoint(folder), r"'bridge.weight' has shape \[96, 64\]")


def test_config_describes_a_bigger_model(folder: Path, tmp_path: Path) -> None:
    edit_config(folder, emb_dim=64, dec_hidden=128)
    refused(tmp_path, lambda: load_checkpoint(folder), "config.json implies")


@pytest.mark.parametrize(
    "setting,value",
    [
        ("emb_dim", 10**30),  # overflows int64 while the template model is built
        ("enc_hidden", 2**31),  # overflows the storage size of the template
        ("enc_layers", 100_000),  # a template of 800,000 tensors: minutes and gigabytes
        ("attn_dim", 2**40),
        ("max_tgt_len", 10**9),  # a model that never says </s> would decode forever
        ("max_src_len", 10**9),
    ],
)
def test_config_sizes_beyond_any_model(
    folder: Path, tmp_path: Path, setting: str, value: int
) -> None:
    edit_config(folder, **{setting: value})
    refused(tmp_path, lambda: load_checkpoint(folder), rf"config\.json: model\.{setting}")


def test_embedding_rows_differ_from_config_and_tokenizer(folder: Path, tmp_path: Path) -> None:
    """config.json and spm.model agree on the vocabulary; the embedding has 10 more rows."""

    def grow(t: dict[str, torch.Tensor]) -> None:
        t["embed.weight"] = torch.cat([t["embed.weight"], t["embed.weight"][:10]])
        t["output_bias"] = torch.cat([t["output_bias"], t["output_bias"][:10]])

    edit_weights(folder / "model.safetensors", grow)
    refused(tmp_path, lambda: load_checkpoint(folder), r"'embed.weight' has shape \[323, 32\]")


# ---------------------------------------------------------------------------------------------
# Values


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_nan_in_other_float_dtypes(folder: Path, tmp_path: Path, dtype: torch.dtype) -> None:
    def poison(t: dict[str, torch.Tensor]) -> None:
        for name in t:
            t[name] = t[name].to(dtype)
        t["embed.weight"][7, 3] = float("nan")

    edit_weights(folder / "model.safetensors", poison)
    refused(tmp_path, lambda: load_checkpoint(folder), "'embed.weight' contains NaN or Inf")


def test_nan_in_a_snapshot(folder: Path, tmp_path: Path) -> None:
    checkpoint = load_checkpoint(folder)
    snapshot = folder / "snapshots" / "step-100.safetensors"
    edit_weights(snapshot, lambda t: t["output_bias"].fill_(float("inf")))
    refused(tmp_path, lambda: load_snapshot(checkpoint, "step-100"), "NaN or Inf")


def test_the_guard_notices_a_write_outside(tmp_path: Path) -> None:
    """The containment check is real: a stray file next to the sandbox fails it."""
    with pytest.raises(AssertionError, match="written outside"), contained(tmp_path):
        (tmp_path / "stray").write_text("x")
    started = time.monotonic()
    with pytest.raises(TimeoutError), contained(tmp_path):
        signal.alarm(1)  # the watchdog, brought forward
        while time.monotonic() - started < 5:
            pass
