"""Honest offline evaluation: full ranking, standard protocols."""

from gemrec.eval.evaluate import (
    EvaluationResult,
    Ranker,
    evaluate,
    paired_difference,
    validation,
)
from gemrec.eval.metrics import METRICS, hits, mean_metrics, ranking_metrics

__all__ = [
    "METRICS",
    "EvaluationResult",
    "Ranker",
    "evaluate",
    "hits",
    "mean_metrics",
    "paired_difference",
    "ranking_metrics",
    "validation",
]
