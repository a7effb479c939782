"""Human rating round trip: blinded export for raters, validated import, MAR per rater.

The paper's MAR came from human judges (docs/methods.md §1). Raters must not know which model
wrote a reason, so the export mixes all models in a seeded random order under opaque ids;
the key that maps ids back to models is a separate file that is not sent to raters.
"""

import csv
import random
from pathlib import Path

from reasonalign.core.errors import UserError, at
from reasonalign.judges.base import JudgeItem, Judgement, misalignment_rate
from reasonalign.core.verdict import LABELS

# the generated verdict beside its reason: the rubric's first question is whether it is the human one
COLUMNS = ["item_id", "statement", "verdict", "reason", "gold_label", "gold_reason", "aligned"]
KEY_COLUMNS = ["item_id", "model", "source_item_id"]
_YES = {"yes", "y", "1", "true"}
_NO = {"no", "n", "0", "false"}


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutral(value):
    """A cell a spreadsheet will not run as a formula (OWASP CSV injection): text starting with
    = + - @ tab or CR gets a leading single quote. Statements, reasons and rater comments are
    written by people we do not control; `=HYPERLINK(...)` must open as text."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_START) else value


def restore(value: str) -> str:
    """The value `neutral` was given (the reader's side of the same rule)."""
    return value[1:] if value.startswith("'") and value[1:].startswith(FORMULA_START) else value


def key_path_for(path: str | Path) -> Path:
    """`ratings.csv` -> `ratings.key.csv` (keep it away from the raters)."""
    path = Path(path)
    return path.with_name(path.stem + ".key.csv")


def blind(items_by_model: dict[str, list[JudgeItem]], seed: int) -> list[tuple[str, str, JudgeItem]]:
    """[(blinded id, model, item)] in a seeded random order mixing all models.

    Blinded ids (`r0001`, ...) are assigned after shuffling, so neither the id nor the order
    reveals the model. Shared by the rating sheet and the annotation study (`judges.study`).
    """
    rows = [(model, it) for model in sorted(items_by_model) for it in items_by_model[model]]
    random.Random(seed).shuffle(rows)
    width = max(4, len(str(len(rows))))
    return [(f"r{n:0{width}d}", model, it) for n, (model, it) in enumerate(rows, 1)]


def write_sheet(path: str | Path, rows: list[dict], key: dict[str, tuple[str, str]], extra: tuple[str, ...] = ()) -> Path:
    """A rater sheet (`COLUMNS` + `extra`) at `path` and its un-blinding key beside it; returns the key path.

    `rows` hold the sheet's columns (missing ones are left empty); `key` maps blinded id ->
    (model, source item id).
    """
    path, key_path = Path(path), key_path_for(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as sheet, key_path.open("w", newline="", encoding="utf-8") as kf:
        out = csv.DictWriter(sheet, fieldnames=COLUMNS + list(extra), restval="")
        out.writeheader()
        out.writerows({k: neutral(v) for k, v in r.items()} for r in rows)
        kout = csv.writer(kf)
        kout.writerow(KEY_COLUMNS)
        kout.writerows([neutral(v) for v in (blind_id, *key[blind_id])]
                       for blind_id in dict.fromkeys(r["item_id"] for r in rows))
    return key_path


def export_for_raters(items_by_model: dict[str, list[JudgeItem]], path: str | Path, seed: int) -> Path:
    """Write the rater sheet at `path` and the un-blinding key next to it; returns the key path.

    `gold_label` is written as its word for the raters' benefit and `aligned` is left empty for
    them to fill with yes/no.
    """
    rows, key = [], {}
    for blind_id, model, it in blind(items_by_model, seed):
        rows.append({"item_id": blind_id, "statement": it.statement,
                     "verdict": "(none)" if it.verdict is None else LABELS[it.verdict], "reason": it.reason,
                     "gold_label": LABELS[it.gold_label], "gold_reason": it.gold_reason or "", "aligned": ""})
        key[blind_id] = (model, it.item_id)
    return write_sheet(path, rows, key)


def import_ratings(path: str | Path) -> list[tuple[str, str, bool]]:
    """Read a filled sheet -> [(item_id, rater, aligned)].

    The rater is the `rater` column when there is one (several raters in one file), else the
    file's stem (one copy of the sheet per rater). Every row must carry a rating; problems are
    reported as `FILE:ROW: problem` with ROW the line number in the file.
    """
    path = Path(path)
    try:
        f = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise at(path, None, f"cannot read ratings: {exc.strerror}") from None
    with f:
        reader = csv.DictReader(f)
        missing = {"item_id", "aligned"} - set(reader.fieldnames or [])
        if missing:
            raise at(path, 1, f"missing column(s) {', '.join(sorted(missing))}")
        ratings, seen = [], set()
        for row in reader:
            line = reader.line_num
            item_id = restore((row.get("item_id") or "").strip())
            rater = restore((row.get("rater") or "").strip()) or path.stem
            value = (row.get("aligned") or "").strip().lower()
            if not item_id:
                raise at(path, line, "empty item_id")
            if value in _YES:
                aligned = True
            elif value in _NO:
                aligned = False
            else:
                shown = f"'{value}'" if value else "empty"
                raise at(path, line, f"aligned is {shown}; expected yes/no/1/0/true/false")
            if (item_id, rater) in seen:
                raise at(path, line, f"item {item_id} rated twice by {rater}")
            seen.add((item_id, rater))
            ratings.append((item_id, rater, aligned))
    if not ratings:
        raise at(path, None, "no ratings found")
    return ratings


def ratings_by_rater(ratings: list[tuple[str, str, bool]]) -> dict[str, list[Judgement]]:
    """Ratings as per-rater Judgement lists, ready for `misalignment_rate` and `agreement`."""
    out: dict[str, list[Judgement]] = {}
    for item_id, rater, aligned in ratings:
        out.setdefault(rater, []).append(Judgement(item_id, aligned, f"human rater {rater}", [] if aligned else ["rated_misaligned"]))
    return out


def read_key(path: str | Path) -> dict[str, tuple[str, str]]:
    """Blinded id -> (model, original item id)."""
    with Path(path).open(newline="", encoding="utf-8") as f:
        return {restore(r["item_id"]): (restore(r["model"]), restore(r["source_item_id"])) for r in csv.DictReader(f)}


def human_mar(ratings: list[tuple[str, str, bool]], key: str | Path | dict | None = None) -> dict:
    """MAR per rater and pooled over all ratings; per model as well when the key (a key file or
    its `read_key` mapping) is given.

    Pooled = every (item, rater) rating counts once, so an item rated by three raters weighs
    three times; per-model MARs pool the raters the same way.
    """
    per_rater = ratings_by_rater(ratings)
    result = {
        "pooled": misalignment_rate([j for js in per_rater.values() for j in js]),
        "per_rater": {r: misalignment_rate(js) for r, js in sorted(per_rater.items())},
    }
    if key is not None:
        where = "the study" if isinstance(key, dict) else key
        key = key if isinstance(key, dict) else read_key(key)
        unknown = sorted({i for i, _, _ in ratings} - key.keys())
        if unknown:
            raise UserError(f"{where}: {len(unknown)} rated item(s) not in the key, e.g. {unknown[0]}")
        by_model: dict[str, list[Judgement]] = {}
        for js in per_rater.values():
            for j in js:
                by_model.setdefault(key[j.item_id][0], []).append(j)
        result["per_model"] = {m: misalignment_rate(js) for m, js in sorted(by_model.items())}
        result["paired"] = paired_models(ratings, key)
    return result


def paired_models(ratings: list[tuple[str, str, bool]], key: dict[str, tuple[str, str]]) -> dict:
    """MAR B − A for every two models rated on the same source items (the key's source item ids, e.g. one test
    row, or "SEED:ROW" when seeds are pooled), paired over those items: an item is misaligned unless every rater
    said aligned (as the judge-validation consensus)."""
    from itertools import combinations

    from reasonalign.core.stats import paired_comparison

    aligned: dict[str, dict[str, bool]] = {}  # model -> source item -> every rater said aligned
    for item_id, _, ok in ratings:
        model, source = key[item_id]
        per_source = aligned.setdefault(model, {})
        per_source[source] = per_source.get(source, True) and ok
    out = {}
    for a, b in combinations(sorted(aligned), 2):
        shared = sorted(aligned[a].keys() & aligned[b].keys())
        if shared:
            found = paired_comparison([not aligned[a][s] for s in shared], [not aligned[b][s] for s in shared])
            out[f"{b} - {a}"] = {k: found[k] for k in ("n", "a", "b", "difference", "ci95", "mcnemar_p")}
    return out
