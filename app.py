"""Streamlit entry point: `streamlit run app.py` (or `attnviz app`)."""

from attnviz.ui.app import main

main()
