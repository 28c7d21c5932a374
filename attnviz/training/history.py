"""history.csv of a checkpoint folder: one row per validation, and the names of its columns.

The column names live here only: the training loop writes them and the training-curve figure
(``attnviz.figures.training``) reads them.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from ..checkpoint import write_bytes_atomic

__all__ = [
    "DEV_BLEU",
    "DEV_LOSS",
    "GUIDANCE_LOSS",
    "HISTORY_COLUMNS",
    "STEP",
    "TRAIN_LOSS",
    "History",
    "HistoryRow",
]


@dataclass
class HistoryRow:
    """One validation, formatted as written; the field names are the CSV columns."""

    step: int
    epoch: int
    lr: str  # the rate the next step uses
    train_loss: str  # translation loss, mean over the steps since the previous validation
    dev_loss: str
    dev_bleu: str  # greedy, cased sacreBLEU of the recipe's dev sentences
    target_tokens: int  # seen since the run began, all processes
    tokens_per_s: str  # target tokens per second of this session (a resumed run restarts it)
    elapsed_s: str  # training time since the run began, resumed sessions included
    # Guided runs: the guidance loss (unweighted, see attnviz.training.guidance), mean over
    # the same steps as train_loss; empty for runs without guidance.
    guidance_loss: str = ""


HISTORY_COLUMNS = tuple(f.name for f in fields(HistoryRow))
# The columns that readers look up by name (the training curve draws train and dev loss and
# dev BLEU).
STEP, TRAIN_LOSS, DEV_LOSS, DEV_BLEU = "step", "train_loss", "dev_loss", "dev_bleu"
GUIDANCE_LOSS = "guidance_loss"


class History:
    """The history.csv that training writes, rewritten whole and atomically at each row."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def rows(self) -> list[dict[str, str]]:
        if not self.path.is_file():
            return []
        with open(self.path, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))

    def _write(self, rows: list[dict]) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, HISTORY_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        write_bytes_atomic(self.path, buffer.getvalue().encode("utf-8"))

    def truncate_after(self, step: int) -> None:
        """Drop rows written after the saved state (a kill between the two writes)."""
        rows = self.rows()
        kept = [r for r in rows if int(r[STEP]) <= step]
        if len(kept) != len(rows) or (rows and not step):
            self._write(kept)

    def append(self, row: HistoryRow) -> None:
        self._write([*self.rows(), asdict(row)])
