"""Nothing lost, take two (issue 25), the processes: a stdout that goes away, printed commands pasted
into a real shell, kills during start-up, signals that arrive at awkward moments, a run directory
swapped under a run, comparisons and sweeps that can always be continued, and two runs in two threads.

Each child is the real ``cnnlab`` process (``main()`` reading ``sys.argv``), sometimes with one
function patched to stall at a known point, so a signal lands exactly there. Every test here failed
against the code before the fix; a hang of the old code fails on a deadline instead of hanging.
"""

from __future__ import annotations

import csv
import json
import os
import shlex
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cnnlab
from cnnlab.cli import main
from tests.test_resume import INTERRUPTIBLE

SMALL = ["--model", "convnet", "--train-size", "300", "--valid-size", "100", "--batch-size", "30"]
SMALL += ["--threads", "1", "--seed", "3"]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}

# The real command-line process: main() with no arguments reads sys.argv, as the `cnnlab` script does.
# {patch} runs first: it may slow the steps down, or stall one function at a known point.
CHILD = (
    INTERRUPTIBLE
    + """
import os, sys, threading, time
{patch}
from cnnlab.cli import main
sys.argv = ["cnnlab", *sys.argv[1:]]
sys.exit(main())
"""
)
SLOW_STEPS = """
from cnnlab.training.torch_engine import TorchEngine
_step = TorchEngine.train_batch
def _slow(self, x, y):
    time.sleep(0.03)
    return _step(self, x, y)
TorchEngine.train_batch = _slow
"""


def stall(module: str, name: str, marker: Path) -> str:
    """A patch that makes ``module.name`` write ``marker`` and then wait forever (a hung read)."""
    return textwrap.dedent(f"""
        import {module} as _patched
        def _stalled(*args, **kwargs):
            open({str(marker)!r}, "w").close()
            threading.Event().wait()
        _patched.{name} = _stalled
    """)


def start(args, patch: str = "", **popen) -> subprocess.Popen:
    options = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True, "env": ENV, **popen}
    return subprocess.Popen([sys.executable, "-c", CHILD.format(patch=patch), *map(str, args)], **options)


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, f"the child ended first: {process.communicate()}"
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)


def finish(process: subprocess.Popen, timeout: float = 60.0) -> tuple[int, str]:
    """The child's exit code and stderr; a child still running at the deadline is a hang, and fails."""
    try:
        _, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"the process did not end within {timeout:.0f} s: {process.communicate()[1][-2000:]}")
    return process.returncode, err


def assert_one_line(err: str) -> None:
    assert err.count("\n") == 1 and "Traceback" not in err and "Exception ignored" not in err, err


