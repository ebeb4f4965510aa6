"""``analyze_dataset``: profiles + population statistics -> Parquet, JSON, self-contained HTML."""

from __future__ import annotations

import base64
import html
import io
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gemrec.analysis.events import load_events, prepare_events
from gemrec.analysis.population import PopulationStats, population_stats
from gemrec.analysis.profiles import pair_stages, user_profiles
from gemrec.data.store import Dataset
from gemrec.errors import ConfigError

__all__ = [
    "analyze_dataset",
    "analyze_events",
    "data_uri",
    "describe",
    "read_report",
    "render_html",
]

#: the report's plot files, under the report directory
PLOTS_DIR = "plots"


def analyze_events(
    events: pd.DataFrame,
    *,
    n_users: int,
    n_items: int,
    user_ids: np.ndarray | None = None,
    session_gap_minutes: float = 30.0,
    utc_offset_hours: float = 0.0,
    n_top_categories: int = 3,
    progress: bool = False,
) -> tuple[pd.DataFrame, PopulationStats]:
    """Profiles and population statistics of an event table (columns: see :func:`load_events`)."""
    steps: list[tuple[str, Callable[[], None]]] = []
    state: dict[str, Any] = {}

    def _prep() -> None:
        state["ev"] = prepare_events(
            events, session_gap_minutes=session_gap_minutes, utc_offset_hours=utc_offset_hours
        )

    def _pairs() -> None:
        state["pairs"] = pair_stages(state["ev"])

    def _profiles() -> None:
        state["profiles"] = user_profiles(
            state["ev"], user_ids=user_ids, n_top_categories=n_top_categories
        )

    def _population() -> None:
        state["pop"] = population_stats(
            state["ev"], state["pairs"], n_users=n_users, n_items=n_items
        )

    steps = [
        ("sessions", _prep),
        ("funnel", _pairs),
        ("profiles", _profiles),
        ("population", _population),
    ]
    bar: Any = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(steps), desc="analyze", unit="step", leave=False)
    for label, fn in steps:
        if bar is not None:
            bar.set_postfix_str(label)
        fn()
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return state["profiles"], state["pop"]


def analyze_dataset(
    dataset: Dataset | str | Path,
    output: str | Path,
    *,
    session_gap_minutes: float = 30.0,
    utc_offset_hours: float = 0.0,
    n_top_categories: int = 3,
    progress: bool = False,
) -> dict[str, Any]:
    """Analyse a dataset directory and write the report.

    Writes ``OUTPUT/profiles.parquet`` (one row per user, see :func:`user_profiles`),
    ``OUTPUT/summary.json``, ``OUTPUT/index.html`` (plots embedded; opens without a server) and
    the plots as PNG files ``OUTPUT/plots/NN-title.png``, listed in order with their titles under
    the summary's ``plots`` (read back by :func:`read_report`).

    Returns
    -------
    dict
        The JSON summary.
    """
    ds = dataset if isinstance(dataset, Dataset) else Dataset.open(dataset)
    start = time.perf_counter()
    events = load_events(ds)
    profiles, pop = analyze_events(
        events,
        n_users=ds.n_users,
        n_items=ds.n_items,
        user_ids=ds.user_ids,
        session_gap_minutes=session_gap_minutes,
        utc_offset_hours=utc_offset_hours,
        n_top_categories=n_top_categories,
        progress=progress,
    )
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    profiles.to_parquet(out / "profiles.parquet", index=False)
    plots = _plots(profiles, pop)
    (out / PLOTS_DIR).mkdir(exist_ok=True)
    for old in (out / PLOTS_DIR).glob("*.png"):  # a plot an earlier report had and this one lacks
        old.unlink()
    files = []
    for n, (title, png) in enumerate(plots, start=1):
        name = f"{PLOTS_DIR}/{n:02d}-{re.sub(r'[^a-z0-9]+', '-', title.lower()).strip('-')}.png"
        (out / name).write_bytes(png)
        files.append({"title": title, "file": name})
    summary = {
        "dataset": str(Path(ds.path).resolve()),
        "dataset_fingerprint": ds.manifest.get("fingerprint"),
        "source": "events" if ds.has_events else "edges",
        "session_gap_minutes": session_gap_minutes,
        "utc_offset_hours": utc_offset_hours,
        **pop.summary,
        "profiles": _profile_summary(profiles),
        "plots": files,
        "seconds": round(time.perf_counter() - start, 3),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=_json_default))
    page = render_html(summary, profiles, pop, plots=plots)
    (out / "index.html").write_text(page, encoding="utf-8")
    return summary


