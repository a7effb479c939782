"""`reasonalign align` on the tiny model: ordering improves, DPO's reference is the SFT model, scores are
length-normalised log-likelihoods, ragged / pair-less groups work, bad files fail in one line, and the
aligned adapter reloads (on top of its SFT adapter) with the scores it was trained to."""

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from conftest import cli
from reasonalign.align.config import AlignConfig
from reasonalign.data.groups import GroupCollator, cap, encode_group, read_groups
from reasonalign.scoring import ordering, score_groups
from reasonalign.cli import main
from reasonalign.loss_table import LOSS_NAMES, LOSS_TABLE
from reasonalign.losses import LOSSES
from reasonalign.scoring import group_scores

GROUPS = str(Path(__file__).parent / "fixtures" / "groups_tiny.jsonl")
FAST = ["--lr", "1e-2", "--lora-r", "8", "--groups-per-step", "2", "--logging-steps", "1"]


def tok(model_dir):
    from reasonalign.models import load_tokenizer

    return load_tokenizer(model_dir)


def encoded(model_dir, feedback="binary"):
    tokenizer = tok(model_dir)
    return [encode_group(tokenizer, g, feedback, 512) for g in read_groups(GROUPS)], tokenizer.pad_token_id


@pytest.fixture(scope="module")
def sft_adapter(tiny_model, tmp_path_factory) -> str:
    """A hand-made "SFT" adapter with non-zero weights, saved like `reasonalign train` saves one."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    out = tmp_path_factory.mktemp("sft")
    torch.manual_seed(1)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model),
                           LoraConfig(r=4, lora_alpha=8, init_lora_weights=False, task_type="CAUSAL_LM"))
    model.save_pretrained(out)
    (out / "train_summary.json").write_text(json.dumps({"method": "l", "template": "dfar-mistral"}))
    return str(out)


@pytest.fixture(scope="module")
def aligned(tiny_model, sft_adapter, tmp_path_factory):
    """(output folder, CompletedProcess) of one `reasonalign align` run on top of the SFT adapter."""
    out = tmp_path_factory.mktemp("align") / "run"
    r = cli("align", "--model", tiny_model, "--adapter", sft_adapter, "--groups", GROUPS, "--output", str(out),
            "--loss", "aft-bc", "--max-steps", "30", "--precision", "fp32", *FAST)  # reloaded in fp32 below
    return out, r


def test_loss_names_are_the_registry():
    """The CLI lists the torch-free table's names; the torch registry is built from the same table."""
    assert LOSS_NAMES == list(LOSSES) == list(LOSS_TABLE)
    assert AlignConfig.__dataclass_fields__["loss"].metadata["choices"] == LOSS_NAMES


def test_align_cli_orders_training_pairs_better(aligned, sft_adapter):
    from safetensors.torch import load_file

    out, r = aligned
    assert r.returncode == 0, r.stderr
    s = json.loads((out / "align_summary.json").read_text())
    assert s["steps"] == 30 and s["loss"] == "aft-bc" and s["base_adapter"] == sft_adapter
    assert s["ordering_after"]["pair_accuracy"] > s["ordering_before"]["pair_accuracy"]
    assert s["ordering_after"]["margin"] > s["ordering_before"]["margin"]
    assert s["final_loss"] < s["first_loss"]
    assert s["groups"] == {"file": GROUPS, "total": 6, "with_pairs": 4, "without_pairs": 2, "used": 5,
                           "responses_used": 14}  # the all-incorrect pair-less group feeds nothing: dropped
    lora_b = [v for k, v in load_file(out / "adapter_model.safetensors").items() if "lora_B" in k]
    assert lora_b and all(v.abs().max() > 0 for v in lora_b)  # B starts at 0: every one moved
    last = r.stdout.strip().splitlines()[-1]  # the Trainer prints its log dicts before it
    assert last.startswith("done: pairs ordered ") and last.endswith(str(out))
    assert "'pair_accuracy'" in r.stdout and "'margin'" in r.stdout  # logged every step
    assert s["config"]["lr"] == 1e-2 and (out / "config.yaml").is_file()


