"""Data-parallel training under ``torchrun``: the few helpers ``fit`` needs.

``torchrun --nproc_per_node=N script.py`` starts N copies of a script and
tells each its ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` in the environment.
``fit`` reads them here; in a plain ``python script.py`` the world is one
process and every helper is the identity, so nothing changes there.

- :func:`init` joins the process group (gloo on CPU, nccl on CUDA) once per
  process and leaves it at exit;
- :func:`wrap` puts the model *and* the loss in one ``DistributedDataParallel``
  module, so gradients are averaged over the ranks whatever model methods
  the loss calls;
- :func:`shard` gives this rank its slice of a global batch, and the weight
  that keeps the gradient the mean over the *global* batch when slices differ;
- :func:`all_reduce_sums` adds the per-epoch metric sums of all ranks, so the
  history holds global means;
- :func:`is_main` is true on rank 0, the only rank that writes files.
"""
from __future__ import annotations

import atexit
import os

import torch
import torch.distributed as dist

__all__ = ["rank", "world_size", "is_main", "init", "wrap", "shard", "rank_seed",
           "all_reduce_sums", "all_true", "barrier"]


def world_size() -> int:
    """Number of processes training together (``$WORLD_SIZE``; 1 outside ``torchrun``)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return int(os.environ.get("WORLD_SIZE", 1))


def rank() -> int:
    """This process's number, 0 to ``world_size() - 1`` (``$RANK``; 0 outside ``torchrun``)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", 0))


def is_main() -> bool:
    """True on rank 0, the one process that writes checkpoints, records and progress."""
    return rank() == 0


def init(device: torch.device) -> None:
    """Join the process group if ``torchrun`` started several processes (idempotent).

    Backend nccl for CUDA (not run here: no GPU in CI), gloo otherwise; the
    address, port, rank and world size come from the environment
    (``init_method="env://"``). The group is destroyed when the process exits.
    """
    if int(os.environ.get("WORLD_SIZE", 1)) == 1 or dist.is_initialized():
        return
    if device.type == "cuda":  # not run here
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    atexit.register(lambda: dist.is_initialized() and dist.destroy_process_group())


class _Objective(torch.nn.Module):
    """The model and its loss function as one module: ``forward(*batch) = loss_fn(model, *batch)``."""

    def __init__(self, model: torch.nn.Module, loss_fn):
        super().__init__()
        self.model, self.loss_fn = model, loss_fn

    def forward(self, *batch):
        return self.loss_fn(self.model, *batch)


def wrap(model: torch.nn.Module, loss_fn, device: torch.device):
    """``batch -> loss_fn(model, *batch)``; under several processes, through DDP.

    DDP broadcasts rank 0's weights and buffers (BatchNorm's running
    statistics) to every rank, and averages gradients during ``backward``.
    Every trainable parameter must get a gradient from the loss (DDP's rule;
    set ``requires_grad=False`` on the others).
    """
    if world_size() == 1:
        return lambda *batch: loss_fn(model, *batch)
    from torch.nn.parallel import DistributedDataParallel
    ids = [device.index] if device.type == "cuda" else None  # not run here
    return DistributedDataParallel(_Objective(model, loss_fn), device_ids=ids)


def shard(idx: torch.Tensor) -> tuple[torch.Tensor, float]:
    """This rank's slice of the global batch ``idx``, and the weight of its mean loss.

    The slices are contiguous and differ in length by at most one
    (``torch.tensor_split``). DDP averages the ranks' gradients, so the rank
    with ``n_r`` of the batch's ``n`` examples multiplies its batch-mean loss by
    ``W n_r / n``: the average is then exactly the gradient of the mean over the
    global batch. A rank left without an example (a last batch smaller than the
    world) computes on one borrowed example with weight 0.
    """
    w = world_size()
    if w == 1:
        return idx, 1.0
    local = torch.tensor_split(idx, w)[rank()]
    if len(local) == 0:
        return idx[:1], 0.0
    return local, w * len(local) / len(idx)


def rank_seed(seed: int) -> int:
    """Rank 0 keeps ``seed`` (a one-process run's stream); rank r draws from its own stream."""
    r = rank()
    return seed if r == 0 else (seed + (r << 48)) % 2**63


def all_reduce_sums(sums: dict) -> dict:
    """The per-epoch sums added over all ranks (the same keys on every rank)."""
    if world_size() == 1 or not sums:
        return sums
    names = sorted(sums)
    # one device for all (a loss may give a CPU tensor beside CUDA ones); nccl needs CUDA
    device = torch.device("cuda", torch.cuda.current_device()) \
        if dist.get_backend() == "nccl" else torch.device("cpu")  # cuda: not run here
    total = torch.stack([torch.as_tensor(sums[k]).to(device, torch.float64) for k in names])
    dist.all_reduce(total)
    return dict(zip(names, total))


def all_true(flag: torch.Tensor) -> torch.Tensor:
    """A 0-d bool tensor: ``flag`` holds on every rank (one all-reduce; no host sync)."""
    if world_size() == 1:
        return flag
    flag = flag.to(torch.int32).reshape(1)
    dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return flag[0].bool()


def barrier() -> None:
    """Wait for every rank (a no-op in one process)."""
    if world_size() > 1 and dist.is_initialized():
        dist.barrier()
