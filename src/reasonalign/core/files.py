"""JSON lines in and out: the format of every per-item output (predictions, generations, groups).

Reading names the first bad line as `FILE:ROW: problem` before the caller touches any row;
writing goes to a temporary file renamed into place, so a killed run or a full disk never leaves
half a file that a later command (a recipe's `creates:`, a reproduce cell) could take for a
finished result. A write that fails (disk full, read-only, a file in the way) is one `UserError`
naming the path, with the temporary file removed.
"""

import json
import os
from pathlib import Path

import platformdirs

from reasonalign.core.errors import UserError, at


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


def _atomic(path, write, encoding: str = "utf-8") -> Path:
    """Call `write(file)` on PATH.partial, then rename it to PATH; OSError -> one line naming the path."""
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w", encoding=encoding) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        if tmp.parent.is_dir():
            tmp.unlink(missing_ok=True)
        raise cannot_write(exc, path) from None
    return path


def cannot_write(exc: OSError, path) -> UserError:
    """`PATH: cannot write (No space left on device)`: the one line for a failed write."""
    return at(getattr(exc, "filename", None) or path, None, f"cannot write ({exc.strerror or exc})")


def write_text(path, text: str, encoding: str = "utf-8") -> Path:
    """`text` written atomically (folders made); returns the path."""
    return _atomic(path, lambda f: f.write(text), encoding)


def write_jsonl(path, records) -> Path:
    """One JSON object per line (UTF-8 kept as text), written atomically."""
    return _atomic(path, lambda f: f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def write_json(path, data) -> Path:
    """`data` as indented JSON (folders made, written atomically); returns the path."""
    return write_text(path, json.dumps(data, indent=2) + "\n")


def check_writable(folder) -> Path:
    """Make `folder` and prove a file can be created in it, before any model loads: a file in the
    way, a read-only folder or a full disk is one line now, not a traceback after the work."""
    folder = Path(folder)
    probe = folder / ".reasonalign-write-test"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(probe, "w") as f:
            f.write("x")
        probe.unlink()
    except OSError as exc:
        if folder.exists() and not folder.is_dir():
            raise UserError(f"{folder}: is a file, not a folder; choose another --output") from None
        raise cannot_write(exc, folder) from None
    return folder


def cache_dir() -> Path:
    """Converted models, the precision probe and other caches (REASONALIGN_CACHE overrides)."""
    if os.environ.get("REASONALIGN_CACHE"):
        return Path(os.environ["REASONALIGN_CACHE"])
    return Path(platformdirs.user_cache_dir("reasonalign"))


def read_yaml(path: Path, what: str = "config file"):
    """The one YAML loader: a file's content, or a one-line UserError naming the file, the line and the problem
    (every YAML the project reads — command configs, recipes, reproduce configs, prompt templates — comes here)."""
    import yaml  # here: core.files is imported by modules that never read YAML

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: {what} not found")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UserError(f"{path}:{mark.line + 1 if mark else '?'}: invalid YAML ({problem})") from None

