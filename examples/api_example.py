"""The Python API end to end: train an L+R adapter, evaluate it, classify your own statements with
reasons, export a standalone model and classify again from it (same verdicts).

    python examples/api_example.py                     # SmolLM2 on 2 CPU cores: ~3 min
    python examples/api_example.py --model FOLDER --data my.csv --max-steps 2 --eval-rows 24 --output /tmp/x

Every config field is the command's `--flag` (`reasonalign train --help` documents TrainConfig, ...).
tests/test_api.py runs this file on a tiny model.
"""

import argparse
from pathlib import Path

from reasonalign.api import Classifier, EvalConfig, ExportConfig, TrainConfig, evaluate, export, train

STATEMENTS = ["I returned the lost wallet to its owner.", "I kept the change the cashier gave me by mistake.",
              "I lied to my friend so she would not worry."]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--data", default="dfar:train")
    parser.add_argument("--eval-data", default="dfar:test")
    parser.add_argument("--max-steps", type=int, default=20)
    parser.add_argument("--eval-rows", type=int, default=64)
    parser.add_argument("--output", default="runs/api-example")
    args = parser.parse_args()
    out = Path(args.output)

    # 1. train: the same TrainConfig `reasonalign train` is built from
    summary = train(TrainConfig(model=args.model, method="lr", data=args.data, train_rows=64, calibration_rows=16,
                                max_steps=args.max_steps, batch_size=4, lora_r=8, save_steps=0, label_weight=0.75,
                                output=str(out / "lr"), overwrite=True))
    print(f"trained {summary['steps']} steps, final loss {summary['final_loss']:.3f}")

    # 2. evaluate: metrics.json's content, with n and the bootstrap CI
    m = evaluate(EvalConfig(model=args.model, adapter=str(out / "lr"), data=args.eval_data, rows=args.eval_rows,
                            output=str(out / "lr" / "eval")))
    print(f"accuracy {m['accuracy']:.1%} (95% CI {m['ci95'][0]:.1%}-{m['ci95'][1]:.1%}, n={m['n']}), "
          f"threshold {m['threshold']:.3f}")

    # 3. classify your own statements: verdict, p(unethical), reason
    clf = Classifier.from_pretrained(str(out / "lr"), precision="fp32")  # base model, prompt, threshold: run.json
    for statement, p in zip(STATEMENTS, clf.predict(STATEMENTS, reasons=True, max_new_tokens=32)):
        print(f"{p.verdict:>9}  p_unethical={p.p_unethical:.2f}  {statement}  -- {p.reason}")

    # 4. export a standalone model (model card included) and classify from it: the same verdicts
    info = export(ExportConfig(adapter=str(out / "lr"), output=str(out / "export"), overwrite=True))
    again = Classifier.from_pretrained(info["output"], precision="fp32").predict(STATEMENTS)
    assert [p.verdict for p in again] == [p.verdict for p in clf.predict(STATEMENTS)]
    print(f"exported -> {info['output']} (README.md is its model card); same verdicts from the export")


if __name__ == "__main__":
    main()
