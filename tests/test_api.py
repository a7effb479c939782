"""The Python API: the README's example runs; `Classifier` gives eval's verdicts; `import reasonalign` stays light."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SRC

EXAMPLE = Path(__file__).parents[1] / "examples" / "api_example.py"


@pytest.fixture(scope="module")
def example_run(tiny_model, tmp_path_factory):
    """(output folder, CompletedProcess) of examples/api_example.py on the tiny model."""
    from conftest import write_rows

    root = tmp_path_factory.mktemp("api")
    data = str(write_rows(root / "small.csv"))
    out = root / "out"
    r = subprocess.run([sys.executable, str(EXAMPLE), "--model", tiny_model, "--data", data, "--eval-data", data,
                        "--max-steps", "2", "--eval-rows", "24", "--output", str(out)],
                       capture_output=True, text=True, timeout=600, env=_env())
    return out, data, r


def _env():
    import os

    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))}


def test_example_runs(example_run):
    out, _, r = example_run
    assert r.returncode == 0, r.stderr[-3000:]
    assert "trained 2 steps" in r.stdout and "accuracy" in r.stdout and "same verdicts from the export" in r.stdout
    assert (out / "export" / "README.md").is_file() and (out / "lr" / "eval" / "metrics.json").is_file()


def test_classifier_gives_evals_verdicts(example_run):
    from reasonalign import Classifier

    out, _, r = example_run
    assert r.returncode == 0, r.stderr[-3000:]
    metrics = json.loads((out / "lr" / "eval" / "metrics.json").read_text())
    items = [json.loads(line) for line in (out / "lr" / "eval" / "predictions.jsonl").read_text().splitlines()]
    clf = Classifier.from_pretrained(str(out / "lr"), precision=metrics["precision"])  # eval's batches
    assert clf.threshold == metrics["threshold"]
    predictions = clf.predict([it["statement"] for it in items])
    assert [p.verdict for p in predictions] == [("ethical", "unethical")[it["pred"]] for it in items]
    assert all((p.p_unethical > 0.5) == (p.verdict == "unethical") for p in predictions)
    scores = clf.scores([it["statement"] for it in items])
    for s, it in zip(scores, items):
        assert s[0] == pytest.approx(it["logp_ethical"], abs=1e-5) and s[1] == pytest.approx(it["logp_unethical"], abs=1e-5)
    # from the export: same verdicts, reasons on request
    exported = Classifier.from_pretrained(str(out / "export"), precision="fp32")
    assert exported.threshold == metrics["threshold"] and exported.method == "lr"
    with_reasons = exported.predict(items[0]["statement"], reasons=True, max_new_tokens=4)
    assert len(with_reasons) == 1 and isinstance(with_reasons[0].reason, str)


def test_bad_statements_are_one_line_errors(example_run):
    from reasonalign import Classifier, UserError

    out, _, _ = example_run
    clf = Classifier.from_pretrained(str(out / "export"), precision="fp32")
    with pytest.raises(UserError, match="statement 1: expected non-empty text"):
        clf.predict(["I helped.", "  "])
    with pytest.raises(UserError, match="not a LoRA adapter|cannot load model"):
        Classifier.from_pretrained(str(out / "nothing-here"))


def test_import_is_light():
    code = "import sys, reasonalign; reasonalign.TrainConfig; print('torch' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=_env())
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"
