"""``gemrec analyze`` on real data, checked against counts recomputed in plain Python."""

from __future__ import annotations

import csv
import itertools
import json
import math
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gemrec.analysis import analyze_dataset, describe, gini, prepare_events, user_profiles
from gemrec.analysis.population import weekly_retention
from gemrec.cli import main
from gemrec.errors import ParameterError
from tests.analysis.loaders import build_dataset, read_movielens, read_taobao
from tests.conftest import shared_data

TAOBAO = {"pv": "view", "buy": "purchase", "cart": "cart", "fav": "fav"}


def _reference(
    rows: list[tuple[str, str, str, str, float]], gap_s: float = 1800.0
) -> dict[str, dict]:
    """Plain-Python per-user recount from raw (user, item, category, type, t) rows.

    An item has one category in a dataset: the first one seen in the file (one Taobao item has two).
    """
    item_cat: dict[str, str] = {}
    for r in rows:
        item_cat.setdefault(r[1], r[2])
    rows = [(u, i, item_cat[i], t, ts) for u, i, _, t, ts in rows]
    by_user: dict[str, list] = defaultdict(list)
    for r in rows:
        by_user[r[0]].append(r)
    out = {}
    for user, rs in by_user.items():
        types = Counter(r[3] for r in rs)
        ts = sorted(r[4] for r in rs)
        sessions = 1 + sum(1 for a, b in itertools.pairwise(ts) if b - a > gap_s)
        days = {datetime.fromtimestamp(t, UTC).date() for t in ts}
        cats = Counter(r[2] for r in rs if r[2])
        n = sum(cats.values())
        entropy = -sum(c / n * math.log2(c / n) for c in cats.values()) if n else float("nan")
        top = sorted(cats.items(), key=lambda kv: (-kv[1], kv[0]))
        stage = {s: {r[1] for r in rs if r[3] == s} for s in ("view", "cart", "purchase")}
        bought = Counter(r[1] for r in rs if r[3] == "purchase")
        hours = Counter(datetime.fromtimestamp(t, UTC).hour for t in ts)
        out[user] = {
            "n_events": len(rs),
            "types": types,
            "first": ts[0],
            "last": ts[-1],
            "active_days": len(days),
            "n_sessions": sessions,
            "entropy": entropy,
            "top1": top[0] if top else None,
            "n_categorised": n,
            "n_items": len({r[1] for r in rs}),
            "view_to_cart": len(stage["view"] & stage["cart"]) / len(stage["view"])
            if stage["view"]
            else None,
            "cart_to_purchase": (
                len(stage["cart"] & stage["purchase"]) / len(stage["cart"])
                if stage["cart"]
                else None
            ),
            "repurchase": sum(1 for c in bought.values() if c >= 2) / len(bought)
            if bought
            else None,
            "peak_hour": sorted(hours.items(), key=lambda kv: (-kv[1], kv[0]))[0][0],
        }
    return out


def _check_profiles(profiles: pd.DataFrame, ref: dict[str, dict]) -> None:
    assert len(profiles) == len(ref)
    p = profiles.set_index("user_id")
    for user, r in ref.items():
        row = p.loc[user]
        assert row["n_events"] == r["n_events"], user
        for t, c in r["types"].items():
            assert row[f"n_{t}"] == c, (user, t)
        assert row["n_items"] == r["n_items"]
        assert row["first_timestamp"] == r["first"] and row["last_timestamp"] == r["last"]
        assert row["active_days"] == r["active_days"], user
        assert row["n_sessions"] == r["n_sessions"], user
        assert row["category_entropy"] == pytest.approx(r["entropy"], abs=1e-9)
        if r["top1"] is not None:
            assert row["top_category_1"] == r["top1"][0], user
            assert row["top_category_share_1"] == pytest.approx(r["top1"][1] / r["n_categorised"])
        assert row["peak_hour"] == r["peak_hour"], user
        for col, key in (
            ("view_to_cart", "view_to_cart"),
            ("cart_to_purchase", "cart_to_purchase"),
            ("repurchase_rate", "repurchase"),
        ):
            if r[key] is None:
                assert pd.isna(row[col]), (user, col)
            else:
                assert row[col] == pytest.approx(r[key]), (user, col)


