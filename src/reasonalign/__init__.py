"""reasonalign: align language models with human-like reasoning, and measure it honestly."""

__version__ = "0.1.0"
