"""Every train/tune/evaluate records an MLflow run; curves are logged per epoch; a bad store only
warns. One SQLite store serves the whole module (creating an MLflow store takes seconds)."""

import contextlib
import io
import json
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mlflow", reason="experiment tracking needs the 'track' extra (mlflow)")
pytest.importorskip("torch", reason="the iterative model (mf) needs the 'torch' extra")

from gemrec.cli import main
from gemrec.data.store import Dataset
from gemrec.errors import GemrecError
from gemrec.tracking import (
    TrackingWarning,
    list_runs,
    metric_key,
    record_run,
    run_curves,
    tracking_uri,
)
from gemrec.tracking._record import Run

MF = ["--model", "mf", "--set", "epochs=4", "--set", "embedding_dim=8", "--set", "seed=1"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A small events dataset (train, valid and test splits) through the real importer."""
    root = tmp_path_factory.mktemp("tracking")
    rng = np.random.default_rng(5)
    rows = [
        f"u{u},i{i},view,{1000 + 10 * u + t}"
        for u in range(40)
        for t, i in enumerate(rng.choice(30, size=10, replace=False))
    ]
    src = root / "events.csv"
    src.write_text("user_id,item_id,event_type,timestamp\n" + "\n".join(rows) + "\n")
    out = root / "ds"
    assert main(["import", str(src), "--format", "events", "-o", str(out), "--quiet"]) == 0
    return out


@pytest.fixture(scope="module")
def recorded(dataset, tmp_path_factory):
    """One store; ``gemrec train`` (mf, 4 epochs) then ``gemrec evaluate -k 10 20 --json``."""
    root = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    model_dir = root / "mf"
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("GEMREC_NO_TRACK", raising=False)
        mp.chdir(root)
        assert main(["train", str(dataset), *MF, "-o", str(model_dir), "--tracking-uri", uri]) == 0
        evaluate = ["evaluate", str(model_dir), "--dataset", str(dataset), "-k", "10", "20"]
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            assert main([*evaluate, "--json", "--tracking-uri", uri]) == 0
    runs = {r["command"]: r for r in list_runs(uri)}
    return {
        "uri": uri,
        "root": root,
        "model_dir": model_dir,
        "runs": runs,
        "evaluated": json.loads(printed.getvalue()),
    }


def test_train_records_params_dataset_revision_and_model_dir(recorded, dataset):
    run = recorded["runs"]["train"]
    assert run["name"] == "train mf" and run["model"] == "mf" and run["status"] == "FINISHED"
    assert run["params"]["epochs"] == "4" and run["params"]["embedding_dim"] == "8"
    assert run["params"]["seed"] == "1" and run["params"]["refit"] == "True"
    fingerprint = Dataset.open(dataset).manifest["fingerprint"]
    assert fingerprint and run["dataset_fingerprint"] == fingerprint
    assert run["dataset"] == str(Path(dataset).resolve())
    assert run["model_dir"] == str(recorded["model_dir"].resolve())
    head = subprocess.run(
        ["git", "-C", str(Path(__file__).parent), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    if head:  # a git checkout (an installed wheel records no revision)
        assert run["git_revision"].removesuffix("+dirty") == head
    training = json.loads((recorded["model_dir"] / "training.json").read_text())
    assert run["metrics"]["fit_seconds"] == pytest.approx(training["fit_seconds"])
    assert run["metrics"]["best_epoch"] == training["early_stopping"]["best_epoch"]
    assert run["metrics"]["peak_rss_mb"] > 10
    assert run["metrics"]["wall_seconds"] >= training["fit_seconds"]
    assert run["start_time"] <= run["end_time"]


def test_train_curves_are_the_epochs_of_the_fit(recorded):
    """The loss curve is the loop's history, one point per epoch; the refit has its own."""
    run = recorded["runs"]["train"]
    curves = run_curves(recorded["uri"], run["run_id"])
    history = json.loads((recorded["model_dir"] / "training.json").read_text())["early_stopping"][
        "history"
    ]
    assert len(history) == 4
    assert [s for s, _ in curves["loss"]] == [1, 2, 3, 4]
    assert [v for _, v in curves["loss"]] == pytest.approx([h["loss"] for h in history])
    assert [v for _, v in curves["valid_recall_at_20"]] == pytest.approx(
        [h["valid_recall@20"] for h in history]
    )
    assert len(curves["epoch_seconds"]) == 4
    best = int(run["metrics"]["best_epoch"])
    assert [s for s, _ in curves["refit/loss"]] == list(range(1, best + 1))
    # final figures (step 0 only) are not curves
    assert "fit_seconds" not in curves and "peak_rss_mb" not in curves


def test_evaluate_records_the_metrics_at_each_k(recorded):
    run = recorded["runs"]["evaluate"]
    printed = recorded["evaluated"]
    assert run["model"] == "mf" and run["params"] == {"k": "10 20", "split": "test"}
    assert run["model_dir"] == str(recorded["model_dir"].resolve())
    for k in (10, 20):
        for name in ("recall", "ndcg", "precision", "hitrate"):
            key = f"test/{name}_at_{k}"
            assert run["metrics"][key] == pytest.approx(printed[f"{name}@{k}"]), key
    assert run["metrics"]["test/recall_at_20"] > 0


def test_list_runs_of_one_model_directory(recorded, monkeypatch):
    """The train and evaluate of a directory, newest first, matched as a resolved path; a
    directory whose name holds quote characters is matched too."""
    monkeypatch.delenv("GEMREC_NO_TRACK")
    uri, model_dir = recorded["uri"], recorded["model_dir"]
    odd = [model_dir.parent / "it's", model_dir.parent / 'say "hi"', model_dir.parent / "'\""]
    for path in odd:
        with record_run("train", uri=uri, name=path.name, tags={"gemrec.model_dir": path}):
            pass
    monkeypatch.chdir(model_dir.parent)
    runs = list_runs(uri, model_dir=model_dir.name)  # relative to the working directory
    assert [r["command"] for r in runs] == ["evaluate", "train"]
    assert [r["run_id"] for r in runs] == [
        recorded["runs"]["evaluate"]["run_id"],
        recorded["runs"]["train"]["run_id"],
    ]
    for path in odd:
        assert [r["name"] for r in list_runs(uri, model_dir=path)] == [path.name]
    assert list_runs(uri, model_dir=model_dir.parent / "never-trained") == []


def test_no_track_records_nothing(recorded, dataset, tmp_path, monkeypatch):
    uri = recorded["uri"]
    before = [r["run_id"] for r in list_runs(uri)]
    monkeypatch.delenv("GEMREC_NO_TRACK")
    args = ["train", str(dataset), "--model", "pop", "--tracking-uri", uri]
    assert main([*args, "-o", str(tmp_path / "a"), "--no-track"]) == 0
    monkeypatch.setenv("GEMREC_NO_TRACK", "1")
    assert main([*args, "-o", str(tmp_path / "b")]) == 0
    assert [r["run_id"] for r in list_runs(uri)] == before


def test_tune_records_one_point_per_trial(recorded, dataset, tmp_path, monkeypatch):
    monkeypatch.delenv("GEMREC_NO_TRACK")
    uri = recorded["uri"]
    args = ["tune", str(dataset), "--model", "itemknn", "--trials", "3", "--quiet"]
    assert main([*args, "-o", str(tmp_path / "knn"), "--tracking-uri", uri]) == 0
    run = next(r for r in list_runs(uri) if r["command"] == "tune")
    training = json.loads((tmp_path / "knn" / "training.json").read_text())["tuning"]
    curve = run_curves(uri, run["run_id"])["trial/recall_at_20"]
    assert [s for s, _ in curve] == [t["number"] + 1 for t in training["trials"]] == [1, 2, 3]
    assert [v for _, v in curve] == pytest.approx([t["recall@20"] for t in training["trials"]])
    assert run["metrics"]["tuning/best_recall_at_20"] == pytest.approx(training["best_value"])
    assert run["metrics"]["tuning/n_trials"] == 3


def _unreachable_uri() -> str:
    with socket.socket() as s:  # a port nothing listens on once the socket is closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_unreachable_store_warns_once_and_training_succeeds(dataset, tmp_path, monkeypatch):
    monkeypatch.delenv("GEMREC_NO_TRACK")
    out = tmp_path / "mf"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main(
            ["train", str(dataset), *MF, "-o", str(out), "--tracking-uri", _unreachable_uri()]
        )
    assert code == 0
    assert (out / "training.json").is_file()
    tracking = [w for w in caught if issubclass(w.category, TrackingWarning)]
    assert len(tracking) == 1, [str(w.message) for w in tracking]
    assert "127.0.0.1" in str(tracking[0].message) and "--no-track" in str(tracking[0].message)


def test_a_store_failing_mid_run_warns_once_and_stops_recording():
    from mlflow import MlflowClient

    run = Run("http://x", MlflowClient(tracking_uri=_unreachable_uri()), "0" * 32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run.log_metrics({"loss": 1.0}, step=1)
        run.set_tags({"gemrec.model": "mf"})
        run.log_metrics({"loss": 0.5}, step=2)
    assert [w.category for w in caught] == [TrackingWarning]
    assert not run.recording


def test_a_failing_block_ends_the_run_failed(recorded, monkeypatch):
    monkeypatch.delenv("GEMREC_NO_TRACK")
    with pytest.raises(ValueError, match="boom"):
        with record_run("train", uri=recorded["uri"], name="broken") as run:
            assert run is not None
            raise ValueError("boom")
    latest = list_runs(recorded["uri"])[0]
    assert latest["name"] == "broken" and latest["status"] == "FAILED"


def test_reading_creates_no_store_and_a_bad_path_warns(tmp_path, monkeypatch):
    monkeypatch.delenv("GEMREC_NO_TRACK")
    uri = f"sqlite:///{tmp_path / 'x.db'}"
    assert list_runs(uri) == []  # reading creates no store
    assert not (tmp_path / "x.db").exists()
    # a store that cannot be created (under a file) fails at once: warned, the block runs
    (tmp_path / "file").write_text("")
    with pytest.warns(TrackingWarning, match="tracking store"):
        with record_run("train", uri=f"sqlite:///{tmp_path}/file/x.db") as run:
            assert run is None


def test_run_curves_names_an_unknown_run(recorded):
    with pytest.raises(GemrecError, match="run_id 'nope': no such run"):
        run_curves(recorded["uri"], "nope")


def test_metric_keys_and_uri_precedence(monkeypatch, tmp_path):
    assert metric_key("valid_recall@20") == "valid_recall_at_20"
    assert metric_key("a b/c:d-e.f") == "a b/c:d-e.f"
    assert metric_key("x(y)") == "x_y_"
    monkeypatch.delenv("GEMREC_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    assert tracking_uri() == f"sqlite:///{tmp_path.resolve().as_posix()}/mlflow.db"
    monkeypatch.setenv("GEMREC_TRACKING_URI", "http://mlflow:5000")
    assert tracking_uri() == "http://mlflow:5000"
    assert tracking_uri("sqlite:///x.db") == "sqlite:///x.db"


def test_retrain_records_the_refit_and_the_events_folded(recorded, dataset, tmp_path, monkeypatch):
    from gemrec.serve import Event, open_store

    store_url = f"sqlite:///{tmp_path / 'events.sqlite3'}"
    store = open_store(store_url)
    store.append([Event("walkin", f"i{n}", "view", 2000.0 + n).with_id() for n in (1, 2, 3)])
    store.close()
    base = tmp_path / "pop"
    assert main(["train", str(dataset), "--model", "pop", "-o", str(base), "--no-track"]) == 0
    monkeypatch.delenv("GEMREC_NO_TRACK")
    uri, out = recorded["uri"], tmp_path / "pop-v2"
    args = ["retrain", str(base), "--dataset", str(dataset), "--events-from", store_url]
    assert main([*args, "-o", str(out), "--tracking-uri", uri]) == 0
    run = list_runs(uri)[0]
    assert run["name"] == "retrain pop" and run["command"] == "retrain"
    assert run["model_dir"] == str(out.resolve())
    assert run["metrics"]["events_folded"] == 3 and run["metrics"]["new_users"] == 1
    assert run["metrics"]["new_items"] == 0
    assert run["dataset_fingerprint"] == Dataset.open(dataset).manifest["fingerprint"]


def test_without_mlflow_a_run_warns_naming_the_extra(recorded, monkeypatch):
    from gemrec.errors import MissingDependencyError

    monkeypatch.delenv("GEMREC_NO_TRACK")
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if not installed
    with pytest.warns(TrackingWarning, match=r"pip install 'gemrec\[track\]'"):
        with record_run("train", uri=recorded["uri"]) as run:
            assert run is None
    with pytest.raises(MissingDependencyError, match=r"gemrec\[track\]"):
        list_runs(recorded["uri"])
