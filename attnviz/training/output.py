"""The run's output folder: the checkpoint, its history and snapshots, and the resumable
state. A run never replaces a checkpoint it did not create (unless told ``overwrite``), and
a run that fails before it has anything to resume from leaves nothing behind."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..align.statistical import PRIORS_FILE
from ..checkpoint import (
    CARD_FILE,
    CONFIG_FILE,
    HISTORY_FILE,
    RECIPE_FILE,
    SNAPSHOTS_DIR,
    TOKENIZER_FILE,
    WEIGHTS_FILE,
)
from ..errors import InputError
from .guidance import LINKS_FILE
from .state import STATE_FILE

__all__ = ["claim_output", "removed_on_failure"]

# What a run writes into its folder; config.json first, so a half-removed folder is never
# taken for a complete checkpoint.
RUN_FILES = (
    CONFIG_FILE,
    WEIGHTS_FILE,
    TOKENIZER_FILE,
    CARD_FILE,
    RECIPE_FILE,
    HISTORY_FILE,
    STATE_FILE,
    SNAPSHOTS_DIR,
)
# The run's inputs, written before training starts (the word aligner's links and priors take
# minutes to make): a failed run keeps them for the next try; --overwrite removes them.
RUN_INPUTS = (LINKS_FILE, PRIORS_FILE)


def claim_output(folder: Path, *, resume: bool, overwrite: bool) -> bool:
    """Check that a run may write into ``folder``; returns whether it resumes a saved state.

    A missing or empty folder is free, and so is one that holds nothing but the run's inputs
    (the word links and aligner priors that guided training reads, put there before it
    starts). ``resume`` continues the run whose state the folder holds. Anything else in it
    (a shipped checkpoint, another run, unrelated files) is refused with an
    :class:`InputError` unless ``overwrite``, which removes the earlier run's files.
    Called by every process before any of them writes.
    """
    if resume and (folder / STATE_FILE).is_file():
        return True
    if not folder.exists() or (folder.is_dir() and not _run_output(folder)):
        return False
    if not folder.is_dir():
        raise InputError(f"cannot train into {folder}: it is a file, not a folder")
    if not overwrite:
        raise InputError(_refusal(folder, resume))
    _remove_run_files(folder, RUN_FILES + RUN_INPUTS)
    return False


def _run_output(folder: Path) -> list[Path]:
    """What ``folder`` holds besides the run's inputs."""
    return [path for path in folder.iterdir() if path.name not in RUN_INPUTS]


def _refusal(folder: Path, resume: bool) -> str:
    holds = "a checkpoint" if (folder / CONFIG_FILE).is_file() else "files"
    options = "train into another folder with --output FOLDER, or replace it with --overwrite"
    if resume:
        return f"cannot resume in {folder}: it has no {STATE_FILE} but holds {holds}; {options}"
    if (folder / STATE_FILE).is_file():
        options = f"continue that run with --resume, {options}"
    return f"{folder} already holds {holds} that this run did not create; {options}"


def _remove_run_files(folder: Path, names: tuple[str, ...]) -> None:
    for name in names:
        path = folder / name
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


@contextmanager
def removed_on_failure(folder: Path, enabled: bool = True) -> Iterator[None]:
    """Run the block; if it raises before the folder holds a state to resume from or a
    checkpoint, remove what the run wrote there (but not its inputs) and every folder it left
    empty."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        yield
    except BaseException:
        if enabled and not (folder / STATE_FILE).is_file() and not (folder / CONFIG_FILE).is_file():
            _remove_run_files(folder, RUN_FILES)
            for path in [folder, *missing]:
                if path.is_dir() and not any(path.iterdir()):
                    path.rmdir()
        raise
