"""The partitioned importer writes the same dataset as the in-process one, file by file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gemrec.cli import main
from gemrec.data import import_parts
from gemrec.data.generate import generate_to_parquet
from gemrec.data.importer import import_dataset
from gemrec.errors import DataError

pytest.importorskip("duckdb")

#: options under which both importers must agree
OPTIONS = {
    "default": {},
    "skip-kcore-temporal-decay": {
        "on_error": "skip",
        "min_user_interactions": 3,
        "min_item_interactions": 2,
        "split": "temporal",
        "half_life_days": 20.0,
    },
    "skip-leave-last-value": {"on_error": "skip", "split": "leave-last", "leave_n": 2},
}


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """A generated shop whose event parts are made dirty: bad rows, duplicates across parts."""
    root = tmp_path_factory.mktemp("parts")
    shop = generate_to_parquet(
        root / "shop", n_users=300, n_items=200, n_events=12_000, n_categories=6,
        part_events=3000, seed=5,
    )  # fmt: skip
    parts = sorted((shop.path / "events").glob("*.parquet"))
    frames = [pd.read_parquet(p).drop(columns="session_id") for p in parts]
    for p in parts:
        p.unlink()
    first, second, third = frames[0], frames[1], frames[2]
    # exact duplicates within and across parts, a reused event id with other content
    second = pd.concat([second, first.iloc[:7], second.iloc[3:5]], ignore_index=True)
    reused = third.iloc[:4].copy()
    reused["event_id"] = first["event_id"].iloc[10:14].to_numpy()
    third = pd.concat([third, reused], ignore_index=True)
    # bad rows: unknown type, empty user, broken timestamp, non-numeric value
    second = second.astype({"timestamp": str, "value": str})
    second.loc[5, "event_type"] = "wishlist"
    second.loc[9, "user_id"] = ""
    second.loc[12, "timestamp"] = "yesterday"
    second.loc[20, "value"] = "cheap"
    frames[1], frames[2] = second, third
    for k, frame in enumerate(frames):
        if k == 1:
            frame.replace({"nan": ""}).to_csv(
                shop.path / "events" / f"part-{k:05d}.csv", index=False
            )
        else:
            frame.to_parquet(shop.path / "events" / f"part-{k:05d}.parquet", index=False)
    return shop.path


def _import(shop, out, engine, **options):
    return import_dataset(
        [shop / "events"],
        out,
        format="events",
        items=shop / "items.parquet",
        users=shop / "users.parquet",
        engine=engine,
        **options,
    )


def assert_same_dataset(a, b):
    """Every file of two dataset directories holds the same content (manifest: but its name)."""
    files = sorted(p.name for p in a.iterdir())
    assert files == sorted(p.name for p in b.iterdir())
    for name in files:
        if name.endswith(".parquet"):
            pd.testing.assert_frame_equal(pd.read_parquet(a / name), pd.read_parquet(b / name))
        elif name == "manifest.json":
            ma, mb = (json.loads((d / name).read_text()) for d in (a, b))
            ma.pop("name"), mb.pop("name")
            assert ma == mb
        else:
            assert (a / name).read_bytes() == (b / name).read_bytes(), name


@pytest.mark.parametrize("options", OPTIONS, ids=list(OPTIONS))
def test_duckdb_engine_writes_the_in_process_dataset(shop, tmp_path, options):
    opts = OPTIONS[options]
    if opts.get("on_error") != "skip":
        opts = {**opts, "on_error": "skip"}
    memory = _import(shop, tmp_path / "memory", "memory", **opts)
    parts = _import(shop, tmp_path / "duckdb", "duckdb", **opts)
    assert parts.report.rejected == memory.report.rejected == 4
    assert parts.report.duplicates_exact == memory.report.duplicates_exact == 9
    assert parts.report.duplicates_event_id == memory.report.duplicates_event_id == 4
    assert_same_dataset(memory.path, parts.path)
    assert not import_parts.work_dir(parts.path).exists()


def test_the_first_bad_row_stops_both_engines_alike(shop, tmp_path):
    messages = []
    for engine in ("memory", "duckdb"):
        with pytest.raises(DataError) as err:
            _import(shop, tmp_path / engine, engine)
        messages.append(str(err.value))
        assert not (tmp_path / engine).exists()
    assert messages[0] == messages[1]
    assert "part-00001.csv" in messages[0] and "line" in messages[0]


def test_an_interrupted_import_resumes_from_its_finished_parts(shop, tmp_path, monkeypatch):
    real_read = import_parts.read_events
    read = []

    def read_or_stop(paths, *args, **kwargs):
        if stop and len(read) == 2:
            raise KeyboardInterrupt
        read.append(Path(paths[0]).name)
        return real_read(paths, *args, **kwargs)

    monkeypatch.setattr(import_parts, "read_events", read_or_stop)
    stop = True
    with pytest.raises(KeyboardInterrupt):
        _import(shop, tmp_path / "ds", "duckdb", on_error="skip")
    assert not (tmp_path / "ds").exists()
    assert read == ["part-00000.parquet", "part-00001.csv"]
    stop, read[:] = False, []
    done = _import(shop, tmp_path / "ds", "duckdb", on_error="skip")
    assert read == ["part-00002.parquet", "part-00003.parquet"]
    assert_same_dataset(done.path, _import(shop, tmp_path / "mem", "memory", on_error="skip").path)


def test_cli_engine_option(shop, tmp_path, capsys):
    argv = [
        "import", str(shop / "events"), "--format", "events", "-o", str(tmp_path / "ds"),
        "--items", str(shop / "items.parquet"), "--on-error", "skip", "--engine", "duckdb",
        "--memory-limit", "1GB", "--quiet",
    ]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "rejected 4" in out and "imported events" in out
    bad = main(["import", str(shop / "events"), "--format", "taobao", "-o", str(tmp_path / "x"),
                "--engine", "duckdb"])  # fmt: skip
    assert bad == 2
    assert "--engine" in capsys.readouterr().err


def test_remap_reorders_ids_when_a_filter_leaves_only_integers():
    codes = np.array([0, 2, 2, 0])
    new, ids, order = import_parts._remap(codes, np.array(["10", "9", "x"]))
    assert order == "lexicographic" and ids.tolist() == ["10", "x"] and new.tolist() == [0, 1, 1, 0]
    new, ids, order = import_parts._remap(np.array([1, 0]), np.array(["10", "9", "x"]))
    assert order == "numeric" and ids.tolist() == ["9", "10"] and new.tolist() == [0, 1]


@pytest.fixture(scope="module")
def dask_cluster():
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


@pytest.mark.parametrize("options", OPTIONS, ids=list(OPTIONS))
def test_dask_engine_writes_the_in_process_dataset(shop, tmp_path, dask_cluster, options):
    opts = {**OPTIONS[options], "on_error": "skip"}
    memory = _import(shop, tmp_path / "memory", "memory", **opts)
    parts = _import(shop, tmp_path / "dask", "dask", scheduler=dask_cluster, **opts)
    assert parts.report.duplicates_exact == memory.report.duplicates_exact == 9
    assert parts.report.duplicates_event_id == memory.report.duplicates_event_id == 4
    assert_same_dataset(memory.path, parts.path)
