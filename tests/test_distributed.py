"""torchrun + DDP on the CPU with gloo on 127.0.0.1: same weights as one process, failures stop the job."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

pytestmark = pytest.mark.slow

# SGD, not AdamW: Adam's division by sqrt(v) turns float32 reordering noise into lr-sized steps
# where a gradient is ~0, which would hide real differences behind a loose tolerance.
# convnet: no batch norm, whose statistics are per rank (no SyncBatchNorm), so two ranks can match one;
# no whitening, so the negative control's first layer starts apart too.
COMMON = [
    "--model",
    "convnet",
    "--no-whiten",
    "--train-size",
    "400",
    "--valid-size",
    "100",
    "--precision",
    "32",
    "--threads",
    "1",
    "--quiet",
    "--optimizer",
    "sgd",
    "--lr",
    "0.05",
]


def torchrun(nproc: int, *args: str, **kwargs) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        "-m",
        "cnnlab",
        *args,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
        **kwargs,
    )


def weights(run) -> dict:
    return torch.load(run / "checkpoint.pt", weights_only=True)["model"]


def test_two_processes_match_one_with_the_same_global_batch(synthetic_dir, tmp_path):
    from cnnlab.cli import main

    one, two, other = tmp_path / "one", tmp_path / "two", tmp_path / "other"
    assert (
        main(
            [
                "train",
                "--data-dir",
                str(synthetic_dir),
                "--out",
                str(one),
                "--batch-size",
                "50",
                "--epochs",
                "2",
                *COMMON,
            ]
        )
        == 0
    )
    # a negative control: one process at the per-rank batch is a different run, and must look it
    assert (
        main(
            [
                "train",
                "--data-dir",
                str(synthetic_dir),
                "--out",
                str(other),
                "--batch-size",
                "25",
                "--epochs",
                "2",
                *COMMON,
            ]
        )
        == 0
    )
    job = torchrun(
        2,
        "train",
        "--data-dir",
        str(synthetic_dir),
        "--out",
        str(two),
        "--batch-size",
        "25",
        "--epochs",
        "2",
        *COMMON,
    )
    out, err = job.communicate(timeout=300)
    assert job.returncode == 0, err
    assert out.count("test accuracy:") == 1  # rank 0 alone prints
    for key, value in weights(one).items():
        # float32 sums in another order (per-rank batches, gloo's all-reduce) grow over 16 steps to
        # about 1e-4 of a weight's norm; a different batch order is 100 times further off.
        relative = lambda run, key=key, value=value: float((weights(run)[key] - value).norm() / value.norm())
        assert relative(two) < 1e-3, f"{key}: relative difference {relative(two):.2e}"
        assert relative(other) > 1e-2, f"{key}: the control run should differ ({relative(other):.2e})"
    rows_one = (one / "metrics.csv").read_text().splitlines()
    rows_two = (two / "metrics.csv").read_text().splitlines()
    assert len(rows_one) == len(rows_two) == 3
    for a, b in zip(rows_one[1:], rows_two[1:]):  # all-reduced metrics: what one process reports
        for x, y in list(zip(a.split(","), b.split(",")))[:6]:
            assert float(x) == pytest.approx(float(y), rel=1e-3, abs=1e-5)
    summary = json.loads((two / "summary.json").read_text())
    assert summary["world_size"] == 2 and json.loads((one / "summary.json").read_text())["world_size"] == 1


def _wait_for(path, timeout=120):
    deadline = time.time() + timeout
    while not path.exists():
        assert time.time() < deadline, f"{path} never appeared"
        time.sleep(0.2)


def test_resume_works_under_torchrun(synthetic_dir, tmp_path):
    full, cut = tmp_path / "full", tmp_path / "cut"
    args = ["--data-dir", str(synthetic_dir), "--batch-size", "25", "--epochs", "3", *COMMON]
    job = torchrun(2, "train", "--out", str(full), *args)
    assert job.wait(timeout=300) == 0, job.stderr.read()
    job = torchrun(2, "train", "--out", str(cut), *args)
    _wait_for(cut / "metrics.csv")
    os.killpg(job.pid, signal.SIGKILL)  # the whole job, mid-run
    job.wait(timeout=60)
    job = torchrun(2, "train", "--resume", str(cut), "--quiet")
    assert job.wait(timeout=300) == 0, job.stderr.read()
    strip = lambda p: [line.rsplit(",", 1)[0] for line in p.read_text().splitlines()]
    assert strip(cut / "metrics.csv") == strip(full / "metrics.csv")
    for key, value in weights(full).items():
        assert torch.equal(weights(cut)[key], value)


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    if int(fh.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return found


def _rank_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            env = dict(item.split(b"=", 1) for item in fh.read().split(b"\0") if b"=" in item)
    except OSError:
        return None
    return int(env[b"RANK"]) if b"RANK" in env else None


def test_a_killed_rank_stops_the_job_instead_of_hanging(synthetic_dir, tmp_path):
    run = tmp_path / "run"
    job = torchrun(
        2,
        "train",
        "--data-dir",
        str(synthetic_dir),
        "--out",
        str(run),
        "--batch-size",
        "10",
        "--epochs",
        "200",
        *COMMON,
    )
    try:
        _wait_for(run / "metrics.csv")
        rank1 = [p for p in _children(job.pid) if _rank_of(p) == 1]
        assert rank1, "could not find rank 1's process"
        start = time.time()
        os.kill(rank1[0], signal.SIGKILL)
        _, err = job.communicate(timeout=150)
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
    assert job.returncode != 0
    assert time.time() - start < 150
    assert "Root Cause" in err and "SIGKILL" in err  # torchrun names the rank that failed first
