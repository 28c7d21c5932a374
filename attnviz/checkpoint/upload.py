"""Uploaded checkpoints: unpacking a zip of a checkpoint folder without trusting it.

Sizes are capped as declared and as actually decompressed, member names cannot leave the
destination, and links, special files and encrypted members are refused.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import stat
import zipfile
from pathlib import Path

from ..errors import CheckpointError
from .files import CONFIG_FILE, MB, human_size, list_names
from .weights import MAX_WEIGHTS_BYTES

__all__ = [
    "MAX_COMPRESSION_RATIO",
    "MAX_UPLOAD_BYTES",
    "MAX_UPLOAD_MEMBERS",
    "MAX_UPLOAD_MEMBER_BYTES",
    "MAX_UPLOAD_TOTAL_BYTES",
    "extract_upload",
]

MAX_UPLOAD_BYTES = 256 * MB  # the zip as uploaded
MAX_UPLOAD_MEMBER_BYTES = MAX_WEIGHTS_BYTES  # one file, uncompressed
MAX_UPLOAD_TOTAL_BYTES = 1024 * MB  # all files, uncompressed
MAX_UPLOAD_MEMBERS = 64
# Trained float16 weights barely compress; a member that shrank more than this is a zip bomb.
MAX_COMPRESSION_RATIO = 100
RATIO_CHECK_MIN_BYTES = 1 * MB  # small text files (card, config) may compress well

_NAME_RE = re.compile(r"[^\x00-\x1f\x7f/\\:]{1,255}")

# A zip member to unpack, with the components of its path.
_Member = tuple[zipfile.ZipInfo, tuple[str, ...]]


def _member_parts(info: zipfile.ZipInfo) -> tuple[str, ...]:
    """The path components of a zip member, or CheckpointError if it could escape."""
    name = info.filename
    if name.startswith(("/", "\\")) or "\\" in name or re.match(r"[A-Za-z]:", name):
        raise CheckpointError(f"upload: member {name!r} has an absolute or Windows path")
    parts = tuple(name.rstrip("/").split("/"))
    for part in parts:
        if part in ("", ".", "..") or not _NAME_RE.fullmatch(part):
            raise CheckpointError(
                f"upload: member {name!r} has an unsafe path; only plain relative names allowed"
            )
    return parts


def _check_member_kind(info: zipfile.ZipInfo) -> None:
    if info.flag_bits & 0x1:
        raise CheckpointError(f"upload: member {info.filename!r} is encrypted")
    mode = info.external_attr >> 16
    if info.create_system == 3 and mode:  # Unix: the high bits hold st_mode
        kind = stat.S_IFMT(mode)
        if stat.S_ISLNK(mode):
            raise CheckpointError(f"upload: member {info.filename!r} is a symlink; not allowed")
        if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
            raise CheckpointError(f"upload: member {info.filename!r} is not a regular file")


def extract_upload(data: bytes, dest: Path, marker: str = CONFIG_FILE) -> Path:
    """Unpack an uploaded zip of a checkpoint folder into ``dest``; return the folder inside
    ``dest`` that holds ``marker`` (not yet validated: call :func:`load_checkpoint`).
    ``marker``: the file that makes the folder, ``config.json`` for a checkpoint folder
    (``config.yaml`` for a Joey NMT model folder, which is imported after unpacking).

    The files may sit at the zip's root or inside exactly one top folder. ``dest`` must be
    empty or absent. Sizes are capped (the zip, each file, all files together, and the
    compression ratio), both as declared and as actually decompressed; absolute paths, ``..``,
    symlinks, encrypted members and too many members are refused. Nothing is written outside
    ``dest``; on any error, what was written is removed.
    """
    if len(data) > MAX_UPLOAD_BYTES:
        raise CheckpointError(
            f"upload: the zip is {human_size(len(data))}, "
            f"over the {human_size(MAX_UPLOAD_BYTES)} limit"
        )
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as exc:
        raise CheckpointError(f"upload: not a zip file ({exc})") from None
    with archive:
        files = _checked_members(archive)
        _check_total_ratio(files)
        root = _upload_root(files, marker)
        return _extract_files(archive, files, Path(dest), root)


def _checked_members(archive: zipfile.ZipFile) -> list[_Member]:
    """The files of ``archive`` (folders and macOS metadata left out), each one's kind, name
    and declared size checked, and their count and declared total."""
    members = [
        i for i in archive.infolist() if not i.filename.startswith(("__MACOSX/", "./__MACOSX/"))
    ]
    if len(members) > MAX_UPLOAD_MEMBERS:
        raise CheckpointError(
            f"upload: the zip has {len(members)} entries; at most {MAX_UPLOAD_MEMBERS} allowed"
        )
    files: list[_Member] = []
    seen: set[tuple[str, ...]] = set()
    total = 0
    for info in members:
        _check_member_kind(info)
        parts = _member_parts(info)
        if info.is_dir():
            continue
        if parts in seen:
            raise CheckpointError(f"upload: member {info.filename!r} appears twice")
        seen.add(parts)
        _check_member_size(info)
        total += info.file_size
        if total > MAX_UPLOAD_TOTAL_BYTES:
            raise CheckpointError(
                f"upload: the files add up to over {human_size(MAX_UPLOAD_TOTAL_BYTES)} "
                "uncompressed"
            )
        files.append((info, parts))
    return files


def _check_member_size(info: zipfile.ZipInfo) -> None:
    """The declared size of one member, and how much it expands."""
    if info.file_size > MAX_UPLOAD_MEMBER_BYTES:
        raise CheckpointError(
            f"upload: {info.filename!r} is {human_size(info.file_size)} uncompressed, over "
            f"the {human_size(MAX_UPLOAD_MEMBER_BYTES)} limit"
        )
    ratio = info.file_size / max(info.compress_size, 1)
    if info.file_size > RATIO_CHECK_MIN_BYTES and ratio > MAX_COMPRESSION_RATIO:
        raise CheckpointError(
            f"upload: {info.filename!r} expands {ratio:.0f} times when unpacked; "
            "refusing a likely zip bomb"
        )


def _check_total_ratio(files: list[_Member]) -> None:
    """The compression ratio of all files together: many small members that each pass the
    per-file check can still add up to a zip bomb."""
    total = sum(info.file_size for info, _ in files)
    ratio = total / max(sum(info.compress_size for info, _ in files), 1)
    if total > RATIO_CHECK_MIN_BYTES and ratio > MAX_COMPRESSION_RATIO:
        raise CheckpointError(
            f"upload: the files expand {ratio:.0f} times when unpacked; refusing a likely zip bomb"
        )


def _upload_root(files: list[_Member], marker: str) -> str | None:
    """The one top folder all files are in, or None when ``marker`` is at the root."""
    if not files:
        raise CheckpointError("upload: the zip is empty")
    if any(parts == (marker,) for _, parts in files):
        return None
    tops = sorted({parts[0] for _, parts in files})
    if len(tops) != 1 or any(len(parts) < 2 for _, parts in files):
        raise CheckpointError(
            "upload: expected a checkpoint folder's files (config.json, model.safetensors, "
            "spm.model) at the zip's root or inside one folder; found top-level entries "
            f"{list_names(tops)}"
        )
    if not any(parts == (tops[0], marker) for _, parts in files):
        raise CheckpointError(f"upload: no {marker} in the zip's folder {tops[0]!r}")
    return tops[0]


def _extract_files(
    archive: zipfile.ZipFile,
    files: list[_Member],
    dest: Path,
    root: str | None,
) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    dest = dest.resolve()
    if any(dest.iterdir()):
        raise CheckpointError(f"upload: destination {dest} must be empty")
    # Files at the zip root go into a subfolder, so that a tokenizer named "../x.model" can
    # only ever see this upload's own files.
    folder = dest / (root or "checkpoint")
    written = 0
    try:
        for info, parts in files:
            rel = parts[1:] if root else parts
            target = folder.joinpath(*rel)
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.parent.resolve().is_relative_to(folder):
                raise CheckpointError(f"upload: member {info.filename!r} escapes the folder")
            written += _write_member(archive, info, target, written)
    except (zipfile.BadZipFile, EOFError, OSError, RuntimeError, NotImplementedError) as exc:
        _clear(dest)
        raise CheckpointError(f"upload: could not unpack the zip: {exc}") from None
    except BaseException:
        _clear(dest)
        raise
    return folder


def _write_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, before: int
) -> int:
    """Decompress one member into the new file ``target`` (never through a link); return its
    size. ``before``: bytes already written by this upload, for the total cap."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(target, flags, 0o644)
    size = 0
    with os.fdopen(fd, "wb") as out, archive.open(info) as src:
        while chunk := src.read(MB):
            size += len(chunk)
            if size > info.file_size or size > MAX_UPLOAD_MEMBER_BYTES:
                raise CheckpointError(
                    f"upload: {info.filename!r} decompresses to more than it declares; "
                    "refusing a likely zip bomb"
                )
            if before + size > MAX_UPLOAD_TOTAL_BYTES:
                raise CheckpointError(
                    f"upload: the files decompress to over {human_size(MAX_UPLOAD_TOTAL_BYTES)}"
                )
            out.write(chunk)
    return size


def _clear(dest: Path) -> None:
    """Remove everything inside ``dest`` (which we checked was empty before unpacking)."""
    for child in dest.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)
