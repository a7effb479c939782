"""The run record: what a finished `train` or `align` run leaves beside its adapter, for every later stage.

`eval`, `generate`, `sample`, `align` and model loading all need to know how an adapter was made
(its base model, prompt template and method, task, calibration threshold, the SFT adapter an
aligned adapter sits on). They read it through `read_run`, from one file, `run.json`, whose
`schema_version` says how to read it. The run's numbers (loss, steps, tokens/s) are in its
summary file (train_summary.json / align_summary.json), which only reports (results tables) read.
"""

import json
import platform
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from reasonalign.core.files import write_text
from reasonalign.core.errors import UserError

RECORD_FILE = "run.json"
SCHEMA_VERSION = 1


@dataclass
class RunRecord:
    stage: str  # "train" or "align"
    base_model: str  # short name, hub id or folder the adapter applies to
    task: str  # tasks.TASKS key: dfar, ethos, gsm8k, aqua
    method: str | None  # l, lr or cot (align: the SFT adapter's)
    template: str | None  # prompt template name ("cot" for the Question/Answer format)
    precision: str
    seed: int
    data: dict  # {"spec", "sha256", "rows"}; align: the groups file
    calibration: dict | None = None  # {"threshold", "rows", "source", "fitted_on"}
    base_adapter: str | None = None  # align: the SFT adapter it was trained on, relative to this folder
    versions: dict = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    def write(self, folder) -> Path:
        path = Path(folder) / RECORD_FILE
        write_text(path, json.dumps(asdict(self), indent=2))
        return path


def read_run(adapter: str | None) -> RunRecord | None:
    """The record of the run that made `adapter` (None without an adapter or for a foreign one).

    Adapters written before run.json existed carry the same facts in train_summary.json
    (schema 0); they are read from there."""
    if not adapter:
        return None
    folder = Path(adapter)
    path = folder / RECORD_FILE
    if path.is_file():
        try:
            data = json.loads(path.read_text())
        except ValueError:
            raise UserError(f"{path}: not a JSON run record") from None
        if data.get("schema_version", 0) > SCHEMA_VERSION:
            raise UserError(f"{path}: schema {data['schema_version']} is newer than this reasonalign reads "
                            f"({SCHEMA_VERSION}); upgrade reasonalign")
        known = {f.name for f in fields(RunRecord)}
        return RunRecord(**{k: v for k, v in data.items() if k in known})
    legacy = folder / "train_summary.json"
    if not legacy.is_file():
        return None  # an adapter made elsewhere: nothing known about it
    s = json.loads(legacy.read_text())
    calibration = {"file": "calibration.json", **s["calibration"]} if s.get("calibration") else None
    return RunRecord(stage="align" if s.get("aligned_with") else "train", base_model=s.get("model", ""),
                     task=s.get("task") or "dfar", method=s.get("method"), template=s.get("template"),
                     precision=s.get("precision", "fp32"), seed=s.get("seed", 0), data=s.get("data") or {},
                     calibration=calibration, base_adapter=s.get("base_adapter"),
                     versions=s.get("versions") or {}, schema_version=0)


def prompt_format(record: RunRecord | None, template: str | None = None,
                  method: str | None = None) -> tuple[str, str]:
    """(template, method) to prompt with: what was asked for, else the adapter's run `record`, else
    dfar-llama / lr. The method may be the record's `cot`; the caller decides what that means."""
    return (template or (record.template if record and record.template else "dfar-llama"),
            method or (record.method if record and record.method else "lr"))


def versions() -> dict:
    """Library versions a run depended on (imported here, at save time, not at CLI start-up)."""
    import peft
    import torch
    import transformers

    from reasonalign._version import __version__

    return {"reasonalign": __version__, "torch": torch.__version__, "transformers": transformers.__version__,
            "peft": peft.__version__, "python": platform.python_version()}
