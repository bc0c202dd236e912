"""Run directories are named in one place, and two commands never share one."""

import datetime as dt
import multiprocessing
import subprocess
import sys

from cnnlab.training import claims, rundir


def _new(root, label):
    with claims.claim_new_run_dir(None, label, root=root) as claimed:
        return claimed.path


class _FrozenClock(dt.datetime):
    @classmethod
    def now(cls, tz=None):
        return cls(2026, 11, 26, 12, 0, 0)


def test_same_second_gets_a_suffix(tmp_path, monkeypatch):
    monkeypatch.setattr(claims._dt, "datetime", _FrozenClock)
    first = _new(tmp_path, "compare")
    second = _new(tmp_path, "compare")
    third = _new(tmp_path, "convnet")
    assert [first.name, second.name, third.name] == [
        "20261126-120000-compare",
        "20261126-120000-compare-2",
        "20261126-120000-convnet",
    ]


def _claim_many(root: str, count: int, queue) -> None:
    queue.put([str(_new(claims.Path(root), "compare")) for _ in range(count)])


def test_two_processes_in_the_same_second_never_share_a_directory(tmp_path):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [context.Process(target=_claim_many, args=(str(tmp_path), 25, queue)) for _ in range(2)]
    for worker in workers:
        worker.start()
    claimed = queue.get(timeout=60) + queue.get(timeout=60)
    for worker in workers:
        worker.join(timeout=60)
    assert len(claimed) == 50 and len(set(claimed)) == 50
    assert len(list(tmp_path.iterdir())) == 50


def test_compare_and_lr_find_use_the_shared_namer():
    """No command stamps directories by itself (compare and lr-find once did, without the suffix)."""
    from pathlib import Path

    commands = Path(rundir.__file__).parents[1] / "commands"
    offenders = [p.name for p in commands.glob("*.py") if "strftime" in p.read_text()]
    assert offenders == []


def test_compare_says_out_like_every_other_command():
    shown = subprocess.run(
        [sys.executable, "-m", "cnnlab", "compare", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "--out DIR" in shown and "--compare-out" not in shown
