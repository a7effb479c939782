"""The fault corpus (issue 20): bad data, configs, CLI values and faults (disk full, kill -9, two runs on
one folder, a diverging run), each asserting the exit status, one error line, no traceback and what is
(not) left on disk.

Most cases fail before any model loads and run in-process through `cli.main` (fast); the few that
need a real process (kill -9, two concurrent runs) use the console script. Every model is the tiny
random Llama of conftest.
"""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from conftest import COMMAND, SRC, write_rows
from reasonalign.cli import main
from reasonalign.core.lock import LOCK_FILE, acquire, release

FAST_TRAIN = ["--method", "l", "--calibration-rows", "0", "--batch-size", "4", "--lora-r", "4", "--lora-alpha", "8",
              "--precision", "fp32", "--logging-steps", "1", "--save-steps", "0", "--warmup-ratio", "0"]


def run(capsys, *argv) -> tuple[int, str]:
    """(exit status, stderr) of `reasonalign ARGV` run in this process."""
    rc = main([str(a) for a in argv])
    return rc, capsys.readouterr().err


def refused(rc: int, err: str, *words: str) -> str:
    """Exit 2, exactly one `error:` line (warnings and progress bars aside), no traceback; returns the line."""
    assert rc == 2, err
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, err
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


def files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")} if folder.exists() else set()


def env() -> dict:
    return {**os.environ, "TOKENIZERS_PARALLELISM": "false",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_rows(tmp_path_factory.mktemp("faults") / "small.csv")


@pytest.fixture(scope="module")
def adapter(tiny_model, data, tmp_path_factory) -> Path:
    """One finished 1-step run."""
    out = tmp_path_factory.mktemp("adapter") / "run"
    assert main(["train", "--model", tiny_model, "--data", str(data), "--output", str(out), "--max-steps", "1",
                 *FAST_TRAIN]) == 0
    return out


@pytest.fixture(scope="module")
def interrupted(tiny_model, data, tmp_path_factory) -> Path:
    """A run of 3 steps stopped after its checkpoint-2: checkpoint-3 and the final files never written."""
    out = tmp_path_factory.mktemp("interrupted") / "run"
    assert main(["train", "--model", tiny_model, "--data", str(data), "--output", str(out), "--max-steps", "3",
                 *FAST_TRAIN, "--save-steps", "1"]) == 0
    shutil.rmtree(out / "checkpoint-3")
    for name in ("train_summary.json", "run.json", "config.yaml", "adapter_config.json", "adapter_model.safetensors"):
        (out / name).unlink()
    return out


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


# ------------------------------------------------------------------ CLI and config values: refused before any work

BAD_VALUES = [
    ("train", "--batch-size", "0", "at least 1"), ("train", "--grad-accum", "0", "at least 1"),
    ("train", "--lora-r", "0", "at least 1"), ("train", "--lora-dropout", "1.5", "below 1"),
    ("train", "--lr", "-1", "above 0"), ("train", "--lr", "0", "above 0"), ("train", "--lr", "inf", "finite"),
    ("train", "--lr", "nan", "finite"), ("train", "--max-length", "-3", "at least 1"),
    ("train", "--warmup-ratio", "2", "below 1"), ("train", "--save-steps", "-1", "at least 0"),
    ("train", "--max-steps", "0", "or -1"), ("train", "--epochs", "0", "above 0"),
    ("train", "--label-weight", "1.5", "between 0 and 1"), ("generate", "--top-p", "5", "at most 1"),
    ("generate", "--temperature", "-1", "at least 0"), ("eval", "--batch-size", "0", "at least 1"),
    ("eval", "--rows", "0", "at least 1"), ("sample", "--k", "0", "at least 1"),
    ("align", "--groups-per-step", "0", "at least 1"),
]


@pytest.mark.parametrize("command,flag,value,words", BAD_VALUES, ids=[f"{c}{f}={v}" for c, f, v, _ in BAD_VALUES])
def test_bad_value_is_refused_before_any_work(capsys, tmp_path, command, flag, value, words):
    out = tmp_path / "out"
    target = ["--output", str(out / "groups.jsonl")] if command == "sample" else ["--output", str(out)]
    rc, err = run(capsys, command, flag, value, *target)
    refused(rc, err, flag, words)
    assert not out.exists()  # nothing written, not even the folder


@pytest.mark.parametrize("text,words", [("lr: null\n", "needs a value"), ("lr: .nan\n", "finite"),
                                        ("batch_size: 0\n", "at least 1"), ("lr: [1, 2]\n", "expected float")])
def test_bad_config_value_is_refused_like_the_flag(capsys, tmp_path, text, words):
    config = tmp_path / "recipe.yaml"
    config.write_text(text)
    rc, err = run(capsys, "train", "--config", config, "--output", tmp_path / "out")
    refused(rc, err, words)
    assert not (tmp_path / "out").exists()


def test_empty_config_file_is_said_aloud(capsys, tmp_path):
    from reasonalign.core import config as cfg
    from reasonalign.train.config import TrainConfig

    (tmp_path / "empty.yaml").write_text("")
    args = type("Args", (), {"config": str(tmp_path / "empty.yaml")})()
    assert cfg.build(TrainConfig, args) == TrainConfig()
    assert "empty config file" in capsys.readouterr().err


# ------------------------------------------------------------------ data

def _csv(path: Path, rows) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["statement", "label", "reason"], *rows])
    return path