def read_report(report_dir: str | Path) -> tuple[dict[str, Any], list[tuple[str, Path]]]:
    """The summary and the plot files of a report written by :func:`analyze_dataset`.

    Parameters
    ----------
    report_dir : str or Path
        The ``OUTPUT`` directory of ``gemrec analyze DATASET_DIR -o OUTPUT``.

    Returns
    -------
    summary : dict
        ``summary.json`` (its ``dataset`` is the analysed dataset's resolved path).
    plots : list of (str, Path)
        Each plot's title and PNG file, in the report's order (empty for a report written
        before plots were saved as files).

    Raises
    ------
    ConfigError
        When ``report_dir`` holds no ``summary.json``, or a listed plot file is missing.
    """
    root = Path(report_dir)
    path = root / "summary.json"
    if not path.is_file():
        raise ConfigError(
            f"{root}: not a behaviour analysis report (no summary.json); write one with "
            f"`gemrec analyze DATASET_DIR -o {root}`"
        )
    summary: dict[str, Any] = json.loads(path.read_text())
    plots = [(str(p["title"]), root / str(p["file"])) for p in summary.get("plots", [])]
    for _, file in plots:
        if not file.is_file():
            raise ConfigError(
                f"{root}: summary.json lists the plot {file.relative_to(root)}, which is missing; "
                f"write the report again with `gemrec analyze DATASET_DIR -o {root}`"
            )
    return summary, plots


def describe(summary: dict[str, Any]) -> str:
    """A few human-readable lines from a summary (for the CLI and ``gemrec demo``)."""
    pop = summary["popularity"]
    lines = [
        f"{summary['n_events']} events, {summary['n_active_users']} users, "
        f"{summary['n_active_items']} items (density {summary['density']:.2g})",
        f"popularity: Gini {pop['gini']:.3f}, top {pop['head_fraction']:.0%} of items hold "
        f"{pop['head_share']:.1%} of interactions",
        f"sessions: {summary['sessions']['n_sessions']} "
        f"({summary['sessions']['mean_events']:.1f} events on average)",
    ]
    f = summary["funnel"]
    if f.get("view_pairs"):
        conv = [
            f"{k.replace('_to_', '->')} {v:.1%}"
            for k, v in f.items()
            if "_to_" in k and v is not None
        ]
        lines.append("funnel: " + ", ".join(conv))
    ret = summary.get("retention")
    if ret and ret.get("mean_week_1") is not None:
        lines.append(f"retention: {ret['mean_week_1']:.1%} of a weekly cohort return the next week")
    if summary.get("peak_hour") is not None:
        lines.append(f"peak hour: {summary['peak_hour']}:00")
    return "\n".join(lines)


def _profile_summary(p: pd.DataFrame) -> dict[str, Any]:
    out: dict[str, Any] = {"n_users": len(p)}
    for col in (
        "active_days",
        "n_sessions",
        "category_entropy",
        "n_categories",
        "repurchase_rate",
        "view_to_cart",
        "cart_to_purchase",
        "recency_days",
    ):
        if col in p:
            v = pd.to_numeric(p[col], errors="coerce").to_numpy(dtype=np.float64)
            v = v[np.isfinite(v)]
            out[f"median_{col}"] = float(np.median(v)) if len(v) else None
    if "daypart" in p:
        out["daypart_shares"] = {
            str(k): float(v) for k, v in p["daypart"].value_counts(normalize=True).items()
        }
    return out


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


