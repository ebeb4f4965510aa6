"""Optional dependencies: a missing extra is named in one line; torch is needed only to train."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from gemrec import _optional
from gemrec.data.store import Dataset
from gemrec.errors import GemrecError, MissingDependencyError
from gemrec.models import MODELS, get_model_class
from gemrec.models.ann import ItemIndex
from gemrec.serve import ServeSettings, create_app
from tests.serve.conftest import build_shop

#: every model kind, with hyperparameters small enough for the shop (90 users, 60 items)
TRAINED: dict[str, dict[str, Any]] = {
    "pop": {},
    "category-pop": {},
    "svd": {"factors": 8},
    "itemknn": {},
    "userknn": {},
    "rp3beta": {},
    "graphfilter": {},
    "mf": {"epochs": 2, "embedding_dim": 8, "progress": False},
    "lightgcn": {"epochs": 2, "embedding_dim": 8, "progress": False},
    "ncf": {"epochs": 1, "embedding_dim": 8, "layers": [16, 8], "progress": False},
    "item2vec": {"embedding_dim": 8, "epochs": 1, "walks_per_item": 4, "walk_length": 6},
    "fusion": {"channels": ["rp3beta", "pop"], "method": "rrf"},
    "content": {"base_params": {"factors": 8}},
    "social": {},
    "similar-users": {},
}
#: fitted in the subprocess too: the core install trains these without torch
CORE = {
    "pop": {},
    "category-pop": {},
    "itemknn": {},
    "rp3beta": {},
    # rank 3: the three blocks' unit singular values, a subspace that does not depend on the probe
    "graphfilter": {"svd_method": "randomized", "n_components": 3},
}
USERS = [0, 5, 31, 62, 89]
ITEMS = [0, 21, 45]


def _block(*modules: str) -> str:
    """Python source that makes ``modules`` unimportable (as if not installed)."""
    return "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in modules)


def _served(model_dir: Path, shop: Path, store: Path) -> list[str]:
    settings = ServeSettings(model_dir=model_dir, dataset_dir=shop, store=f"sqlite:///{store}")
    with TestClient(create_app(settings)) as client:
        body = client.get("/v1/users/u0/recommendations", params={"k": 5}).json()
    return [r["item_id"] for r in body["items"]]


#: the subprocess: torch and PyG unimportable before gemrec is imported
_CHILD = """
import json
import sys
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient

from gemrec.data.store import Dataset
from gemrec.errors import MissingDependencyError
from gemrec.models import get_model_class
from gemrec.models.base import Recommender
from gemrec.serve import ServeSettings, create_app


def _served(model_dir, shop, store):
    settings = ServeSettings(model_dir=model_dir, dataset_dir=shop, store=f"sqlite:///{store}")
    with TestClient(create_app(settings)) as client:
        body = client.get("/v1/users/u0/recommendations", params={"k": 5}).json()
    return [r["item_id"] for r in body["items"]]


job = json.loads(Path(sys.argv[1]).read_text())
users, items, shop = np.array(job["users"]), np.array(job["items"]), Path(job["shop"])
out = {"loaded": {}, "served": {}, "fitted": {}}
for name, model_dir in job["saved"].items():
    model = Recommender.load(model_dir)
    out["loaded"][name] = {
        "recommend": model.recommend(users, k=5)[0].tolist(),
        "similar": model.similar_items(items, k=3)[0].tolist(),
    }
    out["served"][name] = _served(Path(model_dir), shop, Path(job["tmp"]) / f"child-{name}.db")
inter = Dataset.open(shop).interactions("train", "valid")
for name, params in job["core"].items():
    model = get_model_class(name)(**params).fit(inter)
    out["fitted"][name] = {
        "recommend": model.recommend(users, k=5)[0].tolist(),
        "score": model.score(users).tolist(),
    }
try:
    get_model_class("lightgcn")(epochs=1).fit(inter)
except MissingDependencyError as exc:
    out["lightgcn_fit_error"] = str(exc)
