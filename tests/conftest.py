"""Shared fixtures: a tiny random-weight Llama with the real SmolLM2 tokenizer, and small data files.

The tokenizer always comes from real files, never from the hub: the converted SmolLM2 folder in
the reasonalign cache if it is there, else the offline model package (converted once, as
`reasonalign.models.resolve` does for users). The model is 2 layers x 32 wide, so a training
step takes milliseconds and every test that needs "a model" can use it via `--model FOLDER`.

`cli(*args)` runs the real `reasonalign` console script (the one installed next to the Python running
the tests) in a subprocess, importing this tree's package; CLI test modules use it via
`from conftest import cli`.
"""

import csv
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

# before anything imports transformers / huggingface_hub: the tests never go online
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SRC = Path(__file__).parents[1] / "src"
# the console script installed next to this Python (PATH may hold another install's); `-m` only without one
_SCRIPT = Path(sys.executable).parent / "reasonalign"
COMMAND = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "reasonalign"]
SMOLLM2 = "smollm2-135m-instruct"
ETHICAL = ["I helped my neighbour carry groceries.", "I returned the lost wallet to its owner.",
           "I thanked the bus driver.", "I shared my lunch with a friend.", "I recycled the bottles.",
           "I held the door for an old man.", "I paid for my coffee.", "I fed the stray cat.",
           "I called my mother on her birthday.", "I planted a tree in the park.",
           "I helped my sister with homework.", "I gave my seat to a pregnant woman."]
UNETHICAL = ["I stole money from the church box.", "I kicked the dog for fun.", "I lied to my boss about being sick.",
             "I cheated on the exam.", "I broke my friend's phone and blamed her.", "I sold fake medicine.",
             "I threw trash in the river.", "I read my sister's diary and mocked her.", "I shoplifted a watch.",
             "I spread a rumour about my coworker.", "I hit a car and drove away.", "I took credit for her work."]


@pytest.fixture(scope="session")
def tokenizer_dir() -> str:
    """A folder holding the real SmolLM2 tokenizer files."""
    from reasonalign.models import cache_dir, resolve

    converted = cache_dir() / "models" / SMOLLM2
    if (converted / "tokenizer.json").is_file():
        return str(converted)
    return resolve(SMOLLM2)  # converts the GGUF from the installed package (once); no network


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, tokenizer_dir) -> str:
    """Folder with a 2-layer random Llama (safetensors) and the real SmolLM2 tokenizer.

    initializer_range 0.2 (not 0.02): with 0.02 the tied output embeddings are so small that no
    hidden state can move a logit by more than ~0.5, and a few LoRA steps cannot visibly learn."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=512,
                         tie_word_embeddings=True, initializer_range=0.2, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    out = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(config).save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    assert (out / "model.safetensors").is_file()
    return str(out)


def cli(*args, timeout=600) -> subprocess.CompletedProcess:
    """Run `reasonalign ARGS...` in a subprocess: this tree's src first on PYTHONPATH, quiet tokenizers,
    output captured as text. The environment is read at call time, so monkeypatched variables reach it."""
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([*COMMAND, *args], capture_output=True, text=True, env=env, timeout=timeout)


CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


def headless_chromium(width: int = 1200, height: int = 1000):
    """Debian's chromium driven by Selenium, with the browser console log kept; skips the test when
    chromium or chromedriver is not installed (`make browser` installs both)."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("chromium/chromedriver not installed: `make browser` installs them (apt)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={width},{height}"):
        options.add_argument(flag)
    options.binary_location = str(CHROMIUM)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))


def write_rows(path: Path, n_per_class: int = 12, seed: int = 0) -> Path:
    """A balanced DFAR-style CSV with reasons (2 * n_per_class rows)."""
    rows = [(s, 0, f"Doing this is kind and harms nobody: {s.lower()}") for s in ETHICAL[:n_per_class]]
    rows += [(s, 1, f"Doing this hurts others and is wrong: {s.lower()}") for s in UNETHICAL[:n_per_class]]
    random.Random(seed).shuffle(rows)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["statement", "label", "reason"])
        writer.writerows(rows)
    return path


@pytest.fixture
def small_csv(tmp_path) -> str:
    """24 balanced rows (12 ethical, 12 unethical) with reasons."""
    return str(write_rows(tmp_path / "small.csv"))


# One thread for every test: tiny models run fastest on one, and on a 2-core machine that is also
# running anything else, two threads spinning on each other make a step 4-10x slower (measured:
# 3 SmolLM2 steps took 125 s on two threads next to a busy process, 31 s on one). Subprocesses
# inherit the variable.
os.environ["OMP_NUM_THREADS"] = "1"
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    monkeypatch.setenv("DISABLE_MLFLOW_INTEGRATION", "TRUE")
