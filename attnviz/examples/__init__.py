"""Worked examples of attnviz's library API; each module runs as ``attnviz app --model
attnviz.examples.MODULE:build``."""
