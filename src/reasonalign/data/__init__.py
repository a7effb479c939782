"""Datasets: built-in DFAR, ETHOS from a path, or your own CSV/TSV/JSON-lines file.

`load()` validates the whole file before anything else runs; `reasonalign.data.audit` measures
label balance, duplicates and train/test leakage.
"""

from reasonalign.data.tables import (
    Dataset,
    Example,
    load,
    normalize_statement,
    parse_columns,
    parse_label_map,
    split_off,
    stratified_sample,
    take_rows,
)

__all__ = ["Dataset", "Example", "load", "normalize_statement", "parse_columns", "parse_label_map",
           "split_off", "stratified_sample", "take_rows"]