# ----------------------------------------------------------------------------- HTML


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return buf.getvalue()


def data_uri(png: bytes) -> str:
    """A PNG as a ``data:`` URI, for a page that embeds its images."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _plots(profiles: pd.DataFrame, pop: PopulationStats) -> list[tuple[str, bytes]]:
    """The report's figures: (title, PNG bytes) in page order."""
    # Figures without pyplot: no backend is chosen or changed, so a notebook's inline plots and
    # a user's own backend stay as they are, and nothing needs closing
    from matplotlib.figure import Figure

    def subplots(*grid: int, figsize: tuple[float, float]) -> tuple[Any, Any]:
        fig = Figure(figsize=figsize)
        return fig, fig.subplots(*grid)

    out: list[tuple[str, bytes]] = []
    counts = np.sort(pop.item_counts)[::-1]
    fig, (a1, a2) = subplots(1, 2, figsize=(10, 3.5))
    nz = counts[counts > 0]
    if len(nz):
        a1.loglog(np.arange(1, len(nz) + 1), nz, lw=1.5)
    a1.set_xlabel("item rank")
    a1.set_ylabel("users per item")
    a1.set_title("Popularity long tail")
    if counts.sum() > 0:
        lor = np.concatenate([[0], np.cumsum(np.sort(pop.item_counts)) / counts.sum()])
        a2.plot(np.linspace(0, 1, len(lor)), lor, label="items")
    a2.plot([0, 1], [0, 1], "k--", lw=0.8, label="equality")
    a2.set_xlabel("share of items (least popular first)")
    a2.set_ylabel("share of interactions")
    a2.set_title(f"Lorenz curve (Gini {pop.summary['popularity']['gini']:.3f})")
    a2.legend()
    out.append(("Item popularity", _png(fig)))

    fig, ax = subplots(figsize=(6, 3.5))
    uc = pop.user_counts
    if len(uc):
        bins = np.unique(np.logspace(0, np.log10(max(uc.max(), 2)), 30).astype(int)).tolist()
        ax.hist(uc, bins=bins)
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_xlabel("events per user")
    ax.set_ylabel("users")
    ax.set_title("User activity")
    out.append(("User activity distribution", _png(fig)))

    fig, (a1, a2) = subplots(1, 2, figsize=(10, 3.2))
    a1.bar(pop.by_hour.index, pop.by_hour.to_numpy())
    a1.set_xlabel("hour of day")
    a1.set_title("Events by hour")
    a2.bar(list(pop.by_weekday.index), pop.by_weekday.to_numpy())
    a2.set_title("Events by weekday")
    out.append(("Activity by time", _png(fig)))

    f = pop.funnel.iloc[0]
    if f["view_pairs"] or f["cart_pairs"] or f["purchase_pairs"]:
        fig, ax = subplots(figsize=(5, 3))
        ax.bar(
            ["view", "cart", "purchase"], [f["view_pairs"], f["cart_pairs"], f["purchase_pairs"]]
        )
        ax.set_ylabel("user-item pairs")
        ax.set_title("Behaviour funnel")
        out.append(("Funnel", _png(fig)))

    fig, (a1, a2) = subplots(1, 2, figsize=(10, 3.2))
    se = pop.session_events
    if len(se):
        a1.hist(se, bins=np.unique(np.logspace(0, np.log10(max(se.max(), 2)), 30).astype(int)))
        a1.set_xscale("log")
        a1.set_yscale("log")
    a1.set_xlabel("events per session")
    a1.set_title("Session length")
    ce = pd.to_numeric(profiles.get("category_entropy"), errors="coerce")
    if ce is not None and ce.notna().any():
        a2.hist(ce.dropna().to_numpy(), bins=30)
    a2.set_xlabel("category entropy (bits)")
    a2.set_title("Breadth of interest")
    out.append(("Sessions and interest breadth", _png(fig)))

    if pop.retention is not None:
        r = pop.retention.drop(columns="size")
        fig, ax = subplots(figsize=(8, 0.35 * len(r) + 1.5))
        im = ax.imshow(r.to_numpy(dtype=np.float64), aspect="auto", cmap="viridis", vmin=0, vmax=1)
        ax.set_yticks(range(len(r)), list(r.index))
        ax.set_xticks(range(r.shape[1]), [c.replace("week_", "") for c in r.columns])
        ax.set_xlabel("weeks since first activity")
        ax.set_title("Weekly cohort retention")
        fig.colorbar(im, ax=ax)
        out.append(("Retention", _png(fig)))
    return out


