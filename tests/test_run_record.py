"""run.json: written once by train/align, read by every later stage through `read_run`."""

import json

import pytest

from reasonalign.core.errors import UserError
from reasonalign.core.run_record import SCHEMA_VERSION, RunRecord, read_run


def _record(**changes):
    fields = dict(stage="train", base_model="m", task="dfar", method="lr", template="dfar-llama", precision="fp32",
                  seed=3, data={"spec": "dfar:train", "sha256": "ab", "rows": 10},
                  calibration={"threshold": 0.5, "file": "calibration.json"})
    return RunRecord(**{**fields, **changes})


def test_round_trip_with_schema_version(tmp_path):
    _record().write(tmp_path)
    saved = json.loads((tmp_path / "run.json").read_text())
    assert saved["schema_version"] == SCHEMA_VERSION == 1
    assert read_run(str(tmp_path)) == _record()


def test_no_adapter_or_a_foreign_adapter_has_no_record(tmp_path):
    assert read_run(None) is None and read_run(str(tmp_path)) is None


def test_a_newer_schema_is_refused_and_unknown_keys_ignored(tmp_path):
    (tmp_path / "run.json").write_text(json.dumps({**vars(_record()), "schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(UserError, match="newer than this reasonalign reads"):
        read_run(str(tmp_path))
    (tmp_path / "run.json").write_text(json.dumps({**vars(_record()), "future_field": 1}))
    assert read_run(str(tmp_path)).method == "lr"


def test_adapters_from_before_run_json_are_read_from_train_summary(tmp_path):
    (tmp_path / "train_summary.json").write_text(json.dumps(
        {"method": "l", "template": "dfar-mistral", "model": "m", "calibration": {"threshold": 1.0}, "seed": 2}))
    record = read_run(str(tmp_path))
    assert (record.method, record.template, record.calibration["threshold"], record.schema_version) == \
           ("l", "dfar-mistral", 1.0, 0)
