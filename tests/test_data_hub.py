"""Datasets in, offline: a .parquet file, a save_to_disk folder and an hf:NAME from the local Hub cache read like a
CSV (same --columns/--label-map, same one-line row errors, exit 2); train and eval run on them; an hf: name
that is not cached is one line, exit 2."""

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import ETHICAL, UNETHICAL, cli

ROWS = {"text": ETHICAL[:6] + UNETHICAL[:6], "y": ["no"] * 6 + ["yes"] * 6,
        "why": [f"Because of {i}." for i in range(12)]}
MAPS = ["--columns", "statement=text,label=y,reason=why", "--label-map", "no=ethical,yes=unethical"]


def _parquet(path: Path, rows=ROWS) -> str:
    pq.write_table(pa.table(rows), path)
    return str(path)


def _cache_hub_dataset(cache: Path, repo: str, rows=ROWS) -> None:
    """Lay `rows` out as `datasets` caches a Hub dataset it downloaded once (`NS___NAME/default/0.0.0/COMMIT`),
    so an offline `load_dataset(repo)` finds it there."""
    from datasets.packaged_modules.parquet.parquet import Parquet

    src = _parquet(cache.parent / "hub-src.parquet", rows)
    namespace, name = repo.split("/")
    Parquet(cache_dir=str(cache), dataset_name=name, data_files={"train": src}, hash="0" * 40).download_and_prepare()
    shutil.move(cache / name, cache / f"{namespace}___{name}")
    for config in (cache / f"{namespace}___{name}").glob("default-*"):
        config.rename(config.parent / "default")


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    cache = tmp_path / "hf-datasets"
    cache.mkdir()
    _cache_hub_dataset(cache, "someone/ethics")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(cache))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    return cache


def test_every_format_reads_like_the_csv(tmp_path, hub_cache):
    from datasets import Dataset, DatasetDict

    parquet = _parquet(tmp_path / "rows.parquet")
    disk = tmp_path / "disk"
    DatasetDict({"train": Dataset.from_dict(ROWS), "test": Dataset.from_dict(ROWS)}).save_to_disk(disk)
    single = tmp_path / "single"
    Dataset.from_dict(ROWS).save_to_disk(single)
    for spec in (parquet, f"{disk}@train", str(single), "hf:someone/ethics@train", "hf:someone/ethics"):
        r = cli("data", "validate", spec, "--method", "lr", *MAPS)
        assert r.returncode == 0, (spec, r.stderr)
        assert r.stdout.strip() == f"ok: {spec}: 12 rows (6 ethical, 6 unethical), reasons on every row", spec


def test_row_errors_are_one_line(tmp_path, hub_cache, capsys):
    from datasets import Dataset, DatasetDict

    from reasonalign.cli import main

    bad = {**ROWS, "y": ROWS["y"][:3] + ["maybe"] + ROWS["y"][4:], "text": [""] + ROWS["text"][1:]}
    parquet = _parquet(tmp_path / "bad.parquet", bad)
    disk = tmp_path / "disk"
    DatasetDict({"train": Dataset.from_dict(ROWS), "test": Dataset.from_dict(ROWS)}).save_to_disk(disk)
    broken = tmp_path / "broken.parquet"
    broken.write_text("not parquet")
    capsys.readouterr()  # save_to_disk's progress bars
    cases = [
        ([parquet, *MAPS], f"{parquet}:1: empty statement (and 1 more problems)"),
        ([parquet, "--label-map", "no=ethical,yes=unethical"], f"{parquet}: no 'statement' column (columns: text, y, why)"),
        ([str(broken)], f"{broken}: not a readable parquet file"),
        ([str(disk), *MAPS], f"{disk}: name a split with @SPLIT (splits: train, test)"),
        ([f"{disk}@dev", *MAPS], f"{disk}@dev: no split 'dev' (splits: train, test)"),
        (["hf:nobody/absent@train", *MAPS], "hf:nobody/absent@train: not in the local cache (offline"),
        (["hf:", *MAPS], "expected hf:NAME[:CONFIG][@SPLIT]"),
    ]
    for args, message in cases:  # in-process `main` (the console script's function): no subprocess each
        assert main(["data", "validate", *args]) == 2, args
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err


def test_train_on_parquet_and_eval_on_the_hub_cache(tiny_model, tmp_path, hub_cache):
    parquet = _parquet(tmp_path / "rows.parquet")
    run, ev = tmp_path / "run", tmp_path / "ev"
    r = cli("train", "--model", tiny_model, "--data", parquet, *MAPS, "--output", str(run), "--max-steps", "2",
            "--batch-size", "4", "--lora-r", "4", "--save-steps", "0", "--calibration-rows", "2", "--report-to", "none")
    assert r.returncode == 0, r.stderr
    record = json.loads((run / "run.json").read_text())
    assert record["data"]["spec"] == parquet and record["data"]["rows"] == 12
    assert record["data"]["sha256"] == __import__("hashlib").sha256(Path(parquet).read_bytes()).hexdigest()
    assert not (run / "runs").exists()  # --report-to none: no TensorBoard logs
    r = cli("eval", "--model", tiny_model, "--adapter", str(run), "--data", "hf:someone/ethics@train", *MAPS,
            "--output", str(ev))
    assert r.returncode == 0, r.stderr
    metrics = json.loads((ev / "metrics.json").read_text())
    assert metrics["n"] == 12 and metrics["data"] == "hf:someone/ethics@train" and len(metrics["data_sha256"]) == 64
