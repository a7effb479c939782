"""One exception type for everything the user can fix.

The CLI prints its message as a single line (`error: FILE:ROW: problem`) and exits with
status 2; `--debug` shows the traceback instead.
"""


class UserError(Exception):
    """A problem with the user's input (file, option, environment), not a bug."""


def at(path, row, problem: str) -> UserError:
    """Build the canonical `FILE:ROW: problem` error (row may be None for whole-file problems)."""
    where = f"{path}:{row}" if row is not None else f"{path}"
    return UserError(f"{where}: {problem}")


def read_jsonl(path) -> list[tuple[int, dict]]:
    """(line number, object) for every non-empty line of a JSON-lines file.

    A missing file, a line that is not JSON or not a JSON object is one `FILE:ROW: problem`
    error, raised before the caller has done anything with the rows."""
    import json
    from pathlib import Path

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
