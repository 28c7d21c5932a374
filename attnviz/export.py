"""What a view shows, as files: JSON of the numbers, standalone HTML of a figure, CSV of a
table, Pharaoh links. Plain functions (no Streamlit), usable from a notebook."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

DIGITS = 6  # attention and probabilities are float32: six decimals keep all they carry


def plain(value: Any) -> Any:
    """Dataclasses, numpy arrays and scalars as JSON-ready lists, dicts and numbers."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        return plain(value.item())
    if isinstance(value, float):
        return round(value, DIGITS) if np.isfinite(value) else None
    return value


def as_json(value: Any) -> str:
    """``value`` (a result dataclass, a dict of them...) as indented JSON text."""
    return json.dumps(plain(value), ensure_ascii=False, indent=1, allow_nan=False) + "\n"


def figure_html(figure: go.Figure, name: str) -> str:
    """A standalone page (plotly.js inlined, works offline) whose camera button saves SVG."""
    config = {"displaylogo": False, "toImageButtonOptions": {"format": "svg", "filename": name}}
    # auto_play=False: a figure with animation frames waits for its play button.
    return figure.to_html(include_plotlyjs=True, full_html=True, config=config, auto_play=False)


def table_csv(table: pd.DataFrame) -> str:
    return table.to_csv(index=False)