@pytest.mark.parametrize("case,words", [
    ("nul", "control character U+0000"), ("control", "control character U+0007"),
    ("one-class", "all have label 'ethical'"), ("empty", "no rows")])
def test_bad_training_data_is_one_line(capsys, tiny_model, tmp_path, case, words):
    rows = {"nul": [["I helped\x00 her.", 0, "kind"], ["I hit him.", 1, "cruel"]] * 5,
            "control": [["I helped her.", 0, "kind\x07"], ["I hit him.", 1, "cruel"]] * 5,
            "one-class": [[f"I helped person {n}.", 0, "kind"] for n in range(12)],
            "empty": []}[case]
    path = _csv(tmp_path / "data.csv", rows)
    rc, err = run(capsys, "train", "--model", tiny_model, "--data", path, "--output", tmp_path / "out", *FAST_TRAIN)
    refused(rc, err, words)
    assert not (tmp_path / "out").exists()


def test_long_statement_is_cut_for_the_prompt_never_the_answer(capsys):
    from reasonalign.data.tables import Example
    from reasonalign.eval.labels import MAX_STATEMENT_WORDS, prompts_for
    from reasonalign.prompts import get_template
    from reasonalign.tasks import TASKS

    template = get_template("dfar-llama")
    long = Example(" ".join(["word"] * 20_000), 1, None, 2)
    prompt = prompts_for(TASKS["dfar"], template, [long], "lr", None)[0]
    assert prompt.count("word") == MAX_STATEMENT_WORDS
    assert prompt.endswith(template.prompt("word", "lr").split("word")[-1])  # the prompt's tail is intact
    assert "cut to their first" in capsys.readouterr().err


# ------------------------------------------------------------------ output location

@pytest.mark.parametrize("command", ["train", "eval", "generate"])
def test_output_that_is_a_file_is_refused_before_the_model_loads(capsys, tiny_model, tmp_path, monkeypatch, command):
    import reasonalign.models as models

    monkeypatch.setattr(models, "load_model", lambda *a, **k: pytest.fail("a model was loaded"))
    (tmp_path / "taken").write_text("mine")
    rc, err = run(capsys, command, "--model", tiny_model, "--output", tmp_path / "taken")
    refused(rc, err, "taken", "is a file")
    assert (tmp_path / "taken").read_text() == "mine"


# ------------------------------------------------------------------ the lock

