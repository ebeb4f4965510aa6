"""Recommender models behind one interface, and the explicit name -> class table used by the CLI."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from gemrec.errors import ParameterError

if TYPE_CHECKING:
    from gemrec.models.base import Recommender

__all__ = ["MODELS", "get_model_class", "make_model"]

#: The one explicit table of ``--model`` names. Values are "module:Class" so that importing the CLI
#: does not import torch; :func:`get_model_class` resolves them.
MODELS: dict[str, str] = {
    "pop": "gemrec.models.popularity:Popularity",
    "category-pop": "gemrec.models.popularity:CategoryPopularity",
    "similar-users": "gemrec.models.popularity:UserGroupPopularity",
    "itemknn": "gemrec.models.knn:ItemKNN",
    "userknn": "gemrec.models.knn:UserKNN",
    "rp3beta": "gemrec.models.rp3beta:RP3Beta",
    "graphfilter": "gemrec.models.graphfilter:GraphFilter",
    "svd": "gemrec.models.svd:PureSVD",
    "lightgcn": "gemrec.models.lightgcn:LightGCN",
    "mf": "gemrec.models.mf:BPRMF",
    "ncf": "gemrec.models.ncf:NeuMF",
    "item2vec": "gemrec.models.item2vec:Item2Vec",
    "social": "gemrec.models.social:SocialRecommender",
    "content": "gemrec.models.content:ContentModel",
    "fusion": "gemrec.fusion.fusion:Fusion",
}


def get_model_class(name: str) -> type[Recommender]:
    """The class registered under ``name``."""
    try:
        target = MODELS[name]
    except KeyError:
        raise ParameterError(
            f"unknown model '{name}'; expected one of: {', '.join(sorted(MODELS))}"
        ) from None
    module, _, cls = target.partition(":")
    try:
        klass: type[Recommender] = getattr(importlib.import_module(module), cls)
    except (ImportError, AttributeError) as exc:
        raise ParameterError(f"model '{name}' is not available in this build: {exc}") from exc
    return klass


def make_model(name: str, **params: object) -> Recommender:
    """Instantiate model ``name`` with keyword hyperparameters."""
    return get_model_class(name)(**params)