def test_taobao_profiles_and_summary_match_independent_recount(tmp_path: Path) -> None:
    root = shared_data("taobao-userbehavior-sample")
    rows = []
    with (root / "UserBehavior_prefix.csv").open() as fh:
        for u, i, c, b, t in csv.reader(fh):
            rows.append((u, i, c, TAOBAO[b], float(t)))
    ds = build_dataset(read_taobao(root), tmp_path / "taobao")
    summary = analyze_dataset(ds, tmp_path / "report")
    profiles = pd.read_parquet(tmp_path / "report" / "profiles.parquet")
    ref = _reference(rows)
    _check_profiles(profiles, ref)

    # population figures
    assert summary["n_events"] == len(rows) == 84475
    assert summary["event_types"] == dict(Counter(r[3] for r in rows)) | {}
    pairs = {(r[0], r[1]) for r in rows}
    assert summary["n_user_item_pairs"] == len(pairs)
    stage = {s: {(r[0], r[1]) for r in rows if r[3] == s} for s in ("view", "cart", "purchase")}
    f = summary["funnel"]
    assert f["view_pairs"] == len(stage["view"]) and f["purchase_pairs"] == len(stage["purchase"])
    assert f["view_to_cart"] == pytest.approx(
        len(stage["view"] & stage["cart"]) / len(stage["view"])
    )
    assert f["cart_to_purchase"] == pytest.approx(
        len(stage["cart"] & stage["purchase"]) / len(stage["cart"])
    )
    hours = Counter(datetime.fromtimestamp(r[4], UTC).hour for r in rows)
    assert summary["activity_by_hour"] == [hours.get(h, 0) for h in range(24)]
    item_users = Counter(i for _, i in pairs)
    assert summary["popularity"]["gini"] == pytest.approx(gini(np.array(list(item_users.values()))))
    assert summary["sessions"]["n_sessions"] == sum(r["n_sessions"] for r in ref.values())
    # the report is self-contained: plots inline, no external references
    page = (tmp_path / "report" / "index.html").read_text()
    assert page.count("data:image/png;base64,") >= 4
    assert "http://" not in page and "https://" not in page and "<script src" not in page
    assert json.loads((tmp_path / "report" / "summary.json").read_text())["n_events"] == 84475
    text = describe(summary)
    assert text.startswith("84475 events, 815 users")
    view_to_cart = len(stage["view"] & stage["cart"]) / len(stage["view"])
    assert f"view->cart {view_to_cart:.1%}" in text


def test_movielens_profiles_rfm_and_retention(tmp_path: Path) -> None:
    root = shared_data("movielens-100k")
    raw = read_movielens(root)
    rows = [
        (str(u), str(i), c, "rating", float(t))
        for u, i, c, t in zip(
            raw["user_id"], raw["item_id"], raw["category"], raw["timestamp"], strict=True
        )
    ]
    ds = build_dataset(raw, tmp_path / "ml")
    summary = analyze_dataset(ds, tmp_path / "report", session_gap_minutes=30)
    profiles = pd.read_parquet(tmp_path / "report" / "profiles.parquet")
    _check_profiles(profiles, _reference(rows))
    # RFM: no purchases, so every rating is a transaction; monetary = sum of ratings
    ratings = defaultdict(float)
    for u, r in zip(raw["user_id"], raw["value"], strict=True):
        ratings[u] += r
    p = profiles.set_index("user_id")
    for u in ("1", "405", "943"):
        assert p.loc[u, "monetary"] == ratings[u]
        assert p.loc[u, "frequency"] == p.loc[u, "n_events"]
    t_max = raw["timestamp"].max()
    assert p.loc["1", "recency_days"] == pytest.approx(
        (t_max - raw[raw["user_id"] == "1"]["timestamp"].max()) / 86400
    )
    assert set(p["r_score"].dropna().unique()) <= {1, 2, 3, 4, 5}
    # ML-100k spans ~7 months: weekly cohorts exist; week 0 is 1 by construction
    ret = summary["retention"]
    assert ret is not None and ret["cohorts"] >= 20
    first_cohort = next(iter(ret["table"].values()))
    assert first_cohort["week_0"] == 1.0
    assert summary["funnel"]["view_pairs"] == 0  # ratings are not funnel stages
    assert summary["popularity"]["head_share"] > 0.5


def test_weekly_retention_hand_example() -> None:
    day = 86400.0
    ev = pd.DataFrame(
        {
            "user": [0, 0, 1, 1, 2, 3],
            "item": [0] * 6,
            "event_type": "view",
            "timestamp": [0, 8 * day, 1 * day, 2 * day, 9 * day, 15 * day],
            "value": np.nan,
            "category": "",
        }
    )
    ret = weekly_retention(prepare_events(ev))
    # cohort week 0: users 0, 1 (user 0 back in week 1); cohort week 1: user 2; week 2: user 3
    assert ret["size"].tolist() == [2, 1, 1]
    assert ret["week_1"].iloc[0] == 0.5
    assert ret["week_2"].iloc[0] == 0.0
    assert np.isnan(ret["week_2"].iloc[1])  # the log ends before cohort 1 reaches week 2


def test_sessions_respect_configured_gap() -> None:
    ev = pd.DataFrame(
        {
            "user": [0, 0, 0, 1],
            "item": [1, 2, 3, 1],
            "event_type": "view",
            "timestamp": [0.0, 1000.0, 4000.0, 10.0],
            "value": np.nan,
            "category": ["a", "a", "b", ""],
        }
    )
    p30 = user_profiles(prepare_events(ev, session_gap_minutes=30)).set_index("user")
    p60 = user_profiles(prepare_events(ev, session_gap_minutes=60)).set_index("user")
    assert p30.loc[0, "n_sessions"] == 2 and p60.loc[0, "n_sessions"] == 1
    assert p30.loc[0, "category_entropy"] == pytest.approx(
        -(2 / 3) * math.log2(2 / 3) - (1 / 3) * math.log2(1 / 3)
    )
    assert p30.loc[1, "n_categories"] == 0
    with pytest.raises(ParameterError, match="session_gap_minutes"):
        prepare_events(ev, session_gap_minutes=0)


