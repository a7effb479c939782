"""DFAR as an lm-evaluation-harness task, shipped with the package (needs `pip install lm_eval`, extra `lm-eval`).

    lm_eval --model hf --model_args pretrained=BASE,peft=ADAPTER --tasks dfar \\
        --include_path "$(python -c 'import reasonalign.lm_eval_tasks as t; print(t.path())')"

`dfar` = DFAR test in full (`dfar_full`, 500 rows) and its clean part (`dfar_clean`, the 311 rows not repeated
from train), as log-likelihood multiple choice: our `dfar-llama` L+R prompt, choices " ethical" / " unethical"
(`dfar_l`: the L prompt, for adapters trained with --method l). The harness's `acc` is the argmax, i.e.
`reasonalign eval --calibration none` (accuracy_threshold_0), item by item (tests/test_lm_eval_task.py).
"""

from pathlib import Path


def path() -> str:
    """The folder to pass to lm_eval's --include_path."""
    return str(Path(__file__).parent)
