"""``cnnlab evaluate`` and ``cnnlab report`` on a small synthetic run, plus a real browser."""

import base64
import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from cnnlab.cli import main
from cnnlab.data import CLASS_NAMES, FASHION_MNIST
from cnnlab.report.metrics import Evaluation, confused_pairs, per_class

PNG = b"\x89PNG\r\n\x1a\n"


def test_evaluate_prints_scores_confusions_and_writes_pictures(trained_run, tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(["evaluate", str(trained_run), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"accuracy: \d+\.\d\d%", printed)
    for heading in ("precision", "recall", "f1", "confusion matrix", "top confused pairs"):
        assert heading in printed
    assert all(name in printed for name in CLASS_NAMES)
    for name in ("confusion-test.png", "misclassified-test.png"):
        assert (out / name).read_bytes().startswith(PNG)
    saved = json.loads((out / "evaluation-test.json").read_text())
    assert saved["images"] == 200 and np.array(saved["confusion"]).sum() == 200
    assert len(saved["per_class"]) == 10


def test_evaluate_valid_split_is_the_runs_own_held_out_images(trained_run, tmp_path, capsys):
    assert main(["evaluate", str(trained_run), "--split", "valid", "--out", str(tmp_path)]) == 0
    assert "valid split, 100 images" in capsys.readouterr().out
    assert (tmp_path / "confusion-valid.png").exists()


def test_metrics_agree_with_a_hand_computed_case():
    labels = np.array([0, 0, 1, 1, 6, 6, 6])
    predicted = np.array([0, 6, 1, 1, 0, 0, 6])
    probs = np.eye(10, dtype=np.float32)[predicted]
    ev = Evaluation("test", np.zeros((7, 1, 28, 28), np.uint8), labels, probs, FASHION_MNIST.dataset.classes)
    assert ev.accuracy == pytest.approx(4 / 7)
    rows = {r["class"]: r for r in per_class(ev)}
    assert rows["T-shirt/top"]["precision"] == pytest.approx(1 / 3)  # predicted 0 three times, right once
    assert rows["Shirt"]["recall"] == pytest.approx(1 / 3)
    pairs = confused_pairs(ev.confusion, ev.class_names)
    assert pairs[0] == {
        "true": "Shirt",
        "predicted": "T-shirt/top",
        "count": 2,
        "share_of_true": pytest.approx(2 / 3),
    }
    assert len(pairs) == 2  # only non-zero off-diagonal cells


@pytest.fixture(scope="module")
def report_html(trained_run, tmp_path_factory):
    output = tmp_path_factory.mktemp("report") / "report.html"
    assert main(["report", str(trained_run), "--output", str(output)]) == 0
    return output


SECTIONS = ("summary", "config", "curves", "per-class", "confusion", "misclassified", "filters")


def test_report_is_one_self_contained_page(report_html):
    text = report_html.read_text()
    for section in SECTIONS:
        assert f'<section id="{section}">' in text
    images = re.findall(r'<img src="data:image/png;base64,([^"]+)"', text)
    assert len(images) == 4  # curves, confusion matrix, misclassified grid, filters
    assert all(base64.b64decode(data).startswith(PNG) for data in images)
    assert not re.search(r'(src|href)="(https?:)?//', text), "the page must not reach the network"
    assert "Ankle boot" in text and "<td>adamw</td>" in text  # per-class table and config


def find_chromium():
    return next(
        (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None
    )


# Injected into a copy of the page: after load, records each image's decoded width on <body>.
PROBE = """<script>window.addEventListener("load", () => { document.body.dataset.rendered = JSON.stringify(
  Array.from(document.images).map(i => [i.alt, i.complete ? i.naturalWidth : 0])); });</script>"""


@pytest.mark.skipif(find_chromium() is None, reason="no chromium installed (CI installs Debian's `chromium`)")
def test_report_renders_in_a_real_headless_browser(report_html, tmp_path):
    page = tmp_path / "probed.html"
    page.write_text(report_html.read_text().replace("</body>", PROBE + "</body>"))
    result = subprocess.run(
        [
            find_chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=10000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    for section in SECTIONS:
        assert f'id="{section}"' in dom
    rendered = json.loads(re.search(r'data-rendered="([^"]*)"', dom).group(1).replace("&quot;", '"'))
    assert {alt for alt, _ in rendered} == {
        "training curves",
        "confusion matrix",
        "misclassified examples",
        "first-layer filters",
    }
    assert all(width > 100 for _, width in rendered), rendered


def test_evaluate_scores_the_weights_the_run_reported(synthetic_dir, tmp_path, capsys):
    """EMA, early stopping's best epoch and test-time augmentation: evaluate must use what training used."""
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--data-dir",
                str(synthetic_dir),
                "--out",
                str(run),
                "--train-size",
                "300",
                "--valid-size",
                "100",
                "--batch-size",
                "50",
                "--epochs",
                "3",
                "--lr",
                "0.003",
                "--ema",
                "0.8",
                "--patience",
                "1",
                "--tta",
                "--dropout",
                "0.2",
                "--quiet",
            ]
        )
        == 0
    )
    summary = json.loads((run / "summary.json").read_text())
    assert main(["evaluate", str(run), "--out", str(tmp_path)]) == 0
    saved = json.loads((tmp_path / "evaluation-test.json").read_text())
    assert saved["accuracy"] == pytest.approx(summary["test_accuracy"], abs=1 / 200)
