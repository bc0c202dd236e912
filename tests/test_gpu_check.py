"""bench/gpu_check.sh, the one-go GPU check, runs on the CPU with --smoke: every part of it, the
GPU presets included, at tiny sizes, so a GPU session finds it working."""

import subprocess
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_smoke_prints_every_run_the_loop_overhead_and_the_step_table(synthetic_dir):
    result = subprocess.run(
        ["bash", "bench/gpu_check.sh", "--smoke", "--data-dir", str(synthetic_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    for run in ("default", "fast-gpu", "best-gpu"):
        row = next(line for line in lines if line.startswith(f"| {run} |"))
        accuracy = float(row.split("|")[2].strip().rstrip("%"))
        assert 0 <= accuracy <= 100
    assert any(line.startswith("loop overhead: convnet") and "loop/bare" in line for line in lines)
    assert any(line.startswith("| convnet | 1 |") and " ms " in line for line in lines)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without a GPU")
def test_gpu_check_without_a_gpu_says_so_in_one_line_and_exits_2():
    result = subprocess.run(
        ["bash", "bench/gpu_check.sh"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert result.stdout.strip().splitlines() == [
        "gpu_check: no CUDA GPU here; run it on a GPU machine, or add --smoke to test it on the CPU"
    ]
