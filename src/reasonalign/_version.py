"""The package version, in a module of its own: every layer may read it (run records) without importing
the package root, which exposes the API (a top layer)."""

__version__ = "0.1.0"
