"""The model card (README.md) of an exported model, in the Hub's format: YAML front matter, then text.

Everything a user needs to reproduce the verdicts comes from files the run left, never retyped:
`run.json` (base model, data and its sha256, method, precision, seed, calibration), the run's
summary (`train_summary.json` / `align_summary.json`: the objective's options), and every eval
folder inside the adapter folder (`*/metrics.json`: the score with n and its 95% CI, and the DFAR
test's full and clean splits). The prompt is the template's own text, so a user can score the
model with plain transformers: compare log P(" ethical") and log P(" unethical") after it.
"""

import json
from pathlib import Path

import yaml

from reasonalign.core.run_record import RunRecord, read_run
from reasonalign.models import OFFLINE_MODELS
from reasonalign.prompts import get_template

METRICS = {"accuracy": "accuracy", "mar": "misalignment rate (MAR, lower is better)"}
METHOD_NAMES = {"l": "L (labels only)", "lr": "L+R (labels + human reasons)", "cot": "chain-of-thought SFT"}


def hub_base_model(base: str) -> str | None:
    """The Hub id of the base model (front matter `base_model`), or None for a local folder."""
    if base in OFFLINE_MODELS:
        return OFFLINE_MODELS[base].hub_id
    if Path(base).exists() or base.count("/") != 1:
        return None
    return base


def _licence(base: str, given: str | None) -> str:
    if given:
        return given
    spec = OFFLINE_MODELS.get(base)
    return spec.hub_licence if spec and spec.hub_licence else "other"


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def eval_results(adapter: Path) -> list[dict]:
    """One row per score in the adapter's eval folders (`ADAPTER/*/metrics.json`), splits included."""
    rows = []
    for path in sorted(adapter.glob("*/metrics.json")):
        m = _read_json(path)
        for key, name in METRICS.items():
            if not isinstance(m.get(key), (int, float)) or "n" not in m:
                continue
            splits = m.get("splits") or {m.get("data"): m}
            for split, s in splits.items():
                if isinstance(s, dict) and key in s:
                    rows.append({"folder": path.parent.name, "data": split or m.get("data"), "metric": name,
                                 "key": key, "value": s[key], "ci95": s.get("ci95"), "n": s.get("n"),
                                 "threshold": m.get("threshold"), "judge": (m.get("judge") or {}).get("name")
                                 if isinstance(m.get("judge"), dict) else m.get("judge")})
    return rows


def _percent(x) -> str:
    return f"{100 * x:.1f}%" if isinstance(x, (int, float)) else "—"


def _objective(record: RunRecord, summary: dict) -> str:
    config = summary.get("config") or {}
    if not summary:
        return "— (the run's summary file is missing)"
    if record.stage == "align":
        return (f"alignment loss `{summary.get('loss')}` (feedback {summary.get('feedback')}, β {summary.get('beta')}, "
                f"constraint {config.get('constraint')}, SFT weight {config.get('sft_weight')}) on k sampled "
                f"responses per prompt, on top of the merged SFT model")
    weight = summary.get("label_weight", config.get("label_weight"))
    loss_on = summary.get("loss_on", config.get("loss_on"))
    text = f"cross-entropy on the {'answer tokens only' if loss_on == 'completion' else 'whole text'}"
    if weight is not None:
        text += f"; label weight {weight}: {weight} × (mean over the label tokens) + {1 - weight:g} × (mean over the reason tokens)"
    return text


def _made_rows(record: RunRecord, summary: dict, sft: RunRecord | None) -> list[tuple[str, str]]:
    config = summary.get("config") or {}
    data = record.data or {}
    rows = [("stage", f"`reasonalign {record.stage}`"),
            ("method", METHOD_NAMES.get(record.method or "", str(record.method))),
            ("objective", _objective(record, summary)),
            ("data", f"`{data.get('spec')}`, {data.get('rows')} rows, sha256 `{data.get('sha256', '—')}`")]
    if sft:
        sd = sft.data or {}
        rows.append(("SFT data", f"`{sd.get('spec')}`, {sd.get('rows')} rows, sha256 `{sd.get('sha256', '—')}`"))
    if summary.get("train_rows"):
        rows.append(("training rows", str(summary["train_rows"])))
    if config:
        rows.append(("LoRA", f"r {config.get('lora_r')}, α {config.get('lora_alpha')}, dropout "
                             f"{config.get('lora_dropout')}, targets {config.get('lora_targets')}; lr "
                             f"{config.get('lr')} ({config.get('lr_scheduler')}), epochs {config.get('epochs')}, "
                             f"steps {summary.get('steps')}"))
    rows += [("precision", record.precision), ("seed", str(record.seed)),
             ("versions", ", ".join(f"{k} {v}" for k, v in (record.versions or {}).items()))]
    return rows


def _dataset_name(spec: str) -> str:
    """`dfar:test` as it is; a local file by its name only (a card is public, the folders are not)."""
    return Path(spec).name if "/" in spec else spec


