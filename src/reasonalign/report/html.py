"""`report.html`: one static, offline file with the results, the plots and every generated reason.

All HTML comes from the Jinja2 template with autoescaping on, so a statement such as
`<script>...</script>` is shown as text; nothing is concatenated into markup here. Plots are
embedded as base64 PNGs and the page's only script is inline, allowed by its hash in a
Content-Security-Policy that also forbids every network request (`default-src 'none'`): the file
can be mailed or archived and opens the same anywhere.
"""

import base64
import hashlib
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from reasonalign.core.files import write_text
from reasonalign.report.plots import PLOTS
from reasonalign.report.sources import read_json, read_records, sources

TEMPLATES = Path(__file__).parent / "templates"


def write_report(results: dict, root: Path, plots: dict[str, list[str]], name: str = "report.html") -> Path:
    """Render `root/NAME` from results.json's dict and write_plots' {name: [png, svg]}."""
    root = Path(root)
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(pct=_pct, ci=_ci, points=_points, pval=_pval, duration=_duration, csp_hash=_csp_hash)
    reasons = reason_rows(results, root)
    html = env.get_template("report.html.j2").render(
        title=results.get("title") or "reasonalign reproduce",
        config=results.get("config"), seeds=results.get("seeds") or [], written=results.get("written"),
        seconds=results.get("seconds"), machine=results.get("machine") or {}, paper=results.get("paper") or {},
        columns=results.get("columns") or [], rows=results.get("rows") or [],
        comparisons=results.get("comparisons") or [], cells=results.get("cells") or [],
        column_names={c["key"]: c.get("name", c["key"]) for c in results.get("columns") or []},
        plots=_embedded(root, plots), reasons=reasons,
        options={name: list(dict.fromkeys(r[name] for r in reasons)) for name in ("method", "seed", "dataset",
                                                                                     "split")})
    path = root / name
    write_text(path, html, encoding="utf-8")
    return path


def reason_rows(results: dict, root: Path) -> list[dict]:
    """One row per judged reason from every `reasons` source, with the gold reason joined by row."""
    rows = []
    for source in sources(results, "reasons"):
        folder = root / source["folder"]
        metrics = read_json(folder / "metrics.json")
        headline = metrics.get("judge")
        gold_reasons = {g.get("row"): g.get("gold_reason") for g in read_records(folder / "generations.jsonl")}
        items = read_records(folder / "judgements.jsonl")
        split = _split_of(metrics.get("data"), [item.get("row") for item in items])
        for item in items:
            judges = item.get("judges") or {}
            judge = headline if headline in judges else next(iter(judges), None)
            rating = judges.get(judge) or {}
            aligned = rating.get("aligned")
            rows.append({
                "method": source["method"], "seed": source.get("seed"), "dataset": source.get("dataset"),
                "row": item.get("row"), "statement": item.get("statement"), "gold": item.get("gold"),
                "verdict": item.get("verdict"),
                "correct": "right" if item.get("verdict") is not None and item.get("verdict") == item.get("gold")
                else "wrong",
                "judge": judge, "aligned": {True: "aligned", False: "misaligned"}.get(aligned, "unrated"),
                "criteria": rating.get("criteria") or [], "reason": item.get("reason"),
                "gold_reason": gold_reasons.get(item.get("row")), "split": split.get(item.get("row"), "all"),
            })
    return rows


def _split_of(data: str | None, rows: list) -> dict:
    """row -> "clean" / "repeated from train" for DFAR test (its reported clean split); {} for other data."""
    from reasonalign.tasks import task_for  # loads DFAR test-clean only when a report has DFAR reasons

    splits = (task_for(data).splits(data, rows) or {}) if data else {}
    clean = splits.get("dfar:test-clean")
    return {} if clean is None else {r: "clean" if k else "repeated from train" for r, k in zip(rows, clean)}


def _embedded(root: Path, plots: dict[str, list[str]]) -> list[dict]:
    """Every known plot in report order: its PNG as base64 (None when not drawn) and why it is missing."""
    out = []
    for name, (caption, missing) in PLOTS.items():
        files = plots.get(name) or []
        png = next((root / f for f in files if f.endswith(".png") and (root / f).is_file()), None)
        out.append({"name": name, "caption": caption, "missing": missing,
                    "png": base64.b64encode(png.read_bytes()).decode("ascii") if png else None,
                    "svg": next((f for f in files if f.endswith(".svg")), None)})
    return out


def _pct(value) -> str:
    return "—" if not isinstance(value, (int, float)) else f"{100 * value:.1f}%"


def _ci(pair) -> str:
    if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(v, (int, float)) for v in pair)):
        return ""
    return f"[{100 * pair[0]:.1f}–{100 * pair[1]:.1f}]"


def _points(value) -> str:
    """A difference of shares in signed percentage points."""
    return "—" if not isinstance(value, (int, float)) else f"{100 * value:+.1f}"


def _pval(value) -> str:
    return "—" if not isinstance(value, (int, float)) else f"{value:.2g}"


def _duration(seconds) -> str:
    if not isinstance(seconds, (int, float)):
        return "—"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min" if seconds < 7200 else \
        f"{seconds / 3600:.1f} h"


def _csp_hash(script) -> str:
    """The CSP source that allows exactly this inline script and no other."""
    digest = hashlib.sha256(str(script).encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"