@pytest.mark.parametrize("command", ["eval", "baselines"])
def test_a_folder_in_use_is_refused_and_left_alone(capsys, tiny_model, tmp_path, command):
    out = tmp_path / "out"
    out.mkdir()
    (out / LOCK_FILE).write_text(json.dumps({"pid": os.getpid(), "host": os.uname().nodename,
                                             "command": "reasonalign train --output elsewhere"}))
    before = (out / LOCK_FILE).read_text()
    options = ["--model", tiny_model] if command == "eval" else ["--data", "dfar", "--models", "logreg"]
    rc, err = run(capsys, command, *options, "--output", out)
    refused(rc, err, "in use by another run", f"pid {os.getpid()}", "reasonalign train")
    assert (out / LOCK_FILE).read_text() == before and files(out) == {LOCK_FILE}


def test_a_stale_lock_of_a_dead_process_is_taken_over(capsys, tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tmp_path / "out"
    out.mkdir()
    (out / LOCK_FILE).write_text(json.dumps({"pid": dead.pid, "host": os.uname().nodename, "command": "old"}))
    lock = acquire(out, "new")
    assert "taking over the lock of pid" in capsys.readouterr().err
    assert json.loads(lock.read_text())["pid"] == os.getpid()
    release(lock)
    assert not lock.exists()


def test_two_concurrent_trainings_on_one_folder(tiny_model, data, tmp_path):
    """Both start at once: one trains, the other gets one line and exit 2; one finished run is left."""
    out = tmp_path / "out"
    argv = [*COMMAND, "train", "--model", tiny_model, "--data", str(data), "--output", str(out), "--max-steps", "2",
            *FAST_TRAIN]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
             for _ in range(2)]
    results = sorted((p.wait(timeout=300), p.stderr.read()) for p in procs)
    assert [rc for rc, _ in results] == [0, 2], results
    refused(*results[1], "in use by another run")
    assert json.loads((out / "train_summary.json").read_text())["steps"] == 2
    assert not (out / LOCK_FILE).exists()


# ------------------------------------------------------------------ disk full, half-written files

def _disk_full_on(monkeypatch, suffix: str):
    """Writes of files whose name ends in `suffix` fail as on a full disk (after the temporary file is opened)."""
    import errno

    import reasonalign.core.files as files_module

    real = files_module.os.fsync

    def fsync(fd):
        if os.readlink(f"/proc/self/fd/{fd}").endswith(suffix + ".partial"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)

    monkeypatch.setattr(files_module.os, "fsync", fsync)


@pytest.mark.parametrize("command,suffix,marker", [
    ("eval", "predictions.jsonl", "metrics.json"), ("eval", "metrics.json", "metrics.json"),
    ("generate", "generations.jsonl", "generate_summary.json")])
def test_disk_full_leaves_nothing_that_looks_finished(capsys, monkeypatch, tiny_model, data, tmp_path, command,
                                                      suffix, marker):
    _disk_full_on(monkeypatch, suffix)
    out = tmp_path / "out"
    rc, err = run(capsys, command, "--model", tiny_model, "--data", data, "--rows", "4", "--max-new-tokens", "2",
                  "--precision", "fp32", "--output", out)
    refused(rc, err, suffix, "No space left on device")
    left = files(out)
    assert marker not in left and not any(name.endswith(".partial") for name in left) and LOCK_FILE not in left


def test_disk_full_at_the_summary_leaves_an_unfinished_run(capsys, monkeypatch, tiny_model, data, tmp_path):
    _disk_full_on(monkeypatch, "train_summary.json")
    out = tmp_path / "out"
    rc, err = run(capsys, "train", "--model", tiny_model, "--data", data, "--output", out, "--max-steps", "1",
                  *FAST_TRAIN)
    refused(rc, err, "train_summary.json", "No space left on device")
    assert "train_summary.json" not in files(out) and "train_summary.json.partial" not in files(out)


# ------------------------------------------------------------------ honest resume

