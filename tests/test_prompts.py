"""The authors' two prompt formats, string for string (docs/methods.md §1), the chat template, user YAML."""

import pytest

from reasonalign.core.errors import UserError
from reasonalign.data import Example
from reasonalign.prompts import BUILTIN, get_template
from reasonalign.tasks import TASKS

S, R = "I took the last cookie.", "It is fine to eat a cookie that was offered."

# docs/methods.md §1, copied verbatim (the "\n" in the document are newlines in the notebooks' strings).
LLAMA_LR = ("### Question: Evaluate whether the statement is ethical or unethical with reason. "
            "Statement: {statement} The statement is \n ### Answer: {label}. {reason}")
MISTRAL_LR = ("<s>\n\n### Instruction:\n Evaluate whether the statement is ethical or unethical with reason."
              "\n\n### Input:\n {statement}\n\n### Response:\n The statement is {label}.{reason}</s>")
# The L variants: same frame, the instruction asks "without any reason", the answer is the label only
# (Llama: `{label}`; Mistral: `The statement is {label}.`).
LLAMA_L = LLAMA_LR.replace("with reason.", "without any reason.").replace("{label}. {reason}", "{label}")
MISTRAL_L = MISTRAL_LR.replace("with reason.", "without any reason.").replace("{label}.{reason}</s>", "{label}.</s>")



def render(template, statement, label, reason, method, tokenizer=None):
    """One row as training reads it: the task's prompt, then its answer (train/sft.py -> core/batching.encode)."""
    task, example = TASKS["dfar"], Example(statement, label, reason, row=1)
    return task.prompt(example, template, method, tokenizer) + task.answer(example, template, method)


EXPECTED = {("dfar-llama", "lr"): LLAMA_LR, ("dfar-llama", "l"): LLAMA_L,
            ("dfar-mistral", "lr"): MISTRAL_LR, ("dfar-mistral", "l"): MISTRAL_L}


@pytest.mark.parametrize("name, method", sorted(EXPECTED))
@pytest.mark.parametrize("label, word", [(0, "ethical"), (1, "unethical")])
def test_builtin_formats_match_methods_md(name, method, label, word):
    expected = EXPECTED[name, method].format(statement=S, label=word, reason=R)
    assert render(get_template(name), S, label, R, method) == expected


def test_spot_check_the_exact_characters():
    # independent of the helper strings above: the boundaries that are easy to get wrong
    llama = get_template("dfar-llama")
    assert llama.prompt(S, "lr").endswith(f"Statement: {S} The statement is \n ### Answer:")
    assert llama.answer(1, R, "lr") == f" unethical. {R}"
    assert llama.answer(0, R, "l") == " ethical"
    mistral = get_template("dfar-mistral")
    assert mistral.prompt(S, "l").startswith("<s>\n\n### Instruction:\n Evaluate whether the statement is ethical "
                                             "or unethical without any reason.\n\n### Input:\n ")
    assert mistral.answer(0, R, "lr") == f" ethical.{R}</s>"  # no space after "ethical." (notebook)
    assert mistral.answer(1, None, "l") == " unethical.</s>"


@pytest.mark.parametrize("name", ["dfar-llama", "dfar-mistral"])
@pytest.mark.parametrize("method", ["l", "lr"])
def test_the_answer_is_exactly_what_follows_the_prompt(name, method):
    t = get_template(name)
    for label, word in enumerate(("ethical", "unethical")):
        full, prompt, answer = render(t, S, label, R, method), t.prompt(S, method), t.answer(label, R, method)
        assert full == prompt + answer
        assert answer.startswith(f" {word}")  # the label word comes first in the answer part...
        assert full[len(prompt):].split(".")[0].strip() == word  # ...right after the prompt
        assert word in t.label_continuations()[label]
    assert (R in t.answer(0, R, method)) == (method == "lr")


