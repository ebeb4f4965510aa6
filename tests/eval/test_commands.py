"""``gemrec evaluate`` and ``gemrec recommend``: CLI output equals the library's, with raw ids."""

import json

import numpy as np
import pytest

from gemrec.cli import main
from gemrec.data.store import Dataset
from gemrec.data.synthetic import generate_shop, write_shop
from gemrec.eval.commands import evaluate_on_dataset
from gemrec.eval.commands_recommend import write_recommendations
from gemrec.eval.evaluate import evaluate
from gemrec.models.base import Recommender

# raw ids as a shop might write them: padded with spaces, leading zeros, numeric-looking, unicode,
# a comma inside a quoted field; the importer strips the surrounding whitespace only
USERS = ["007", " 42 ", "x y", "ünï", "u-5", "0", "1e3", "Bob"]
ITEMS = [" sku-7", "sku 10", "a,b", "00", "1.50", "ß-9", "sku-7b", "I", "j", "K"]


def _csv(value: str) -> str:
    return f'"{value}"' if "," in value else value


@pytest.fixture(scope="module")
def handmade(tmp_path_factory):
    """A dataset from a hand-written CSV with awkward raw ids, a valid split and a test split."""
    root = tmp_path_factory.mktemp("recs")
    rng = np.random.default_rng(11)
    lines = ["user_id,item_id,event_type,timestamp"]
    for u, user in enumerate(USERS):
        for t, i in enumerate(rng.choice(len(ITEMS), size=6, replace=False)):
            event = "purchase" if (u + t) % 3 == 0 else "view"
            lines.append(f"{_csv(user)},{_csv(ITEMS[i])},{event},{1_700_000_000 + 100 * u + t}")
    src = root / "events.csv"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    ds_dir = root / "ds"
    argv = ["import", str(src), "--format", "events", "-o", str(ds_dir), "--quiet"]
    assert main([*argv, "--split", "leave-last", "--valid-fraction", "0.2"]) == 0
    model_dir = root / "model"
    assert (
        main(["train", str(ds_dir), "--model", "itemknn", "--no-tune", "-o", str(model_dir)]) == 0
    )
    return ds_dir, model_dir, src


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """The synthetic shop (with item categories) imported through the CLI and an rp3beta model."""
    root = tmp_path_factory.mktemp("shop")
    paths = write_shop(generate_shop(n_users=150, n_items=90, n_categories=6, seed=5), root / "src")
    ds_dir = root / "ds"
    argv = ["import", str(paths["events"]), "--format", "events", "-o", str(ds_dir), "--quiet"]
    assert main([*argv, "--items", str(paths["items"])]) == 0
    model_dir = root / "model"
    assert (
        main(["train", str(ds_dir), "--model", "rp3beta", "--no-tune", "-o", str(model_dir)]) == 0
    )
    return ds_dir, model_dir


