"""What the console's pages show, computed from the loaded service (no HTTP, no templates)."""

from __future__ import annotations

import functools
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gemrec.analysis.report import data_uri, describe, read_report
from gemrec.errors import GemrecError
from gemrec.serve._engine import Engine
from gemrec.serve._metrics import Metrics
from gemrec.serve.ui._plots import bar_chart

__all__ = [
    "ReportView",
    "dataset_plots",
    "interest_profile",
    "item_users",
    "model_record",
    "report_view",
    "service_figures",
]


@dataclass(frozen=True)
class ReportView:
    """The behaviour report as the Overview shows it.

    ``plots`` are (title, PNG ``data:`` URI) pairs: embedded, so a service with protected reads
    needs no open route for them; ``lines`` are :func:`gemrec.analysis.describe`'s; ``problem``
    says why the report could not be read (removed or rewritten since the service started).
    """

    path: str
    dataset: str
    lines: list[str]
    plots: list[tuple[str, str]]
    other_dataset: bool
    problem: str | None = None


def report_view(report_dir: Path, engine: Engine) -> ReportView:
    """The report at ``report_dir`` (written by ``gemrec analyze``) beside the served dataset.

    ``other_dataset`` says the report is of another dataset: the fingerprints differ where both
    have one, else the resolved paths do.
    """
    summary_file = report_dir / "summary.json"
    try:
        return _read_report_view(
            str(report_dir.resolve()),
            summary_file.stat().st_mtime_ns if summary_file.is_file() else 0,
            str(Path(engine.dataset.path).resolve()),
            engine.dataset.manifest.get("fingerprint"),
        )
    except GemrecError as exc:
        return ReportView(str(report_dir), "", [], [], other_dataset=False, problem=str(exc))


@functools.lru_cache(maxsize=4)
def _read_report_view(
    report_dir: str, mtime_ns: int, dataset: str, fingerprint: str | None
) -> ReportView:
    # read once per version of the report (``mtime_ns`` changes when it is written again)
    summary, plots = read_report(report_dir)
    theirs = summary.get("dataset_fingerprint")
    same = theirs == fingerprint if theirs and fingerprint else summary["dataset"] == dataset
    return ReportView(
        path=report_dir,
        dataset=str(summary["dataset"]),
        lines=describe(summary).splitlines(),
        plots=[(title, data_uri(file.read_bytes())) for title, file in plots],
        other_dataset=not same,
    )


def dataset_plots(engine: Engine) -> list[str]:
    """SVG charts of the served dataset: item popularity, user activity and event types."""
    edges = engine.dataset.edges
    plots = []
    per_item = np.bincount(edges["item"].to_numpy(np.int64), minlength=engine.dataset.n_items)
    top = np.argsort(-per_item, kind="stable")[:20]
    ids = engine.dataset.item_ids
    plots.append(
        bar_chart("Most popular items (users)", [str(ids[i]) for i in top], per_item[top].tolist())
    )
    per_user = np.bincount(edges["user"].to_numpy(np.int64), minlength=engine.dataset.n_users)
    bounds = [1, 2, 3, 5, 9, 17, 33, 65, 129]
    labels, counts = [], []
    for lo, hi in zip(bounds, [*bounds[1:], math.inf], strict=True):
        labels.append(f"{lo}" if hi == lo + 1 else f"{lo}+" if hi == math.inf else f"{lo}-{hi - 1}")
        counts.append(float(((per_user >= lo) & (per_user < hi)).sum()))
    plots.append(bar_chart("Users by number of items", labels, counts))
    types = [c for c in edges.columns if c.startswith("n_") and c != "n_events"]
    if types:
        plots.append(
            bar_chart(
                "Events by type",
                [c[2:] for c in types],
                [float(edges[c].sum()) for c in types],
            )
        )
    elif "category" in engine.dataset.items:
        cats = engine.dataset.items["category"].astype(str).to_numpy()[edges["item"].to_numpy()]
        names, n = np.unique(cats, return_counts=True)
        order = np.argsort(-n, kind="stable")[:20]
        plots.append(
            bar_chart("Interactions by category", names[order].tolist(), n[order].tolist())
        )
    return plots


