"""Merge an adapter into its base model and save a standalone, verified Hugging Face folder.

The folder is written beside the output under a temporary name and renamed into place, so a
failed export leaves nothing. It is verified the way `models.convert_gguf` verifies a conversion:
the label log-likelihoods of probe statements, scored by plain `AutoModelForCausalLM` from the
saved folder, must equal those of base + adapter (fp32: within `TOLERANCE`).
"""

import json
import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

from reasonalign.core.errors import UserError
from reasonalign.core.run_record import RECORD_FILE, prompt_format, read_run
from reasonalign.export.card import model_card
from reasonalign.export.config import ExportConfig

PROBES = ["I helped my neighbour carry groceries.", "I stole money from the church box.",
          "I told my friend the truth although it hurt her."]
TOLERANCE = 1e-4  # fp32 export: max abs difference of a label log-likelihood (nats)


def check(config: ExportConfig) -> tuple:
    """(run record or None, base model, output folder); one-line UserError before anything loads."""
    if not config.adapter:
        raise UserError("--adapter is required: the LoRA adapter folder to merge")
    if not config.output:
        raise UserError("--output is required: a new folder for the merged model")
    adapter, out = Path(config.adapter), Path(config.output)
    if not (adapter / "adapter_config.json").is_file():
        raise UserError(f"{adapter}: not a LoRA adapter folder (no adapter_config.json)")
    record = read_run(str(adapter))
    if record and record.base_adapter and not (adapter / record.base_adapter / "adapter_config.json").is_file():
        raise UserError(f"{adapter}: its run.json names the SFT adapter {record.base_adapter!r}, which is missing")
    base = config.model or (record.base_model if record and record.base_model else None)
    if not base:
        try:
            base = json.loads((adapter / "adapter_config.json").read_text()).get("base_model_name_or_path")
        except ValueError:
            raise UserError(f"{adapter}/adapter_config.json: not JSON") from None
    if not base:
        raise UserError(f"{adapter}: no run.json names its base model; pass --model")
    if out.resolve() == adapter.resolve():
        raise UserError(f"{out}: is the adapter folder itself; choose another --output")
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a folder")
    if out.exists() and any(out.iterdir()) and not config.overwrite:
        raise UserError(f"{out}: exists and is not empty; pass --overwrite to replace it or choose another --output")
    return record, base, out


def _label_scores(model, tokenizer, template, method: str):
    from reasonalign.scoring import score_labels

    prompts = [template.prompt(s, method, tokenizer) for s in PROBES]
    return score_labels(model, tokenizer, prompts, template.label_continuations(),
                        add_special_tokens=not template.chat, progress=False)


def _adapters(adapter: Path, record) -> list[str]:
    """The adapters merged, SFT first: an aligned run's `base_adapter` chain, then the adapter."""
    chain = [str(adapter)]
    while record and record.base_adapter:
        adapter = adapter / record.base_adapter
        chain.insert(0, str(adapter))
        record = read_run(str(adapter))
    return chain


def export(config: ExportConfig) -> dict:
    """Merge, save, verify, write the card; returns what export.json records."""
    import numpy as np
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    from reasonalign.models import load_model, load_tokenizer
    from reasonalign.prompts import get_template

    record, base, out = check(config)
    adapter = Path(config.adapter)
    template_name, method = prompt_format(record)
    if template_name == "cot":  # answers tasks have no label prompt: probe with the DFAR one
        template_name = "dfar-llama"
    template, method = get_template(template_name), (method if method in ("l", "lr") else "lr")
    has_tokenizer = (adapter / "tokenizer_config.json").is_file()
    tokenizer = load_tokenizer(str(adapter) if has_tokenizer else base)
    # an aligned adapter's SFT adapter is merged first
    model = load_model(base, str(adapter), device="cpu", record=record)
    before = _label_scores(model, tokenizer, template, method)
    merged = model.merge_and_unload()
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[config.dtype]
    merged = merged.to(dtype)
    if merged.generation_config is None or not merged.can_generate():
        merged.generation_config = GenerationConfig.from_model_config(merged.config)
    merged.generation_config.pad_token_id = tokenizer.pad_token_id
    if merged.generation_config.eos_token_id is None:
        merged.generation_config.eos_token_id = tokenizer.eos_token_id

    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}-") as tmp:
        folder = Path(tmp) / "model"
        merged.save_pretrained(folder, safe_serialization=True)
        tokenizer.save_pretrained(folder)
        reloaded = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
        diff = float(np.abs(_label_scores(reloaded, tokenizer, template, method) - before).max())
        if config.dtype == "fp32" and diff > TOLERANCE:
            raise UserError(f"{adapter}: the merged model's label log-likelihoods differ from base + adapter by "
                            f"{diff:.2e} (> {TOLERANCE}); nothing written")
        chain = _adapters(adapter, record)
        info = {"adapter": str(adapter), "output": str(out), "merged_adapters": chain, "base_model": base, "dtype": config.dtype,
                "probe_max_abs_logprob_diff": diff, "template": template.name, "method": method}
        if record:
            # the record, as an export's: read_run(folder) gives template, method and the threshold
            (folder / RECORD_FILE).write_text(json.dumps({**asdict(record), "base_adapter": None,
                                                           "exported_from": str(adapter)}, indent=2))
            if record.calibration:
                (folder / "calibration.json").write_text(json.dumps(record.calibration, indent=2))
        (folder / "export.json").write_text(json.dumps(info, indent=2))
        card = model_card(record, adapter=adapter, base_model=base, name=out.name, licence=config.license,
                          dtype=config.dtype, probe_diff=diff, merged=chain, template=template.name, method=method)
        (folder / "README.md").write_text(card, encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        os.replace(folder, out)
    return info
