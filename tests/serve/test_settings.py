from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from gemrec.errors import ConfigError, GemrecError
from gemrec.serve import ServeSettings
from gemrec.serve.commands import add_parser, settings_from_args


def parse(argv):
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    return parser.parse_args(["serve", *argv])


def test_settings_from_cli_and_env(svd_dir, shop, tmp_path, monkeypatch):
    block = tmp_path / "block.txt"
    block.write_text("i1\n\ni2\n")
    monkeypatch.setenv("GEMREC_API_KEY", "from-env")
    s = settings_from_args(
        parse(
            [
                str(svd_dir),
                "--dataset",
                str(shop),
                "--diversity-cap",
                "3",
                "--blocklist",
                str(block),
            ]
        )
    )
    assert s.api_key == "from-env" and s.diversity_cap == 3 and s.blocklist == ("i1", "i2")
    assert s.store_url == f"sqlite:///{svd_dir.resolve() / 'events.sqlite3'}"
    s = settings_from_args(parse([str(svd_dir), "--dataset", str(shop), "--api-key", "cli"]))
    assert s.api_key == "cli"
    with pytest.raises(GemrecError, match="not a gemrec dataset"):
        settings_from_args(parse([str(svd_dir), "--dataset", str(tmp_path)]))
    with pytest.raises(ConfigError, match="--blocklist"):
        settings_from_args(parse([str(svd_dir), "--dataset", str(shop), "--blocklist", "nope.txt"]))
    with pytest.raises(ConfigError, match=r"not a behaviour analysis report \(no summary.json\)"):
        settings_from_args(parse([str(svd_dir), "--dataset", str(shop), "--report", str(tmp_path)]))


def test_settings_are_frozen_and_reject_unknown_keys(tmp_path):
    s = ServeSettings.from_dict({"model_dir": "m", "dataset_dir": "d", "max_k": 50})
    assert ServeSettings.from_dict(__import__("json").loads(s.to_json())) == s
    r = ServeSettings.from_dict({"model_dir": "m", "dataset_dir": "d", "report_dir": "r"})
    assert r.report_dir == Path("r")
    assert ServeSettings.from_dict(__import__("json").loads(r.to_json())) == r
    with pytest.raises(AttributeError):
        s.max_k = 3  # type: ignore[misc]
    with pytest.raises(ConfigError, match=r"unknown serve setting.*max_kk"):
        ServeSettings.from_dict({"model_dir": "m", "dataset_dir": "d", "max_kk": 50})
    with pytest.raises(ConfigError, match="'max_batch' must be a positive integer"):
        ServeSettings(model_dir="m", dataset_dir="d", max_batch=0)
    with pytest.raises(ConfigError, match="diversity_cap"):
        ServeSettings(model_dir="m", dataset_dir="d", diversity_cap=0)


def test_the_hnsw_beam_width_is_a_setting_the_index_uses(svd_dir, shop):
    from gemrec.data.store import Dataset
    from gemrec.models.base import Recommender
    from gemrec.serve._engine import Engine

    args = [str(svd_dir), "--dataset", str(shop)]
    assert settings_from_args(parse(args)).ann_ef_search == 256
    s = settings_from_args(parse([*args, "--ann-ef-search", "512", "--ann-threshold", "10"]))
    assert s.ann_ef_search == 512
    engine = Engine(s, Recommender.load(svd_dir), Dataset.open(shop), svd_dir)
    assert engine.index is not None and engine.index.ann and engine.index.ef_search == 512
    with pytest.raises(ConfigError, match="'ann_ef_search' must be a positive integer"):
        ServeSettings(model_dir="m", dataset_dir="d", ann_ef_search=0)