def _read(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# ----------------------------------------------------------------------------------- evaluate
def test_evaluate_json_equals_the_python_evaluate(shop, capsys):
    ds_dir, model_dir = shop
    capsys.readouterr()
    argv = ["evaluate", str(model_dir), "--dataset", str(ds_dir), "--json"]
    assert main([*argv, "-k", "5", "20"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert main([*argv, "-k", "20", "-k", "5"]) == 0  # repeated -k: the same result
    assert json.loads(capsys.readouterr().out) == got
    ds = Dataset.open(ds_dir)
    model = Recommender.load(model_dir)
    ref = evaluate(
        model,
        ds.interactions("test"),
        ks=[5, 20],
        exclude=ds.interactions("train", "valid"),
        item_categories=ds.item_categories(),
    ).as_dict()
    assert got.pop("model") == "rp3beta" and got.pop("split") == "test"
    assert got.pop("protocol") == {"name": "standard", "n_items": ds.n_items}
    assert set(got) == set(ref)
    for key in ref:
        assert got[key] == pytest.approx(ref[key], rel=1e-12, abs=0), key
    names = [
        "recall",
        "precision",
        "ndcg",
        "hitrate",
        "mrr",
        "map",
        "coverage",
        "novelty",
        "diversity",
    ]
    assert {f"{m}@{k}" for m in names for k in (5, 20)} | {"n_users"} == set(ref)
    assert got["n_users"] == len(ds.interactions("test").users_with_items()) > 0
    assert 0 < got["recall@5"] <= got["recall@20"] <= 1


def test_evaluate_table_and_summary_line(shop, capsys):
    ds_dir, model_dir = shop
    capsys.readouterr()
    assert main(["evaluate", str(model_dir), "--dataset", str(ds_dir)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0].split()[:3] == ["model", "recall@20", "ndcg@20"]
    ds = Dataset.open(ds_dir)
    ref = evaluate(
        Recommender.load(model_dir),
        ds.interactions("test"),
        ks=[20],
        exclude=ds.interactions("train", "valid"),
    )
    row = out[1].split()
    assert row[0] == "rp3beta"
    assert float(row[1]) == pytest.approx(ref["recall@20"], abs=5e-5)
    assert float(row[2]) == pytest.approx(ref["ndcg@20"], abs=5e-5)
    assert out[-1] == f"evaluated {ref.n_users} users on the test split of {ds_dir}"


def test_evaluate_on_another_dataset_is_one_line(shop, handmade, capsys):
    capsys.readouterr()
    code = main(["evaluate", str(handmade[1]), "--dataset", str(shop[0])])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert (
        "model has 8 users x 10 items but dataset" in err and "use the dataset the model was" in err
    )


def test_evaluate_bad_k_is_one_line(shop, capsys):
    capsys.readouterr()
    code = main(["evaluate", str(shop[1]), "--dataset", str(shop[0]), "-k", "0", "--json"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "parameter 'ks' must be positive integers" in err


# ----------------------------------------------------------------------------------- recommend
def test_recommend_test_users_raw_ids_round_trip(handmade, tmp_path, capsys):
    ds_dir, model_dir, _ = handmade
    out = tmp_path / "recs.jsonl"
    capsys.readouterr()
    argv = ["recommend", str(model_dir), "--dataset", str(ds_dir), "--users", "test"]
    assert main([*argv, "-k", "3", "-o", str(out), "--quiet"]) == 0
    recs = _read(out)
    summary = capsys.readouterr().out.strip().splitlines()
    assert len(summary) == 1
    assert summary[0].startswith(
        f"wrote {len(recs)} users' top-3 lists (training items excluded) to {out}"
    )
    # every user has one test item (leave-last) and appears once, with the id exactly as in the CSV
    assert [r["user"] for r in recs] == sorted(u.strip() for u in USERS)
    raw_items = {i.strip() for i in ITEMS}
    for r in recs:
        assert set(r) == {"user", "items", "scores"}
        assert len(r["items"]) == len(r["scores"]) <= 3
        assert set(r["items"]) <= raw_items and len(set(r["items"])) == len(r["items"])
        assert r["scores"] == sorted(r["scores"], reverse=True)
    # the lists are the model's own top-k mapped to raw ids, seen items (train + valid) excluded
    ds = Dataset.open(ds_dir)
    model = Recommender.load(model_dir)
    users = np.array([ds.user_index[r["user"]] for r in recs])
    seen = ds.interactions("train", "valid").matrix
    ids, scores = model.recommend(users, 3, exclude=seen[users])
    for r, row_ids, row_scores in zip(recs, ids, scores, strict=True):
        keep = row_ids >= 0
        assert r["items"] == [ds.item_ids[i] for i in row_ids[keep]]
        np.testing.assert_allclose(r["scores"], row_scores[keep], rtol=1e-6, atol=0)
        train_raw = {ds.item_ids[i] for i in seen[ds.user_index[r["user"]]].indices}
        assert not set(r["items"]) & train_raw


def test_recommend_include_seen_keeps_training_items(handmade, tmp_path):
    ds_dir, model_dir, _ = handmade
    out = tmp_path / "all.jsonl"
    argv = ["recommend", str(model_dir), "--dataset", str(ds_dir), "--users", "all", "-k", "10"]
    assert main([*argv, "-o", str(out), "--include-seen", "--quiet"]) == 0
    recs = _read(out)
    ds = Dataset.open(ds_dir)
    assert [r["user"] for r in recs] == list(ds.user_ids)
    seen = ds.interactions("train", "valid").matrix
    n_seen_kept = 0
    for r in recs:
        train_raw = {ds.item_ids[i] for i in seen[ds.user_index[r["user"]]].indices}
        n_seen_kept += len(set(r["items"]) & train_raw)
    assert n_seen_kept > 0
    # without --include-seen the same call keeps none of them
    assert main([*argv, "-o", str(out), "--quiet"]) == 0
    for r in _read(out):
        train_raw = {ds.item_ids[i] for i in seen[ds.user_index[r["user"]]].indices}
        assert not set(r["items"]) & train_raw


def test_recommend_users_file_keeps_order_and_strips_whitespace(handmade, tmp_path):
    ds_dir, model_dir, _ = handmade
    users = tmp_path / "users.txt"
    users.write_text("ünï\n\n  007  \nx y\n", encoding="utf-8")
    out = tmp_path / "r.jsonl"
    argv = ["recommend", str(model_dir), "--dataset", str(ds_dir), "--users", str(users)]
    assert main([*argv, "-k", "2", "-o", str(out), "--quiet"]) == 0
    assert [r["user"] for r in _read(out)] == ["ünï", "007", "x y"]


def test_recommend_skips_and_reports_unknown_users_or_fails_on_request(handmade, tmp_path, capsys):
    ds_dir, model_dir, _ = handmade
    users = tmp_path / "users.txt"
    users.write_text("007\nBob\n7\n", encoding="utf-8")  # "7" is not "007"
    out = tmp_path / "r.jsonl"
    capsys.readouterr()
    argv = ["recommend", str(model_dir), "--dataset", str(ds_dir), "--users", str(users)]
    assert main([*argv, "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.err == (
        f"gemrec recommend: skipped 1 user id(s) of {users} not in the dataset: '7' (line 3)\n"
    )
    assert [r["user"] for r in _read(out)] == ["007", "Bob"]
    out.unlink()
    assert main([*argv, "-o", str(out), "--on-unknown", "fail"]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"gemrec recommend: error: {users}, line 3: unknown user id '7' (not in the dataset; "
        "--on-unknown skip leaves such ids out)\n"
    )
    assert not out.exists()


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (
            ["--users", "nobody.txt"],
            "--users must be 'test', 'all' or an existing file; got 'nobody.txt'",
        ),
        (["-k", "0"], "parameter '-k' must be a positive integer; got 0"),
        (["-o", "/proc/definitely/not/writable.jsonl"], "cannot write the output file"),
        (["--ann"], "parameter '--ann' must be a model whose scores are an inner product"),
        (["--ann-candidates", "0"], "parameter '--ann-candidates' must be a positive integer"),
        (["--ann-recall-sample", "10"], "'--ann-recall-sample' must be only with ANN retrieval"),
    ],
)
def test_recommend_bad_options_are_one_line(handmade, tmp_path, capsys, extra, fragment):
    ds_dir, model_dir, _ = handmade
    capsys.readouterr()
    argv = ["recommend", str(model_dir), "--dataset", str(ds_dir), "-o", str(tmp_path / "r.jsonl")]
    assert main([*argv, *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gemrec recommend: error: ") and err.count("\n") == 1
    assert fragment in err


def test_recommend_non_utf8_users_file(handmade, tmp_path, capsys):
    ds_dir, model_dir, _ = handmade
    users = tmp_path / "users.txt"
    users.write_bytes(b"007\nBob\n\xff\xfe\n")
    capsys.readouterr()
    argv = ["recommend", str(model_dir), "--dataset", str(ds_dir), "--users", str(users)]
    assert main([*argv, "-o", str(tmp_path / "r.jsonl")]) == 2
    err = capsys.readouterr().err
    assert f"{users}, line 3: not UTF-8 text" in err and err.count("\n") == 1


def test_write_recommendations_short_lists_have_no_padding(handmade, tmp_path):
    """k larger than the unseen catalogue: each list is every unseen item, never a padding id."""
    ds_dir, model_dir, _ = handmade
    ds = Dataset.open(ds_dir)
    model = Recommender.load(model_dir)
    out = tmp_path / "long.jsonl"
    n = write_recommendations(model, ds, np.arange(ds.n_users), 50, out)
    recs = _read(out)
    assert n == len(recs) == ds.n_users
    seen = ds.interactions("train", "valid").matrix
    for u, r in enumerate(recs):
        unseen = set(ds.item_ids) - {ds.item_ids[i] for i in seen[u].indices}
        assert sorted(r["items"]) == sorted(unseen)
        assert all(np.isfinite(r["scores"]))


def test_progress_bars_only_when_asked(shop, tmp_path, capsys):
    ds_dir, model_dir = shop
    ds = Dataset.open(ds_dir)
    model = Recommender.load(model_dir)
    capsys.readouterr()
    write_recommendations(model, ds, np.arange(ds.n_users), 5, tmp_path / "r.jsonl", progress=True)
    assert "recommend" in capsys.readouterr().err
    evaluate_on_dataset(model, ds, [5], progress=True)
    assert "evaluate" in capsys.readouterr().err
    # the CLI under pytest (stderr not a terminal): summary line on stdout, nothing on stderr
    argv = ["recommend", str(model_dir), "--dataset", str(ds_dir), "-o", str(tmp_path / "r.jsonl")]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert (
        captured.err == "" and captured.out.startswith("wrote ") and captured.out.count("\n") == 1
    )


def test_recommend_replaces_an_existing_file_and_leaves_no_partial(handmade, tmp_path):
    ds_dir, model_dir, _ = handmade
    out = tmp_path / "recs.jsonl"
    out.write_text("old content\n")
    argv = ["recommend", str(model_dir), "--dataset", str(ds_dir), "--users", "all", "-k", "1"]
    assert main([*argv, "-o", str(out)]) == 0
    recs = _read(out)
    assert len(recs) == len(USERS) and all(len(r["items"]) == 1 for r in recs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recs.jsonl"]
    # non-ASCII raw ids are written as UTF-8 text, not escaped
    assert "ünï" in out.read_text(encoding="utf-8")


def test_recommend_user_who_has_seen_everything_gets_an_empty_list(tmp_path):
    src = tmp_path / "e.csv"
    rows = ["a,x,view,1", "a,y,view,2", "b,x,view,3", "b,z,view,4", "c,y,view,5"]
    rows += ["d,x,view,6", "d,y,view,7", "d,z,view,8"]  # d has seen the whole catalogue
    src.write_text("user_id,item_id,event_type,timestamp\n" + "\n".join(rows) + "\n")
    ds_dir, model_dir, out = tmp_path / "ds", tmp_path / "m", tmp_path / "r.jsonl"
    argv = ["import", str(src), "--format", "events", "-o", str(ds_dir), "--quiet"]
    assert main([*argv, "--split", "none"]) == 0
    assert main(["train", str(ds_dir), "--model", "pop", "-o", str(model_dir)]) == 0
    argv = ["recommend", str(model_dir), "--dataset", str(ds_dir), "--users", "all", "-k", "5"]
    assert main([*argv, "-o", str(out)]) == 0
    # popularity: x 3, y 3, z 2 (ties by internal id, i.e. raw id order)
    assert _read(out) == [
        {"user": "a", "items": ["z"], "scores": [2.0]},
        {"user": "b", "items": ["y"], "scores": [3.0]},
        {"user": "c", "items": ["x", "z"], "scores": [3.0, 2.0]},
        {"user": "d", "items": [], "scores": []},
    ]
    assert main([*argv, "-o", str(out), "--include-seen"]) == 0
    assert [r["items"] for r in _read(out)] == [["x", "y", "z"]] * 4


def test_recommend_and_evaluate_agree(shop, tmp_path, capsys):
    """Recall@10/NDCG@10 recomputed from recs.jsonl (raw ids vs the test edges) equal evaluate's."""
    ds_dir, model_dir = shop
    out = tmp_path / "recs.jsonl"
    argv = ["recommend", str(model_dir), "--dataset", str(ds_dir), "--users", "test", "-k", "10"]
    assert main([*argv, "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(model_dir), "--dataset", str(ds_dir), "-k", "10", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    ds = Dataset.open(ds_dir)
    edges = ds.edges[ds.edges["split"] == "test"]
    relevant: dict[str, set[str]] = {}
    for u, i in zip(edges["user"], edges["item"], strict=True):
        relevant.setdefault(ds.user_ids[u], set()).add(ds.item_ids[i])
    recs = _read(out)
    assert {r["user"] for r in recs} == set(relevant) and len(recs) == metrics["n_users"]
    recall = ndcg = 0.0
    for r in recs:
        rel = relevant[r["user"]]
        hits = [i in rel for i in r["items"]]
        recall += sum(hits) / len(rel)
        idcg = sum(1 / np.log2(j + 2) for j in range(min(10, len(rel))))
        ndcg += sum(1 / np.log2(j + 2) for j, h in enumerate(hits) if h) / idcg
    assert recall / len(recs) == pytest.approx(metrics["recall@10"], rel=1e-9)
    assert ndcg / len(recs) == pytest.approx(metrics["ndcg@10"], rel=1e-9)


def test_evaluate_into_a_closed_pipe_ends_quietly(handmade):
    """`gemrec evaluate ... | head`: the reader leaves early; no 'Broken pipe' error, no trace."""
    import subprocess
    import sys

    ds_dir, model_dir, _ = handmade
    code = "import sys; from gemrec.cli import main; sys.exit(main(sys.argv[1:]))"
    argv = [sys.executable, "-c", code, "evaluate", str(model_dir), "--dataset", str(ds_dir)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # like `head` that has read enough before gemrec writes
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert err == ""


# ------------------------------------------------------------------------- recommend --ann
@pytest.fixture(scope="module")
def shop_svd(shop, tmp_path_factory):
    ds_dir, _ = shop
    model_dir = tmp_path_factory.mktemp("svd") / "model"
    argv = ["train", str(ds_dir), "--model", "svd", "--set", "factors=8", "-o", str(model_dir)]
    assert main(argv) == 0
    return ds_dir, model_dir


def test_recommend_ann_covering_the_catalogue_writes_the_exact_lists(shop_svd, tmp_path, capsys):
    ds_dir, model_dir = shop_svd
    argv = ["recommend", str(model_dir), "--dataset", str(ds_dir), "--users", "all", "-k", "10"]
    assert main([*argv, "-o", str(tmp_path / "exact.jsonl"), "--no-ann", "--quiet"]) == 0
    capsys.readouterr()
    n_items = str(Dataset.open(ds_dir).n_items)
    ann = ["--ann", "--ann-candidates", n_items, "--ann-recall-sample", "40", "--quiet"]
    assert main([*argv, "-o", str(tmp_path / "ann.jsonl"), *ann]) == 0
    out = capsys.readouterr().out
    assert f"ANN index (hnsw) over {n_items} items built in" in out
    assert "ANN recall@10 against exact top-10 on 40 sampled users: 1.0000" in out
    exact, approx = _read(tmp_path / "exact.jsonl"), _read(tmp_path / "ann.jsonl")
    assert [r["items"] for r in approx] == [r["items"] for r in exact]
    for a, e in zip(approx, exact, strict=True):
        np.testing.assert_allclose(a["scores"], e["scores"], rtol=1e-5)


def test_recommend_chooses_ann_above_the_item_threshold(shop_svd, tmp_path, capsys, monkeypatch):
    import gemrec.eval.commands_recommend as commands

    ds_dir, model_dir = shop_svd
    n_items = Dataset.open(ds_dir).n_items
    monkeypatch.setattr(commands, "AUTO_ANN_ITEMS", n_items)
    argv = ["recommend", str(model_dir), "--dataset", str(ds_dir), "-o", str(tmp_path / "r")]
    assert main([*argv, "--quiet"]) == 0
    assert (
        f"ANN retrieval chosen automatically ({n_items} items >= {n_items}; --no-ann scores "
        "every item)" in capsys.readouterr().out
    )
    monkeypatch.setattr(commands, "AUTO_ANN_ITEMS", n_items + 1)
    assert main([*argv, "--quiet"]) == 0
    assert "ANN" not in capsys.readouterr().out