def model_index(name: str, results: list[dict]) -> list[dict] | None:
    """The Hub's `model-index` block: one result per accuracy row (MAR has no Hub metric type)."""
    entries = [{"task": {"type": "text-classification", "name": "ethical/unethical verdict"},
                "dataset": {"type": _dataset_name(r["data"]), "name": _dataset_name(r["data"])},
                "metrics": [{"type": "accuracy", "value": round(r["value"], 4),
                             "name": f"accuracy (n={r['n']}, {r['folder']})"}]}
               for r in results if r["key"] == "accuracy"]
    return [{"name": name, "results": entries}] if entries else None


def model_card(record: RunRecord | None, *, adapter: Path, base_model: str, name: str, licence: str | None,
               dtype: str, probe_diff: float, merged: list[str], template: str, method: str) -> str:
    summary = {}
    if record:
        summary = _read_json(adapter / ("align_summary.json" if record.stage == "align" else "train_summary.json"))
    sft = None
    if record and record.base_adapter:
        sft = read_run(str(adapter / record.base_adapter))
    results = eval_results(adapter)
    front = {"base_model": hub_base_model(base_model), "library_name": "transformers",
             "pipeline_tag": "text-generation", "license": _licence(base_model, licence),
             "tags": ["reasonalign", "lora", "merged-lora", "ethics", "text-classification"],
             "model-index": model_index(name, results)}
    front = {k: v for k, v in front.items() if v is not None}
    tpl = get_template(template)
    prompt_method = method if method in ("l", "lr") else "lr"
    calibration = (record.calibration if record else None) or {}
    threshold = float(calibration.get("threshold", 0.0))

    lines = ["---", yaml.safe_dump(front, sort_keys=False, allow_unicode=True).rstrip(), "---", "",
             f"# {name}", "",
             f"A standalone model: the LoRA adapter{'s' if len(merged) > 1 else ''} "
             f"{', '.join(f'`{m}`' for m in merged)} merged into `{base_model}` by `reasonalign export` "
             f"(weights {dtype}, safetensors). It gives an ethical/unethical verdict on a statement and, "
             f"prompted for it, a reason. Checked at export: the label log-likelihoods of this folder equal "
             f"base + adapter within {probe_diff:.1e} (max abs difference on probe statements).", "",
             "## How it was made", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in (_made_rows(record, summary, sft) if record else
                                           [("run", "no run.json: an adapter made outside reasonalign")])]
    lines += ["", "## Evaluation", ""]
    if results:
        lines += ["From the run's eval folders (`reasonalign eval`); 95% CIs: bootstrap (accuracy), Wilson (MAR).", "",
                  "| eval folder | data | metric | value | 95% CI | n |", "|---|---|---|---|---|---|"]
        for r in results:
            ci = r["ci95"]
            ci_text = f"{_percent(ci[0])}–{_percent(ci[1])}" if isinstance(ci, list) and len(ci) == 2 else "—"
            lines.append(f"| {r['folder']} | {r['data']} | {r['metric']} | {_percent(r['value'])} | {ci_text} | {r['n']} |")
    else:
        lines.append("No eval folder (`ADAPTER/*/metrics.json`) was found beside the adapter: not evaluated.")
    lines += ["", "## Prompt and decision rule", "",
              f"Template `{tpl.name}`, method `{prompt_method}`. The prompt (`{{statement}}` replaced by the text"
              f"{'; rendered as the user turn of the chat template' if tpl.chat else ''}):", "", "```",
              (tpl.prompt_l if prompt_method == "l" else tpl.prompt_lr), "```", "",
              f"The answer follows as `{tpl.answer_l if prompt_method == 'l' else tpl.answer_lr}`. "
              f"Verdict: compare log P(\" unethical\") − log P(\" ethical\") right after the prompt with the "
              f"calibration threshold **{threshold:.6g}** (unethical above it). "]
    if calibration:
        lines.append(f"The threshold was fitted on {calibration.get('rows')} held-out training rows of "
                     f"`{calibration.get('source')}` ({calibration.get('fitted_on')}); it is in `calibration.json`.")
    else:
        lines.append("This run fitted no threshold, so it is 0 (the plain argmax).")
    lines += ["", "## Use", "", "```python",
              "from reasonalign import Classifier",
              f"clf = Classifier.from_pretrained(\"{name}\")  # this folder: prompt and threshold from run.json",
              "clf.predict([\"I returned the lost wallet to its owner.\"])  # [(verdict, p_unethical, reason)]",
              "```", "",
              "or `reasonalign eval --model THIS_FOLDER --calibration THIS_FOLDER/calibration.json "
              f"--template {tpl.name} --method {prompt_method} --data dfar:test`; with plain transformers, "
              "`AutoModelForCausalLM.from_pretrained(THIS_FOLDER)` and the rule above. "
              "lm-evaluation-harness: `lm_eval --model hf --model_args pretrained=THIS_FOLDER --tasks dfar "
              "--include_path $(python -c 'import reasonalign.lm_eval_tasks as t; print(t.path())')` "
              "(its accuracy is at threshold 0).", ""]
    return "\n".join(lines)
