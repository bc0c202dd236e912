"""The errors' structured fields: each message is built from them, so a caller adds what it knows
(the epoch, what was saved) by field, and the message never has to be rewritten."""

import copy
import math
import pickle
from pathlib import Path

import pytest

from cnnlab.errors import EXIT_DIVERGED, DivergedError, python_spelling, saved_epochs

NAN = float("nan")


def test_a_divergence_in_an_unknown_epoch_says_this_epoch():
    error = DivergedError(NAN)
    assert math.isnan(error.loss) and (error.epoch, error.epochs_saved, error.removed) == (None, None, None)
    assert str(error) == "training diverged: the loss became nan in this epoch; lower --lr"
    assert error.exit_code == EXIT_DIVERGED == 3


@pytest.mark.parametrize(
    "known, ending",
    [
        (dict(epoch=2), "in epoch 2; lower --lr"),
        (dict(epoch=2, epochs_saved=1), "in epoch 2; lower --lr. epoch 1 is the last saved."),
        (
            dict(epoch=1, epochs_saved=0),
            "in epoch 1; lower --lr. no epoch was complete, so nothing was saved.",
        ),
        (
            dict(epoch=1, removed=Path("runs/x")),
            "in epoch 1; lower --lr; nothing was saved, so runs/x was removed",
        ),
    ],
)
def test_what_becomes_known_is_added_by_field(known, ending):
    first = DivergedError(float("inf"))
    told = first
    for name, value in known.items():  # one at a time, as the loop and then the run learn them
        told = told.knowing(**{name: value})
    assert str(told) == "training diverged: the loss became inf " + ending
    assert told.loss == float("inf") and all(getattr(told, k) == v for k, v in known.items())
    assert str(first).endswith("in this epoch; lower --lr")  # the original is left as it was


def test_knowing_keeps_the_fields_already_known():
    told = DivergedError(NAN, epoch=3).knowing(epochs_saved=2)
    assert (told.epoch, told.epochs_saved) == (3, 2)
    assert told.knowing(epochs_saved=0).epochs_saved == 0  # 0 saved is a value, not "unknown"


def test_the_message_names_lr_as_the_caller_spells_it():
    with python_spelling():
        error = DivergedError(NAN, epoch=4)
    assert str(error) == "training diverged: the loss became nan in epoch 4; lower lr="


def test_a_copy_or_a_pickle_keeps_the_fields():
    error = DivergedError(float("inf"), epoch=2, epochs_saved=1)
    for again in (copy.copy(error), pickle.loads(pickle.dumps(error))):
        assert type(again) is DivergedError and str(again) == str(error)
        assert (again.loss, again.epoch, again.epochs_saved) == (float("inf"), 2, 1)


def test_saved_epochs_says_what_a_stopped_run_kept():
    assert saved_epochs(0) == "no epoch was complete, so nothing was saved."
    assert saved_epochs(5) == "epoch 5 is the last saved."
