"""The judges a command asked for (`--judge reference,llm,human` and their options), built once for
`eval --task reasons`, `judge` and `annotate stats`; and the options of `reasonalign judge`.

Here, between the task registry and the commands, because building them reads training data through
`tasks` (the reference judge's pool) and may load a model (a local LLM judge); the judges themselves
(`reasonalign.judges`) know neither.
"""

from dataclasses import dataclass
from pathlib import Path

from reasonalign.core.config import option
from reasonalign.core.errors import UserError
from reasonalign.tasks import task_for

JUDGES = ("reference", "llm", "human")


@dataclass
class JudgeOptions:
    """The automatic judges' options: shared by `eval --task reasons` and `annotate stats`."""

    judge: str = option("reference", "reference, llm or human; several comma-separated (e.g. reference,llm) are "
                                     "each reported, with their agreement (kappa)")
    similarity_threshold: float | None = option(None, "reference judge: cosine threshold (default: "
                                                      "ReferenceJudgeConfig's, chosen on the judge-validation set)")
    judge_pool: str = option("dfar:train", "reference judge: training data whose human reasons not_specific and the "
                                           "stance classifier (argues_other_verdict) compare "
                                           "a reason with (other statements, same label); none = off")
    judge_url: str | None = option(None, "llm judge: OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000")
    judge_model: str | None = option(None, "llm judge: model name at --judge-url, or without a URL a local model "
                                           "(short name or folder); comma-separated for several voting LLM judges")
    judge_key_env: str = option("REASONALIGN_JUDGE_API_KEY", "llm judge: environment variable holding the API key")
    judge_concurrency: int = option(4, "llm judge: requests in flight at once")
    judge_timeout: float = option(60.0, "llm judge: seconds per request before a retry")
    judge_retries: int = option(3, "llm judge: retries with exponential backoff on timeouts, 429 and 5xx")
    judge_cache: str | None = option(None, "llm judge: answer cache folder (default: OUTPUT/judge-cache); a rerun "
                                           "resumes from it")


# ---------------------------------------------------------------- the options of `reasonalign judge`

@dataclass
class CalibrateConfig:
    data: str = option("dfar:train", "labelled TRAINING data with human reasons: dfar:train, dfar:train-all, or a "
                                     "CSV/TSV/JSONL path with a reason column (never calibrate on test)")
    columns: str | None = option(None, "column map for your own file, e.g. statement=text,label=y,reason=why")
    label_map: str | None = option(None, "label map for your own file, e.g. 0=ethical,1=unethical")
    max_items: int = option(1000, "gold reasons (of 10+ words) sampled to build the pairs: one positive and one "
                                  "negative pair each, so 4 encodes per item (1000 DFAR rows: about 3 minutes on "
                                  "2 CPU cores)")
    seed: int = option(0, "seed of the item sample and of the negative pairing")
    false_alarm: float | None = option(None, "instead of max balanced accuracy, the threshold that flags at most "
                                             "this share of positive pairs, e.g. 0.05")
    output: str | None = option(None, "also write the calibration record to this JSON file")



JUDGESET = Path(__file__).parent / "judges" / "judgeset" / "v1"  # = judgeset.SHIPPED (judges/ stays unloaded for --help)


@dataclass
class BuildSetConfig:
    """Blind model reasons and constructed hard cases into one shuffled sheet for careful readers (items.jsonl
    keeps the key: each item's source and part); DFAR training/validation rows only, never test."""

    generations: str | None = option(None, "model reasons to rate: NAME=generations.jsonl, comma-separated (from "
                                   "`reasonalign generate` on training/validation rows, never test)")
    data: str = option("dfar:validation", "the rows the constructed items come from (DFAR train/validation only)")
    skip_rows: int = option(60, "constructed items start after this many rows of the --rows order (keep them apart "
                                "from the rows the generations used)")
    constructed_rows: int = option(70, "constructed items (human, flipped, other_statement, loop, truncated, "
                                       "restated, contradiction, in turn)")
    seed: int = option(0, "seed of the row order, the constructions and the blinding shuffle")
    output: str = option("runs/judgeset", "folder for items.jsonl (the key: source and part) and sheet.csv "
                                          "(what readers see)")


@dataclass
class ValidateConfig(JudgeOptions):
    """How far a judge (the reference judge, or an LLM judge: --judge llm --judge-model M [--judge-url U]) agrees
    with the careful readers of a rated judge-validation set: Cohen's kappa, raw agreement, MAR per model and the
    per-criterion confusion."""

    set: str = option(str(JUDGESET), "folder with items.jsonl and the readers' ratings-NAME.csv files")
    part: str = option("held-out", "which items to report on: held-out (never used to choose thresholds), tune, "
                                   "or all", ["held-out", "tune", "all"])
    tune: bool = option(False, "grid-search the reference judge's thresholds on the tune part (kappa with the "
                               "readers' consensus) and report the best setting on --part")
    tune_set: str | None = option(None, "with --tune: tune on every item of these rated sets (comma-separated "
                                        "folders) instead of --set's tune part (then report on --part all of a set "
                                        "no threshold has seen)")
    output: str | None = option(None, "also write the report as JSON here")


# ---------------------------------------------------------------- building the judges

def judge_names(config: JudgeOptions) -> list[str]:
    names = [j.strip() for j in config.judge.split(",") if j.strip()]
    if not names or any(j not in JUDGES for j in names):
        raise UserError(f"--judge {config.judge!r}: choose from {', '.join(JUDGES)} (comma-separated)")
    return names


def build_judges(config: JudgeOptions, out: Path, trust_remote_code: bool = False) -> list:
    """The requested judges other than `human` (human ratings are read, not computed)."""
    # heavy (sentence-transformers, scikit-learn; an LLM judge torch): imported when a judge is built
    from reasonalign.judges import HFBackend, HTTPBackend, LLMJudge, ReferenceJudge, ReferenceJudgeConfig

    judges = []
    for name in judge_names(config):
        if name == "reference":
            ref = ReferenceJudgeConfig()
            if config.similarity_threshold is not None:
                ref = ReferenceJudgeConfig(similarity_threshold=config.similarity_threshold)
            judges.append(ReferenceJudge(ref, pool=judge_pool(config.judge_pool)))
        elif name == "llm":
            if not config.judge_model:
                raise UserError("--judge llm needs --judge-model (a model at --judge-url, or a local model)")
            cache = config.judge_cache or str(out / "judge-cache")
            for model in [m.strip() for m in config.judge_model.split(",") if m.strip()]:
                if config.judge_url:
                    backend = HTTPBackend(config.judge_url, model, api_key_env=config.judge_key_env,
                                          max_workers=config.judge_concurrency, timeout=config.judge_timeout,
                                          retries=config.judge_retries)
                else:
                    from reasonalign.models import load_model, load_tokenizer

                    backend = HFBackend(load_model(model, trust_remote_code=trust_remote_code),
                                        load_tokenizer(model, trust_remote_code))
                judges.append(LLMJudge(backend, cache_dir=cache))
    return judges


def judge_pool(spec: str | None) -> list[tuple[int, str, str]]:
    """(label, statement, human reason) of the training rows the reference judge's not_specific compares with."""
    if not spec or spec.lower() == "none":
        return []
    if "test" in spec:
        raise UserError(f"--judge-pool {spec}: the pool is training data (e.g. dfar:train), never test")
    return [(ex.label, ex.statement, ex.reason) for ex in task_for(spec).load(spec) if getattr(ex, "reason", None)]
