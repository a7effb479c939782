"""The fine-tuning recipe skeleton: setup -> train -> save, written once for SFT and alignment.

`FinetuneRecipe.run()` does what every LoRA run does, in this order:

- setup: cheap checks (`check`: output folder, options) before anything is loaded; the data,
  tokenised (`build_dataset`); the base model, with an SFT adapter merged in when the run
  starts from one (`start_adapter`); a fresh LoRA; the Hugging Face `Trainer` (`trainer`);
- train: `trainer.train()`, timed, resuming on `--resume` from the newest *complete* checkpoint
  (`finetune/checkpoints.py`: options compared with the checkpoint's, tokens and seconds carried
  over); every forward pass (the trainer's and the before/after measurements) runs in the
  resolved `--precision`; a non-finite loss stops the run at its step, non-finite weights are
  never saved;
- save: the adapter and tokenizer, what the subclass saves beside them (`save_extra`), the
  run record (`run.json`, read by every later stage), the summary and `config.yaml`.

A subclass (`train.sft.SFTRecipe`, `align.trainer.AlignRecipe`) fills the hooks marked
"subclass" and nothing else.
"""

import contextlib
import importlib.util
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import torch
import yaml
import peft
from peft import LoraConfig
from transformers import Trainer, TrainerCallback, TrainingArguments

from reasonalign.core.files import write_text
from reasonalign.core.config import to_dict, validate
from reasonalign.core.distributed import is_main, world_size
from reasonalign.core.errors import UserError
from reasonalign.core.precision import DTYPES, autocast, resolve
from reasonalign.core.run_record import RECORD_FILE, RunRecord, versions
from reasonalign.finetune.checkpoints import SaveProgress, check_resume, checkpoints, latest_complete
from reasonalign.models import default_device, load_model, load_tokenizer


def store_frozen_linears(model, precision: str) -> None:
    """Keep the frozen Linear weights of the decoder in the autocast dtype (LoRA stays fp32).

    Autocast would cast each of them to exactly these values on every forward pass; storing them
    cast once gives the same numbers without that cost (~15% of a bf16 step of SmolLM2 on CPU).
    The embedding (often tied to the output head) and the norms stay fp32."""
    dtype = DTYPES.get(precision)
    if dtype is None:
        return
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    for module in base.get_decoder().modules():
        if isinstance(module, torch.nn.Linear) and not module.weight.requires_grad:
            module.weight.data = module.weight.data.to(dtype)
            if module.bias is not None:
                module.bias.data = module.bias.data.to(dtype)


def base_dtype(device: str, precision: str, quantized: bool):
    """The dtype the frozen base model is loaded in: on a GPU the compute dtype itself (bf16/fp16), so
    no fp32 copy is read, moved and cast (a 7B base: 28 GB in fp32, 14 GB in bf16); peft keeps the LoRA
    weights fp32 (`autocast_adapter_dtype`). On a CPU fp32 as before, the frozen Linears cast once
    afterwards (`store_frozen_linears`), the embedding and norms kept fp32. None = the loader's fp32."""
    if device.startswith("cuda") and not quantized and precision in DTYPES:
        return DTYPES[precision]
    return None


class AutocastTrainer(Trainer):
    """A `Trainer` whose forward passes run in the run's precision, the hand-called decoder of
    `scoring.py` included: the stock Trainer leaves autocast to accelerate, which wraps only
    `model.forward`, so on CPU `bf16=True` changed nothing but the record."""

    def __init__(self, *args, precision: str = "fp32", **kwargs):
        self.precision = precision  # the resolved --precision
        super().__init__(*args, **kwargs)

    def autocast_smart_context_manager(self, cache_enabled: bool | None = True):
        return autocast(self.precision, str(self.args.device))

    def training_step(self, model, inputs, num_items_in_batch=None):
        """The stock step, stopped with one line when its loss is NaN or infinite: the optimizer would
        otherwise turn every weight non-finite and the run would still end as "finished"."""
        loss = super().training_step(model, inputs, num_items_in_batch)
        if not torch.isfinite(loss).all():
            raise UserError(f"step {self.state.global_step + 1}: the training loss is {loss.item()} (not finite); "
                            f"nothing was saved for this step: lower --lr or check the data")
        return loss


