from __future__ import annotations

import json

import numpy as np

from gemrec.cli import main
from gemrec.data.store import Dataset
from gemrec.models.base import Recommender
from gemrec.models.commands import train_model
from gemrec.serve.commands_retrain import retrain


def test_retrain_folds_events_and_service_hot_swaps(make_client, shop, tmp_path):
    knn_dir = tmp_path / "knn"
    train_model(Dataset.open(shop), "itemknn", {"n_neighbors": 20}, knn_dir, tune=False)
    store = f"sqlite:///{tmp_path / 'ev.sqlite3'}"
    c = make_client(knn_dir, store=store)
    c.post("/v1/items", json={"items": [{"item_id": "fresh", "category": "cat1", "brand": "b0"}]})
    events = [{"user_id": "walkin", "item_id": f"i{n}", "event_type": "buy"} for n in (20, 21, 22)]
    events += [
        {"user_id": "walkin", "item_id": "fresh", "event_type": "view"},
        {"user_id": "u0", "item_id": "i40", "event_type": "view"},
    ]
    assert c.post("/v1/events", json={"events": events}).json()["accepted"] == 5
    assert c.get("/v1/users/walkin/recommendations").json()["strategy"] == "fold_in"

    out = tmp_path / "knn-v2"
    summary = retrain(knn_dir, shop, store, out)
    assert summary["events_folded"] == 5 and summary["new_users"] == 1 and summary["new_items"] == 1
    old, new = Recommender.load(knn_dir), Recommender.load(out)
    assert type(new) is type(old) and new.get_params() == old.get_params()
    assert (new.n_users, new.n_items) == (old.n_users + 1, old.n_items + 1)
    with np.load(out / "serve_ids.npz") as z:
        users, items = list(z["user_ids"]), list(z["item_ids"])
    walkin, fresh = users.index("walkin"), items.index("fresh")
    assert (walkin, fresh) == (old.n_users, old.n_items)
    row = new.interactions_[walkin]
    # an online "buy" weighs what an imported purchase weighs in this dataset (its manifest: 5)
    assert dict(zip(row.indices.tolist(), row.data.tolist(), strict=False)) == {
        20: 5.0,
        21: 5.0,
        22: 5.0,
        fresh: 1.0,
    }
    assert new.interactions_[0, 40] == 1.0 and old.interactions_[0, 40] == 0.0
    assert json.loads((out / "training.json").read_text())["events_folded_through_seq"] >= 5

    r = c.post("/v1/admin/reload", json={"model_dir": str(out)})
    assert r.status_code == 200 and r.json()["n_users"] == old.n_users + 1
    body = c.get("/v1/users/walkin/recommendations", params={"k": 5}).json()
    assert body["strategy"] == "personalized"  # a known user now
    assert not {"i20", "i21", "i22", "fresh"} & {x["item_id"] for x in body["items"]}
    # folded events are model state now, not online state; history lists each event once
    hist = c.get("/v1/users/walkin/history").json()["events"]
    assert sum(e["source"] == "offline" for e in hist) == 4
    assert sum(e["source"] == "online" for e in hist) == 0
    # ... as the events they were: their types and times
    assert sorted(e["event_type"] for e in hist) == ["buy", "buy", "buy", "view"]
    assert all(e["timestamp"] is not None for e in hist)

    # a retrain starts again from the dataset and the whole store: the same model again
    again = retrain(out, shop, store, tmp_path / "knn-v3")
    assert again["events_folded"] == 5
    third = Recommender.load(tmp_path / "knn-v3")
    assert (third.interactions_ != new.interactions_).nnz == 0
    np.testing.assert_array_equal(third.similarity_.toarray(), new.similarity_.toarray())


def test_cli_retrain_and_serve_errors(pop_dir, shop, tmp_path, capsys):
    store = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    assert (
        main(
            [
                "retrain",
                str(pop_dir),
                "--dataset",
                str(shop),
                "--events-from",
                store,
                "-o",
                str(tmp_path / "m2"),
            ]
        )
        == 0
    )
    assert "retrained" in capsys.readouterr().out
    assert main(["serve", str(tmp_path / "nomodel"), "--dataset", str(shop)]) == 2
    assert "not a gemrec model directory" in capsys.readouterr().err
    assert main(["serve", str(pop_dir), "--dataset", str(shop), "--store", "mysql://x"]) == 2
    assert "--store must be" in capsys.readouterr().err
