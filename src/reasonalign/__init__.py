"""reasonalign: align language models with human-like reasoning, and measure it honestly.

The Python API is `reasonalign.api`; its classes are importable from here too (`from reasonalign import
Classifier, TrainConfig, EvalConfig, ...`), loaded on first use, so `import reasonalign` (and the CLI's
start-up) imports no torch. The entry points `train`, `align` and `export` share their names with
packages of this one, so they are imported from `reasonalign.api`.
"""

from reasonalign._version import __version__

_API = ("Classifier", "Prediction", "UserError", "TrainConfig", "AlignConfig", "EvalConfig", "ExportConfig", "evaluate")


def __getattr__(name: str):
    if name in _API:
        from reasonalign import api

        return getattr(api, name)
    raise AttributeError(f"module 'reasonalign' has no attribute {name!r}")
