"""examples/quickstart.ipynb runs top to bottom in a Jupyter kernel of this Python."""

import json
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="the notebook test needs the 'dev' extra")
nbclient = pytest.importorskip("nbclient", reason="the notebook test needs the 'dev' extra")
pytest.importorskip("ipykernel", reason="the notebook test needs the 'dev' extra")

import gemrec  # noqa: E402

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "quickstart.ipynb"


def _kernel_of_this_python(root: Path) -> str:
    """A kernelspec that starts this interpreter with this gemrec first on its path."""
    name = "gemrec-under-test"
    spec = root / "kernels" / name
    spec.mkdir(parents=True)
    src = str(Path(gemrec.__file__).resolve().parents[1])
    kernel = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "gemrec under test",
        "language": "python",
        "env": {"PYTHONPATH": src},
    }
    (spec / "kernel.json").write_text(json.dumps(kernel))
    return name


def _text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        parts.append(out.get("text", ""))
        parts.append(out.get("data", {}).get("text/plain", ""))
    return "".join(parts)


def test_quickstart_notebook_runs_and_shows_its_results(tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    kernel = _kernel_of_this_python(tmp_path / "jupyter")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb, kernel_name=kernel, timeout=120, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError naming the cell that failed
    code = [c for c in nb.cells if c.cell_type == "code"]
    # gemrec was importable: the install cell installed nothing and found this version
    assert _text(code[0]).strip() == f"gemrec {gemrec.__version__}"
    assert "300 users x 200 items" in _text(code[1])
    images = [o for c in code for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(images) == 2  # the analysis plots and the recall@k curves, inline
    table = _text(code[4]).splitlines()
    assert table[0].split()[:2] == ["model", "recall@20"]
    recalls = {row.split()[0]: float(row.split()[1]) for row in table[1:3]}
    assert set(recalls) == {"rp3beta", "itemknn"} and min(recalls.values()) > 0.3
    recs = _text(code[5]).splitlines()
    assert recs[0].endswith("(personalized):") and len(recs) == 6
    assert all(" because you " in line for line in recs[1:])
    paths = _text(code[6]).splitlines()
    assert len(paths) == 3 and all(line.startswith("u0001 -> ") for line in paths)
