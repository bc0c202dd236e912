"""Every object cnnlab gives a notebook shows itself: a fresh Jupyter kernel (nbclient) runs a notebook
of the API's calls, and each cell's output is checked by MIME type, with no pyplot import anywhere."""

import base64
import io
import json
import os
import re
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

SMALL = "train_size=300, valid_size=100, batch_size=50, precision='32'"

# (code, the MIME type its result shows as); None: the cell's other outputs are checked below.
CELLS = [
    ("import cnnlab, sys", None),
    (f"run = cnnlab.train('convnet', epochs=2, data_dir=DATA, out=OUT + '/run', {SMALL})", None),
    ("run", "text/html"),
    ("run.plot()", "image/png"),
    ("cnnlab.summary('convnet')", "text/html"),
    ("cnnlab.summary('seed', (1, 20, 20))", "text/html"),
    ("cnnlab.convolve(padding=1)", "text/html"),
    ("cnnlab.convolve().explain()", "text/html"),
    ("cnnlab.convolve().animate(ms_per_frame=100)", "text/html"),
    ("data = cnnlab.load_data(DATA); data", "text/html"),
    ("run.config", "text/html"),
    ("cnnlab.options()", "text/html"),
    ("run.predict(data.test_images[:3])", "text/html"),
    ("run.prepare(data.test_images[0])", "image/png"),
    ("run.show_filters()", "image/png"),
    ("run.show_features(0, data_dir=DATA)", "text/html"),
    ("run.show_pooling(0, data_dir=DATA)", "image/png"),
    ("run.plot_confusion(data_dir=DATA)", "image/png"),
    ("run.plot_mistakes(6, data_dir=DATA)", "image/png"),
    (f"cnnlab.lr_find(steps=20, data_dir=DATA, out=OUT + '/lrf', {SMALL})", "text/html"),
    (
        f"cnnlab.compare(['sgd', 'adam'], seeds=1, epochs=1, data_dir=DATA, out=OUT + '/cmp', {SMALL})",
        "text/html",
    ),
    ("cnnlab.train(lr=-1)", None),
    ("print('matplotlib.pyplot' in sys.modules)", None),
]


SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(scope="module")
def executed(tmp_path_factory, synthetic_dir):
    """The notebook, run once in a fresh kernel of this very interpreter: {code: its outputs}."""
    tmp = tmp_path_factory.mktemp("notebook")
    spec = tmp / "jupyter" / "kernels" / "cnnlab-test"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "cnnlab", "language": "python"})
    )
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(f"DATA = {str(synthetic_dir)!r}; OUT = {str(tmp)!r}")]
    for code, _ in CELLS:
        cell = nbformat.v4.new_code_cell(code)
        if code.startswith("cnnlab.train(lr=-1)"):
            cell.metadata["tags"] = ["raises-exception"]
        nb.cells.append(cell)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_PATH", str(tmp / "jupyter"))
        patch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])))
        patch.delenv("MPLBACKEND", raising=False)  # the kernel's own default, as a user's would be
        client = nbclient.NotebookClient(
            nb, kernel_name="cnnlab-test", timeout=300, resources={"metadata": {"path": str(tmp)}}
        )
        client.execute()
    return {code: cell.outputs for (code, _), cell in zip(CELLS, nb.cells[1:])}


def result_of(outputs):
    [result] = [o for o in outputs if o.output_type == "execute_result"]
    return result.data


@pytest.mark.slow
@pytest.mark.parametrize("code, mime", [(c, m) for c, m in CELLS if m], ids=lambda v: str(v)[:40])
def test_each_object_shows_itself(executed, code, mime):
    data = result_of(executed[code])
    assert mime in data, sorted(data)
    assert not any(o.output_type == "stream" and o.name == "stderr" for o in executed[code])
    if mime == "image/png":
        assert base64.b64decode(data[mime]).startswith(b"\x89PNG")


@pytest.mark.slow
def test_run_plot_is_the_picture_and_the_summary_a_single_table(executed):
    from PIL import Image

    png = base64.b64decode(result_of(executed["run.plot()"])["image/png"])
    with Image.open(io.BytesIO(png)) as picture:
        assert picture.size == (1210, 462)  # the 11 x 4.2 inch curves at 110 dpi, not "<Figure size ...>"
        assert len(picture.getcolors(1 << 16) or range(1000)) > 50  # drawn, not blank
    table = result_of(executed["cnnlab.summary('convnet')"])["text/html"]
    assert table.count("<table") == 1 and table.count("Conv2d 1-&gt;32, 3x3") == 1
    misfit = result_of(executed["cnnlab.summary('seed', (1, 20, 20))"])["text/html"]
    assert "does not fit</td>" in misfit
    card = result_of(executed["run"])["text/html"]
    assert "cnnlab-run" in card and re.search(r'<img alt="training curves" width="\d+"', card)


@pytest.mark.slow
def test_training_progress_is_one_output_and_no_warning(executed):
    outputs = executed[next(c for c, _ in CELLS if c.startswith("run = cnnlab.train"))]
    displays = [o for o in outputs if o.output_type == "display_data"]
    assert len(displays) == 1  # one bar, updated in place, however many refreshes
    streams = "".join(o.text for o in outputs if o.output_type == "stream")
    assert "IProgress" not in streams and "Warning" not in streams
    assert re.search(r"^epoch 1  train_loss", streams, re.M) and re.search(
        r"^epoch 2  train_loss", streams, re.M
    )
    assert all(o.name == "stdout" for o in outputs if o.output_type == "stream")


@pytest.mark.slow
def test_an_error_is_one_line_under_the_users_own_cell(executed):
    [error] = [o for o in executed["cnnlab.train(lr=-1)"] if o.output_type == "error"]
    assert error.ename == "ConfigError" and error.evalue == "lr= must be a positive number. Received: -1"
    text = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(error.traceback))
    assert "cnnlab/" not in text and "site-packages" not in text  # none of cnnlab's frames
    assert len(text.splitlines()) <= 8


@pytest.mark.slow
def test_nothing_imported_pyplot(executed):
    outputs = executed["print('matplotlib.pyplot' in sys.modules)"]
    assert "".join(o.text for o in outputs if o.output_type == "stream").strip() == "False"
