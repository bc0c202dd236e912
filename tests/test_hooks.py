"""``cnnlab.inspect.hooks``: the one way layers' outputs are captured, per thread.

The thread test needs no timing: another thread runs the model while this one is recording, and
its calls must not reach this thread's listener.
"""

import threading

import pytest
import torch
from torch import nn

from cnnlab.inspect.hooks import LayerHooks, recording


def model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)).eval()


def test_a_listener_hears_each_hooked_layer_in_the_order_they_run():
    net, calls = model(), []
    hooks = LayerHooks(net, ["2", "0"])
    x = torch.randn(5, 4)
    with hooks.record(lambda name, module, inputs, output: calls.append((name, module, inputs[0], output))):
        net(x)
    assert [(name, module) for name, module, _, _ in calls] == [("0", net[0]), ("2", net[2])]
    assert torch.equal(calls[0][2], x) and torch.equal(calls[0][3], net[0](x))
    assert torch.equal(calls[1][2], net[1](net[0](x)))


def test_outside_a_recording_the_hooks_do_nothing():
    net, calls = model(), []
    hooks = LayerHooks(net, ["0"])
    with hooks.record(lambda *call: calls.append(call)):
        pass
    net(torch.randn(1, 4))
    assert calls == []


def test_another_threads_forward_pass_never_reaches_this_threads_listener():
    net, heard = model(), []
    hooks = LayerHooks(net, ["0", "1", "2"])
    with hooks.record(lambda name, *rest: heard.append((threading.get_ident(), name))):
        other = threading.Thread(target=net, args=(torch.randn(2, 4),))
        other.start()
        other.join()
        assert heard == []
        net(torch.randn(2, 4))
    assert heard == [(threading.get_ident(), name) for name in ("0", "1", "2")]


def test_what_a_listener_returns_replaces_the_layers_output():
    net = model()
    x = torch.randn(3, 4)
    expected = net[2](torch.zeros(3, 3))
    with recording(net, ["1"], lambda name, module, inputs, output: torch.zeros_like(output)):
        assert torch.equal(net(x), expected)
    with recording(net, ["1"], lambda *call: None):
        assert torch.equal(net(x), net[2](net[1](net[0](x))))


def test_recording_removes_its_hooks_even_when_the_block_fails():
    net, calls = model(), []
    with pytest.raises(RuntimeError), recording(net, ["0", "2"], lambda *call: calls.append(call)):
        net(torch.randn(1, 5))  # the wrong number of features
    assert all(not module._forward_hooks for module in net.modules())
    net(torch.randn(1, 4))
    assert calls == []


def test_recordings_nest_and_the_outer_listener_returns():
    net, outer, inner = model(), [], []
    hooks = LayerHooks(net, ["0"])
    with hooks.record(lambda *call: outer.append(call)):
        with hooks.record(lambda *call: inner.append(call)):
            net(torch.randn(1, 4))
        net(torch.randn(1, 4))
    assert (len(outer), len(inner)) == (1, 1)
