"""The notebooks run headless on the python3 kernel, top to bottom, as committed."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]  # 25-80 s each when alone

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
CELL_TIMEOUT_S = 900


def code_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [c for c in nb.cells if c.cell_type == "code"]


def images(nb: nbformat.NotebookNode) -> int:
    return sum("image/png" in o.get("data", {}) for c in code_cells(nb) for o in c.outputs)


def execute(name: str) -> nbformat.NotebookNode:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(
        nb,
        kernel_name="python3",
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": NOTEBOOKS}},
    ).execute()
    return nb


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_committed_without_outputs_and_without_model_classes(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in code_cells(nb):
        assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: outputs"
        assert "class " not in cell.source, f"{path.name}: define models in the package"
    sources = "\n".join(c.source for c in code_cells(nb))
    assert "from gridledger" in sources


def test_01_paper_day(monkeypatch: pytest.MonkeyPatch) -> None:
    # ten hours (00:00-10:00: night, morning peak, first PV and trades) keep CI fast
    monkeypatch.setenv("GRIDLEDGER_NOTEBOOK_HOURS", "10")
    nb = execute("01_paper_day.ipynb")
    assert images(nb) == 5  # the paper's Fig. 3-7
    text = "".join(o.get("text", "") for c in code_cells(nb) for o in c.outputs)
    assert "10 market hours in" in text


def test_02_what_matters() -> None:
    nb = execute("02_what_matters.ipynb")
    assert images(nb) == 1
    text = "".join(o.get("text", "") for c in code_cells(nb) for o in c.outputs)
    assert "8 runs saved in" in text


def test_03_trust_under_attack() -> None:
    # five 8-hour evening runs plus the refusal probes; every claim in its text is an assert
    nb = execute("03_trust_under_attack.ipynb")
    assert images(nb) == 2  # reputations over the evening, the cheat's sales per hour
    text = "".join(o.get("text", "") for c in code_cells(nb) for o in c.outputs)
    assert "5 runs of 8 market hours in" in text


def test_04_double_auction() -> None:
    # the default day under both mechanisms (about 10 s each); every claim is an assert
    nb = execute("04_double_auction.ipynb")
    assert images(nb) == 2  # prices hour by hour, who trades with whom
    text = "".join(o.get("text", "") for c in code_cells(nb) for o in c.outputs)
    assert "2 runs of 24 market hours in" in text
