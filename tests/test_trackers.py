"""`--report-to` reaches the Trainer: TensorBoard event files, an MLflow run in a local file store (offline),
nothing with `none`; a tracker that is not installed or switched off is one line, exit 2, nothing written."""

import importlib.util

import pytest

from conftest import cli

FAST = ["--method", "l", "--max-steps", "2", "--batch-size", "4", "--lora-r", "4", "--save-steps", "0",
        "--calibration-rows", "2", "--logging-steps", "1"]


def _train(tiny_model, data, out, *extra):
    return cli("train", "--model", tiny_model, "--data", data, "--output", str(out), *FAST, *extra)


def test_tensorboard_by_default(tiny_model, small_csv, tmp_path):
    r = _train(tiny_model, small_csv, tmp_path / "tb")
    assert r.returncode == 0, r.stderr
    assert list((tmp_path / "tb").rglob("events.out.tfevents.*"))


@pytest.mark.skipif(importlib.util.find_spec("mlflow") is None, reason="mlflow-skinny not installed (extra: mlflow)")
def test_mlflow_local_file_store(tiny_model, small_csv, tmp_path, monkeypatch):
    store = tmp_path / "mlruns"
    monkeypatch.delenv("DISABLE_MLFLOW_INTEGRATION", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.as_uri())
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "reasonalign-test")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps the file store behind this switch
    r = _train(tiny_model, small_csv, tmp_path / "ml", "--report-to", "mlflow")
    assert r.returncode == 0, r.stderr
    assert not list((tmp_path / "ml").rglob("events.out.tfevents.*"))  # mlflow instead of TensorBoard

    import mlflow

    mlflow.set_tracking_uri(store.as_uri())
    experiment = mlflow.get_experiment_by_name("reasonalign-test")
    runs = mlflow.search_runs([experiment.experiment_id], output_format="list")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    history = mlflow.MlflowClient(store.as_uri()).get_metric_history(runs[0].info.run_id, "loss")
    assert [m.step for m in history] == [1, 2] and all(m.value > 0 for m in history)  # --logging-steps 1
    assert runs[0].data.params["learning_rate"] == "0.0002"
    assert {"tokens_per_s", "real_tokens"} <= set(runs[0].data.metrics)  # our own logged numbers too


def test_bad_tracker_is_one_line(tiny_model, small_csv, tmp_path, monkeypatch, capsys):
    from reasonalign.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["train", "--report-to", "comet"])
    assert exit_.value.code == 2 and "invalid choice: 'comet'" in capsys.readouterr().err
    cases = []
    if importlib.util.find_spec("wandb") is None:
        cases.append((["--report-to", "wandb"], "--report-to wandb needs wandb: pip install wandb"))
    if importlib.util.find_spec("mlflow") is not None:
        monkeypatch.setenv("DISABLE_MLFLOW_INTEGRATION", "TRUE")
        cases.append((["--report-to", "mlflow"], "DISABLE_MLFLOW_INTEGRATION=TRUE in the environment switches it off"))
    for extra, message in cases:  # in-process `main`: the check runs before any model loads
        assert main(["train", "--model", tiny_model, "--data", small_csv, "--output", str(tmp_path / "bad"),
                     *FAST, *extra]) == 2, extra
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "bad").exists()