def model_record(engine: Engine) -> dict[str, Any]:
    """The model's ``training.json`` flattened to ``a.b`` keys of scalars (empty without one)."""
    path = engine.model_dir / "training.json"
    if not path.is_file():
        return {}
    out: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(value, (str, int, float, bool)) or value is None:
            out[prefix] = value

    walk("", json.loads(path.read_text()))
    return out


def service_figures(metrics: Metrics, started: float) -> dict[str, Any]:
    """Request count and rate, latency mean and quantiles, events ingested, from ``metrics``.

    Requests of the console itself (``/ui`` routes) are left out. Quantiles are read from the
    histogram buckets (the upper bound of the bucket holding the quantile).
    """
    buckets: dict[float, float] = {}
    count = total = 0.0
    for family in metrics.latency.collect():
        for s in family.samples:
            if str(s.labels.get("route", "")).startswith("/ui"):
                continue
            if s.name.endswith("_bucket"):
                le = float(s.labels["le"])
                buckets[le] = buckets.get(le, 0.0) + s.value
            elif s.name.endswith("_count"):
                count += s.value
            elif s.name.endswith("_sum"):
                total += s.value

    def quantile(q: float) -> float | None:
        for le in sorted(buckets):
            if count and buckets[le] >= q * count:
                return le
        return None

    events = duplicates = 0.0
    for family in metrics.events.collect():
        events += sum(s.value for s in family.samples if s.name.endswith("_total"))
    for family in metrics.duplicates.collect():
        duplicates += sum(s.value for s in family.samples if s.name.endswith("_total"))
    uptime = max(time.time() - started, 1e-9)
    return {
        "requests": int(count),
        "rate_per_s": count / uptime,
        "uptime_s": uptime,
        "mean_ms": 1e3 * total / count if count else None,
        "p50_ms": None if (p := quantile(0.5)) is None else 1e3 * p,
        "p95_ms": None if (p := quantile(0.95)) is None else 1e3 * p,
        "events": int(events),
        "duplicates": int(duplicates),
    }


def interest_profile(engine: Engine, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A user's categories: share of their event weight, events and last time, largest first.

    ``events``: the user's history records (``GET /v1/users/{id}/history``), oldest first. The
    weights are the service's own (:meth:`InterestModel.weights`: the event-type table with its
    decay by position, so recent events count more).
    """
    cat = engine.catalogue
    rows = [e for e in events if e["item_id"] in cat.index]
    if not rows:
        return []
    w = engine.interests.weights([str(e["event_type"]) for e in rows])
    codes = [int(cat.category[cat.index[e["item_id"]]]) for e in rows]
    profile: dict[str, dict[str, Any]] = {}
    for e, code, weight in zip(rows, codes, w.tolist(), strict=True):
        name = cat.category_names[code] if code >= 0 else "(no category)"
        p = profile.setdefault(name, {"category": name, "weight": 0.0, "events": 0, "last": None})
        p["weight"] += weight
        p["events"] += 1
        ts = e.get("timestamp")
        if ts is not None and (p["last"] is None or ts > p["last"]):
            p["last"] = ts
    total = sum(p["weight"] for p in profile.values()) or 1.0
    for p in profile.values():
        p["share"] = p["weight"] / total
    return sorted(profile.values(), key=lambda p: -p["share"])


def item_users(engine: Engine, item_id: str, limit: int = 20) -> list[tuple[str, float]]:
    """Users with ``item_id`` in their offline history and their weight of it, heaviest first."""
    i = engine.catalogue.item(item_id)
    history = engine.history
    if i >= history.item_users.shape[0]:
        return []
    users = history.item_users[i].indices
    weights = np.asarray(history.seen[users, i].todense()).ravel()
    order = np.lexsort((users, -weights))[:limit]
    return [(engine.user_ids[int(users[j])], float(weights[j])) for j in order]