@pytest.fixture
def shell(tmp_path) -> dict:
    """A shell environment whose `cnnlab` is this checkout's, to paste printed commands into."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "cnnlab"
    script.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m cnnlab "$@"\n')
    script.chmod(0o755)
    return {**ENV, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def paste(line: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    """Run a line cnnlab printed exactly as a user pasting it into bash would."""
    return subprocess.run(["bash", "-c", line], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def printed_command(err: str, before: str = "Continue with: ") -> str:
    assert before in err, err
    return err.split(before, 1)[1].rstrip("\n")


# --- a stdout that goes away -----------------------------------------------------------------------------


def test_train_into_head_stops_as_ctrl_c_does_and_the_printed_command_finishes(
    synthetic_dir, tmp_path, shell
):
    run, err_file = tmp_path / "run", tmp_path / "err"
    train = [sys.executable, "-m", "cnnlab", "train", "--data-dir", synthetic_dir, *SMALL, "--epochs", "4"]
    line = f"{shlex.join(map(str, [*train, '--out', run]))} 2>{shlex.quote(str(err_file))} | head -1"
    line += "; echo ${PIPESTATUS[0]}"
    done = subprocess.run(["bash", "-c", line], env=ENV, capture_output=True, text=True, timeout=300)
    first, status = done.stdout.splitlines()
    assert first == f"run directory: {run}" and status == "141", done
    err = err_file.read_text()
    assert_one_line(err)
    assert (
        err.startswith("cnnlab: standard output is closed (Broken pipe); epoch ")
        and "is the last saved" in err
    )
    assert not (run / "summary.json").exists() and (run / "checkpoint.pt").exists()
    pasted = paste(printed_command(err), tmp_path, shell)
    assert pasted.returncode == 0, pasted.stderr
    assert json.loads((run / "summary.json").read_text())["epochs"] == 4


@pytest.mark.parametrize("stdout", ["/dev/full", "closed"])
def test_a_full_or_closed_stdout_stops_the_run_with_one_line_and_loses_nothing(
    synthetic_dir, tmp_path, stdout
):
    run = tmp_path / "run"
    redirect = ">/dev/full" if stdout == "/dev/full" else ">&-"
    for quiet in ([], ["--quiet"]):
        train = [
            sys.executable,
            "-m",
            "cnnlab",
            "train",
            "--data-dir",
            synthetic_dir,
            *SMALL,
            "--epochs",
            "2",
        ]
        line = f"{shlex.join(map(str, [*train, '--out', run, *quiet]))} {redirect}"
        done = subprocess.run(["bash", "-c", line], env=ENV, capture_output=True, text=True, timeout=300)
        assert done.returncode == 2, done.stderr
        assert_one_line(done.stderr)
        assert "standard output" in done.stderr
        if quiet:  # it printed nothing until the end: the run finished, saved whole, before it said so
            assert json.loads((run / "summary.json").read_text())["epochs"] == 2
        else:  # stopped at its first line, before any epoch: nothing left behind, as after Ctrl+C
            assert "nothing was saved" in done.stderr and not run.exists()


def test_an_error_with_stderr_on_dev_full_still_exits_2(trained_run, tmp_path):
    (tmp_path / "not-an-image.png").write_text("text")
    for command in (
        ["train", "--data-dir", tmp_path / "nowhere"],
        ["predict", trained_run, tmp_path / "not-an-image.png"],  # its own error lines, then the summary
    ):
        line = f"{shlex.join([sys.executable, '-m', 'cnnlab', *map(str, command)])} 2>/dev/full"
        done = subprocess.run(["bash", "-c", line], env=ENV, capture_output=True, text=True, timeout=120)
        assert done.returncode == 2, done


# --- every printed command is quoted, and works pasted into a real shell ----------------------------------


@settings(max_examples=40, deadline=None)
@given(st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), min_size=1))
def test_a_quoted_word_comes_back_whole_from_bash(word):
    from cnnlab.shell import quote

    done = subprocess.run(["bash", "-c", f"printf %s {quote(word)}"], capture_output=True, timeout=30)
    assert done.stdout == os.fsencode(word) and "\n" not in quote(word)


def make_dir_named(parent: Path, name: str | bytes) -> Path:
    path = Path(os.fsdecode(os.path.join(os.fsencode(parent), os.fsencode(name))))
    path.mkdir()
    return path


@pytest.mark.parametrize(
    "name", ["sp ace", "x;touch F", "-weird", "new\nline", b"caf\xe9", "$(touch F)", "it's"], ids=repr
)
def test_the_printed_resume_command_works_pasted_into_bash(trained_run, synthetic_dir, tmp_path, shell, name):
    """A run directory with a hostile name: train --out refuses it and prints the command that
    continues it, on one line; pasted into bash, that command reaches that very run (nothing else runs)."""
    import shutil

    run = make_dir_named(tmp_path, name)
    shutil.rmtree(run)
    shutil.copytree(trained_run, run)
    flag = f"--out={os.fsdecode(os.fsencode(name))}"
    done = subprocess.run(
        [sys.executable, "-m", "cnnlab", "train", "--data-dir", str(synthetic_dir), flag, "--epochs", "1"],
        cwd=tmp_path,
        env=ENV,
        capture_output=True,
        text=True,
        errors="surrogateescape",
        timeout=120,
    )
    assert done.returncode == 2
    assert_one_line(done.stderr)
    command = printed_command(done.stderr, "or continue it with: ")
    pasted = paste(command, tmp_path, shell)
    assert pasted.returncode == 0, (command, pasted.stderr)
    assert "finished after 2 epochs; nothing to resume" in pasted.stderr
    assert not (tmp_path / "F").exists()


def test_the_continue_command_after_sigterm_is_quoted(synthetic_dir, tmp_path, shell):
    run = tmp_path / "a run; touch F"
    process = start(
        ["train", "--data-dir", synthetic_dir, *SMALL, "--epochs", "3", "--out", run, "--quiet"], SLOW_STEPS
    )
    wait_for(run / "checkpoint.pt", process)
    process.send_signal(signal.SIGTERM)
    code, err = finish(process)
    assert code == 143
    assert_one_line(err)
    pasted = paste(printed_command(err), tmp_path, shell)
    assert pasted.returncode == 0, pasted.stderr
    assert json.loads((run / "summary.json").read_text())["epochs"] == 3 and not (tmp_path / "F").exists()


# --- a kill during start-up is never a dead end ---------------------------------------------------------


def test_a_kill_9_during_start_up_then_the_same_command_or_resume(synthetic_dir, tmp_path, shell):
    run, marker = tmp_path / "run", tmp_path / "in-first-epoch"
    args = ["train", "--data-dir", synthetic_dir, *SMALL, "--epochs", "2", "--out", run, "--quiet"]
    process = start(args, stall("cnnlab.training.loop", "train_one_epoch", marker))
    wait_for(marker, process)
    process.kill()  # SIGKILL: nothing runs, nothing is cleaned up
    process.communicate()
    assert {p.name for p in run.iterdir()} == {
        "config.json",
        "dataset.json",
        "environment.json",
        ".cnnlab.lock",
    }
    # --resume says what works instead, and what it says works when pasted.
    resumed = subprocess.run(
        [sys.executable, "-m", "cnnlab", "train", "--resume", str(run)],
        env=ENV,
        capture_output=True,
        text=True,
    )
    assert resumed.returncode == 2
    assert_one_line(resumed.stderr)
    assert "stopped before its first epoch was saved" in resumed.stderr
    pasted = paste(
        printed_command(resumed.stderr, "start it over in the same directory with: "), tmp_path, shell
    )
    assert pasted.returncode == 0, pasted.stderr
    assert "starting over in it" in pasted.stderr
    assert json.loads((run / "summary.json").read_text())["epochs"] == 2
    # And the same command as the first, after another such kill, starts it over too.
    import shutil

    shutil.rmtree(run)
    marker.unlink()
    process = start(args, stall("cnnlab.training.loop", "train_one_epoch", marker))
    wait_for(marker, process)
    process.kill()
    process.communicate()
    again = start(args)
    code, err = finish(again, timeout=300)
    assert (
        code == 0
        and "held only config.json, dataset.json, environment.json" in err
        and "starting over in it" in err
    ), err


# --- signals at awkward moments ------------------------------------------------------------------------


@pytest.mark.parametrize("signals", [[signal.SIGTERM], [signal.SIGINT] * 3], ids=["sigterm", "three-ctrl-c"])
def test_signals_while_the_data_loader_hangs_end_the_process_in_one_line(synthetic_dir, tmp_path, signals):
    run, marker = tmp_path / "run", tmp_path / "loading"
    args = ["train", "--data-dir", synthetic_dir, *SMALL, "--epochs", "1", "--out", run]
    process = start(args, stall("cnnlab.training.run", "read_dataset", marker))
    wait_for(marker, process)
    time.sleep(0.5)  # the main thread is now waiting for the loader
    for sig in signals:
        process.send_signal(sig)
        time.sleep(0.05)
    code, err = finish(process, timeout=30)
    assert code == (143 if signals[0] == signal.SIGTERM else 130)
    assert_one_line(err)
    assert "before the first epoch was complete" in err and not run.exists()


def test_sigterm_during_an_import_waits_for_the_import_to_finish(synthetic_dir, tmp_path):
    """An exception raised halfway through an import (torch's) can abort the process at exit (134):
    the signal is delivered once the import is done."""
    module, started, done = tmp_path / "slow_import_for_test.py", tmp_path / "started", tmp_path / "done"
    module.write_text(f"import time\nopen({str(started)!r}, 'w').close()\ntime.sleep(1.5)\n")
    with open(module, "a") as fh:
        fh.write(f"open({str(done)!r}, 'w').close()\n")
    patch = textwrap.dedent(f"""
        sys.path.insert(0, {str(tmp_path)!r})
        import cnnlab.training.run as _run
        _make_engine = _run.make_engine
        def _importing_make_engine(*args, **kwargs):
            import slow_import_for_test
            return _make_engine(*args, **kwargs)
        _run.make_engine = _importing_make_engine
    """)
    run = tmp_path / "run"
    process = start(["train", "--data-dir", synthetic_dir, *SMALL, "--epochs", "1", "--out", run], patch)
    wait_for(started, process)
    process.send_signal(signal.SIGTERM)
    code, err = finish(process)
    assert done.exists(), "the signal interrupted the import halfway"
    assert code == 143
    assert_one_line(err)


def test_sigterm_while_a_resume_sets_up_prints_the_command(trained_run, tmp_path, shell):
    import shutil

    run, marker = tmp_path / "run", tmp_path / "loading"
    shutil.copytree(trained_run, run)
    (run / "summary.json").unlink()  # every epoch saved, the final report missing: --resume finishes it
    process = start(["train", "--resume", run], stall("cnnlab.training.run", "read_dataset", marker))
    wait_for(marker, process)
    process.send_signal(signal.SIGTERM)
    code, err = finish(process, timeout=30)
    assert code == 143
    assert_one_line(err)
    assert "nothing changed" in err
    pasted = paste(printed_command(err), tmp_path, shell)
    assert pasted.returncode == 0, pasted.stderr
    assert (run / "summary.json").is_file()


def test_a_run_directory_deleted_and_made_again_mid_run_is_noticed(synthetic_dir, tmp_path):
    import shutil

    run = tmp_path / "run"
    args = ["train", "--data-dir", synthetic_dir, *SMALL, "--epochs", "4", "--out", run, "--quiet"]
    process = start(args, SLOW_STEPS)
    wait_for(run / "checkpoint.pt", process)
    run.rename(tmp_path / "deleted")  # as rm -r would, but at once: no race with the run's own writes
    run.mkdir()
    shutil.rmtree(tmp_path / "deleted", ignore_errors=True)
    code, err = finish(process, timeout=120)
    assert code == 2
    assert_one_line(err)
    assert "was deleted or replaced while this run used it" in err
    assert list(run.iterdir()) == []  # nothing written into the new directory of that name


# --- compare and lr-find can always be continued or run again ----------------------------------------


def test_compare_stopped_then_resumed_keeps_finished_runs_and_finishes(synthetic_dir, tmp_path, shell):
    out = tmp_path / "cmp"
    args = ["compare", "--optimizers", "sgd", "--seeds", "3", "--epochs", "2", "--data-dir", synthetic_dir]
    args += [*SMALL[:-2], "--out", out]  # compare sets the seeds itself
    process = start(args, SLOW_STEPS)
    first, second = out / "sgd-lr0.1-seed0", out / "sgd-lr0.1-seed1"
    wait_for(second / "checkpoint.pt", process)
    process.send_signal(signal.SIGTERM)
    code, err = finish(process)
    assert code == 143
    assert_one_line(err)
    assert "1 of 3 run(s) of the comparison are finished" in err
    finished_at = (first / "summary.json").stat().st_mtime_ns
    # Run again as at first, the comparison is refused, with the command that continues it.
    again = subprocess.run(
        [sys.executable, "-m", "cnnlab", *map(str, args)], env=ENV, capture_output=True, text=True
    )
    assert again.returncode == 2 and "or continue it with: cnnlab compare --resume" in again.stderr, (
        again.stderr
    )
    pasted = paste(printed_command(err), tmp_path, shell)
    assert pasted.returncode == 0, pasted.stderr
    assert "finished before" in pasted.stdout
    assert (first / "summary.json").stat().st_mtime_ns == finished_at  # kept, not trained again
    with open(out / "compare.csv") as fh:
        (row,) = list(csv.DictReader(fh))
    assert row["seeds"] == "3" and row["diverged"] == "0"
    assert all(
        json.loads((out / f"sgd-lr0.1-seed{s}" / "summary.json").read_text())["epochs"] == 2 for s in range(3)
    )


class _Result:
    def __init__(self, seed: int):
        self.history = [{"epoch": 1, "seed": seed}]
        self.summary = {
            "test_accuracy": 0.5,
            "final_valid_accuracy": 0.5,
            "best_valid_accuracy": 0.5,
            "seconds": 1,
        }


def test_a_resumed_comparison_reads_finished_runs_resumes_the_unfinished_and_trains_the_rest(
    tmp_path, monkeypatch, capsys
):
    from cnnlab import fileio
    from cnnlab.errors import RunDirError
    from cnnlab.training import compare, run, rundir

    plan = compare.make_plan({"model": "seed", "epochs": 1, "data_dir": "data"}, ["sgd"], [0.1], 3, None)
    out = tmp_path / "cmp"
    out.mkdir()
    jobs = compare.plan_jobs(plan, out)
    compare._save_jobs(out / "compare.json", plan.model, jobs)
    model, loaded = compare._load_jobs(out / "compare.json")
    assert model == "seed" and loaded == jobs and Path(loaded[0].config.data_dir).is_absolute()
    finished = out / "sgd-lr0.1-seed0"
    finished.mkdir()
    (finished / "summary.json").write_text(json.dumps(_Result(0).summary))
    fileio.write_csv(
        finished / "metrics.csv", rundir.METRIC_COLUMNS, [dict.fromkeys(rundir.METRIC_COLUMNS, 1)]
    )
    (out / "sgd-lr0.1-seed1").mkdir()
    (out / "sgd-lr0.1-seed1" / "checkpoint.pt").write_bytes(b"saved epochs")
    calls = []
    monkeypatch.setattr(
        run, "train", lambda config, session: calls.append(("train", config.seed)) or _Result(2)
    )
    monkeypatch.setattr(
        run, "resume", lambda path, session: calls.append(("resume", Path(path).name)) or _Result(1)
    )
    log: list[str] = []
    outcomes = compare.run_jobs(loaded, out, log.append)
    assert calls == [("resume", "sgd-lr0.1-seed1"), ("train", 2)]
    assert [o.seed for o in outcomes] == [0, 1, 2] and outcomes[0].summary == _Result(0).summary
    assert (
        outcomes[0].history[0]["epoch"] == 1
        and log[0] == "sgd-lr0.1-seed0: test accuracy 50.00%, finished before"
    )
    (out / "compare.json").write_text(json.dumps({"version": 1, "model": "seed", "runs": [{"name": "../x"}]}))
    with pytest.raises(RunDirError, match="compare.json is damaged"):
        compare._load_jobs(out / "compare.json")
    assert main(["compare", "--resume", str(out), "--seeds", "2"]) == 2
    assert "drop the other options (--seeds)" in capsys.readouterr().err


def test_lr_find_leaves_nothing_that_blocks_its_rerun(synthetic_dir, tmp_path, capsys, monkeypatch):
    from cnnlab.training import lr_find

    def sweep_into(out: Path) -> list[str]:
        return ["lr-find", "--data-dir", str(synthetic_dir), "--out", str(out), "--steps", "10", *SMALL]

    assert main(sweep_into(tmp_path / "sweep")) == 0
    assert main(sweep_into(tmp_path / "sweep")) == 0, capsys.readouterr().err  # again, over the first
    assert "left by an earlier lr-find; starting over in it" in capsys.readouterr().err

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(lr_find, "sweep", interrupted)
    assert main(sweep_into(tmp_path / "fresh")) == 130
    assert not (tmp_path / "fresh").exists()
    monkeypatch.undo()
    assert main(sweep_into(tmp_path / "fresh")) == 0


# --- one run per process at a time ----------------------------------------------------------------------


def test_a_second_run_in_another_thread_is_refused_and_the_first_is_as_alone(
    synthetic_dir, tmp_path, monkeypatch
):
    from cnnlab.errors import Busy
    from cnnlab.training.torch_engine import TorchEngine

    options = dict(
        data_dir=str(synthetic_dir), epochs=2, train_size=300, valid_size=100, batch_size=30, seed=3
    )
    training, release = threading.Event(), threading.Event()
    step = TorchEngine.train_batch
    first_thread: list[threading.Thread] = []

    def gated(self, x, y):
        if threading.current_thread() in first_thread:
            training.set()
            release.wait(120)
        return step(self, x, y)

    monkeypatch.setattr(TorchEngine, "train_batch", gated)
    runs = {}
    thread = threading.Thread(
        target=lambda: runs.update(first=cnnlab.train(out=tmp_path / "first", quiet=True, **options))
    )
    first_thread.append(thread)
    thread.start()
    assert training.wait(120)
    with pytest.raises(Busy, match="another run is training in this process"):
        cnnlab.train(out=tmp_path / "second", quiet=True, **options)
    assert not (tmp_path / "second").exists()
    release.set()
    thread.join(300)
    monkeypatch.undo()
    alone = cnnlab.train(out=tmp_path / "alone", quiet=True, **options)

    def metrics(run):
        return [{k: v for k, v in row.items() if k != "seconds"} for row in run.history]

    assert metrics(runs["first"]) == metrics(alone)
