"""Honest offline evaluation: full ranking, standard protocols."""

from gemrec.eval.evaluate import EvaluationResult, evaluate
from gemrec.eval.metrics import METRICS, ranking_metrics

__all__ = ["METRICS", "EvaluationResult", "evaluate", "ranking_metrics"]
