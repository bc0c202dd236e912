import math

import pytest
import torch

from cnnlab.training.config import TrainConfig
from cnnlab.training.schedules import build_schedule, constant, cosine, onecycle, step_decay, with_warmup


def _schedule(name: str, steps_per_epoch: int, **options):
    return build_schedule(TrainConfig(schedule=name, **options), steps_per_epoch)


def test_constant_and_step():
    assert [constant(s, 10) for s in range(3)] == [1.0, 1.0, 1.0]
    assert [step_decay(s, 100, every=3, gamma=0.5) for s in (0, 2, 3, 6, 9)] == [1, 1, 0.5, 0.25, 0.125]
    assert [step_decay(s, 100, every=1, gamma=0.5) for s in range(4)] == [1, 0.5, 0.25, 0.125]
    assert step_decay(3, 100, every=3) == pytest.approx(0.1)  # torch StepLR's default gamma


def test_step_schedule_matches_torch_steplr():
    params = [torch.nn.Parameter(torch.zeros(1))]
    opt = torch.optim.SGD(params, lr=1.0)
    torch_sched = torch.optim.lr_scheduler.StepLR(opt, step_size=4, gamma=0.3)
    ours = _schedule("step", 2, step_epochs=2, gamma=0.3)
    for step in range(20):
        assert opt.param_groups[0]["lr"] == pytest.approx(ours(step, 20))
        opt.step()
        torch_sched.step()


def test_cosine_matches_torch_cosine_annealing():
    params = [torch.nn.Parameter(torch.zeros(1))]
    opt = torch.optim.SGD(params, lr=1.0)
    torch_sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=30)
    for step in range(31):
        assert opt.param_groups[0]["lr"] == pytest.approx(cosine(step, 30), abs=1e-12)
        opt.step()
        torch_sched.step()
    assert cosine(45, 30) == cosine(30, 30) == 0.0  # past the end the rate stays at the floor
    assert [cosine(s, 1) for s in (0, 1)] == [1.0, 0.0]


@pytest.mark.parametrize("pct_start, expected_peak", [(None, 30), (0.05, 5), (0.15, 15)])
def test_onecycle_shape(pct_start, expected_peak):
    total = 100
    f = onecycle if pct_start is None else _schedule("onecycle", 10, pct_start=pct_start)
    values = [f(s, total) for s in range(total + 1)]
    peak = max(range(total + 1), key=values.__getitem__)
    assert peak == expected_peak and values[peak] == pytest.approx(1.0)
    assert values[0] == pytest.approx(1 / 25)
    assert values[-1] == pytest.approx(1 / 25 / 1e4)
    assert all(a <= b for a, b in zip(values[:peak], values[1 : peak + 1]))  # rises
    assert all(a >= b for a, b in zip(values[peak:], values[peak + 1 :]))  # then falls


@pytest.mark.parametrize(
    "total, pct_start", [(100, 0.3), (10, 0.25), (37, 0.05), (20, 0.01), (7, 0.5), (2, 0.5)]
)
def test_onecycle_matches_torch_onecycle_step_by_step(total, pct_start):
    """torch's OneCycleLR without momentum cycling (cos annealing, two phases) is the oracle.

    NOTE: like ``cosine`` (CosineAnnealingLR(T_max=total)), ``onecycle`` reaches its floor at step
    ``total``, the step after the last one trained; torch's OneCycleLR reaches it on the last step,
    ``total_steps - 1``, and peaks at ``pct_start * total_steps - 1``. So ours over ``total`` steps
    is torch's over ``total + 1``, peaking at step ``warm = round(pct_start * total)``.
    """
    warm = max(1, round(pct_start * total))
    params = [torch.nn.Parameter(torch.zeros(1))]
    opt = torch.optim.SGD(params, lr=1.0)
    torch_sched = torch.optim.lr_scheduler.OneCycleLR(
        opt,
        max_lr=1.0,
        total_steps=total + 1,
        pct_start=(warm + 1) / (total + 1),
        anneal_strategy="cos",
        cycle_momentum=False,
        div_factor=25.0,
        final_div_factor=1e4,
        three_phase=False,
    )
    ours = _schedule("onecycle", 1, pct_start=pct_start)
    for step in range(total + 1):
        expected = opt.param_groups[0]["lr"]
        assert onecycle(step, total, pct_start) == pytest.approx(expected, rel=1e-12, abs=1e-15), step
        assert ours(step, total) == onecycle(step, total, pct_start)
        opt.step()
        if step < total:
            torch_sched.step()
    assert onecycle(total + 5, total, pct_start) == onecycle(total, total, pct_start)  # the floor holds


def test_linear_warmup_ramps_then_follows_the_schedule():
    warm = with_warmup(constant, 4)
    assert [warm(s, 10) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    warmed_cosine = _schedule("cosine", 10, warmup_epochs=0.5)
    assert warmed_cosine(0, 100) == pytest.approx(0.2 * cosine(0, 100))
    assert warmed_cosine(50, 100) == pytest.approx(cosine(50, 100))
    assert with_warmup(constant, 0) is constant


def test_schedules_stay_finite_and_positive():
    for name in ("constant", "step", "cosine", "onecycle"):
        f = _schedule(name, 7, warmup_epochs=1.0)
        assert all(math.isfinite(f(s, 70)) and f(s, 70) >= 0 for s in range(71))
