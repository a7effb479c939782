"""Datasets in: `hf:NAME[:CONFIG][@SPLIT]` (a Hub dataset through `datasets.load_dataset`), a
`save_to_disk` folder (`FOLDER[@SPLIT]`) or a `.parquet` file, read into the same rows as a CSV.

The rows then go through the table loader's checks (`data/tables.py`): the same `--columns` and
`--label-map`, the same one-line `NAME:ROW: problem` errors, where ROW is the record's number
(1 = the first, `dataset[ROW - 1]`). Offline (`HF_HUB_OFFLINE=1` or `HF_DATASETS_OFFLINE=1`) an `hf:`
name loads from the local cache only, and one that is not cached is a one-line error.

The sha256 a run record pins: the parquet file's bytes, or the bytes of the dataset's Arrow files
(`save_to_disk` folder, Hub cache), so the same data gives the same hash.

`datasets` (and the pyarrow it brings) is an extra, `pip install 'reasonalign[hub]'`: only this module uses it.
"""

import hashlib
import importlib.util
import os
from pathlib import Path

from reasonalign.core.errors import UserError, at

DISK_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")


def is_dataset_spec(spec: str) -> bool:
    """Whether `spec` is read by `datasets`: hf:..., a .parquet file or a save_to_disk folder (@SPLIT allowed)."""
    if spec.startswith("hf:") or spec.lower().endswith(".parquet"):
        return True
    folder = Path(spec.rpartition("@")[0] if "@" in spec and not Path(spec).exists() else spec)
    return folder.is_dir() and any((folder / m).is_file() for m in DISK_MARKERS)


def parse_hf(spec: str) -> tuple[str, str | None, str | None]:
    """'hf:NAME[:CONFIG][@SPLIT]' -> (NAME, CONFIG, SPLIT)."""
    body, _, split = spec[len("hf:"):].partition("@")
    name, _, config = body.partition(":")
    if not name:
        raise UserError(f"--data {spec}: expected hf:NAME[:CONFIG][@SPLIT], e.g. hf:user/ethics:default@train")
    return name, config or None, split or None


def _one_split(spec: str, data, split: str | None):
    """A Dataset from a Dataset or DatasetDict, by `split` (or its only split)."""
    from datasets import DatasetDict

    if not isinstance(data, DatasetDict):
        if split:
            raise UserError(f"{spec}: holds one split; drop @{split}")
        return data
    if split is None:
        if len(data) == 1:
            return next(iter(data.values()))
        raise UserError(f"{spec}: name a split with @SPLIT (splits: {', '.join(data)})")
    if split not in data:
        raise UserError(f"{spec}: no split {split!r} (splits: {', '.join(data)})")
    return data[split]


def _offline() -> bool:
    return any(os.environ.get(v, "").upper() in ("1", "TRUE", "YES", "ON") for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def _load_hf(spec: str):
    from datasets import load_dataset

    name, config, split = parse_hf(spec)
    try:
        data = load_dataset(name, config, split=split)
    except Exception as exc:  # datasets raises many kinds (not found, offline, bad config, ...): one line each
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        where = "not in the local cache (offline: HF_HUB_OFFLINE/HF_DATASETS_OFFLINE is set)" if _offline() \
            else "cannot be loaded"
        raise UserError(f"{spec}: {where}: {type(exc).__name__}: {first[:200]}") from None
    return data if split else _one_split(spec, data, None)


def _load_disk(spec: str):
    from datasets import load_from_disk

    folder, split = (spec, None) if Path(spec).exists() else spec.rsplit("@", 1)
    try:
        data = load_from_disk(folder)
    except Exception as exc:
        raise at(folder, None, f"not a readable save_to_disk folder ({type(exc).__name__}: "
                               f"{(str(exc).splitlines() or [''])[0][:200]})") from None
    return _one_split(spec, data, split)


def _sha256_files(paths) -> str:
    h = hashlib.sha256()
    for path in sorted(paths):
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def read_dataset(spec: str, fields: dict) -> tuple[str, list, list]:
    """(sha256, rows (row, statement, raw label, reason), problems (row, message)), `fields` mapping
    statement/label/reason to column names (a missing statement or label column: one-line error)."""
    library = "pyarrow" if spec.lower().endswith(".parquet") else "datasets"
    if importlib.util.find_spec(library) is None:
        raise UserError(f"--data {spec}: reading it needs {library}: pip install 'reasonalign[hub]'")
    if spec.lower().endswith(".parquet"):
        columns, records, sha = _parquet(spec)
    else:
        data = _load_hf(spec) if spec.startswith("hf:") else _load_disk(spec)
        columns, records = data.column_names, data.to_list()
        sha = _sha256_files([f["filename"] for f in data.cache_files]) if data.cache_files else data._fingerprint
    by_name = {str(c).strip().lower(): c for c in columns}
    index = {}
    for field, name in fields.items():
        if name.lower() in by_name:
            index[field] = by_name[name.lower()]
        elif field != "reason":
            what = f"no {name!r} column" if name.lower() == field else f"no column {name!r} (for the {field})"
            raise at(spec, None, f"{what} (columns: {', '.join(map(str, columns))}); map it with --columns {field}=NAME")
    rows, problems = [], []
    for n, record in enumerate(records, 1):
        statement, label, reason = (record.get(index[f]) if f in index else None for f in ("statement", "label", "reason"))
        if label is None:
            problems.append((n, "empty label"))
            continue
        if isinstance(label, bool):
            label = str(label).lower()  # True -> "true", matched by --label-map true=unethical
        rows.append((n, None if statement is None else str(statement).strip(), label,
                     None if reason is None else str(reason).strip()))
    return sha, rows, problems


def _parquet(spec: str):
    import pyarrow.parquet as pq

    path = Path(spec)
    if not path.is_file():
        raise at(path, None, "no such file" if not path.exists() else "is a directory, not a file")
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow's ArrowInvalid & co.: a damaged or foreign file
        raise at(path, None, f"not a readable parquet file ({(str(exc).splitlines() or [''])[0][:200]})") from None
    return table.column_names, table.to_pylist(), _sha256_files([path])