out["imported"] = [m for m in ("torch", "torch_geometric") if sys.modules.get(m) is not None]
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_shop(tmp_path_factory.mktemp("data") / "shop")


def test_every_model_kind_is_covered() -> None:
    assert set(TRAINED) == set(MODELS)


def test_saved_models_load_rank_and_serve_without_torch(shop, tmp_path) -> None:
    inter = Dataset.open(shop).interactions("train", "valid")
    users, items = np.array(USERS), np.array(ITEMS)
    saved, expected, served = {}, {}, {}
    for name, params in TRAINED.items():
        model = get_model_class(name)(**params).fit(inter)
        saved[name] = str(model.save(tmp_path / name))
        expected[name] = {
            "recommend": model.recommend(users, k=5)[0].tolist(),
            "similar": model.similar_items(items, k=3)[0].tolist(),
        }
        served[name] = _served(tmp_path / name, shop, tmp_path / f"parent-{name}.db")
    fitted = {name: get_model_class(name)(**params).fit(inter) for name, params in CORE.items()}
    job = {
        "users": USERS,
        "items": ITEMS,
        "shop": str(shop),
        "tmp": str(tmp_path),
        "saved": saved,
        "core": CORE,
    }
    (tmp_path / "job.json").write_text(json.dumps(job))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    code = _block("torch", "torch_geometric") + textwrap.dedent(_CHILD)
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "job.json")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["imported"] == []
    assert out["loaded"] == expected
    assert out["served"] == served
    assert all(len(ids) == 5 for ids in served.values())
    # trained without torch: the same models (graphfilter's randomized SVD runs in NumPy there,
    # from another random probe, so its scores agree to the SVD's accuracy)
    for name, model in fitted.items():
        if name == "graphfilter":
            np.testing.assert_allclose(out["fitted"][name]["score"], model.score(users), atol=1e-4)
        else:
            assert out["fitted"][name]["recommend"] == model.recommend(users, k=5)[0].tolist()
    assert out["lightgcn_fit_error"] == "training lightgcn needs torch: pip install 'gemrec[torch]'"


def test_a_missing_extra_is_named_in_one_line(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "lightgbm", None)
    with pytest.raises(MissingDependencyError) as info:
        _optional.require("lightgbm", "fusion method 'ltr'")
    assert str(info.value) == "fusion method 'ltr' needs lightgbm: pip install 'gemrec[ltr]'"
    assert isinstance(info.value, GemrecError) and isinstance(info.value, ImportError)
    assert not _optional.is_available("lightgbm")
    assert _optional.is_available("numpy") and not _optional.is_available("no_such_module_x")
    monkeypatch.setitem(sys.modules, "faiss", None)
    with pytest.raises(MissingDependencyError) as info:
        ItemIndex(np.ones((30, 4), np.float32), ann_threshold=10)
    assert str(info.value) == (
        "approximate retrieval over 30 items (at least ann_threshold=10; raise it for exact "
        "search) needs faiss: pip install 'gemrec[ann]'"
    )
    assert ItemIndex(np.ones((30, 4), np.float32), ann_threshold=31).ann is False


def test_every_optional_module_maps_to_a_declared_extra() -> None:
    import tomllib

    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    extras = tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"]
    assert set(_optional.EXTRAS.values()) <= set(extras) - {"all", "dev"}
    (everything,) = extras["all"]  # `all` brings every extra
    named = everything.removeprefix("gemrec[").removesuffix("]").split(",")
    assert sorted(named) == sorted(set(extras) - {"all", "dev"})
    for module, extra in _optional.EXTRAS.items():
        assert _optional.is_available(module), f"{module} ({extra}) must be installed for the tests"
    # the torch models declare what fitting needs; the core models need nothing optional
    for name in MODELS:
        needs = get_model_class(name).tags.fit_requires
        assert set(needs) <= set(_optional.EXTRAS)
        assert bool(needs) == (name in {"lightgcn", "mf", "ncf", "item2vec"})
