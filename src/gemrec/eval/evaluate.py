"""Full-ranking evaluation of any recommender.

Evaluation needs a model's ranking interface only (:class:`Ranker`), so this module never imports
:mod:`gemrec.models`: models import :func:`validation` for early stopping, not the other way round.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp

from gemrec.data.interactions import Interactions
from gemrec.errors import ParameterError
from gemrec.eval.metrics import METRICS, hits, ranking_metrics

__all__ = [
    "EvaluationResult",
    "Ranker",
    "evaluate",
    "paired_difference",
    "validation",
    "validation_users",
]


class Ranker(Protocol):
    """What evaluation needs of a model (every :class:`~gemrec.models.base.Recommender` is one)."""

    interactions_: sp.csr_matrix

    @property
    def n_users(self) -> int: ...

    @property
    def n_items(self) -> int: ...

    def recommend(
        self,
        users: Any,
        k: int = 10,
        *,
        exclude_seen: bool = True,
        exclude: sp.csr_matrix | None = None,
        candidates: Any = None,
    ) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass
class EvaluationResult:
    """Mean metrics per cut-off plus catalogue-level measures.

    ``metrics[k][name]`` is the mean over evaluated users; ``beyond[k]`` holds coverage, novelty and
    (when item categories are given) category diversity. ``n_candidates`` is the size of the
    candidate set when the ranking was restricted to one (None: every item). With
    ``evaluate(..., per_user=True)``, ``users`` are the evaluated users and
    ``per_user[k][name]`` each one's value, in that order (for paired comparisons:
    :func:`paired_difference`).
    """

    ks: list[int]
    n_users: int
    metrics: dict[int, dict[str, float]] = field(default_factory=dict)
    beyond: dict[int, dict[str, float]] = field(default_factory=dict)
    n_candidates: int | None = None
    users: np.ndarray | None = None
    per_user: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"n_users": self.n_users}
        if self.n_candidates is not None:
            out["n_candidates"] = self.n_candidates
        for k in self.ks:
            for name, v in self.metrics[k].items():
                out[f"{name}@{k}"] = v
            for name, v in self.beyond[k].items():
                out[f"{name}@{k}"] = v
        return out

    def __getitem__(self, key: str) -> float:
        value: float = self.as_dict()[key]
        return value


def evaluate(
    model: Ranker,
    test: Interactions | sp.csr_matrix,
    *,
    ks: Sequence[int] = (20,),
    exclude: Interactions | sp.csr_matrix | None = None,
    item_categories: np.ndarray | None = None,
    users: np.ndarray | None = None,
    candidates: np.ndarray | None = None,
    batch_size: int = 4096,
    progress: bool = False,
    per_user: bool = False,
) -> EvaluationResult:
    """Full ranking over all items (or over ``candidates``); each user's training items excluded.

    Parameters
    ----------
    model : Ranker
        A fitted model; its own fit interactions are always excluded.
    test : Interactions or csr_matrix, shape (n_users, n_items)
        Held-out items; users with none are skipped.
    ks : sequence of int
        Cut-offs.
    exclude : Interactions or csr_matrix, optional
        More items to exclude (e.g. the validation split when the model was fit without it).
    item_categories : ndarray of int, shape (n_items,), optional
        Category code per item (-1 unknown) for the intra-list category diversity.
    users : ndarray of int, optional
        Evaluate only these users (default: all with test items).
    candidates : ndarray of int, optional
        Rank only these items (e.g. the cold items of a cold-start split); the others neither
        count as hits nor take list positions, and coverage is the share of the candidates
        recommended. Test items outside the candidates still count in |T|.
    batch_size : int
        Users scored at once; memory is about ``batch_size * n_items * 4`` bytes.
    progress : bool
        A progress bar over the user blocks.
    per_user : bool
        Also keep each user's metric values (``result.users``, ``result.per_user``).

    Returns
    -------
    EvaluationResult
    """
    test_m = test.matrix if isinstance(test, Interactions) else sp.csr_matrix(test)
    excl_m = None
    if exclude is not None:
        excl_m = exclude.matrix if isinstance(exclude, Interactions) else sp.csr_matrix(exclude)
    ks = sorted({int(k) for k in ks})
    if not ks or ks[0] < 1:
        raise ParameterError.invalid("ks", "positive integers", ks)
    if test_m.shape != (model.n_users, model.n_items):
        raise ParameterError(
            f"test matrix shape {test_m.shape} does not match the model's "
            f"({model.n_users}, {model.n_items}); "
            "evaluate with the dataset the model was trained on"
        )
    n_rel_all = np.diff(test_m.indptr)
    if users is None:
        users = np.flatnonzero(n_rel_all > 0)
    users = np.asarray(users, dtype=np.int64)
    users = users[n_rel_all[users] > 0]
    if candidates is not None:
        candidates = np.unique(np.asarray(candidates, dtype=np.int64))
    kmax = ks[-1]
    sums = {k: dict.fromkeys(METRICS, 0.0) for k in ks}
    rec_counts = {k: np.zeros(model.n_items, np.int64) for k in ks}
    ild_sum = dict.fromkeys(ks, 0.0)
    parts: dict[int, dict[str, list[np.ndarray]]] = {k: {n: [] for n in METRICS} for k in ks}
    iterator: Any = range(0, len(users), batch_size)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc="evaluate", unit="block", leave=False)
    for start in iterator:
        block = users[start : start + batch_size]
        excl = excl_m[block] if excl_m is not None else None
        ids, _ = model.recommend(
            block, kmax, exclude_seen=True, exclude=excl, candidates=candidates
        )
        found = hits(test_m[block], ids)
        for k in ks:
            vals = ranking_metrics(found, n_rel_all[block], k)
            for name in METRICS:
                sums[k][name] += float(vals[name].sum())
                if per_user:
                    parts[k][name].append(np.asarray(vals[name], dtype=np.float64))
            valid = ids[:, :k][ids[:, :k] >= 0]
            rec_counts[k] += np.bincount(valid, minlength=model.n_items)
            if item_categories is not None:
                ild_sum[k] += float(_intra_list_diversity(ids[:, :k], item_categories).sum())
    n = max(len(users), 1)
    result = EvaluationResult(
        ks=ks, n_users=len(users), n_candidates=None if candidates is None else len(candidates)
    )
    if per_user:
        result.users = users
        result.per_user = {
            k: {
                name: np.concatenate(chunks) if chunks else np.zeros(0)
                for name, chunks in parts[k].items()
            }
            for k in ks
        }
    catalogue = np.ones(model.n_items, dtype=bool)  # the items a list may hold
    if candidates is not None:
        catalogue = np.isin(np.arange(model.n_items), candidates)
    item_pop = np.asarray(model.interactions_.astype(bool).sum(axis=0)).ravel().astype(np.float64)
    self_info = -np.log2((item_pop + 1.0) / (model.n_users + 1.0))
    for k in ks:
        result.metrics[k] = {name: sums[k][name] / n for name in METRICS}
        total = rec_counts[k].sum()
        beyond = {
            "coverage": float((rec_counts[k][catalogue] > 0).mean()) if catalogue.any() else 0.0,
            "novelty": float((rec_counts[k] * self_info).sum() / total) if total else 0.0,
        }
        if item_categories is not None:
            beyond["diversity"] = ild_sum[k] / n
        result.beyond[k] = beyond
    return result


def paired_difference(
    a: EvaluationResult, b: EvaluationResult, metric: str = "recall", k: int = 20
) -> tuple[float, float, int]:
    """``(mean, standard_error, n_users)`` of ``a``'s per-user ``metric@k`` minus ``b``'s.

    Both results come from :func:`evaluate` with ``per_user=True`` on the same test users (two
    models of one dataset). The standard error of the mean paired difference is far smaller
    than either model's own when the models agree on most users, so it says whether a gap
    between two close models is more than the luck of the test split.
    """
    for name, result in (("a", a), ("b", b)):
        if result.users is None or k not in result.per_user:
            raise ParameterError.invalid(
                name, f"an evaluation with per_user=True and k={k}", "none kept"
            )
    assert a.users is not None and b.users is not None
    if not np.array_equal(a.users, b.users):
        raise ParameterError(
            f"the two evaluations scored different users ({len(a.users)} and {len(b.users)}): "
            "evaluate both models on the same test split"
        )
    diff = a.per_user[k][metric] - b.per_user[k][metric]
    n = len(diff)
    if n < 2:
        return float(diff.mean()) if n else 0.0, float("nan"), n
    return float(diff.mean()), float(diff.std(ddof=1) / np.sqrt(n)), n


#: early stopping scores at most about this many (user, item) pairs per validation: every
#: validation user while ``users x items`` stays below it (all the bundled datasets), else a fixed
#: seeded sample of them, so that validating a 100M-event shop costs seconds, not hours
VALIDATION_PAIRS: int = 20_000_000_000
#: a sampled validation keeps at least this many users
VALIDATION_MIN_USERS: int = 2_000


def validation_users(
    valid: Interactions,
    *,
    max_pairs: int = VALIDATION_PAIRS,
    min_users: int = VALIDATION_MIN_USERS,
    seed: int = 0,
) -> np.ndarray | None:
    """The users an early-stopping validation scores: None for all of them, else a sorted sample.

    Every user with validation items while their number times ``n_items`` is at most
    ``max_pairs``; above, a uniform sample (seeded, the same at every validation) of
    ``max(min_users, max_pairs // n_items)`` of them.
    """
    held = np.flatnonzero(np.diff(valid.matrix.indptr) > 0)
    cap = max(int(min_users), int(max_pairs) // max(valid.n_items, 1))
    if len(held) <= cap:
        return None
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(held, size=cap, replace=False))


def validation(
    valid: Interactions | None, k: int = 20, *, max_pairs: int = VALIDATION_PAIRS
) -> Callable[[Ranker], dict[str, float]] | None:
    """The early-stopping callback of a training loop: Recall@k and NDCG@k on ``valid``.

    Parameters
    ----------
    valid : Interactions or None
        The validation split (same shape as the training interactions).
    k : int
        Cut-off; the callback returns ``{"recall@k": ..., "ndcg@k": ...}``.
    max_pairs : int
        Work bound of one validation (see :func:`validation_users`).

    Returns
    -------
    callable or None
        ``validate(model) -> metrics``, evaluating the model's current state (the training loop
        refreshes its learned arrays first) on :func:`validation_users`; None when ``valid`` is
        None or empty, i.e. when there is nothing to stop on.
    """
    if valid is None or valid.nnz == 0:
        return None
    held = valid
    users = validation_users(valid, max_pairs=max_pairs)

    def validate(model: Ranker) -> dict[str, float]:
        res = evaluate(model, held, ks=[k], users=users)
        return {f"recall@{k}": res[f"recall@{k}"], f"ndcg@{k}": res[f"ndcg@{k}"]}

    return validate


def _intra_list_diversity(ids: np.ndarray, categories: np.ndarray) -> np.ndarray:
    """Share of item pairs in each list whose categories differ (unknown ones count as distinct)."""
    cats = np.where(ids >= 0, categories[np.maximum(ids, 0)], -2)
    valid = ids >= 0
    n_valid = valid.sum(axis=1)
    same = np.zeros(len(ids))
    for j in range(ids.shape[1]):
        eq = (cats[:, j : j + 1] == cats[:, j + 1 :]) & valid[:, j : j + 1] & valid[:, j + 1 :]
        eq &= cats[:, j : j + 1] >= 0
        same += eq.sum(axis=1)
    pairs = n_valid * (n_valid - 1) / 2
    out: np.ndarray = np.divide(pairs - same, pairs, out=np.zeros(len(ids)), where=pairs > 0)
    return out
