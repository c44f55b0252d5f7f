"""The lecture notebooks: committed without outputs, and each one executes top to bottom (issue 14 item 3)."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
nbformat = pytest.importorskip("nbformat", reason="the notebook tests need the dev extra (nbformat, nbclient)")


def test_there_is_a_notebook_per_lecture_demo():
    names = [p.stem for p in NOTEBOOKS]
    assert names == ["01-convolution-and-pooling", "02-cnn-fashion-mnist", "03-char-rnn-romeo", "04-unet-pets"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_are_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code), \
        f"{path.name} holds outputs: rebuild it with `python notebooks/build.py`"
    assert nb.metadata["kernelspec"]["name"] == "python3"
    source = "\n".join(c.source for c in code)
    assert "/work/" not in source and "/usr/share" not in source     # data comes from the catalog


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes(path, tmp_path):
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    nb = nbformat.read(path, as_version=4)
    # The kernel inherits this process's environment: PYTHONPATH (this checkout's src/), MPLBACKEND and
    # NEURALSIGHT_DATA (conftest.py); it runs in tmp_path, so runs/ and notebook-output/ land there.
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as err:
        pytest.fail(f"{path.name} failed:\n{err}")
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert images, f"{path.name} showed no figure"
    assert (tmp_path / "notebook-output").is_dir()
