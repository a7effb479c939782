"""The reasons a MAR table's judge rated, sampled for careful readers, and the sheet cut into one part per reader.

    .venv/bin/python examples/readers_sample.py full             # runs/full-cpu/readers-mar/generations/{untuned,l,lr}/
    .venv/bin/python examples/readers_sample.py full --parts DIR # after the export: DIR/sheet-01.csv ...
    .venv/bin/python examples/readers_sample.py full --judgeset  # after the ratings: items.jsonl for judge validate

`full` (make results): the first 200 dfar:test rows of the seed-0 `--rows` order, from each MAR cell (untuned:
seed 0; L and L+R: seeds 0-2); 10 parts. `quick` (make results-quick): every reason of the demo cells' MAR (96 rows
per seed, each seed its own rows; untuned, L and L+R, seeds 0-2); 6 parts. Seeds are pooled per model with an
item's id "SEED:ROW", so L and L+R pair on the same row and seed (`eval --task reasons --judge human` prints the
paired differences). Then: `reasonalign eval --task reasons --export-ratings FOLDER/sheet.csv --generations
FOLDER/generations/untuned/generations.jsonl,FOLDER/generations/l/generations.jsonl,FOLDER/generations/lr/generations.jsonl
--seed 0` (FOLDER = runs/full-cpu/readers-mar or runs/reproduce-cpu/readers-mar).
"""
import csv
import json
import re
import sys
from pathlib import Path

from reasonalign.judges.human import read_key, restore
from reasonalign.tasks import task_for

TABLES = {  # folder, rows kept (None: all), where each model's MAR generations are, sheet parts
    "full": ("runs/full-cpu", 200, {"untuned": "untuned-mar/seed-*/eval-reasons", "l": "l-mar/seed-*/eval-reasons",
                                    "lr": "lr-mar/seed-*/eval-reasons"}, 10),
    "quick": ("runs/reproduce-cpu", None, {m: f"dfar/seed-*/{m}/eval-reasons" for m in ("untuned", "l", "lr")}, 6),
}
if len(sys.argv) < 2 or sys.argv[1] not in TABLES:
    print(f"usage: readers_sample.py {'|'.join(TABLES)} [--parts DIR | --judgeset]", file=sys.stderr)
    sys.exit(2)
folder, rows, models, parts = TABLES[sys.argv[1]]
out = Path(folder) / "readers-mar"
if "--judgeset" in sys.argv:  # the rated sheet as a judge-validation set: `reasonalign judge validate --set FOLDER`
    key = read_key(out / "sheet.key.csv")  # blinded id -> (model, source item id)
    with open(out / "items.jsonl", "w", encoding="utf-8") as f:
        for r in csv.DictReader(open(out / "sheet.csv", newline="", encoding="utf-8")):
            r = {k: restore(v) for k, v in r.items()}  # the sheet's spreadsheet-safe quoting undone
            verdict = None if r["verdict"] == "(none)" else r["verdict"]
            model, source = key[r["item_id"]]
            f.write(json.dumps({"id": r["item_id"], "part": "held-out", "row": source,
                                "statement": r["statement"], "gold_label": r["gold_label"],
                                "gold_reason": r["gold_reason"], "verdict": verdict, "reason": r["reason"],
                                "source": "model:" + model}) + "\n")
    sys.exit(0)
if "--parts" in sys.argv:  # equal parts in sheet order, one per reader session
    target = Path(sys.argv[sys.argv.index("--parts") + 1])
    target.mkdir(parents=True, exist_ok=True)
    sheet = list(csv.DictReader(open(out / "sheet.csv", newline="", encoding="utf-8")))
    size = -(-len(sheet) // parts)
    for p in range(parts):
        with open(target / f"sheet-{p + 1:02d}.csv", "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, list(sheet[0]))
            w.writeheader()
            w.writerows(sheet[p * size:(p + 1) * size])
    sys.exit(0)
keep = None
if rows is not None:
    task = task_for("dfar:test")
    keep = {ex.row for ex in task.rows(list(task.load("dfar:test")), rows, 0)}
for model, pattern in models.items():
    kept = []
    for cell in sorted((Path(folder) / "cells").glob(pattern)):
        seed = re.search(r"seed-(\d+)-", str(cell)).group(1)
        kept += [{**r, "row": f"{seed}:{r['row']}"} for r in map(json.loads, open(cell / "generations.jsonl"))
                 if keep is None or r["row"] in keep]
    (out / "generations" / model).mkdir(parents=True, exist_ok=True)
    (out / "generations" / model / "generations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))
    print(model, len(kept), "->", out / "generations" / model / "generations.jsonl")
