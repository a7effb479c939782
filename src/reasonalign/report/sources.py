"""Reading what `results.json` points to, for the plots and the report alike.

A reproduce run may have been cut short, reuse cells written by an older version, or leave a
stage out, so every file read here is optional: a missing or unreadable file gives an empty
result and a warning, never an exception, because the report comes at the end of hours of work.
"""

import json
import logging
from pathlib import Path

from reasonalign.core.errors import UserError
from reasonalign.core.files import read_jsonl

log = logging.getLogger(__name__)


def methods(results: dict) -> list[str]:
    """The methods in the order of the results table (rows), then any only named by a source."""
    names = [row["method"] for row in results.get("rows", [])]
    names += [s["method"] for s in results.get("sources", []) if s["method"] not in names]
    return list(dict.fromkeys(names))


def sources(results: dict, kind: str, dataset: str | None = None) -> list[dict]:
    """The sources of one kind (and dataset), ordered by method (table order), then seed."""
    order = {name: i for i, name in enumerate(methods(results))}
    found = [s for s in results.get("sources", [])
             if s.get("kind") == kind and (dataset is None or s.get("dataset") == dataset)]
    return sorted(found, key=lambda s: (order.get(s["method"], len(order)), s.get("seed", 0)))


def first_seed(results: dict, kind: str, dataset: str) -> list[dict]:
    """One source per method: the lowest seed it has (plots that show one run per method)."""
    chosen = {}
    for source in sources(results, kind, dataset):
        chosen.setdefault(source["method"], source)
    return list(chosen.values())


def read_json(path: Path) -> dict:
    """A JSON object, or {} when the file is missing or not a JSON object."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("report: skipping %s (%s)", path, exc)
        return {}
    return data if isinstance(data, dict) else {}


def read_records(path: Path) -> list[dict]:
    """The records of a JSON-lines file, or [] when it is missing or malformed."""
    if not path.is_file():
        return []
    try:
        return [record for _, record in read_jsonl(path)]
    except (OSError, UserError) as exc:
        log.warning("report: skipping %s (%s)", path, exc)
        return []


def kind_of(results: dict, method: str) -> str:
    """"generative" or "baseline", as the results table says (generative when unknown)."""
    for row in results.get("rows", []):
        if row["method"] == method:
            return row.get("kind", "generative")
    return "generative"