def _table(df: pd.DataFrame, index: bool = True) -> str:
    return str(
        df.to_html(
            index=index, float_format=lambda x: f"{x:.4g}", na_rep="–", border=0, classes="t"
        )
    )


def render_html(
    summary: dict[str, Any],
    profiles: pd.DataFrame,
    pop: PopulationStats,
    *,
    plots: list[tuple[str, bytes]] | None = None,
) -> str:
    """The self-contained report page (plots as base64 PNG ``data:`` URIs, no external assets).

    ``plots``: the figures already drawn (title, PNG bytes); None draws them.
    """
    esc = html.escape
    key = [
        ("events", summary["n_events"]),
        ("active users", summary["n_active_users"]),
        ("active items", summary["n_active_items"]),
        ("user-item pairs", summary["n_user_item_pairs"]),
        ("density", f"{summary['density']:.3g}"),
        ("popularity Gini", f"{summary['popularity']['gini']:.3f}"),
        (
            f"head share (top {summary['popularity']['head_fraction']:.0%} items)",
            f"{summary['popularity']['head_share']:.1%}",
        ),
        ("sessions", summary["sessions"]["n_sessions"]),
        ("median events / user", summary["user_activity"]["p50_events"]),
    ]
    if summary.get("time_span"):
        key.append(
            ("time span", f"{summary['time_span']['first']} – {summary['time_span']['last']}")
        )
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>gemrec behaviour analysis</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:1100px}"
        "table.t{border-collapse:collapse;margin:.5em 0 1.5em}"
        "table.t td,table.t th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}"
        "img{max-width:100%}h2{margin-top:1.5em}</style></head><body>",
        "<h1>Behaviour analysis</h1>",
        f"<p>Dataset: <code>{esc(str(summary['dataset']))}</code> (from {esc(summary['source'])}); "
        f"sessions split at {summary['session_gap_minutes']} min gaps.</p>",
        "<table class='t'>"
        + "".join(f"<tr><th>{esc(str(k))}</th><td>{esc(str(v))}</td></tr>" for k, v in key)
        + "</table>",
        "<h2>Event types</h2>",
        _table(pop.type_counts.rename("events").to_frame()),
    ]
    for title, png in _plots(profiles, pop) if plots is None else plots:
        parts.append(f"<h2>{esc(title)}</h2><img alt='{esc(title)}' src='{data_uri(png)}'>")
    parts.append("<h2>Funnel (distinct user-item pairs)</h2>")
    parts.append(_table(pop.funnel, index=False))
    if len(pop.funnel_by_category):
        parts.append("<h2>Funnel by category (largest categories)</h2>")
        parts.append(_table(pop.funnel_by_category))
    if pop.retention is not None:
        parts.append("<h2>Weekly cohort retention</h2>")
        parts.append(_table(pop.retention))
    parts.append("<h2>User profiles (most active users)</h2>")
    parts.append(_table(profiles.sort_values("n_events", ascending=False).head(20), index=False))
    parts.append(
        "<p>The full per-user table is in <code>profiles.parquet</code>; "
        "machine-readable figures in "
        "<code>summary.json</code>.</p></body></html>"
    )
    return "\n".join(parts)
