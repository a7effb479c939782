"""Load test of the rating server: many raters writing at once, nothing lost, nothing doubled.

Starts the real server (`reasonalign annotate serve`, waitress, 127.0.0.1, any free port) on a
fresh study, then
1. reference: one rater sends R ratings one after another (latency with no contention);
2. load: N raters send R ratings each, all at once (one thread and one HTTP client per rater).
Every request goes through the bearer-token API (POST /api/ratings). Afterwards the database is
read back: each sent rating must be stored exactly once (one current rating, one history row,
the value sent). Prints p50/p95/max latency of both phases and their ratio, throughput and the
check. Exit status 1 if any rating was lost, doubled or wrong.
Usage: python benchmarks/annotate_load.py [--raters 20] [--ratings 100] [--threads 8] [--json FILE.json]
"""

import argparse
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx2

from reasonalign.core.files import write_json
from reasonalign.judges import study
from reasonalign.judges.base import JudgeItem


def make_study(folder: Path, n_items: int, raters: int) -> tuple[Path, list[str]]:
    """A study of n_items synthetic items from two models and `raters` + 1 tokens (the last: the reference)."""
    items = {m: [JudgeItem(str(i), f"Statement {i}: I kept the wallet I found.", i % 2, "Keeping it is theft.",
                           f"{m} reason {i}.", i % 2) for i in range(n_items // 2)] for m in ("model-a", "model-b")}
    db = folder / "load.sqlite"
    study.create_study(db, items, seed=0, show_gold_reason=False)
    conn = study.connect(db)
    tokens = [study.add_rater(conn, f"rater-{k:02d}") for k in range(raters + 1)]
    conn.close()
    return db, tokens


def start_server(db: Path, threads: int) -> tuple[subprocess.Popen, str]:
    command = [sys.executable, "-m", "reasonalign", "annotate", "serve", "--db", str(db), "--port", "0",
               "--threads", str(threads)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = server.stdout.readline()
    found = re.search(r"at (http://\S+)", line)
    if not found:
        server.kill()
        raise SystemExit(f"the server did not start: {line}{server.stdout.read()}")
    return server, found.group(1).rstrip("/")


def rate_all(url: str, token: str, n: int, seed: int, latencies: list, sent: dict, errors: list,
             start: threading.Barrier | None = None) -> None:
    """One rater: fetch the queue, then rate its first n items (seeded values), timing each POST."""
    rng = random.Random(seed)
    with httpx2.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60, trust_env=False) as c:
        listed = c.get("/api/items")
        listed.raise_for_status()
        queue = listed.json()["items"][:n]
        if start is not None:
            start.wait()
        for item in queue:
            aligned = rng.random() < 0.5
            body = {"item_id": item["item_id"], "aligned": aligned, "comment": f"c{rng.randrange(1000)}"}
            t0 = time.perf_counter()
            try:
                r = c.post("/api/ratings", json=body)
                ok = r.status_code == 200
            except httpx2.HTTPError as exc:
                ok, r = False, exc
            latencies.append(time.perf_counter() - t0)
            if ok:
                sent[(token, item["item_id"])] = (aligned, body["comment"])
            else:
                errors.append(f"{item['item_id']}: {getattr(r, 'status_code', r)}")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def summary(latencies: list[float], seconds: float) -> dict:
    return {"requests": len(latencies), "seconds": round(seconds, 2), "per_second": round(len(latencies) / seconds, 1),
            "p50_ms": round(1000 * percentile(latencies, 50), 1), "p95_ms": round(1000 * percentile(latencies, 95), 1),
            "max_ms": round(1000 * max(latencies), 1)}


def check(db: Path, tokens: list[str], sent: dict) -> dict:
    """Compare the database with what was sent: stored exactly once, with the value sent."""
    conn = study.connect(db)
    name_of = {study.rater_for_token(conn, t).name: t for t in tokens}
    stored = {(name_of[r["rater"]], r["blind_id"]): (r["aligned"], r["comment"]) for r in study.ratings(conn)}
    history = conn.execute("SELECT COUNT(*) FROM rating_history").fetchone()[0]
    doubled = conn.execute("SELECT COUNT(*) FROM (SELECT 1 FROM rating_history GROUP BY rater_id, item_id"
                           " HAVING COUNT(*) > 1)").fetchone()[0]
    conn.close()
    return {"sent": len(sent), "stored": len(stored), "history_rows": history, "doubled": doubled,
            "lost": sum(k not in stored for k in sent), "wrong": sum(stored.get(k, v) != v for k, v in sent.items()),
            "unexpected": sum(k not in sent for k in stored)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--raters", type=int, default=20, help="concurrent raters")
    p.add_argument("--ratings", type=int, default=100, help="ratings per rater (the study has this many items)")
    p.add_argument("--threads", type=int, default=8, help="server worker threads (annotate serve --threads)")
    p.add_argument("--json", metavar="PATH", help="also write the numbers as JSON here")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db, tokens = make_study(Path(tmp), args.ratings + args.ratings % 2, args.raters)
        server, url = start_server(db, args.threads)
        try:
            sent, errors = {}, []
            ref_latencies: list[float] = []
            t0 = time.perf_counter()
            rate_all(url, tokens[-1], args.ratings, 10_000, ref_latencies, sent, errors)
            reference = summary(ref_latencies, time.perf_counter() - t0)

            load_latencies: list[float] = []
            barrier = threading.Barrier(args.raters + 1)
            workers = [threading.Thread(target=rate_all, args=(url, t, args.ratings, k, load_latencies, sent, errors,
                                                               barrier)) for k, t in enumerate(tokens[:-1])]
            for w in workers:
                w.start()
            barrier.wait()
            t0 = time.perf_counter()
            for w in workers:
                w.join()
            load = summary(load_latencies, time.perf_counter() - t0)
        finally:
            server.terminate()
            server.wait(timeout=30)
        result = {"raters": args.raters, "ratings_per_rater": args.ratings, "server_threads": args.threads,
                  "cpus": os.cpu_count(), "reference_1_rater": reference, "load": load,
                  "p95_ratio_load_vs_reference": round(load["p95_ms"] / reference["p95_ms"], 2),
                  "errors": errors[:10], "n_errors": len(errors), "check": check(db, tokens, sent)}
    c = result["check"]
    print(f"reference (1 rater, {reference['requests']} ratings in sequence): p50 {reference['p50_ms']} ms, "
          f"p95 {reference['p95_ms']} ms, max {reference['max_ms']} ms, {reference['per_second']} ratings/s")
    print(f"load ({args.raters} raters x {args.ratings} ratings at once, {args.threads} server threads, "
          f"{os.cpu_count()} CPUs): p50 {load['p50_ms']} ms, p95 {load['p95_ms']} ms, max {load['max_ms']} ms, "
          f"{load['per_second']} ratings/s; p95 {result['p95_ratio_load_vs_reference']}x the reference's")
    print(f"stored {c['stored']} / sent {c['sent']} (+{result['n_errors']} refused): lost {c['lost']}, doubled "
          f"{c['doubled']}, wrong value {c['wrong']}, unexpected {c['unexpected']}, history rows {c['history_rows']}")
    lost = c["lost"] + c["doubled"] + c["wrong"] + c["unexpected"] + result["n_errors"]
    result["headline"] = [
        {"name": "p95 latency under load", "value": load["p95_ms"], "unit": "ms", "target": None,
         "higher_is_better": False},
        {"name": "p95 under load / 1 rater alone", "value": result["p95_ratio_load_vs_reference"], "unit": "x",
         "target": None, "higher_is_better": False},
        {"name": "max latency under load", "value": load["max_ms"], "unit": "ms", "target": None,
         "higher_is_better": False},
        {"name": "ratings/s under load", "value": load["per_second"], "unit": "ratings/s", "target": None,
         "higher_is_better": True},
        {"name": "ratings lost, doubled, wrong or refused", "value": lost, "unit": "ratings", "target": 0,
         "higher_is_better": False}]
    if args.json:
        write_json(args.json, result)
    bad = result["n_errors"] or c["lost"] or c["doubled"] or c["wrong"] or c["unexpected"] or \
        c["stored"] != args.ratings * (args.raters + 1) or c["history_rows"] != c["stored"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
