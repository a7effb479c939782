"""The shipped lm-evaluation-harness task (`reasonalign/lm_eval_tasks/dfar`): through the harness's own `hf` model
with `peft=ADAPTER`, its per-item choices on DFAR test (full and clean) are `reasonalign eval`'s without calibration
(threshold 0), and its log-likelihoods ours. Skipped without lm_eval (extra `lm-eval`)."""

import json

import numpy as np
import pytest
import torch

lm_eval = pytest.importorskip("lm_eval")

LIMIT = 16  # the first 16 rows of each split: the comparison is per item, so a prefix shows it


@pytest.fixture(scope="module")
def adapter(tiny_model, tmp_path_factory):
    """A LoRA adapter with non-zero weights and the run record `train` writes (L+R, dfar-llama)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from reasonalign.core.run_record import RunRecord

    out = tmp_path_factory.mktemp("adapter")
    torch.manual_seed(1)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model),
                           LoraConfig(r=4, lora_alpha=8, init_lora_weights=False, task_type="CAUSAL_LM"))
    model.save_pretrained(out)
    RunRecord(stage="train", base_model=tiny_model, task="dfar", method="lr", template="dfar-llama", precision="fp32",
              seed=0, data={"spec": "dfar:train"}).write(out)
    return str(out)


def test_task_choices_equal_ours_item_by_item(tiny_model, adapter, tmp_path):
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    import reasonalign.lm_eval_tasks as tasks
    from reasonalign.eval.labels import EvalConfig, evaluate

    result = simple_evaluate(model="hf", model_args=f"pretrained={tiny_model},peft={adapter},dtype=float32",
                             tasks=["dfar"], task_manager=TaskManager(include_path=tasks.path()), limit=LIMIT,
                             device="cpu", batch_size=8, log_samples=True)
    for task, data in (("dfar_full", "dfar:test"), ("dfar_clean", "dfar:test-clean")):
        samples = sorted(result["samples"][task], key=lambda s: s["doc_id"])
        assert len(samples) == LIMIT
        ours = evaluate(EvalConfig(model=tiny_model, adapter=adapter, data=data, calibration="none", precision="fp32",
                                   output=str(tmp_path / task)))
        items = [json.loads(line) for line in (tmp_path / task / "predictions.jsonl").read_text().splitlines()][:LIMIT]
        assert [s["doc"]["row"] for s in samples] == [it["row"] for it in items]  # the same rows, in the same order
        theirs = np.array([[r[0] for r in s["filtered_resps"]] for s in samples])  # (loglik, is_greedy) per choice
        mine = np.array([[it["logp_ethical"], it["logp_unethical"]] for it in items])
        np.testing.assert_allclose(theirs, mine, atol=1e-4)
        assert [int(np.argmax(t)) for t in theirs] == [it["pred"] for it in items]  # choices = ours at threshold 0
        assert [s["acc"] for s in samples] == [float(it["correct"]) for it in items]
        assert ours["threshold"] == 0.0


def test_lm_eval_console_script_runs_the_group(tiny_model, adapter, tmp_path):
    """The README's command line, through the harness's own console script."""
    import subprocess
    import sys
    from pathlib import Path

    import os

    import reasonalign.lm_eval_tasks as tasks
    from conftest import SRC

    script = Path(sys.executable).parent / "lm_eval"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))}
    r = subprocess.run([str(script), "--model", "hf", "--model_args", f"pretrained={tiny_model},peft={adapter}",
                        "--tasks", "dfar", "--include_path", tasks.path(), "--limit", "4", "--device", "cpu",
                        "--output_path", str(tmp_path / "out")], capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "dfar_full" in r.stdout and "dfar_clean" in r.stdout and "acc" in r.stdout