def test_resume_of_a_finished_run_changes_nothing(capsys, tiny_model, data, adapter, tmp_path):
    out = _copy(adapter, tmp_path / "run")
    before = {p: (out / p).read_bytes() for p in files(out) if (out / p).is_file()}
    rc, err = run(capsys, "train", "--model", tiny_model, "--data", data, "--output", out, "--max-steps", "1",
                  *FAST_TRAIN, "--resume")
    refused(rc, err, "finished already", "nothing to resume")
    assert {p: (out / p).read_bytes() for p in files(out) if (out / p).is_file()} == before


def test_resume_with_other_options_names_them(capsys, tiny_model, data, interrupted, tmp_path):
    out = _copy(interrupted, tmp_path / "run")
    rc, err = run(capsys, "train", "--model", tiny_model, "--data", data, "--output", out, "--max-steps", "3",
                  *FAST_TRAIN, "--save-steps", "1", "--lr", "1e-3", "--resume")
    refused(rc, err, "checkpoint-2", "lr 0.0002 -> 0.001", "--overwrite")
    assert not (out / "train_summary.json").exists()


def test_rerun_over_checkpoints_without_resume_refuses(capsys, tiny_model, data, interrupted, tmp_path):
    out = _copy(interrupted, tmp_path / "run")
    rc, err = run(capsys, "train", "--model", tiny_model, "--data", data, "--output", out, "--max-steps", "3",
                  *FAST_TRAIN, "--save-steps", "1")
    refused(rc, err, "checkpoints of an unfinished run", "--resume")
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2"]  # kept, not discarded


def test_resume_skips_a_half_written_checkpoint_and_counts_every_segment(capsys, tiny_model, data, interrupted,
                                                                          tmp_path):
    out = _copy(interrupted, tmp_path / "run")
    (out / "checkpoint-3").mkdir()
    (out / "checkpoint-3" / "README.md").write_text("killed while saving")
    rc = main(["train", "--model", tiny_model, "--data", str(data), "--output", str(out), "--max-steps", "3",
               *FAST_TRAIN, "--save-steps", "1", "--resume"])
    assert rc == 0, capsys.readouterr().err
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["steps"] == 3 and summary["resumed"]["from"] == "checkpoint-2"
    assert summary["real_tokens"] > json.loads((out / "checkpoint-2" / "reasonalign_progress.json").read_text())[
        "real_tokens"] > 0