def non_finite(model) -> list[str]:
    """Names of trainable parameters holding NaN or inf."""
    return [n for n, p in model.named_parameters() if p.requires_grad and not torch.isfinite(p).all()]


def lora_config(config, n_layers: int):
    """The LoRA of a run: rank, alpha, dropout, target modules and (optionally) only the top layers."""
    layers = None
    if config.lora_layers:
        if not 0 < config.lora_layers <= n_layers:
            raise UserError(f"--lora-layers {config.lora_layers}: the model has {n_layers} layers")
        layers = list(range(n_layers - config.lora_layers, n_layers))
    targets = None if config.lora_targets == "auto" else (
        "all-linear" if config.lora_targets == "all-linear" else [t.strip() for t in config.lora_targets.split(",")])
    return LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      bias="none", task_type="CAUSAL_LM", target_modules=targets, layers_to_transform=layers)


def quantization_config(config, device: str):
    """4-bit NF4 for `--qlora` (CUDA only), else None."""
    if not config.qlora:
        return None
    if not device.startswith("cuda"):
        raise UserError("--qlora needs a CUDA GPU (4-bit NF4 via bitsandbytes); this machine has none")
    try:
        import bitsandbytes  # noqa: F401  (optional: only QLoRA on a CUDA box needs it)
        from transformers import BitsAndBytesConfig
    except ImportError:
        raise UserError("--qlora needs bitsandbytes: pip install bitsandbytes") from None
    compute = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=compute)


TRACKERS = {"mlflow": ("mlflow", "mlflow-skinny", "DISABLE_MLFLOW_INTEGRATION"), "wandb": ("wandb", "wandb", None)}


def check_tracker(report_to: str) -> None:
    """`--report-to mlflow|wandb` needs its library, and must not be switched off by its environment variable
    (the Trainer would then log nowhere without a word)."""
    if report_to not in TRACKERS:
        return
    module, pip_name, off = TRACKERS[report_to]
    if importlib.util.find_spec(module) is None:
        raise UserError(f"--report-to {report_to} needs {module}: pip install {pip_name}")
    if off and os.environ.get(off, "").upper() == "TRUE":
        raise UserError(f"--report-to {report_to}: {off}=TRUE in the environment switches it off; unset it")


class StopOnSigterm(TrainerCallback):
    """SIGTERM (a scheduler's or `kill`'s polite stop) ends training after the current step with a checkpoint
    saved, instead of losing every step since the last one; the run stays unfinished, so `--resume` continues."""

    def __init__(self):
        self.received = False

    @contextlib.contextmanager
    def installed(self):
        if threading.current_thread() is not threading.main_thread():  # signals go to the main thread only
            yield
            return
        previous = signal.signal(signal.SIGTERM, self._handle)
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, previous)

    def _handle(self, signum, frame):
        self.received = True

    def on_step_end(self, args, state, control, **kwargs):
        if self.received:
            control.should_save = control.should_training_stop = True
        return control


