"""JSON lines in and out: the format of every per-item output (predictions, generations, groups).

Reading names the first bad line as `FILE:ROW: problem` before the caller touches any row;
writing goes to a temporary file renamed into place, so a killed run never leaves half a file.
"""

import json
import os
from pathlib import Path

import platformdirs

from reasonalign.core.errors import at


def read_jsonl(path) -> list[tuple[int, dict]]:
    """(line number, object) for every non-empty line of a JSON-lines file.

    A missing file, a line that is not JSON or not a JSON object is one `FILE:ROW: problem`
    error, raised before the caller has done anything with the rows."""
    path = Path(path)
    if not path.is_file():
        raise at(path, None, "file not found")
    records = []
    with open(path, encoding="utf-8") as f:
        for row, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise at(path, row, f"invalid JSON ({exc.msg} at column {exc.colno})") from None
            if not isinstance(record, dict):
                raise at(path, row, "expected a JSON object per line")
            records.append((row, record))
    return records


def write_jsonl(path, records) -> None:
    """One JSON object per line (UTF-8 kept as text), written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    with open(tmp, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def write_json(path, data) -> Path:
    """`data` as indented JSON (folders made, written atomically); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def cache_dir() -> Path:
    """Converted models, the precision probe and other caches (REASONALIGN_CACHE overrides)."""
    if os.environ.get("REASONALIGN_CACHE"):
        return Path(os.environ["REASONALIGN_CACHE"])
    return Path(platformdirs.user_cache_dir("reasonalign"))
