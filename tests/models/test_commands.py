"""``gemrec train``: --set / --config typing and validation, one-line errors, the saved model."""

import json

import numpy as np
import pytest

from gemrec.cli import main
from gemrec.data.store import Dataset
from gemrec.models.base import Recommender
from gemrec.models.commands import train_model
from gemrec.models.rp3beta import RP3Beta


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A small events dataset built through the real importer (raw ids with spaces and dashes)."""
    root = tmp_path_factory.mktemp("train")
    rng = np.random.default_rng(3)
    rows = []
    for u in range(30):
        for t, i in enumerate(rng.choice(25, size=8, replace=False)):
            rows.append(f" user {u} ,sku-{i:03d} ,view,{1000 + 10 * u + t}")
    src = root / "events.csv"
    src.write_text("user_id,item_id,event_type,timestamp\n" + "\n".join(rows) + "\n")
    out = root / "ds"
    assert main(["import", str(src), "--format", "events", "-o", str(out), "--quiet"]) == 0
    return out


def _train(dataset, tmp_path, *extra):
    out = tmp_path / "model"
    code = main(["train", str(dataset), *extra, "-o", str(out)])
    return code, out


def _one_line_error(capsys, *fragments):
    err = capsys.readouterr().err
    assert err.startswith("gemrec train: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for f in fragments:
        assert f in err, (f, err)
    return err


def test_set_values_are_typed_and_reach_the_model(dataset, tmp_path, capsys):
    args = ["--model", "rp3beta", "--set", "alpha=0.5", "--set", "beta=0", "--set", "n_neighbors=3"]
    code, out = _train(dataset, tmp_path, *args, "--set", "normalize=true")
    assert code == 0
    summary = capsys.readouterr().out.strip().splitlines()
    assert len(summary) == 1
    assert summary[0].startswith(f"trained rp3beta on {dataset} (30 users, 25 items) in ")
    assert summary[0].endswith(f"s -> {out}")
    model = Recommender.load(out)
    params = model.get_params()
    assert params == {"alpha": 0.5, "beta": 0, "n_neighbors": 3, "normalize": True}
    assert [type(params[k]) for k in ("alpha", "beta", "n_neighbors", "normalize")] == [
        float,
        int,
        int,
        bool,
    ]
    # the CLI fits on train + valid, exactly as the library call does
    ds = Dataset.open(dataset)
    ref = RP3Beta(alpha=0.5, beta=0, n_neighbors=3, normalize=True).fit(
        ds.interactions("train", "valid")
    )
    assert (model.similarity_ != ref.similarity_).nnz == 0
    assert (model.similarity_.getnnz(axis=1) <= 3).all()
    record = json.loads((out / "training.json").read_text())
    assert record["dataset_fingerprint"] == ds.manifest.get("fingerprint")
    assert record["fit_seconds"] >= 0


def test_set_none_and_defaults(dataset, tmp_path):
    code, out = _train(dataset, tmp_path, "--model", "pop", "--set", "half_life_days=none")
    assert code == 0
    assert Recommender.load(out).get_params() == {"half_life_days": None, "weighted": False}


def test_set_lists_reach_the_model(dataset, tmp_path):
    args = ["--model", "fusion", "--set", "channels=[pop, itemknn]", "--set", "weights=[0.7, 0.3]"]
    code, out = _train(dataset, tmp_path, *args, "--set", "method=weighted")
    assert code == 0
    params = Recommender.load(out).get_params()
    assert params["channels"] == ["pop", "itemknn"]
    assert params["weights"] == [0.7, 0.3]
    assert params["method"] == "weighted"


def test_config_file_with_set_overrides(dataset, tmp_path):
    cfg = tmp_path / "rp3.toml"
    cfg.write_text('model = "rp3beta"\n[params]\nalpha = 0.9\nbeta = 0.4\nn_neighbors = 5\n')
    code, out = _train(
        dataset, tmp_path, "--model", "rp3beta", "--config", str(cfg), "--set", "beta=0.1"
    )
    assert code == 0
    assert Recommender.load(out).get_params() == {
        "alpha": 0.9,
        "beta": 0.1,
        "n_neighbors": 5,
        "normalize": False,
    }


def test_config_unknown_key_is_rejected_naming_the_key(dataset, tmp_path, capsys):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("alpha = 0.9\nalhpa = 0.1\n")
    code, out = _train(dataset, tmp_path, "--model", "rp3beta", "--config", str(cfg))
    assert code == 2 and not out.exists()
    _one_line_error(
        capsys, f"{cfg}: unknown key(s) alhpa;", "alpha, beta, model, n_neighbors, normalize"
    )


def test_config_for_another_model_is_rejected(dataset, tmp_path, capsys):
    cfg = tmp_path / "knn.toml"
    cfg.write_text('model = "itemknn"\nn_neighbors = 5\n')
    code, out = _train(dataset, tmp_path, "--model", "rp3beta", "--config", str(cfg))
    assert code == 2 and not out.exists()
    _one_line_error(capsys, f"{cfg}: model = 'itemknn' does not match --model rp3beta")


def test_config_file_errors_are_one_line(dataset, tmp_path, capsys):
    cfg = tmp_path / "broken.toml"
    cfg.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    code, _ = _train(dataset, tmp_path, "--model", "pop", "--config", str(cfg))
    assert code == 2
    _one_line_error(capsys, str(cfg), "not UTF-8")
    code, _ = _train(dataset, tmp_path, "--model", "pop", "--config", str(tmp_path / "nope.toml"))
    assert code == 2
    _one_line_error(capsys, "config file not found")


def test_unknown_model_is_one_line(dataset, tmp_path, capsys):
    code, out = _train(dataset, tmp_path, "--model", "rp4beta")
    assert code == 2 and not out.exists()
    _one_line_error(
        capsys, "unknown model 'rp4beta'; expected one of:", "itemknn", "pop", "rp3beta"
    )


def test_unknown_parameter_is_one_line(dataset, tmp_path, capsys):
    code, out = _train(dataset, tmp_path, "--model", "rp3beta", "--set", "gamma=1")
    assert code == 2 and not out.exists()
    _one_line_error(capsys, "model 'rp3beta' has no parameter gamma", "valid: alpha, beta")


def test_malformed_set_is_one_line(dataset, tmp_path, capsys):
    code, out = _train(dataset, tmp_path, "--model", "rp3beta", "--set", "alpha")
    assert code == 2 and not out.exists()
    _one_line_error(capsys, "--set expects key=value; got 'alpha'")


@pytest.mark.parametrize(
    ("setting", "fragment"),
    [
        ("alpha=-1", "parameter 'alpha' must be a number >= 0; got -1"),
        ("alpha=abc", "parameter 'alpha' must be a number >= 0; got 'abc'"),
        ("n_neighbors=2.5", "parameter 'n_neighbors' must be a positive integer; got 2.5"),
        ("normalize=yes", "parameter 'normalize' must be True or False; got 'yes'"),
    ],
)
def test_bad_values_fail_before_the_data_is_read(tmp_path, capsys, setting, fragment):
    # the dataset does not even exist: the value check must come first
    code, out = _train(
        tmp_path / "no-such-dataset", tmp_path, "--model", "rp3beta", "--set", setting
    )
    assert code == 2 and not out.exists()
    _one_line_error(capsys, fragment)


def test_missing_dataset_is_one_line(tmp_path, capsys):
    code, _ = _train(tmp_path / "nowhere", tmp_path, "--model", "pop")
    assert code == 2
    _one_line_error(capsys, f"{tmp_path / 'nowhere'}: not a gemrec dataset directory")


def test_unwritable_model_dir_is_one_line(dataset, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code = main(["train", str(dataset), "--model", "pop", "-o", str(blocker / "m")])
    assert code == 2
    _one_line_error(capsys, f"-o {blocker / 'm'}: cannot write the model directory")
    assert blocker.read_text() == "x"


def test_progress_bar_only_when_asked_and_summary_always(dataset, tmp_path, capsys):
    ds = Dataset.open(dataset)
    model = train_model(ds, "pop", {}, tmp_path / "m", progress=True)
    err = capsys.readouterr().err
    assert "train pop" in err and "/2" in err and "fit" in err
    assert model.is_fitted and (tmp_path / "m" / "training.json").is_file()
    # through the CLI under pytest stderr is not a terminal: no bar, only the stdout summary line
    assert main(["train", str(dataset), "--model", "pop", "-o", str(tmp_path / "m2")]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out.startswith("trained pop on ") and captured.out.count("\n") == 1


def test_quiet_also_silences_the_models_own_epoch_bar(dataset, tmp_path, capsys):
    code, out = _train(dataset, tmp_path, "--model", "mf", "--set", "epochs=2", "--quiet")
    assert code == 0
    assert capsys.readouterr().err == ""
    assert Recommender.load(out).get_params()["progress"] is False
    # an explicit --set wins over --quiet
    code, out = _train(
        dataset, tmp_path, "--model", "mf", "--set", "epochs=1", "--set", "progress=true", "--quiet"
    )
    assert code == 0
    assert "mf 1/1" in capsys.readouterr().err


def test_epochs_are_reported_as_log_lines_without_a_terminal(dataset, tmp_path, capsys):
    """Under pytest stderr is not a terminal: a 4-epoch fit writes lines, not a bar."""
    argv = ["train", str(dataset), "--model", "mf", "--set", "epochs=4", "--set", "eval_every=2"]
    assert main([*argv, "-o", str(tmp_path / "m")]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("mf epoch ")]
    assert lines and lines[0].startswith("mf epoch 1/4: loss ")
    assert "elapsed, about" in lines[-1] and "s left" in lines[-1]
    assert any("valid_recall@20" in line for line in lines)
    assert main([*argv, "--quiet", "-o", str(tmp_path / "m2")]) == 0
    assert "epoch" not in capsys.readouterr().err
