"""Reads a Derivation for people: the lecture-note steps, LaTeX, Markdown, text and JSON."""