def test_kill_9_then_resume(tiny_model, data, tmp_path):
    """A run killed hard after its first checkpoint: the rerun without --resume refuses to discard it, the
    rerun with --resume takes over the dead run's lock, continues and finishes."""
    out = tmp_path / "run"
    argv = [*COMMAND, "train", "--model", tiny_model, "--data", str(data), "--output", str(out), "--max-steps", "400",
            *FAST_TRAIN, "--save-steps", "1"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env())
    deadline = time.time() + 120
    while not list(out.glob("checkpoint-*/reasonalign_progress.json")) and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (out / LOCK_FILE).exists() and not (out / "train_summary.json").exists()
    again = subprocess.run(argv, capture_output=True, text=True, env=env(), timeout=300)
    refused(again.returncode, again.stderr, "checkpoints of an unfinished run")
    assert "taking over the lock of pid" in again.stderr  # the dead run's lock
    # the kill may have hit a checkpoint half-saved, or saved but not yet given its progress record: resume is
    # from the newest complete one, whose options are then checked; later ones go, to make the steps known
    from reasonalign.finetune.checkpoints import PROGRESS_FILE, checkpoints, complete

    newest = next(c for c in checkpoints(out) if complete(c) and (c / PROGRESS_FILE).is_file())
    for later in checkpoints(out)[:checkpoints(out).index(newest)]:
        shutil.rmtree(later)
    step = int(newest.name.split("-")[1])
    # one more step than the newest checkpoint (a changed --max-steps needs --overwrite, said in one line)
    resumed = subprocess.run([*argv, "--resume", "--max-steps", str(step + 1)], capture_output=True, text=True,
                             env=env(), timeout=300)
    refused(resumed.returncode, resumed.stderr, f"max_steps 400 -> {step + 1}")
    resumed = subprocess.run([*argv, "--resume", "--overwrite", "--max-steps", str(step + 1)], capture_output=True,
                             text=True, env=env(), timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["steps"] == step + 1 and summary["resumed"]["segments"] == 2
    assert not (out / LOCK_FILE).exists()


# ------------------------------------------------------------------ finite or stop

@pytest.mark.parametrize("steps,words", [("1", "not finite"), ("3", "not finite")])
def test_diverging_training_stops_and_saves_no_adapter(capsys, tiny_model, data, tmp_path, steps, words):
    out = tmp_path / "out"
    rc, err = run(capsys, "train", "--model", tiny_model, "--data", data, "--output", out, "--max-steps", steps,
                  *FAST_TRAIN, "--lr", "1e39")
    line = refused(rc, err, words, "step")
    assert "--lr" in line
    assert not (out / "adapter_model.safetensors").exists() and not (out / "train_summary.json").exists()


def test_eval_refuses_an_adapter_with_non_finite_weights(capsys, tiny_model, adapter, tmp_path):
    broken = _copy(adapter, tmp_path / "broken")
    weights = load_file(str(broken / "adapter_model.safetensors"))
    save_file({k: torch.full_like(v, float("nan")) for k, v in weights.items()}, str(broken / "adapter_model.safetensors"))
    rc, err = run(capsys, "eval", "--model", tiny_model, "--adapter", broken, "--output", tmp_path / "eval")
    refused(rc, err, str(broken), "not finite")
    assert "metrics.json" not in files(tmp_path / "eval")


def test_an_adapter_of_another_base_model_is_refused_naming_both(capsys, tiny_model, adapter, tmp_path, monkeypatch):
    import transformers

    other = _copy(adapter, tmp_path / "other")
    record = json.loads((other / "run.json").read_text())
    (other / "run.json").write_text(json.dumps({**record, "base_model": "gemma3-270m"}))
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained",
                        lambda *a, **k: pytest.fail("a model was loaded"))
    rc, err = run(capsys, "generate", "--model", tiny_model, "--adapter", other, "--output", tmp_path / "gen")
    refused(rc, err, "gemma3-270m", tiny_model)


# ------------------------------------------------------------------ recipes and reproduce configs

def _recipe(tmp_path, steps: str, table: str = "") -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(f"vars:\n  lr: {{default: 0.001}}\noutput: {tmp_path / 'rout'}\nsteps:\n{steps}{table}")
    return path


@pytest.mark.parametrize("case,words", [
    ("undefined-var", "{tpyo} names no var"), ("empty-set", "empty value"), ("unknown-var", "no var 'nope'")])
def test_recipe_mistakes_are_refused_before_step_1(capsys, tmp_path, case, words):
    steps = ("  - {command: model list, options: {}}\n"
             "  - {command: eval, options: {output: \"{output}/{tpyo}\"}}\n")
    path = _recipe(tmp_path, steps)
    extra = {"undefined-var": [], "empty-set": ["--set", "lr="], "unknown-var": ["--set", "nope=1"]}[case]
    rc, err = run(capsys, "recipe", path, *extra)
    refused(rc, err, words)
    assert not (tmp_path / "rout").exists()


@pytest.mark.parametrize("case,words", [("row", "{cell:nosuch} names no cell"), ("compare", "'Nobody' is no row")])
def test_reproduce_references_are_checked_before_any_cell(capsys, tmp_path, case, words):
    folder = "{cell:nosuch}" if case == "row" else "{cell:a}"
    compare = "compare:\n  - [A, Nobody]\n" if case == "compare" else ""
    config = tmp_path / "repro.yaml"
    config.write_text(f"output: {tmp_path / 'out'}\ncells:\n  a: {{command: baselines, options: {{data: dfar}}}}\n"
                      f"columns:\n  - {{key: acc, dataset: dfar, metric: accuracy}}\n"
                      f"rows:\n  - {{method: A, kind: baseline, folders: {{dfar: \"{folder}/svm\"}}}}\n{compare}")
    rc, err = run(capsys, "reproduce", "--config", config)
    refused(rc, err, words)
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------ the rating app

