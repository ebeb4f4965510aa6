"""Behaviour analysis: user profiles, population statistics, the HTML report, interest vectors."""

from gemrec.analysis.events import load_events, prepare_events
from gemrec.analysis.interests import (
    InterestModel,
    InterestState,
    blend_interest,
    category_affinities,
    interest_vectors,
)
from gemrec.analysis.population import PopulationStats, gini, population_stats
from gemrec.analysis.profiles import pair_stages, user_profiles
from gemrec.analysis.report import analyze_dataset, analyze_events, describe, read_report

__all__ = [
    "InterestModel",
    "InterestState",
    "PopulationStats",
    "analyze_dataset",
    "analyze_events",
    "blend_interest",
    "category_affinities",
    "describe",
    "gini",
    "interest_vectors",
    "load_events",
    "pair_stages",
    "population_stats",
    "prepare_events",
    "read_report",
    "user_profiles",
]
