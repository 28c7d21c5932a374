"""The script ``attnviz app`` hands to ``streamlit run``; it ships inside the package, so the
app starts from any working directory (app.py at the repository root is the same for a clone).
"""

from attnviz.ui.app import main

main()
