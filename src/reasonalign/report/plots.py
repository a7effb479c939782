"""The figures of `reasonalign reproduce`: each one a PNG (for the report) and an SVG (for papers).

Figures are drawn on `matplotlib.figure.Figure` with an explicit Agg canvas rather than through
pyplot: no global backend switch, no figure registry to leak, so this is safe inside any process
that imports reasonalign. matplotlib is imported inside the functions (as torch is elsewhere) so
that building the CLI's --help stays light. A plot whose data is absent is left out of the result;
the report says why (`PLOTS`).
"""

import math
import os
from pathlib import Path

from reasonalign.report.sources import first_seed, kind_of, methods, read_json, read_records, sources

# name -> (caption, what is missing when the plot is not there); the report's order
PLOTS = {
    "accuracy": ("Accuracy per method and column, 95% CI whiskers; paper numbers as markers, majority class dashed.",
                 "no accuracy column has a value"),
    "mar": ("Misaligned-reason rate (MAR) per method and split, 95% CI whiskers; lower is better.",
            "no MAR column has a value"),
    "loss": ("Training loss per step, one line per method and seed.",
             "no training source has a loss_log (older runs did not record one)"),
    "confusion": ("Confusion matrices on DFAR test (full), first seed per method.",
                  "no DFAR accuracy source with a confusion matrix"),
    "aft_scores": ("AFT: scores of positive (correct) and negative responses, before vs after alignment.",
                   "no ranking sources (no alignment in this run)"),
    "reliability": ("Reliability of P(unethical) on DFAR test (full), first seed per method; diagonal = calibrated.",
                    "no DFAR predictions with log-likelihoods or probabilities"),
}
# one fixed look, and deterministic SVGs (ids from a fixed salt, no date) so reruns diff cleanly
STYLE = {"font.size": 9, "axes.titlesize": 10, "axes.grid": True, "grid.alpha": 0.3, "axes.axisbelow": True,
         "axes.spines.top": False, "axes.spines.right": False, "legend.fontsize": 8, "legend.frameon": False,
         "svg.hashsalt": "reasonalign-report", "svg.fonttype": "path"}
# matplotlib's tab20: a reproduce table has up to ~15 methods, and no two may share a colour
COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7",
           "#dbdb8d", "#9edae5"]
PAPER_MARKERS = ["^", "v", "D", "s"]


def write_plots(results: dict, root: Path, out: Path) -> dict[str, list[str]]:
    """Every plot with data as PNG + SVG in `out`: {name: [png, svg]}, paths relative to `root`."""
    import matplotlib

    root, out = Path(root), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    draw = {"accuracy": lambda: _bars(results, root, "accuracy"), "mar": lambda: _bars(results, root, "mar"),
            "loss": lambda: _loss(results, root), "confusion": lambda: _confusion(results, root),
            "aft_scores": lambda: _aft(results, root), "reliability": lambda: _reliability(results, root)}
    written = {}
    with matplotlib.rc_context(STYLE):
        for name in PLOTS:
            fig = draw[name]()
            if fig is not None:
                written[name] = _save(fig, root, out / name)
    return written


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, root: Path, stem: Path) -> list[str]:
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    fig.savefig(paths[0], dpi=150, metadata={"Software": None})
    fig.savefig(paths[1], metadata={"Date": None})
    return [Path(os.path.relpath(p, root)).as_posix() for p in paths]


def _colour(results: dict, method: str) -> str:
    """One colour per method, the same in every plot."""
    names = methods(results)
    return COLOURS[names.index(method) % len(COLOURS)] if method in names else "#333333"


def _seeds(items) -> str:
    """"seed 0" or "seeds 0, 1, 2", from anything with a "seed"."""
    seeds = sorted({s.get("seed") for s in items if s.get("seed") is not None})
    return ("seed " if len(seeds) == 1 else "seeds ") + (", ".join(map(str, seeds)) or "?")


def _paper_numbers(text) -> list[float]:
    """"89.4 / 82.2" -> [89.4, 82.2] (one per paper model); "71.3" -> [71.3]; unparsable parts dropped."""
    numbers = []
    for part in str(text or "").split("/"):
        try:
            numbers.append(float(part.strip().rstrip("%")))
        except ValueError:
            pass
    return numbers


