"""``gemrec.settings``: typed ``--set`` values; TOML config files with unknown keys rejected."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gemrec.errors import ConfigError
from gemrec.settings import load_config, parse_assignments, parse_value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3", 3),
        ("-2", -2),
        ("0.5", 0.5),
        ("1e-3", 0.001),
        ("true", True),
        ("False", False),
        ("TRUE", True),
        ("none", None),
        ("None", None),
        ("null", None),
        ("[1, 2]", [1, 2]),
        ("[0.5,2]", [0.5, 2]),
        ("[]", []),
        ('["a", "b"]', ["a", "b"]),
        ("[pop, itemknn]", ["pop", "itemknn"]),
        ("[relu, 3, true, none]", ["relu", 3, True, None]),
        ("adam", "adam"),
        ('"3"', "3"),  # quoted: a string even though it looks like a number
        ("sku-7", "sku-7"),
        ("007", "007"),  # not valid JSON: kept as typed, not silently turned into 7
        ("nan", "nan"),
        ("NaN", "NaN"),
        ("Infinity", "Infinity"),
        ("", ""),
        ("a b", "a b"),
    ],
)
def test_parse_value_types(text, expected):
    got = parse_value(text)
    assert got == expected
    assert type(got) is type(expected)
    if isinstance(expected, list):
        assert [type(v) for v in got] == [type(v) for v in expected]


def test_parse_assignments_splits_on_the_first_equals_and_strips_the_key():
    got = parse_assignments([" alpha =0.5", "name=a=b", "flag=true", "ks=[10,20]"])
    assert got == {"alpha": 0.5, "name": "a=b", "flag": True, "ks": [10, 20]}
    assert parse_assignments(None) == {}
    assert parse_assignments(["a=1", "a=2"]) == {"a": 2}  # the last one wins


@pytest.mark.parametrize("item", ["alpha", "=3", "  =3"])
def test_parse_assignments_rejects_malformed_entries(item):
    with pytest.raises(ConfigError, match=r"--set expects key=value; got") as exc:
        parse_assignments([item])
    assert repr(item) in str(exc.value)
    with pytest.raises(ConfigError, match=r"^--weights expects"):
        parse_assignments([item], option="--weights")


ALLOWED = {"alpha", "beta", "n_neighbors", "normalize", "channels", "model"}


def test_load_config_top_level_and_params_table_keep_toml_types(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('model = "rp3beta"\nalpha = 0.5\n[params]\nn_neighbors = 7\nnormalize = true\n')
    cfg = load_config(p, ALLOWED)
    assert cfg == {"model": "rp3beta", "alpha": 0.5, "n_neighbors": 7, "normalize": True}
    assert type(cfg["n_neighbors"]) is int and type(cfg["normalize"]) is bool
    p.write_text('channels = ["pop", "itemknn"]\n')
    assert load_config(p, ALLOWED) == {"channels": ["pop", "itemknn"]}  # no model key: none added


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("alpha = 0.5\ngamma = 1\n", r"unknown key\(s\) gamma; expected some of: alpha, beta"),
        ("[params]\nzeta = 1\nalpha = 2\n", r"unknown key\(s\) zeta;"),
        ("[other]\nx = 1\n", r"unknown key\(s\) other;"),
        ("params = 3\n", r"'params' must be a table \(\[params\]\) of hyperparameters; got int 3"),
        ("model = 3\n", r"'model' must be a model name string; got 3"),
        ("alpha = 1\n[params]\nalpha = 2\n", r"key 'alpha' is given both at top level and under"),
        ("alpha = \n", r"not valid TOML"),
    ],
)
def test_load_config_errors_name_the_file_and_the_key(tmp_path, text, pattern):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=pattern) as exc:
        load_config(p, ALLOWED)
    msg = str(exc.value)
    assert msg.startswith(f"{p}: ") and "\n" not in msg


def test_load_config_unreadable_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.toml", ALLOWED)
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_config(binary, ALLOWED)
    with pytest.raises(ConfigError, match="cannot read the config file"):
        load_config(tmp_path, ALLOWED)  # a directory


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_parse_value_round_trips_integers(n):
    assert parse_value(str(n)) == n and type(parse_value(str(n))) is int


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_parse_value_round_trips_floats(x):
    got = parse_value(repr(x))
    assert got == x and isinstance(got, float | int)


@given(st.lists(st.integers(min_value=-1000, max_value=1000), max_size=6))
def test_parse_value_round_trips_int_lists(values):
    assert parse_value("[" + ", ".join(map(str, values)) + "]") == values