def _study(tmp_path, comment: str = "") -> Path:
    from reasonalign.judges import study
    from reasonalign.judges.base import JudgeItem

    db = tmp_path / "study.sqlite"
    items = [JudgeItem(item_id="1", statement="-I lied.", gold_label=1, gold_reason="+wrong", reason="@cmd",
                       verdict=1)]
    study.create_study(db, {"m": items}, seed=0, show_gold_reason=False)
    conn = study.connect(db)
    rater = study.add_rater(conn, "alice")
    rid = conn.execute("SELECT id FROM raters WHERE name = 'alice'").fetchone()[0]
    study.record_rating(conn, rid, "r0001", False, criteria=["incoherent"], comment=comment)
    conn.close()
    return db


@pytest.mark.parametrize("comment", ['=HYPERLINK("http://evil","x")', "+1+1", "@SUM(A1)", "\t=1", "\r=1"])
def test_export_neutralises_formulas(capsys, tmp_path, comment):
    from reasonalign.judges.human import import_ratings, neutral, restore

    db = _study(tmp_path, comment)
    assert main(["annotate", "export", "--db", str(db), "--output", str(tmp_path / "r.csv")]) == 0
    with open(tmp_path / "r.csv", newline="", encoding="utf-8") as f:
        row = next(csv.DictReader(f))
    assert row["comment"] == "'" + comment.strip()  # the study strips comments; what is left starts with =, + or @
    assert row["statement"] == "'-I lied." and row["reason"] == "'@cmd"
    assert neutral(comment) == "'" + comment and restore(neutral(comment)) == comment
    assert import_ratings(tmp_path / "r.csv") == [("r0001", "alice", False)]  # still reads back


@pytest.mark.parametrize("host,status", [("evil.example", 400), ("127.0.0.1:8750", 200), ("localhost", 200),
                                         ("[::1]:8750", 200)])
def test_host_header_is_checked(tmp_path, host, status):
    from reasonalign.annotate.app import create_app

    client = create_app(_study(tmp_path)).test_client()
    assert client.get("/signin", headers={"Host": host}).status_code == status


def test_session_secret_is_not_in_the_study_file(tmp_path):
    import sqlite3

    from reasonalign.annotate.app import create_app
    from reasonalign.judges import study

    db = _study(tmp_path)
    app = create_app(db)
    keys = {r[0] for r in sqlite3.connect(db).execute("SELECT key FROM meta")}
    assert "session_secret" not in keys
    key_file = study.secret_path(db)
    assert key_file.read_text().strip() == app.config["SECRET_KEY"]
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert app.config["SECRET_KEY"].encode() not in db.read_bytes()


def test_sigterm_saves_a_checkpoint_and_says_how_to_resume(tiny_model, data, tmp_path):
    """A polite stop (SIGTERM) after training began: the current step is checkpointed, the run stays unfinished,
    one line says how to continue, and `--resume` finishes it."""
    out = tmp_path / "run"
    argv = [*COMMAND, "train", "--model", tiny_model, "--data", str(data), "--output", str(out), "--max-steps", "400",
            *FAST_TRAIN, "--save-steps", "1000"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env())
    deadline = time.time() + 120
    while not list(out.glob("runs/*/events.out.tfevents.*")) and time.time() < deadline:
        time.sleep(0.2)  # TensorBoard's event file appears when training starts
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    line = refused(proc.returncode, err, "stopped by SIGTERM at step", "--resume")
    step = int(line.split("at step ")[1].split(":")[0])
    assert 0 < step < 400 and (out / f"checkpoint-{step}" / "trainer_state.json").is_file()
    assert not (out / "train_summary.json").exists() and not (out / LOCK_FILE).exists()
    resumed = subprocess.run([*argv, "--resume", "--overwrite", "--max-steps", str(step + 1)], capture_output=True,
                             text=True, env=env(), timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((out / "train_summary.json").read_text())["steps"] == step + 1