def _majority(results: dict, root: Path, column: dict):
    """The majority-class share of a column's data, from an accuracy source's metrics.json."""
    kind = "validation" if column.get("split") == "validation" else "accuracy"
    for source in sources(results, kind, column.get("dataset")):
        metrics = read_json(root / source["folder"] / "metrics.json")
        if column.get("split") == "clean":
            metrics = next((v for k, v in metrics.get("splits", {}).items() if k.endswith("clean")), {})
        if isinstance(metrics.get("majority_baseline"), (int, float)):
            return metrics["majority_baseline"]
    return None


def _cell(row: dict, column: dict) -> dict:
    """A row's cell for a column ({} when the row has none)."""
    return (row.get("cells") or {}).get(column["key"]) or {}


def _bars(results: dict, root: Path, metric: str):
    """Grouped bars: one group per column of this metric, one bar per method, in percent."""
    columns = [c for c in results.get("columns", []) if c.get("metric") == metric]
    rows = [r for r in results.get("rows", []) if any(_cell(r, c).get("value") is not None for c in columns)]
    columns = [c for c in columns if any(_cell(r, c).get("value") is not None for r in rows)]
    if not columns:
        return None
    fig = _figure(max(6.0, 1.3 * len(columns) * max(1, len(rows)) ** 0.5 + 2), 4.8)
    ax = fig.subplots()
    width = 0.8 / len(rows)
    paper_models = (results.get("paper") or {}).get("models") or []
    paper_seen = set()
    for i, row in enumerate(rows):
        xs, ys, errors = [], [], [[], []]
        for j, col in enumerate(columns):
            c = _cell(row, col)
            if c.get("value") is None:
                continue
            x, y = j - 0.4 + width * (i + 0.5), 100 * c["value"]
            lo, hi = c.get("ci95") or (c["value"], c["value"])
            xs.append(x)
            ys.append(y)
            errors[0].append(max(0, y - 100 * lo))
            errors[1].append(max(0, 100 * hi - y))
            numbers = _paper_numbers(c.get("paper"))
            for k, number in enumerate(numbers):  # one number per paper model, or one for a baseline
                several = len(numbers) > 1
                label = paper_models[k] if several and k < len(paper_models) else f"number {k + 1}" if several else ""
                marker = PAPER_MARKERS[k % len(PAPER_MARKERS)] if several else "D"
                ax.plot(x, number, marker, color="black", markersize=5,
                        label=None if label in paper_seen else f"paper{': ' if label else ''}{label}")
                paper_seen.add(label)
        ax.bar(xs, ys, width * 0.92, yerr=errors, capsize=2.5, color=_colour(results, row["method"]),
               label=row["method"], error_kw={"elinewidth": 0.8})
    if metric == "accuracy":
        labelled = False
        for j, col in enumerate(columns):
            majority = _majority(results, root, col)
            if majority is not None:
                ax.hlines(100 * majority, j - 0.45, j + 0.45, colors="black", linestyles="dashed", linewidth=1,
                          label=None if labelled else "majority class")
                labelled = True
    ticks = []
    for col in columns:
        ns = sorted({_cell(r, col).get("n") for r in rows if _cell(r, col).get("n") is not None})
        n = f"n={ns[0]}" if len(ns) == 1 else f"n={ns[0]}–{ns[-1]}" if ns else "n=?"
        ticks.append(f"{col.get('name', col['key'])}\n{col.get('split', '')}, {n}")
    ax.set_xticks(range(len(columns)), ticks)
    cells = [_cell(r, c) for r in rows for c in columns]
    what = "Accuracy (higher is better)" if metric == "accuracy" else "Misaligned-reason rate (lower is better)"
    ax.set_ylabel("accuracy (%)" if metric == "accuracy" else "MAR (%), lower is better")
    ax.set_ylim(0, 105)
    ax.set_title(f"{what}, 95% CI; {_seeds([{'seed': s} for c in cells for s in c.get('seeds') or []])}")
    # as many legend columns as the figure's width holds at the longest label (~0.07 in a character at 8 pt)
    longest = max(len(r["method"]) for r in rows)
    fits = int(fig.get_figwidth() // (0.07 * longest + 0.5))
    fig.legend(loc="outside lower center", ncols=max(1, min(4, len(rows) + 2, fits)))
    return fig


def _loss(results: dict, root: Path):
    """One loss curve per training source (method x seed) that recorded a loss_log."""
    curves = []
    for source in sources(results, "train"):
        folder = root / source["folder"]
        summary = read_json(folder / "train_summary.json") or read_json(folder / "align_summary.json")
        log = [p for p in summary.get("loss_log") or []
               if isinstance(p, dict) and isinstance(p.get("step"), (int, float))
               and isinstance(p.get("loss"), (int, float))]
        if log:
            curves.append((source, log))
    if not curves:
        return None
    fig = _figure(7, 4.2)
    ax = fig.subplots()
    all_seeds = sorted({s.get("seed", 0) for s, _ in curves})
    styles = ["-", "--", ":", "-."]
    rows = {row["method"]: row.get("train_rows") for row in results.get("rows", [])}
    for source, log in curves:
        method, seed = source["method"], source.get("seed", 0)
        n = rows.get(method)
        n = "" if not n else f", {n} rows" if isinstance(n, int) else f", {n}"  # "119 groups" for alignment
        ax.plot([p["step"] for p in log], [p["loss"] for p in log], styles[all_seeds.index(seed) % len(styles)],
                color=_colour(results, method), label=f"{method}, seed {seed}{n}", linewidth=1.2)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss")
    ax.set_title(f"Training loss: {len(curves)} runs, {_seeds([s for s, _ in curves])}")
    ax.legend(loc="upper right")
    return fig


def _confusion(results: dict, root: Path):
    """A 2x3 count matrix (gold ethical/unethical x predicted ethical/unethical/unparseable) per method."""
    panels = []
    for source in first_seed(results, "accuracy", "dfar"):
        metrics = read_json(root / source["folder"] / "metrics.json")
        values = (metrics.get("confusion_matrix") or {}).get("values")
        if (isinstance(values, list) and len(values) == 2
                and all(isinstance(r, list) and len(r) == 3 and all(isinstance(v, int) for v in r) for r in values)):
            panels.append((source, metrics, values))
    if not panels:
        return None
    cols = min(4, len(panels))
    nrows = math.ceil(len(panels) / cols)
    fig = _figure(2.9 * cols, 2.5 * nrows + 0.5)
    axes = fig.subplots(nrows, cols, squeeze=False).ravel()
    for ax, (source, metrics, values) in zip(axes, panels):
        ax.imshow(values, cmap="Blues", vmin=0, vmax=max(1, max(map(max, values))))
        ax.grid(False)
        top = max(map(max, values))
        for g in range(2):
            for p in range(3):
                ax.text(p, g, str(values[g][p]), ha="center", va="center",
                        color="white" if values[g][p] > top / 2 else "black")
        ax.set_xticks(range(3), ["ethical", "unethical", "unparseable"], rotation=20)
        ax.set_yticks(range(2), ["ethical", "unethical"])
        ax.set_xlabel("predicted")
        ax.set_ylabel("gold")
        accuracy = metrics.get("accuracy")
        acc = f", acc {100 * accuracy:.1f}%" if isinstance(accuracy, (int, float)) else ""
        ax.set_title(f"{source['method']}\nseed {source.get('seed')}, n={metrics.get('n', '?')}{acc}", fontsize=9)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    fig.suptitle(f"Confusion matrices, DFAR test (full split), first seed per method "
                 f"({_seeds([p[0] for p in panels])})")
    return fig


def _aft(results: dict, root: Path):
    """Histograms of positive vs negative response scores, before (SFT) and after alignment, per method."""
    found = {}  # method -> stage -> pooled over seeds
    for source in sources(results, "ranking"):
        stage = found.setdefault(source["method"], {}).setdefault(
            source.get("stage", "after"), {"pos": [], "neg": [], "pairs": 0, "ordered": 0, "sources": []})
        for group in read_records(root / source["folder"] / "group_scores.jsonl"):
            for score, correct in zip(group.get("scores") or [], group.get("correct") or []):
                if isinstance(score, (int, float)) and math.isfinite(score):
                    stage["pos" if correct else "neg"].append(score)
            stage["pairs"] += group.get("pairs") or 0
            stage["ordered"] += group.get("pairs_ordered") or 0
        stage["sources"].append(source)
    found = {m: stages for m, stages in found.items() if any(s["pos"] or s["neg"] for s in stages.values())}
    if not found:
        return None
    fig = _figure(8, 2.8 * len(found) + 0.5)
    axes = fig.subplots(len(found), 2, squeeze=False)
    for (method, stages), row in zip(found.items(), axes):
        scores = [x for s in stages.values() for x in s["pos"] + s["neg"]]
        lo, hi = min(scores), max(scores)
        bins = [lo + (hi - lo) * i / 20 for i in range(21)] if hi > lo else 10  # shared, so panels compare
        for ax, name in zip(row, ["before", "after"]):
            stage = stages.get(name) or {"pos": [], "neg": [], "pairs": 0, "sources": []}
            if stage["pos"]:
                ax.hist(stage["pos"], bins=bins, alpha=0.55, color="#2ca02c", label=f"positive (n={len(stage['pos'])})")
            if stage["neg"]:
                ax.hist(stage["neg"], bins=bins, alpha=0.55, color="#d62728", label=f"negative (n={len(stage['neg'])})")
            which = "before (SFT model)" if name == "before" else "after alignment"
            detail = _seeds(stage["sources"]) if stage["sources"] else "no data"
            if stage["pairs"]:
                detail += f"; pairs ordered {100 * stage['ordered'] / stage['pairs']:.0f}% of {stage['pairs']}"
            ax.set_title(f"{method}: {which}\n{detail}")
            ax.set_xlabel("response score (log-likelihood)")
            ax.set_ylabel("responses")
            if stage["pos"] or stage["neg"]:
                ax.legend()
    fig.suptitle("AFT: positive vs negative response scores, before vs after alignment")
    return fig


def _probabilities(metrics: dict, predictions: list[dict]) -> list[tuple[float, int]]:
    """(P(unethical), gold) per prediction: sigmoid(logp_unethical - logp_ethical - threshold), or p_unethical."""
    threshold = metrics.get("threshold")
    threshold = threshold if isinstance(threshold, (int, float)) else 0.0
    pairs = []
    for p in predictions:
        if p.get("gold") not in (0, 1):
            continue
        lu, le = p.get("logp_unethical"), p.get("logp_ethical")
        if isinstance(lu, (int, float)) and isinstance(le, (int, float)):
            z = max(-50.0, min(50.0, lu - le - threshold))
            pairs.append((1 / (1 + math.exp(-z)), p["gold"]))
        elif isinstance(p.get("p_unethical"), (int, float)):
            pairs.append((min(1.0, max(0.0, p["p_unethical"])), p["gold"]))
    return pairs


def _reliability(results: dict, root: Path):
    """Observed share unethical per 10 equal-width bins of P(unethical), per method (first seed).

    The language models' log-likelihood classifiers, and the baselines only when there is no
    language model: fifteen lines on one plot read as none."""
    lines = []
    found = first_seed(results, "accuracy", "dfar")
    generative = [s for s in found if kind_of(results, s["method"]) == "generative"]
    for source in generative or found:
        folder = root / source["folder"]
        pairs = _probabilities(read_json(folder / "metrics.json"), read_records(folder / "predictions.jsonl"))
        if pairs:
            lines.append((source, pairs))
    if not lines:
        return None
    fig = _figure(6.5, 6.5)
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="grey", linewidth=1, label="perfectly calibrated")
    for source, pairs in lines:
        bins = [[] for _ in range(10)]
        for p, gold in pairs:
            bins[min(9, int(p * 10))].append((p, gold))
        points = [(sum(p for p, _ in b) / len(b), sum(g for _, g in b) / len(b), len(b)) for b in bins if b]
        ece = sum(abs(x - y) * k for x, y, k in points) / len(pairs)
        colour = _colour(results, source["method"])
        baseline = kind_of(results, source["method"]) == "baseline"
        ax.plot([x for x, _, _ in points], [y for _, y, _ in points], "--" if baseline else "-", color=colour,
                linewidth=1.2, label=f"{source['method']} (n={len(pairs)}, ECE {ece:.3f})")
        # a bin of 2 predictions should not look like a bin of 200: marker area follows the bin's count
        ax.scatter([x for x, _, _ in points], [y for _, y, _ in points], color=colour, zorder=3,
                   s=[8 + 120 * k / len(pairs) for *_, k in points])
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("predicted P(unethical) (bin mean, 10 equal-width bins; marker area = share of rows)")
    ax.set_ylabel("observed share unethical")
    ax.set_title(f"Reliability, DFAR test (full split), first seed per method ({_seeds([s for s, _ in lines])})")
    fig.legend(loc="outside lower center", ncols=2)
    return fig
