"""Printers of derivations: plain text here; LaTeX and Markdown beside it."""