class FinetuneRecipe:
    stage = "train"  # subclass: "train" or "align" (written to run.json)
    summary_file = "train_summary.json"  # subclass: where the run's numbers go

    def __init__(self, config):
        self.config, self.out = config, Path(config.output)

    # ------------------------------------------------------------ hooks (subclass)

    def start_adapter(self) -> str | None:
        """An adapter to merge into the base model before the new LoRA is added (align: the SFT's)."""
        return None

    def build_dataset(self, tokenizer) -> list[dict]:
        """Read, check and tokenise the training data (runs before any model is loaded)."""
        raise NotImplementedError

    def batch_size(self) -> int:
        raise NotImplementedError

    def trainer(self, model, args: TrainingArguments, dataset: list[dict], tokenizer):
        """The `AutocastTrainer` of this recipe, given `precision=self.precision`."""
        raise NotImplementedError

    def extra_arguments(self) -> dict:
        """`TrainingArguments` only this recipe sets."""
        return {}

    def measure(self, model, tokenizer, when: str) -> dict:
        """Numbers taken `when` = "before" / "after" training that go into the summary."""
        return {}

    def save_extra(self, model, tokenizer) -> dict:
        """Files saved beside the adapter; returns the run-record fields they define."""
        return {}

    def record(self) -> dict:
        """task, method, template and data of the run record."""
        raise NotImplementedError

    def summary(self, record: dict) -> dict:
        """The subclass's own numbers for the summary file; `record`: the run-record fields (`record()` and
        what `save_extra` returned)."""
        return {}

    # ------------------------------------------------------------ the skeleton

    def check(self) -> None:
        """Every cheap check, before any model is loaded or anything is written."""
        c, out, start = self.config, self.out, self.start_adapter()
        validate(c)  # the ranges `build` checks for the command line, for configs made in code too
        if start and not (Path(start) / "adapter_config.json").is_file():
            raise UserError(f"{start}: not a LoRA adapter folder (no adapter_config.json)")
        if start and out.resolve() == Path(start).resolve():
            raise UserError(f"{out}: is the SFT adapter (--adapter) itself; choose another --output")
        finished = any((out / name).exists() for name in (self.summary_file, RECORD_FILE, "adapter_config.json"))
        if finished and not (c.overwrite or c.resume):
            raise UserError(f"{out}: holds a finished run; pass --overwrite to replace it or choose another --output")
        if c.resume and (out / self.summary_file).exists() and not c.overwrite:
            raise UserError(f"{out}: the run finished already ({self.summary_file}); nothing to resume "
                            f"(pass --overwrite to train it again)")
        self.resume_from, self.prior = None, {}
        if c.resume:
            self.resume_from = latest_complete(out)
            if self.resume_from is None:
                raise UserError(f"{out}: --resume given but there is no complete checkpoint to resume from"
                                + (f" ({', '.join(p.name for p in checkpoints(out))} lack trainer_state.json "
                                   f"or adapter weights)" if checkpoints(out) else ""))
            self.prior = check_resume(c, self.resume_from)
        elif not c.overwrite and checkpoints(out):
            raise UserError(f"{out}: holds checkpoints of an unfinished run ({checkpoints(out)[0].name}); pass "
                            f"--resume to continue it or --overwrite to start again")
        check_tracker(c.report_to)

    def training_arguments(self) -> TrainingArguments:
        """The one mapping of our options onto `TrainingArguments`."""
        c = self.config
        return TrainingArguments(
            output_dir=str(self.out), per_device_train_batch_size=self.batch_size(),
            gradient_accumulation_steps=c.grad_accum, learning_rate=c.lr, lr_scheduler_type=c.lr_scheduler,
            # a float in [0, 1) is a share of the total steps (TrainingArguments.warmup_steps, transformers 5; its
            # warmup_ratio is gone): --warmup-ratio is range-checked to [0, 1) (core/config.py RANGES)
            warmup_steps=c.warmup_ratio, weight_decay=c.weight_decay, max_grad_norm=c.max_grad_norm,
            num_train_epochs=c.epochs, max_steps=c.max_steps, logging_steps=c.logging_steps,
            save_strategy="steps" if c.save_steps else "no", save_steps=c.save_steps or 500, save_total_limit=2,
            bf16=self.precision == "bf16", fp16=self.precision == "fp16", use_cpu=self.device == "cpu",
            seed=c.seed, data_seed=c.seed, report_to=[c.report_to], remove_unused_columns=False,
            dataloader_num_workers=0, disable_tqdm=False, **self.extra_arguments())

    def setup(self) -> None:
        c = self.config
        self.check()
        self.device = default_device()
        self.precision = resolve(c.precision, self.device)
        quantization = quantization_config(c, self.device)
        self.tokenizer = load_tokenizer(c.model, c.trust_remote_code)
        self.dataset = self.build_dataset(self.tokenizer)
        torch.manual_seed(c.seed)
        model = load_model(c.model, self.start_adapter(), trust_remote_code=c.trust_remote_code,
                           quantization=quantization, dtype=base_dtype(self.device, self.precision, quantization is not None))
        if self.start_adapter():
            model = model.merge_and_unload()  # the starting point (and DPO's reference) is the merged model
        if self.device == "cpu" and self.precision == "bf16":
            # PyTorch's CPU flash attention is slow backwards in bf16: eager attention made a bf16
            # SmolLM2 LoRA step 1.24x faster (312 vs 252 real tokens/s, 2-core AVX512-BF16 EPYC)
            model.set_attn_implementation("eager")
        if quantization is not None:
            model = peft.prepare_model_for_kbit_training(model)
        self.model = peft.get_peft_model(model, lora_config(c, model.config.num_hidden_layers))
        if quantization is None:
            store_frozen_linears(self.model, self.precision)
        with autocast(self.precision, self.device):
            self.before = self.measure(self.model, self.tokenizer, "before")
        self.hf_trainer = self.trainer(self.model, self.training_arguments(), self.dataset, self.tokenizer)

    def real_tokens_so_far(self) -> int | None:
        """Real tokens trained on so far, the earlier segments of a resumed run included (None if not counted)."""
        count = getattr(self.hf_trainer, "total_real_tokens", None)
        return count() if count else None

    def train(self) -> None:
        trainer, prior = self.hf_trainer, self.prior
        trainer.add_callback(SaveProgress(self))
        stop = StopOnSigterm()
        trainer.add_callback(stop)
        self.started = time.time()
        try:
            with stop.installed():
                self.result = trainer.train(resume_from_checkpoint=str(self.resume_from) if self.resume_from else None)
        except UserError:
            print(file=sys.stderr)  # the error on its own line, not after the progress bar
            raise
        if stop.received:
            raise UserError(f"stopped by SIGTERM at step {trainer.state.global_step}: a checkpoint is saved in "
                            f"{self.config.output}; rerun the same command with --resume to continue")
        self.seconds = prior.get("seconds", 0) + time.time() - self.started
        bad = non_finite(self.model)
        if bad:
            raise UserError(f"step {trainer.state.global_step}: {len(bad)} weight tensors are not finite (e.g. "
                            f"{bad[0]}); the adapter was not saved: lower --lr")

    def save(self) -> dict:
        """Every process measures (the measurements share their batches); the main process writes."""
        c, out = self.config, self.out
        with autocast(self.precision, self.device):
            after = self.measure(self.model, self.tokenizer, "after")
            extra = self.save_extra(self.model, self.tokenizer)
        # the whole adapter, gathered from the processes' shards under FSDP / DeepSpeed ZeRO-3 (every process
        # takes part); in one process or under DDP, the model's own tensors
        trainer = self.hf_trainer
        state = trainer.accelerator.get_state_dict(trainer.model_wrapped)
        if is_main():
            self.model.save_pretrained(out, state_dict=state)
            self.tokenizer.save_pretrained(out)
        fields = {**self.record(), **extra}
        record = RunRecord(stage=self.stage, base_model=c.model, precision=self.precision, seed=c.seed,
                           versions=versions(), **fields)
        losses = [h["loss"] for h in self.hf_trainer.state.log_history if "loss" in h]
        summary = {"model": c.model, "steps": self.hf_trainer.state.global_step, "seconds": round(self.seconds, 1),
                   "first_loss": losses[0] if losses else self.result.training_loss,
                   "final_loss": losses[-1] if losses else self.result.training_loss,
                   # the curve the report plots: one point per logging step
                   "loss_log": [{"step": h["step"], "loss": h["loss"]} for h in self.hf_trainer.state.log_history
                                if "loss" in h],
                   **self.summary(fields), **{f"{k}_before": v for k, v in self.before.items()},
                   **{f"{k}_after": v for k, v in after.items()},
                   "precision": self.precision, "device": self.device, "seed": c.seed,
                   "config": to_dict(c), "versions": record.versions, "processes": world_size()}
        if self.resume_from:  # the numbers above cover every segment; say that the run was resumed
            summary["resumed"] = {"from": self.resume_from.name, "segments": self.prior.get("segments", 1) + 1,
                                  "earlier_counted": bool(self.prior)}
        if is_main():
            record.write(out)
            write_text(out / "config.yaml", yaml.safe_dump(to_dict(c), sort_keys=False))
            write_text(out / self.summary_file, json.dumps(summary, indent=2))  # last: it marks the run finished
        return summary

    def run(self) -> dict:
        """Setup -> train -> save. Returns the summary written to the summary file."""
        self.setup()
        self.train()
        return self.save()
