"""Where tensors live: the one place that chooses the device.

``default_device()`` answers, in this order: the ``device`` argument, the
environment variable ``VAECORE_DEVICE`` (e.g. ``cpu``, ``cuda``, ``cuda:1``,
``mps``), the caller's ``fallback``, then the first that this machine has of
CUDA, Apple's MPS and the CPU. Under ``torchrun`` on GPUs, ``cuda`` means
this process's own GPU, ``cuda:$LOCAL_RANK``.

Who asks it: the code that trains a model zoo's checkpoints (it uses the GPU
when there is one); ``fit`` (fallback: where the model already is) and the
code that loads checkpoints (fallback: the CPU, as notebooks pass it CPU
tensors), so that a notebook moves to the GPU only when asked:
``VAECORE_DEVICE=cuda``. Generators and ``map_location`` follow. The CUDA and
MPS branches are not run by the test suite (its machines have neither); it
checks them with a mocked ``torch.cuda``.
"""
from __future__ import annotations

import os

import torch

__all__ = ["default_device"]


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return mps is not None and mps.is_available()


def default_device(device: str | torch.device | None = None,
                   fallback: str | torch.device | None = None) -> torch.device:
    """The device to train and load on: ``device``, ``$VAECORE_DEVICE``, ``fallback``, else CUDA, MPS or CPU.

    A bare ``cuda`` (argument, variable or the automatic choice) becomes
    ``cuda:$LOCAL_RANK`` (0 outside ``torchrun``), so each process of a
    multi-GPU run takes its own GPU. ``ValueError`` for a name torch does not know.
    """
    chosen = next((d for d in (device, os.environ.get("VAECORE_DEVICE") or None, fallback)
                   if d is not None), None)
    if chosen is None:
        chosen = "cuda" if torch.cuda.is_available() else "mps" if _mps_available() else "cpu"
    try:
        chosen = torch.device(chosen)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"device: expected a torch device such as 'cpu', 'cuda', 'cuda:1' "
                         f"or 'mps' (argument or $VAECORE_DEVICE), got {chosen!r}") from e
    if chosen.type == "cuda" and chosen.index is None:
        chosen = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return chosen