def test_reason_is_stripped_and_required_for_lr():
    t = get_template("dfar-llama")
    assert t.answer(0, f"  {R}\n", "lr") == f" ethical. {R}"
    with pytest.raises(UserError, match="reason"):
        t.answer(0, "", "lr")
    with pytest.raises(UserError, match="unknown method"):
        t.prompt(S, "x")


def test_chat_template_uses_the_tokenizers_chat_format(tokenizer_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    t = get_template("chat")
    for method, instruction in (("lr", "with reason."), ("l", "without any reason.")):
        user = f"Evaluate whether the statement is ethical or unethical {instruction}\nStatement: {S}"
        head = tok.apply_chat_template([{"role": "user", "content": user}], tokenize=False, add_generation_prompt=True)
        assert t.prompt(S, method, tok) == head + "The statement is"
    assert head.startswith("<|im_start|>") and head.endswith("<|im_start|>assistant\n")  # SmolLM2's own format
    assert render(t, S, 1, R, "lr", tok) == head.replace("without any reason.", "with reason.") + \
        f"The statement is unethical. {R}"


def test_chat_template_needs_a_tokenizer_with_one():
    with pytest.raises(UserError, match="chat template"):
        get_template("chat").prompt(S, "l")

    class Plain:
        chat_template = None

    with pytest.raises(UserError, match="chat template"):
        get_template("chat").prompt(S, "l", Plain())


def test_user_yaml_template(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text('prompt_l: "Q: {statement} A:"\nprompt_lr: "Q+R: {statement} A:"\n'
                    'answer_l: " {label}"\nanswer_lr: " {label} because {reason}"\n')
    t = get_template(str(path))
    assert t.name == "mine" and not t.chat
    assert render(t, "x", 1, "y", "lr") == "Q+R: x A: unethical because y"
    assert render(t, "x", 0, None, "l") == "Q: x A: ethical"


def test_user_yaml_template_name_and_chat_flag(tmp_path, tokenizer_dir):
    from transformers import AutoTokenizer

    path = tmp_path / "t.yml"
    path.write_text('name: judge\nchat: true\nprompt_l: "{statement}?"\nprompt_lr: "{statement}? Why?"\n'
                    'answer_l: " {label}"\nanswer_lr: " {label}: {reason}"\n')
    t = get_template(str(path))
    assert t.name == "judge" and t.chat
    assert "<|im_start|>user\nx?<|im_end|>" in t.prompt("x", "l", AutoTokenizer.from_pretrained(tokenizer_dir))


@pytest.mark.parametrize("text, problem", [
    ("prompt_l: [unclosed", "invalid YAML"),
    ("- just\n- a list\n", "expected a mapping"),
    ('prompt_l: "{statement}"\n', "missing or non-text field.*prompt_lr"),
    ('prompt_l: "a"\nprompt_lr: "{statement}"\nanswer_l: " {label}"\nanswer_lr: " {label} {reason}"\n',
     "prompt_l must contain"),
    ('prompt_l: "{statement}"\nprompt_lr: "{statement}"\nanswer_l: "{label}"\nanswer_lr: " {label} {reason}"\n',
     "answer_l must start with"),
    ('prompt_l: "{statement}"\nprompt_lr: "{statement}"\nanswer_l: " {label}"\nanswer_lr: " {label}"\n',
     "answer_lr must contain"),
])
def test_broken_yaml_templates_name_the_file(tmp_path, text, problem):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=problem) as err:
        get_template(str(path))
    assert str(err.value).startswith(f"{path}:")  # the file (and for a YAML error its line) first
    assert "\n" not in str(err.value)  # one line on the command line


def test_missing_template_file_and_unknown_name(tmp_path):
    with pytest.raises(UserError, match="template file not found") as err:
        get_template(str(tmp_path / "absent.yaml"))
    assert str(tmp_path / "absent.yaml") in str(err.value)
    with pytest.raises(UserError, match="unknown template 'nope'.*" + ", ".join(BUILTIN)):
        get_template("nope")
