"""`BaselinesConfig`: every option of `reasonalign baselines`, its default and its help, in one place
(imported to build `--help`: the fitting code and scikit-learn stay out)."""

from dataclasses import dataclass

from reasonalign.baselines import classic, encoder
from reasonalign.core.config import option

MODELS = (*classic.MODELS, "encoder")


@dataclass
class BaselinesConfig:
    data: str = option("dfar", "dfar (fit on dfar:train, score dfar:validation and dfar:test with its clean part), "
                               "ethos:PATH, or a CSV/TSV/JSONL path (one seeded, stratified train/test split)")
    columns: str | None = option(None, "column map for your own file, e.g. statement=text,label=y")
    label_map: str | None = option(None, "label map for your own file, e.g. 0=ethical,1=unethical")
    models: str = option(",".join(MODELS), "comma-separated baselines: svm, rf, gb, logreg (TF-IDF + scikit-learn, "
                                           "tuned by cross-validation) and encoder (fine-tuned --encoder)")
    output: str = option("runs/baselines", "folder: OUTPUT/MODEL/eval/ (+ eval-validation/ for dfar), "
                                           "train_summary.json, and OUTPUT/baselines.json, split.json")
    seed: int = option(0, "seed for the train/test split, the CV folds, every estimator and the encoder")
    train_rows: int | None = option(None, "fit on the first N training rows of the seeded order that keeps the "
                                          "label shares (as --rows in every command); unset = all rows")
    test_share: float = option(0.2, "share of the rows held out for testing (not dfar: it has its own test split)")
    cv_folds: int = option(3, "stratified cross-validation folds on the training rows that pick each "
                              "scikit-learn model's hyper-parameters")
    encoder: str = option(encoder.DEFAULT, "encoder to fine-tune: all-minilm-l6-v2 (bundled, offline), a hub id "
                                           "(e.g. distilbert-base-uncased) or a folder")
    encoder_epochs: int = option(3, "encoder: epochs; the one with the best accuracy on 10 percent held-out "
                                    "training rows is kept")
    encoder_lr: float = option(5e-5, "encoder: learning rate")
    batch_size: int = option(32, "encoder: statements per step")
    max_length: int = option(128, "encoder: tokens per statement (longer ones are cut)")
