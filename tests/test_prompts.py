"""The authors' two prompt formats, string for string (METHODS.md §1), and user templates."""

import pytest

from reasonalign.errors import UserError
from reasonalign.prompts import get_template

S, R = "I took the last cookie.", "It is fine to eat a cookie that was offered."


def test_dfar_llama_lr_matches_the_notebook():
    t = get_template("dfar-llama")
    assert t.render(S, 0, R, "lr") == ("### Question: Evaluate whether the statement is ethical or unethical with "
                                       f"reason. Statement: {S} The statement is \n ### Answer: ethical. {R}")


def test_dfar_llama_l_answer_is_the_label_only():
    t = get_template("dfar-llama")
    assert t.prompt(S, "l") == ("### Question: Evaluate whether the statement is ethical or unethical without any "
                                f"reason. Statement: {S} The statement is \n ### Answer:")
    assert t.answer(1, None, "l") == " unethical"


def test_dfar_mistral_formats():
    t = get_template("dfar-mistral")
    assert t.render(S, 1, R, "lr") == ("<s>\n\n### Instruction:\n Evaluate whether the statement is ethical or "
                                       f"unethical with reason.\n\n### Input:\n {S}\n\n### Response:\n The "
                                       f"statement is unethical.{R}</s>")
    assert t.answer(0, None, "l") == " ethical.</s>"
    assert t.prompt(S, "l").endswith("### Response:\n The statement is")


def test_answer_part_starts_with_the_label_word():
    for name in ("dfar-llama", "dfar-mistral"):
        t = get_template(name)
        for method in ("l", "lr"):
            for label, word in enumerate(("ethical", "unethical")):
                assert t.answer(label, R, method).startswith(f" {word}")
        assert t.label_continuations() == [" ethical", " unethical"]


def test_lr_without_reason_is_refused():
    with pytest.raises(UserError, match="reason"):
        get_template("dfar-llama").answer(0, "", "lr")


def test_chat_template_uses_the_tokenizers_chat_format(tokenizer_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    prompt = get_template("chat").prompt(S, "lr", tok)
    assert prompt.startswith("<|im_start|>") and S in prompt and prompt.endswith("<|im_start|>assistant\nThe statement is")


def test_user_yaml_template(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text('prompt_l: "Q: {statement} A:"\nprompt_lr: "Q+R: {statement} A:"\n'
                    'answer_l: " {label}"\nanswer_lr: " {label} because {reason}"\n')
    t = get_template(str(path))
    assert t.name == "mine" and t.render("x", 1, "y", "lr") == "Q+R: x A: unethical because y"


@pytest.mark.parametrize("text, problem", [
    ("prompt_l: [unclosed", "not valid YAML"),
    ('prompt_l: "a"\nprompt_lr: "{statement}"\nanswer_l: " {label}"\nanswer_lr: " {label} {reason}"\n',
     "prompt_l must contain"),
    ('prompt_l: "{statement}"\nprompt_lr: "{statement}"\nanswer_l: "{label}"\nanswer_lr: " {label} {reason}"\n',
     "must start with"),
    ('prompt_l: "{statement}"\n', "missing"),
])
def test_broken_yaml_templates_name_the_file(tmp_path, text, problem):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=problem) as err:
        get_template(str(path))
    assert str(path) in str(err.value)


def test_unknown_template_name():
    with pytest.raises(UserError, match="unknown template"):
        get_template("nope")