def test_aligned_adapter_reloads_on_its_sft_base(aligned, tiny_model, sft_adapter):
    from reasonalign.eval.config import ScoringInputs
    from reasonalign.models import load_model

    out, r = aligned
    assert r.returncode == 0, r.stderr
    s = json.loads((out / "align_summary.json").read_text())
    groups, pad = encoded(tiny_model)  # no group exceeds --max-responses 8: the run saw them whole
    used = [g for g in groups if len(set(g["rank"])) > 1 or any(g["positive"])]  # the groups it trained on
    ranks = [g["rank"] for g in used]
    after = ordering(score_groups(load_model(tiny_model, adapter=str(out)), used, pad), ranks)
    before = ordering(score_groups(load_model(tiny_model, adapter=sft_adapter), used, pad), ranks)
    for key in ("score_pos", "score_neg", "margin", "pair_accuracy"):
        assert after[key] == pytest.approx(s["ordering_after"][key], abs=1e-5), key
        assert before[key] == pytest.approx(s["ordering_before"][key], abs=1e-5), key  # started from the SFT model
    # eval / generate take the prompt template and method of the SFT run from the aligned folder
    inputs = ScoringInputs(adapter=str(out))
    assert inputs.template_name() == "dfar-mistral" and inputs.method_name(None) == "l"
    assert (out / "base_adapter" / "adapter_config.json").is_file()


def test_scores_are_length_normalised_loglik(tiny_model):
    from reasonalign.models import load_model

    model = load_model(tiny_model).eval()
    groups, pad = encoded(tiny_model)
    g = groups[1]  # 4 responses of different lengths
    batch = GroupCollator(pad)([groups[0], g])
    with torch.no_grad():
        scores, logps, lengths = group_scores(model, batch)
        for k, (ids, labels) in enumerate(zip(g["input_ids"], g["labels"])):
            logits = model(torch.tensor([ids])).logits[0, :-1]
            logp = F.log_softmax(logits.double(), dim=-1)
            answer = [(t, i) for t, i in enumerate(labels[1:]) if i != -100]
            by_hand = sum(logp[t, i].item() for t, i in answer) / len(answer)
            assert scores[1, k].item() == pytest.approx(by_hand, abs=1e-4)
            assert lengths[1, k].item() == len(answer)
    assert scores[0, 3].item() == 0 and not batch["mask"][0, 3]  # group 0 has 3 responses: slot 3 is padding


def _trainer(tmp_path, model, **overrides):
    from transformers import TrainingArguments

    from reasonalign.align.trainer import AlignTrainer

    args = TrainingArguments(output_dir=str(tmp_path / "t"), use_cpu=True, report_to=[])
    return AlignTrainer(model=model, args=args, align=AlignConfig(**overrides))


def _peft(tiny_model, nonzero=True):
    from peft import LoraConfig, get_peft_model

    from reasonalign.models import load_model

    torch.manual_seed(2)
    return get_peft_model(load_model(tiny_model), LoraConfig(r=4, init_lora_weights=not nonzero,
                                                             task_type="CAUSAL_LM", lora_dropout=0.0))


def test_dpo_reference_is_the_adapter_disabled_model(tiny_model, tmp_path):
    from reasonalign.models import load_model

    groups, pad = encoded(tiny_model)
    batch = GroupCollator(pad)(groups[:3])
    model = _peft(tiny_model)  # adapter with non-zero weights: policy != reference
    trainer = _trainer(tmp_path, model, loss="dpo")
    ref = trainer.reference_logps(model, batch)
    with torch.no_grad():
        base = group_scores(load_model(tiny_model), batch)[1]
        policy = group_scores(model, batch)[1]
    assert torch.allclose(ref, base, atol=1e-5)
    assert not torch.allclose(policy, base, atol=1e-3)
    assert ref.grad_fn is None


