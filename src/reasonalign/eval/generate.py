"""`reasonalign generate` recipe: verdict + reason for every statement, batched with a KV cache.

The reasons written here are what the Misalignment Rate judges (issue 3) read.
"""

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

from reasonalign.config import option, to_dict
from reasonalign.eval.run import ScoringInputs
from reasonalign.verdict import LABELS, parse_verdict

_LEAD = re.compile(r"^\s*(?:the statement is\s+)?(?:not\s+|non[- ]?)?(?:un)?ethical\b\s*[.:,;!-]*\s*", re.I)


@dataclass
class GenerateConfig(ScoringInputs):
    method: str = option("lr", "prompt variant: lr asks for a reason, l for the label only", ["l", "lr"])
    max_new_tokens: int = option(64, "tokens to generate per statement (stops earlier at EOS)")
    temperature: float = option(0.0, "0 = greedy; above 0 samples")
    top_p: float = option(1.0, "nucleus sampling mass (with temperature > 0)")
    batch_size: int = option(16, "statements per generate call (left-padded)")
    output: str = option("runs/generate", "folder for generations.jsonl")
    seed: int = option(0, "seed for row selection and sampling")


def split_reason(text: str) -> str:
    """The reason: the output minus its leading verdict ("unethical. Because..." -> "Because...")."""
    return _LEAD.sub("", text, count=1).strip()


def generate(config: GenerateConfig) -> list[dict]:
    import torch

    from reasonalign.eval.classify import generate_answers
    from reasonalign.models import load_model, load_tokenizer
    from reasonalign.prompts import get_template

    template = get_template(config.template_name())
    dataset, examples = config.load_rows(config.seed)
    tokenizer = load_tokenizer(config.model, config.trust_remote_code)
    model = load_model(config.model, config.adapter, trust_remote_code=config.trust_remote_code)
    sampling = {"temperature": config.temperature, "top_p": config.top_p} if config.temperature > 0 else {}
    torch.manual_seed(config.seed)
    started = time.time()
    texts = generate_answers(model, tokenizer, template, examples, config.method,
                             max_new_tokens=config.max_new_tokens, batch_size=config.batch_size, **sampling)
    seconds = time.time() - started
    records = []
    for ex, text in zip(examples, texts):
        verdict = parse_verdict(text)
        records.append({"row": ex.row, "statement": ex.statement, "gold": LABELS[ex.label],
                        "gold_reason": ex.reason, "prompt": template.prompt(ex.statement, config.method, tokenizer),
                        "output": text, "verdict": None if verdict is None else LABELS[verdict],
                        "reason": split_reason(text)})
    out = Path(config.output)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "generations.jsonl", "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    (out / "generate_summary.json").write_text(json.dumps(
        {"n": len(records), "seconds": round(seconds, 1), "data": dataset.name, "data_sha256": dataset.sha256,
         "config": to_dict(config)}, indent=2))
    return records
