"""Judges of reason alignment (MAR): reference-based (default, offline), LLM, human raters.

Heavy pieces (sentence-transformers, transformers) load only when a judge first needs them.
"""

from reasonalign.judges.agreement import agreement, cohen_kappa, fleiss_kappa, raw_agreement
from reasonalign.judges.base import JUDGE_ERROR, Judge, Judgement, JudgeItem, misalignment_rate
from reasonalign.judges.human import export_for_raters, human_mar, import_ratings, ratings_by_rater
from reasonalign.judges.llm import HFBackend, HTTPBackend, LLMJudge, VotingJudge, parse_judge_output
from reasonalign.judges.reference import ReferenceJudge, ReferenceJudgeConfig, calibrate_threshold

__all__ = [
    "JUDGE_ERROR", "Judge", "Judgement", "JudgeItem", "misalignment_rate",
    "ReferenceJudge", "ReferenceJudgeConfig", "calibrate_threshold",
    "LLMJudge", "HTTPBackend", "HFBackend", "VotingJudge", "parse_judge_output",
    "export_for_raters", "import_ratings", "ratings_by_rater", "human_mar",
    "agreement", "cohen_kappa", "fleiss_kappa", "raw_agreement",
]