def test_dpo_run_starts_at_log2(tiny_model, tmp_path):
    from reasonalign.align.trainer import align

    s = align(AlignConfig(model=tiny_model, groups=GROUPS, output=str(tmp_path / "dpo"), loss="dpo",
                          sft_weight=0.0, lr=1e-2, lora_r=8, max_steps=3, groups_per_step=6, logging_steps=1))
    # a fresh LoRA starts as the reference, so every pair's DPO loss is -log σ(0) = log 2
    assert s["first_loss"] == pytest.approx(math.log(2), abs=1e-3)
    assert s["steps"] == 3 and math.isfinite(s["final_loss"]) and s["groups"]["used"] == 4  # no SFT term: pairs only


def test_ragged_and_pairless_groups(tiny_model, tmp_path):
    groups, pad = encoded(tiny_model)
    ragged, pairless = [groups[1], groups[2]], groups[3]  # 4 and 2 responses; 2 correct, no pair
    assert len(set(pairless["rank"])) == 1 and all(pairless["positive"])
    collate = GroupCollator(pad)
    model = _peft(tiny_model, nonzero=False)
    model.eval()
    for name in ("aft-bc", "aft", "rrhf", "pro"):
        trainer = _trainer(tmp_path, model, loss=name, sft_weight=0.0)
        with_it = trainer.compute_loss(model, collate(ragged + [pairless]))
        without = trainer.compute_loss(model, collate(ragged))
        assert with_it.item() == pytest.approx(without.item(), abs=1e-6), name  # alignment losses ignore it
    trainer = _trainer(tmp_path, model, loss="aft-bc", sft_weight=1.0)
    batch = collate([pairless])
    loss = trainer.compute_loss(model, batch)
    scores = group_scores(model, batch)[0]
    assert loss.item() == pytest.approx(-scores[0, :2].mean().item(), abs=1e-6)  # only the SFT term
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters() if p.requires_grad)


def test_rft_is_the_likelihood_of_correct_responses_and_trains_without_pairs(tiny_model, tmp_path):
    from reasonalign.align.trainer import align

    groups, pad = encoded(tiny_model)
    model = _peft(tiny_model, nonzero=False)
    model.eval()
    batch = GroupCollator(pad)(groups[:2])
    loss = _trainer(tmp_path, model, loss="rft", sft_weight=1.0).compute_loss(model, batch)
    scores = group_scores(model, batch)[0]
    positive = batch["positive"] & batch["mask"]
    assert positive.any() and (~positive & batch["mask"]).any()  # both kinds present; only the correct count
    assert loss.item() == pytest.approx(-scores[positive].mean().item(), abs=1e-6)
    # a groups file whose groups are all correct (no pair anywhere) still trains under rft, and the loss falls
    path = _write(tmp_path / "nopair.jsonl", _good(responses=[{"text": " 2", "correct": True, "rank": 0}]) + "\n")
    s = align(AlignConfig(model=tiny_model, groups=path, output=str(tmp_path / "rft"), loss="rft", lr=1e-2, lora_r=8,
                          max_steps=8, groups_per_step=1, logging_steps=1))
    assert s["steps"] == 8 and s["final_loss"] < s["first_loss"]
    assert main(["align", "--model", tiny_model, "--groups", GROUPS, "--output", str(tmp_path / "x"), "--loss", "rft",
                 "--sft-weight", "0"]) == 2


def test_cap_keeps_better_and_worse():
    g = {"id": "x", "responses": [{"text": str(i), "correct": i < 2, "rank": 0 if i < 2 else 1} for i in range(6)]}
    kept = cap(g, 3, "binary", 0)["responses"]
    assert len(kept) == 3 and {r["correct"] for r in kept} == {True, False}
    assert cap(g, 3, "binary", 0) == cap(g, 3, "binary", 0) and cap(g, 0, "binary", 0) is g


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def _good(**changes) -> str:
    g = {"id": "q", "prompt": "Q: 1+1?\nA:", "add_special_tokens": True,
         "responses": [{"text": " 2", "correct": True, "rank": 0}, {"text": " 3", "correct": False, "rank": 1}]}
    g.update(changes)
    return json.dumps(g)


