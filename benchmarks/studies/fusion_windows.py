"""MovieLens-100k, temporal: can anything add to trending popularity? Rolling windows, no test data.

The fusion target on ML-100k's temporal split is measured against pop-trending (popularity with a
7-day half-life), which the default fusion does not beat by the target's margin
(docs/benchmarks/fusion.md). This script asks
whether *any* channel adds to it, on rolling time windows of train + valid (the test split is never
read). For each window (the interactions between two quantiles of time) every model is fit on what
came before it and scored on the window's users:

* warm users (with earlier interactions): trending + w x channel, both min-max normalised per user,
  for the CF channels (rp3beta, itemknn, userknn, graphfilter) and for an item-item cosine computed
  on the last ``--recent`` days only (what people rate *now*);
* cold users (no earlier interaction): global trending mixed with all-time popularity or with
  trending of another half-life (3, 14, 30 days), ``(1 - lam) p_7d + lam p_other``, and with
  trending inside the user's demographic group (``u.user``: gender, age band, or both),
  ``(1 - lam) p_global + lam p_group``.

Each row prints Recall@20 / NDCG@20 relative to trending alone, per window, then the mean and the
worst window.

    PYTHONPATH=src python benchmarks/studies/fusion_windows.py [--recent 30 60 120]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


from gemrec.data.holdout import edge_timestamps, split_by_mask, union  # noqa: E402
from gemrec.data.interactions import Interactions  # noqa: E402
from gemrec.data.store import Dataset  # noqa: E402
from gemrec.eval.metrics import mean_metrics  # noqa: E402
from gemrec.models import make_model  # noqa: E402

WINDOWS = ((0.5, 0.6), (0.6, 0.7), (0.7, 0.8), (0.8, 0.9), (0.9, 1.0))
CF = ("rp3beta", "itemknn", "userknn", "graphfilter")
HALF_LIFE = 7.0


def _mean_metrics(ids: np.ndarray, truth: sp.csr_matrix) -> tuple[float, float]:
    m = mean_metrics(ids, truth, 20)
    return m["recall"], m["ndcg"]


def _minmax(s: np.ndarray) -> np.ndarray:
    fin = np.isfinite(s)
    lo = np.where(fin, s, np.inf).min(1, keepdims=True)
    hi = np.where(fin, s, -np.inf).max(1, keepdims=True)
    out = (s - lo) / np.maximum(hi - lo, 1e-12)
    out[~fin] = -np.inf
    return out


def _top(s: np.ndarray) -> np.ndarray:
    return np.argsort(-s, axis=1, kind="stable")[:, :20]


def _groups(ds: Dataset) -> dict[str, np.ndarray]:
    attrs = ds.users.sort_values("user")  # age and gender from u.user, imported
    gender = pd.factorize(attrs["gender"])[0]
    band = np.digitize(attrs["age"].to_numpy(), [18, 25, 35, 45, 55])
    return {"gender": gender, "age": band, "gender+age": gender * 10 + band}


def _trend_matrix(fit: Interactions, half_life: float | None = HALF_LIFE) -> sp.csr_matrix:
    """Interactions weighted ``2 ** (-age / half_life)`` (None: 1, all-time popularity)."""
    t = edge_timestamps(fit.matrix, fit.timestamps)  # type: ignore[arg-type]
    m = fit.matrix.tocsr().astype(np.float64)
    m.data = (
        np.ones_like(t) if half_life is None else np.exp2(-(np.nanmax(t) - t) / 86400 / half_life)
    )
    return m


def _share(m: sp.csr_matrix) -> np.ndarray:
    v = np.asarray(m.sum(0)).ravel()
    out: np.ndarray = v / v.sum()
    return out


def window(
    full: Interactions, t: np.ndarray, q0: float, q1: float, groups: dict, recent: list[int]
) -> dict[tuple, tuple[float, float]]:
    c0, c1 = np.quantile(t, q0), np.quantile(t, q1)
    fit, _ = split_by_mask(full, t > c0)
    truth_all, _ = split_by_mask(full, ~((t > c0) & (t <= c1)))
    has = np.diff(fit.matrix.tocsr().indptr) > 0
    in_win = np.diff(truth_all.matrix.tocsr().indptr) > 0
    out: dict[tuple, tuple[float, float]] = {}

    # warm users
    warm = np.flatnonzero(in_win & has)
    truth, seen = truth_all.matrix.tocsr()[warm], fit.matrix.tocsr()[warm]
    trend = np.asarray(make_model("pop", half_life_days=HALF_LIFE).fit(fit).score(warm), float)
    trend[seen.nonzero()] = -np.inf
    base = _mean_metrics(_top(trend), truth)
    print(f"window {q0}-{q1}: {len(warm)} warm users, trending {base[0]:.4f} / {base[1]:.4f}")
    chans = {c: np.asarray(make_model(c).fit(fit).score(warm), float) for c in CF}
    coo = full.matrix.tocoo()
    for days in recent:
        sel = (t <= c0) & (t > c0 - days * 86400.0)
        r = sp.csr_matrix(
            (np.ones(int(sel.sum())), (coo.row[sel], coo.col[sel])), shape=full.matrix.shape
        )
        rn = r @ sp.diags(1.0 / (np.sqrt(np.asarray(r.sum(0)).ravel()) + 1e-9))
        sim = (rn.T @ rn).tocsr()
        sim.setdiag(0)
        chans[f"recent-{days}d cosine"] = np.asarray((seen.astype(float) @ sim).todense())
    for name, s in chans.items():
        s[seen.nonzero()] = -np.inf
        for w in (0.1, 0.25, 0.5, 1.0):
            r_, n_ = _mean_metrics(_top(_minmax(trend) + w * _minmax(s)), truth)
            out[("warm", name, w)] = (r_ / base[0], n_ / base[1])

    # cold users
    cold = np.flatnonzero(in_win & ~has)
    truth = truth_all.matrix.tocsr()[cold]
    m = _trend_matrix(fit)
    glob = _share(m)
    base = _mean_metrics(_top(np.broadcast_to(glob, (len(cold), len(glob)))), truth)
    print(f"  {len(cold)} cold users, trending {base[0]:.4f} / {base[1]:.4f}")
    for hl in (None, 3.0, 14.0, 30.0):
        other = _share(_trend_matrix(fit, hl))
        for lam in (0.1, 0.25, 0.5):
            mix = (1 - lam) * glob + lam * other
            r_, n_ = _mean_metrics(_top(np.broadcast_to(mix, (len(cold), len(mix)))), truth)
            label = "all-time pop" if hl is None else f"trending {hl:g}d"
            out[("cold", label, lam)] = (r_ / base[0], n_ / base[1])
    for key, g in groups.items():
        onehot = sp.csr_matrix((np.ones(len(g)), (g, np.arange(len(g)))))
        per = np.asarray((onehot @ m).todense())
        per /= np.maximum(per.sum(1, keepdims=True), 1e-12)
        for lam in (0.25, 0.5, 0.75):
            r_, n_ = _mean_metrics(_top((1 - lam) * glob + lam * per[g[cold]]), truth)
            out[("cold", key, lam)] = (r_ / base[0], n_ / base[1])
    return out


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--recent", type=int, nargs="+", default=[30, 60, 120])
    a = p.parse_args()
    from _data import load

    ds = load("movielens-100k-temporal")
    full = union(ds.interactions("train"), ds.interactions("valid"))
    groups = _groups(ds)
    t = edge_timestamps(full.matrix, full.timestamps)  # type: ignore[arg-type]
    rows: dict[tuple, list[tuple[float, float]]] = {}
    for q0, q1 in WINDOWS:
        for k, v in window(full, t, q0, q1, groups, a.recent).items():
            rows.setdefault(k, []).append(v)
    print("\nRecall@20 / NDCG@20 relative to trending, per window; mean; worst recall")
    for (kind, name, w), v in rows.items():
        arr = np.array(v)
        print(
            f"{kind:4s} {name:22s} {w:<5} "
            + " ".join(f"{x:.3f}/{y:.3f}" for x, y in arr)
            + f"  mean {arr[:, 0].mean():.3f}/{arr[:, 1].mean():.3f}  worst {arr[:, 0].min():.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
