"""The Streamlit app: one module per view; ``app.main`` arranges them."""
