"""Messages in the page (st.warning, st.error...) render Markdown: anything that comes from
outside (an error naming the user's text, a file name, a path) is escaped first."""

from __future__ import annotations

import re

import streamlit as st

__all__ = ["fail", "markdown_literal", "warn"]

_MARKDOWN_SPECIAL = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation character


def markdown_literal(text: str) -> str:
    """``text`` as typed: CommonMark reads a backslash-escaped punctuation character
    literally (and Streamlit never renders raw HTML in these messages)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def warn(text: str) -> None:
    st.warning(markdown_literal(text))


def fail(text: str) -> None:
    st.error(markdown_literal(text))
