"""Tests for vaecore.device: one place chooses the device, and fit and the zoo follow it.

No GPU here: the CUDA and MPS choices are checked with a mocked ``torch.cuda``
/ ``torch.backends.mps`` (nothing is allocated on them), and the plumbing
with the ``meta`` device, which has tensors without data.
"""
from typing import NamedTuple

import pytest
import torch

from vaecore import train as train_module
from vaecore.device import default_device
from vaecore.train import fit


@pytest.fixture
def bare(monkeypatch):
    """No $VAECORE_DEVICE, no torchrun, no CUDA, no MPS."""
    for name in ("VAECORE_DEVICE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    return monkeypatch


def test_cpu_when_there_is_nothing_else(bare):
    assert default_device() == torch.device("cpu")


def test_cuda_first_then_mps(bare):
    bare.setattr(torch.backends.mps, "is_available", lambda: True)
    assert default_device() == torch.device("mps")
    bare.setattr(torch.cuda, "is_available", lambda: True)
    assert default_device() == torch.device("cuda", 0)


def test_under_torchrun_each_process_takes_its_own_gpu(bare):
    bare.setattr(torch.cuda, "is_available", lambda: True)
    bare.setenv("LOCAL_RANK", "3")
    assert default_device() == torch.device("cuda", 3)
    assert default_device("cuda:1") == torch.device("cuda", 1)  # an explicit index stays


def test_the_argument_beats_the_variable_beats_the_machine(bare):
    bare.setattr(torch.cuda, "is_available", lambda: True)
    bare.setenv("VAECORE_DEVICE", "cpu")
    assert default_device() == torch.device("cpu")
    assert default_device("meta") == torch.device("meta")
    assert default_device(torch.device("cpu")) == torch.device("cpu")


def test_the_fallback_comes_after_the_variable_and_before_the_machine(bare):
    bare.setattr(torch.cuda, "is_available", lambda: True)
    assert default_device(fallback="cpu") == torch.device("cpu")
    assert default_device("meta", fallback="cpu") == torch.device("meta")
    bare.setenv("VAECORE_DEVICE", "meta")
    assert default_device(fallback="cpu") == torch.device("meta")


def test_fit_trains_where_the_model_is_unless_told(bare):
    """On a GPU machine (mocked), a CPU model stays on the CPU: chapters keep working."""
    bare.setattr(torch.cuda, "is_available", lambda: True)
    model, x = torch.nn.Linear(2, 2), torch.randn(4, 2)
    fit(model, lambda m, x: Loss(((m(x) - x) ** 2).sum(1).mean()), x, epochs=1, progress=False)
    assert model.weight.device == torch.device("cpu")


def test_an_unknown_device_is_a_clear_error(bare):
    bare.setenv("VAECORE_DEVICE", "gpu")
    with pytest.raises(ValueError, match=r"\$VAECORE_DEVICE\), got 'gpu'"):
        default_device()


def test_fit_moves_the_model_and_data_to_the_chosen_device(bare):
    """$VAECORE_DEVICE (meta here) receives the model, each batch and the noise generator."""
    seen = {}

    class Recorder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Linear(2, 2)

    def loss_fn(model, x):
        seen["x"], seen["w"] = x.device, model.w.weight.device
        raise RuntimeError("stop")  # meta tensors have no values to train on

    def transform(x, generator):
        seen["x_before_transform"] = x.device
        return x

    generators, real = [], torch.Generator

    class Generator:  # meta has no generator: note the request, give a CPU one
        def __new__(cls, device="cpu"):
            generators.append(torch.device(device))
            return real("cpu" if torch.device(device).type == "meta" else device)

    bare.setenv("VAECORE_DEVICE", "meta")
    bare.setattr(torch, "Generator", Generator)
    model = Recorder()
    with pytest.raises(RuntimeError, match="stop"):
        fit(model, loss_fn, torch.zeros(4, 2), epochs=1, transform=transform, progress=False)
    assert seen == {"x_before_transform": torch.device("meta"), "x": torch.device("meta"),
                    "w": torch.device("meta")}
    # the shuffling order stays on the CPU (the same order everywhere); the noise follows
    assert generators == [torch.device("cpu"), torch.device("meta")]
    assert model.w.weight.device == torch.device("meta")


class Loss(NamedTuple):
    loss: torch.Tensor


def test_on_the_cpu_nothing_moves(bare):
    model, x = torch.nn.Linear(2, 2), torch.randn(4, 2)
    weight, before = model.weight, model.weight.detach().clone()
    assert train_module._on(torch.device("cpu"), (x,))[0] is x
    fit(model, lambda m, x: Loss(((m(x) - x) ** 2).sum(1).mean()), x, epochs=1, progress=False)
    assert model.weight is weight and not torch.equal(weight.detach(), before)  # trained in place