def test_gini_known_values() -> None:
    assert gini(np.array([1, 1, 1, 1])) == 0.0
    assert gini(np.array([0, 0, 0, 4])) == pytest.approx(0.75)
    assert gini(np.array([1, 2, 3])) == pytest.approx((2 * 1 - 4) * 1 / 18 + 0 + (6 - 4) * 3 / 18)


def test_cli_analyze_prints_summary_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = pd.DataFrame(
        {
            "user_id": ["a", "a", "b"],
            "item_id": ["x", "y", "x"],
            "category": ["c1", "c2", "c1"],
            "event_type": ["view", "purchase", "cart"],
            "timestamp": [0.0, 60.0, 5.0],
            "value": np.nan,
        }
    )
    ds = build_dataset(raw, tmp_path / "tiny")
    assert main(["analyze", str(ds), "-o", str(tmp_path / "rep"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "analyzed 3 events of 2 users on 2 items" in out
    assert (tmp_path / "rep" / "index.html").is_file()
    assert main(["analyze", str(tmp_path / "missing"), "-o", str(tmp_path / "rep2")]) == 2


def test_dataset_without_events_or_timestamps_falls_back_to_edges(tmp_path: Path) -> None:
    from gemrec.data.store import write_dataset

    edges = pd.DataFrame(
        {
            "user": np.array([0, 0, 1], np.int32),
            "item": np.array([0, 1, 1], np.int32),
            "weight": np.ones(3, np.float32),
            "split": "train",
            "last_timestamp": np.nan,
        }
    )
    ds = write_dataset(
        tmp_path / "noev",
        users=pd.DataFrame({"user": np.arange(2, dtype=np.int32), "user_id": ["a", "b"]}),
        items=pd.DataFrame({"item": np.arange(2, dtype=np.int32), "item_id": ["x", "y"]}),
        edges=edges,
        manifest={},
    )
    summary = analyze_dataset(ds, tmp_path / "rep")
    assert summary["source"] == "edges" and summary["n_events"] == 3
    assert summary["time_span"] is None and summary["retention"] is None
    assert summary["popularity"]["gini"] == pytest.approx(gini(np.array([1, 2])))
    p = pd.read_parquet(tmp_path / "rep" / "profiles.parquet").set_index("user_id")
    assert p.loc["a", "n_interaction"] == 2 and pd.isna(p.loc["a", "peak_hour"])
    assert (tmp_path / "rep" / "index.html").read_text().count("data:image/png;base64,") >= 3


def test_report_plots_are_files_read_back_in_page_order(tmp_path: Path) -> None:
    """Each plot of index.html is also a PNG file listed in summary.json; :func:`read_report`
    returns them in the page's order, and a second report leaves no plot of the first behind."""
    import base64
    import re

    from gemrec.analysis import read_report
    from gemrec.errors import ConfigError

    raw = pd.DataFrame(
        {
            "user_id": ["a", "a", "b", "b", "c"],
            "item_id": ["x", "y", "x", "y", "x"],
            "category": ["c1", "c2", "c1", "c2", "c1"],
            "event_type": ["view", "cart", "view", "purchase", "view"],
            "timestamp": [0.0, 60.0, 5.0, 86400.0 * 8, 30.0],
            "value": np.nan,
        }
    )
    ds = build_dataset(raw, tmp_path / "tiny")
    out = tmp_path / "rep"
    (out / "plots").mkdir(parents=True)
    (out / "plots" / "99-stale.png").write_bytes(b"old")
    summary = analyze_dataset(ds, out)
    read_summary, plots = read_report(out)
    assert read_summary == json.loads(json.dumps(summary))
    page = (out / "index.html").read_text()
    shown = re.findall(r"<img alt='([^']+)' src='data:image/png;base64,([^']+)'>", page)
    assert [t for t, _ in plots] == [t for t, _ in shown]
    assert "Funnel" in [t for t, _ in plots] and len(plots) >= 4
    for (_, file), (_, b64) in zip(plots, shown, strict=True):
        assert file.parent == out / "plots"
        assert file.read_bytes() == base64.b64decode(b64)
        assert file.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted((out / "plots").iterdir()) == [f for _, f in plots]
    with pytest.raises(ConfigError, match=r"not a behaviour analysis report \(no summary.json\)"):
        read_report(tmp_path / "tiny")
    plots[0][1].unlink()
    with pytest.raises(ConfigError, match=r"lists the plot plots/01-item-popularity.png"):
        read_report(out)
