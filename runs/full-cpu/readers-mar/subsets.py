"""The careful readers' sample of the full-data table's MAR reasons, and the sheet parts they were given.

    .venv/bin/python runs/full-cpu/readers-mar/subsets.py             # generations/{untuned,l,lr}/generations.jsonl
    .venv/bin/python runs/full-cpu/readers-mar/subsets.py --parts DIR # after the export: sheet-01.csv ... sheet-10.csv

Rows: the first 200 dfar:test rows of the seed-0 `--rows` order. Every MAR cell's reasons on them: untuned (seed 0),
L and L+R (seeds 0-2, pooled; an item's id is "SEED:ROW", so L and L+R pair on the same row and seed).
"""
import csv
import json
import sys
from pathlib import Path

from reasonalign.tasks import task_for

HERE = Path(__file__).parent
if "--parts" in sys.argv:  # ten parts of 140 in sheet order, one per reader session
    out = Path(sys.argv[sys.argv.index("--parts") + 1])
    out.mkdir(parents=True, exist_ok=True)
    rows = list(csv.DictReader(open(HERE / "sheet.csv", newline="", encoding="utf-8")))
    for p in range(10):
        with open(out / f"sheet-{p + 1:02d}.csv", "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, list(rows[0]))
            w.writeheader()
            w.writerows(rows[p * 140:(p + 1) * 140])
    sys.exit(0)
task = task_for("dfar:test")
keep = {ex.row for ex in task.rows(list(task.load("dfar:test")), 200, 0)}
for model, pattern in (("untuned", "untuned-mar/seed-*"), ("l", "l-mar/seed-*"), ("lr", "lr-mar/seed-*")):
    kept = []
    for cell in sorted((HERE.parent / "cells").glob(pattern)):
        seed = cell.name.split("-")[1]
        kept += [{**r, "row": f"{seed}:{r['row']}"} for r in map(json.loads, open(cell / "eval-reasons" / "generations.jsonl"))
                 if r["row"] in keep]
    (HERE / "generations" / model).mkdir(parents=True, exist_ok=True)
    (HERE / "generations" / model / "generations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))
    print(model, len(kept))