@pytest.fixture
def bad_groups(tmp_path):
    absent = str(tmp_path / "absent.jsonl")
    return {
        "missing file": (absent, f"{absent}: file not found"),
        "malformed JSON": (_write(tmp_path / "bad.jsonl", f"{_good()}\n{_good()}\n{{\"id\": 3,\n"),
                           f"{tmp_path / 'bad.jsonl'}:3: invalid JSON"),
        "no responses": (_write(tmp_path / "empty.jsonl", f"{_good()}\n{_good(responses=[])}\n"),
                         f"{tmp_path / 'empty.jsonl'}:2: the group has no responses"),
        "rank not an int": (_write(tmp_path / "rank.jsonl",
                                   _good(responses=[{"text": " 2", "correct": True, "rank": "0"}]) + "\n"),
                            f"{tmp_path / 'rank.jsonl'}:1: responses[0].rank must be an integer, got '0'"),
    }


@pytest.mark.parametrize("case", ["missing file", "malformed JSON", "no responses", "rank not an int"])
@pytest.mark.parametrize("command", [["align"], ["eval", "--task", "ranking"]])
def test_bad_groups_file_is_one_line_exit_2(tiny_model, tmp_path, capsys, bad_groups, command, case):
    path, problem = bad_groups[case]
    out = tmp_path / "out"
    code = main([*command, "--model", tiny_model, "--groups", path, "--output", str(out)])
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {problem}"), captured.err
    assert captured.out == "" and not out.exists()


def test_no_pair_anywhere_and_bad_options(tiny_model, tmp_path, capsys):
    path = _write(tmp_path / "nopair.jsonl", _good(responses=[{"text": " 2", "correct": True, "rank": 0}]) + "\n")
    out = tmp_path / "out"
    assert main(["align", "--model", tiny_model, "--groups", path, "--output", str(out)]) == 2
    assert "no group has a (better, worse) pair" in capsys.readouterr().err
    assert main(["align", "--model", tiny_model, "--groups", GROUPS, "--output", str(out), "--loss", "aft-bc",
                 "--constraint", "boundary"]) == 2
    assert "already contains the boundary constraint" in capsys.readouterr().err
    assert not out.exists()


def test_never_writes_over_an_adapter(aligned, sft_adapter, tiny_model, capsys):
    out, _ = aligned
    assert main(["align", "--model", tiny_model, "--groups", GROUPS, "--adapter", sft_adapter,
                 "--output", sft_adapter]) == 2
    assert capsys.readouterr().err == f"error: {sft_adapter}: is the SFT adapter (--adapter) itself; choose another --output\n"
    assert main(["align", "--model", tiny_model, "--groups", GROUPS, "--output", str(out)]) == 2
    assert "holds a finished run; pass --overwrite" in capsys.readouterr().err


def test_eval_ranking_of_the_aligned_adapter_matches_its_summary(aligned, tiny_model, tmp_path):
    out, r = aligned
    assert r.returncode == 0, r.stderr
    ev = tmp_path / "ev"
    e = cli("eval", "--task", "ranking", "--model", tiny_model, "--adapter", str(out), "--groups", GROUPS,
            "--output", str(ev))
    assert e.returncode == 0, e.stderr
    m = json.loads((ev / "metrics.json").read_text())
    after = json.loads((out / "align_summary.json").read_text())["ordering_after"]
    # the same pairs (every group with a pair was trained on), the same scoring function
    assert m["n_pairs"] == after["n_pairs"] == 9
    assert m["pair_accuracy"] == pytest.approx(after["pair_accuracy"]) and m["margin"] == pytest.approx(after["margin"], abs=1e-5)
