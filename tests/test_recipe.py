"""`reasonalign recipe`: steps run in order through the real CLI, finished steps are skipped, bad recipes stop early."""

import json

from conftest import cli


def write_recipe(path, tiny_model, data, extra=""):
    path.write_text(f"""
output: {path.parent / "run"}
steps:
  - name: train L
    command: train
    creates: "{{output}}/l/train_summary.json"
    options: {{method: l, model: {tiny_model}, data: {data}, max_steps: 2, batch_size: 4, lora_r: 8,
              save_steps: 0, calibration_rows: 4, output: "{{output}}/l"}}
  - name: accuracy
    command: eval
    options: {{task: labels, model: {tiny_model}, adapter: "{{output}}/l", data: {data}, output: "{{output}}/ev"}}
{extra}""")
    return path


def test_steps_run_in_order_and_a_rerun_skips_finished_ones(tiny_model, small_csv, tmp_path):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_model, small_csv)
    r = cli("recipe", str(recipe))
    assert r.returncode == 0, r.stderr
    run = tmp_path / "run"
    summary = json.loads((run / "recipe_summary.json").read_text())
    assert [s["name"] for s in summary["steps"]] == ["train L", "accuracy"]
    assert summary["steps"][0]["argv"][:3] == ["train", "--method", "l"]
    assert json.loads((run / "ev" / "metrics.json").read_text())["n"] == 24
    first = (run / "l" / "adapter_model.safetensors").stat().st_mtime_ns

    r = cli("recipe", str(recipe))
    assert r.returncode == 0, r.stderr
    assert "train L: already done" in r.stdout
    assert (run / "l" / "adapter_model.safetensors").stat().st_mtime_ns == first


def test_a_failing_step_stops_the_recipe_with_its_name(tiny_model, small_csv, tmp_path):
    extra = """  - name: never reached
    command: eval
    options: {task: labels, output: "{output}/never"}
"""
    recipe = write_recipe(tmp_path / "r.yaml", tiny_model, tmp_path / "absent.csv", extra)
    r = cli("recipe", str(recipe))
    assert r.returncode == 2 and "step 1 (train L) failed" in r.stderr
    assert "absent.csv" in r.stderr and not (tmp_path / "run" / "never").exists()


def test_bad_recipes_are_one_line_errors(tmp_path):
    cases = {"nosteps.yaml": ("output: x\n", "needs `steps:`"),
             "badkey.yaml": ("steps:\n  - command: eval\n    option: {}\n", "step 1: unknown key(s) option"),
             "broken.yaml": ("steps: [\n", "invalid YAML"),
             "typo.yaml": ("steps:\n  - command: eval\n    options: {judgee: llm}\n",
                           "step 1 (step 1): unknown option(s) --judgee llm")}
    for name, (text, problem) in cases.items():
        (tmp_path / name).write_text(text)
        r = cli("recipe", str(tmp_path / name))
        assert r.returncode == 2 and problem in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_shipped_recipes_parse_and_name_real_options(tmp_path):
    from pathlib import Path

    for recipe in sorted(Path(__file__).parents[1].glob("configs/*-cpu.yaml")):
        if "\nsteps:" not in recipe.read_text() or "\ncells:" in recipe.read_text():  # reproduce configs have cells
            continue
        # a fresh output folder: a local run of the recipe would make its `creates` steps print as done
        r = cli("recipe", str(recipe), "--dry-run", "--output", str(tmp_path / recipe.stem))
        assert r.returncode == 0, (recipe, r.stderr)
        # every step prints its command line, but those whose `if` var is off (e.g. ETHOS without a file)
        steps = recipe.read_text().count("command:") - r.stdout.count("skipped (its `if` var is off)")
        assert r.stdout.count("reasonalign ") >= (1 if "command: demo" in recipe.read_text() else steps) > 0


def test_resume_keys_change_with_the_step_and_every_step_after_it():
    """`--resume` skips a step only when it and every earlier step ran with the same command line."""
    from reasonalign.pipeline.recipe import step_keys

    steps = [{"argv": ["train", "--lr", "1e-3"]}, {"argv": ["eval", "--adapter", "x"]}, {"argv": ["eval", "--rows", "9"]}]
    changed = [{"argv": ["train", "--lr", "2e-3"]}, *steps[1:]]
    last_changed = [*steps[:2], {"argv": ["eval", "--rows", "8"]}]
    keys, after_first, after_last = step_keys(steps), step_keys(changed), step_keys(last_changed)
    assert len(set(keys)) == 3 and keys == step_keys(steps)
    assert all(a != b for a, b in zip(keys, after_first))  # the eval steps read what train wrote
    assert after_last[:2] == keys[:2] and after_last[2] != keys[2]
