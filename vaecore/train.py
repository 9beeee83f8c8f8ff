"""The trainer: one function, ``fit``, from a model and a loss to a history.

``fit(model, loss_fn, train, epochs=...)`` (the run's total number of epochs) holds the data in memory as tensors,
shuffles an index each epoch and slices batches from it; ``loss_fn(model,
*batch)`` returns a NamedTuple whose first field ``loss`` is the scalar to
minimise (the batch mean, the only place where the batch is averaged) and
whose other per-example ``(B,)`` fields are logged as per-epoch means. The
model never sees the trainer's state; callbacks are plain callables.
Training runs on a forked random stream: ``fit`` leaves the caller's global
RNG as it found it.
"""
from __future__ import annotations

import contextlib
import math
import numbers
import time

import torch
from tqdm.auto import tqdm

from vaecore import distributed
from vaecore._checks import check_positive_int, check_tensor
from vaecore.device import default_device
from vaecore.history import History

__all__ = ["History", "NonFiniteLossError", "NonFiniteGradientError", "adam", "fit",
           "linear_decay"]


class NonFiniteLossError(FloatingPointError):
    """Training met a NaN or infinite loss or weights; the message says where.

    It names the epoch (and step) and the last good checkpoint.
    """


class NonFiniteGradientError(NonFiniteLossError):
    """The loss was finite but its gradient was not; the step was not applied."""


def adam(params, lr: float) -> torch.optim.Optimizer:
    """Adam with the fused kernel where this torch and device have it, else the default.

    The fused step does the whole update in one kernel; for the 784-400-20
    MLP VAE on a 2-core CPU it trains about 1.3x faster (benchmarks/).
    """
    params = list(params)
    try:
        return torch.optim.Adam(params, lr, fused=True)
    except (RuntimeError, TypeError, ValueError):  # no fused kernel for these params here
        return torch.optim.Adam(params, lr)


def linear_decay(epochs: int, final: float = 0.0):
    r"""Learning-rate factor falling linearly from 1 to ``final`` over ``epochs``.

    Returns the callable :math:`e \mapsto 1 - (1 - \text{final})\,\min(e, E)/E`
    for ``fit(..., lr_schedule=...)``, where ``e`` counts the epochs done before
    the current one (0 for the first) and :math:`E` is ``epochs``.
    """
    check_positive_int("epochs", epochs)
    if not 0.0 <= final <= 1.0:
        raise ValueError(f"final: expected a factor in [0, 1], got {final!r}")
    return lambda e: 1.0 - (1.0 - final) * min(e, epochs) / epochs


def _as_tensors(name: str, data) -> tuple[torch.Tensor, ...]:
    """A tensor or a tuple of tensors of one length N >= 1, as a tuple."""
    tensors = tuple(data) if isinstance(data, (tuple, list)) else (data,)
    if not tensors:
        raise ValueError(f"{name}: expected a tensor or a tuple of tensors, got an empty tuple")
    for i, t in enumerate(tensors):
        check_tensor(f"{name}[{i}]", t, floating=False)
    lengths = {len(t) for t in tensors}
    if len(lengths) > 1:
        raise ValueError(f"{name}: expected tensors with one first dimension, got lengths "
                         f"{[len(t) for t in tensors]}")
    if lengths == {0}:
        raise ValueError(f"{name}: expected at least one example, got none")
    return tensors


def _check_seed(seed) -> int:
    """``seed`` as an int; ValueError unless it is an integer torch can seed with."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) \
            or not -2**63 <= seed < 2**63:
        raise ValueError(f"seed: expected an integer (e.g. 0) in [-2**63, 2**63), got {seed!r}")
    return int(seed)


def _check_dtypes(model, data: dict) -> None:
    """Floating data tensors must have the dtype of the model's parameters; labels may be ints."""
    dtypes = {p.dtype for p in model.parameters() if p.is_floating_point()}
    for name, tensors in data.items():
        for i, t in enumerate(tensors or ()):
            if t.is_floating_point() and dtypes and t.dtype not in dtypes:
                wanted = " or ".join(sorted(map(str, dtypes)))
                raise ValueError(f"{name}[{i}]: expected {wanted}, the dtype of the model's "
                                 f"parameters, got {t.dtype}; convert the data (e.g. "
                                 f"x.to({wanted})) or the model")


def _batches(tensors, batch_size, device, transform, generator, order):
    """Yield ``(step, batch, weight)``: this rank's share of each global batch of ``order``.

    ``transform`` is applied to the first tensor; ``weight`` multiplies the
    batch-mean loss (1 in one process; see ``distributed.shard``).
    """
    for step, start in enumerate(range(0, len(order), batch_size), start=1):
        idx, weight = distributed.shard(order[start:start + batch_size])
        batch = [t.index_select(0, idx.to(t.device)).to(device, non_blocking=True)  # t[idx]
                 for t in tensors]
        if transform is not None:
            batch[0] = transform(batch[0], generator)
        yield step, batch, weight


def _loss_terms(objective, batch, training=False):
    """Call ``objective(*batch)`` (``loss_fn(model, *batch)``); check its first field is a scalar ``loss``.

    In ``training``, the loss must also have a gradient (a constant NaN is left
    for the caller to report; checking it costs a host sync only then).
    """
    out = objective(*batch)
    fields = getattr(out, "_fields", ())
    if not fields or fields[0] != "loss" or getattr(out.loss, "shape", None) != ():
        raise ValueError("loss_fn: expected a NamedTuple whose first field `loss` is a "
                         f"scalar tensor, got {type(out).__name__}")
    if training and not out.loss.requires_grad and torch.isfinite(out.loss):
        raise ValueError("loss_fn: expected a loss computed from the model's parameters "
                         "(requires_grad), got a constant")
    return out


def _all_finite(tensors) -> torch.Tensor:
    """A 0-d bool tensor, computed without a host sync: every entry of every tensor is finite.

    The entries are all finite exactly when the smallest and the largest are
    (NaN propagates through min and max); one ``aminmax`` pass finds both,
    without the overflow a norm or a sum of finite entries could add.
    """
    tensors = [t.detach().coalesce().values() if t.is_sparse else t.detach() for t in tensors]
    extremes = [e for t in tensors if t.numel() for e in torch.aminmax(t)]
    return torch.stack(extremes).isfinite().all() if extremes else torch.tensor(True)


def _accumulate(sums: dict, out, n: int) -> None:
    """Add the batch's fields to ``sums``: (B,) fields summed, scalars times B."""
    for name, value in zip(out._fields, out):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = torch.tensor(float(value))
        if isinstance(value, torch.Tensor) and value.shape in ((), (n,)):
            # float64 sums; Apple's MPS has no float64, so there they are float32
            wide = torch.float32 if value.device.type == "mps" else torch.float64
            total = value.detach().to(wide).sum() * (n if value.dim() == 0 else 1)
            sums[name] = sums.get(name, 0.0) + total


def _record(metrics: dict[str, list[float]], sums: dict, n: int) -> None:
    for name, total in sums.items():
        metrics.setdefault(name, []).append(float(total) / n)


@torch.no_grad()
def _evaluate(model, loss_fn, tensors, batch_size, device, transform, seed) -> dict:
    """Validation sums under ``model.eval()``, with fixed noise every epoch."""
    model.eval()
    sums = {}
    with _fork_rng(device):
        torch.manual_seed(distributed.rank_seed(seed))
        generator = torch.Generator(device).manual_seed(distributed.rank_seed(seed))
        order = torch.arange(len(tensors[0]))
        for _, batch, weight in _batches(tensors, batch_size, device, transform, generator, order):
            if weight:  # (0: a rank without examples in a last, tiny batch)
                out = _loss_terms(lambda *b: loss_fn(model, *b), batch)
                _accumulate(sums, out, len(batch[0]))
    model.train()
    return distributed.all_reduce_sums(sums)


def _fork_rng(device):
    """Fork the global RNG of the CPU and, if it is one, of the accelerator ``device``."""
    if device.type not in ("cuda", "mps"):  # the CPU (and meta, in tests): one stream
        return torch.random.fork_rng(devices=[])
    return torch.random.fork_rng(devices=[device], device_type=device.type)  # not run here


def _save_good_epoch(path, model, history, config) -> None:
    from vaecore.checkpoint import save_checkpoint  # checkpoint.py imports History from here
    save_checkpoint(path, model, config=config, history=history,
                    metrics={"train": history.last("train"), "val": history.last("val")})


def _last_good(checkpoint, saved, history) -> str:
    """Where the last good epoch is, with its losses, for an error message."""
    if not saved:
        return "this run saved no checkpoint"
    losses = ", ".join(f"{split} loss {getattr(history, split)['loss'][saved - 1]:.6g}"
                       for split in ("train", "val") if getattr(history, split).get("loss"))
    return f"the last good checkpoint is {checkpoint} (epoch {saved}), with {losses}"


def _non_finite(model, loss, where, last_good) -> NonFiniteLossError:
    """The error for a step whose loss or gradient is not finite (found in the error path)."""
    if not torch.isfinite(loss):
        return NonFiniteLossError(f"loss is {loss.item()} {where}; {last_good}")
    bad = [name for name, p in model.named_parameters()
           if p.grad is not None and not torch.isfinite(p.grad).all()]
    return NonFiniteGradientError(
        f"gradient of {', '.join(bad)} has NaN or infinite entries {where}, although the "
        f"loss is finite ({loss.item():.6g}); the weights were not updated; {last_good}")


def _not_good(model, history) -> str | None:
    """Why the epoch just recorded is not good, or None.

    Good means: the mean training loss, the validation loss (if any) and
    every parameter of the model are finite.
    """
    for split, label in (("train", "training"), ("val", "validation")):
        losses = getattr(history, split).get("loss")
        if losses and not math.isfinite(losses[-1]):
            return f"{label} loss is {losses[-1]}"
    if not _all_finite(model.parameters()):
        bad = [name for name, p in model.named_parameters() if not torch.isfinite(p).all()]
        return f"parameters {', '.join(bad)} have NaN or infinite entries"
    return None


def _on(device, tensors: tuple) -> tuple:
    """The data on ``device``, once (the same tensors when they are there already)."""
    return tuple(t.to(device) for t in tensors)


def _check_world(batch_size: int, train, val) -> None:
    """Under N processes, every global batch and each dataset need at least N examples."""
    n = distributed.world_size()
    for name, size in (("batch_size", batch_size), ("len(train)", len(train[0])),
                       ("len(val)", len(val[0]) if val is not None else n)):
        if size < n:
            raise ValueError(f"{name}: expected at least one example per process, "
                             f"{n}, got {size}")


def fit(model, loss_fn, train, *, epochs, val=None, batch_size=128, lr=1e-3,
        optimizer=None, lr_schedule=None, clip_grad_norm=None, transform=None,
        callbacks=(), seed=0, progress=True, checkpoint=None, history=None,
        device=None, autocast=None, compile=False) -> History:
    """Train ``model`` by minimising ``loss_fn(model, *batch).loss``; return the History.

    ``train``/``val``: a tensor or a tuple of tensors (e.g. ``(x, y)``) sliced
    together by index; floating ones must have the dtype of the model's
    parameters. Shuffled each epoch by a generator seeded from the integer
    ``seed``, which also seeds the global RNG the model draws from (e.g. its
    reparameterisation) inside a fork: the caller's global RNG is left as it was.
    ``transform(x, generator)`` is applied to each batch's first tensor (e.g.
    dynamic binarisation); for ``val`` with the same noise every epoch.
    ``loss_fn`` returns a NamedTuple: ``loss`` is a scalar (the batch mean, the
    only batch average), every other field of shape ``(B,)`` or ``()`` is
    recorded as a per-epoch, example-weighted mean in ``history.train`` and
    ``history.val``. ``optimizer`` is a callable ``params -> Optimizer``
    (default :func:`adam`, fused where available; ``lr`` is unused when it is given);
    ``lr_schedule(e)`` multiplies the base rate in epoch ``e`` (0 for the first,
    e.g. ``linear_decay``); ``clip_grad_norm`` caps the gradient norm.
    ``callbacks``: ``cb(epoch, history)`` after each epoch (``epoch`` counts
    from 1); one returning True stops training.

    NaN guard: each step checks, with one host sync, that the loss and every
    gradient entry are finite before the weights are updated; if not, it raises
    ``NonFiniteLossError`` (``NonFiniteGradientError`` for a finite loss with a
    NaN/inf gradient; the weights are not updated) naming the epoch, the step
    and the last good checkpoint. An epoch is *good* when its mean training
    loss, its validation loss (with ``val``) and all the model's parameters are
    finite; an epoch that is not stops training with ``NonFiniteLossError``.
    ``checkpoint``: a path where each good epoch is saved, atomically, so the
    file always holds the last good epoch. Finite losses are not judged: a loss
    that rises (β warm-up, a schedule) or grows huge is still saved, as the
    file is what a resumed run starts from; the error names the last good
    epoch's losses.

    ``epochs`` is the total length of the run, counting the epochs already in
    ``history``. Resume: pass the ``history`` of an earlier sitting (with the
    model loaded from its checkpoint) and the same ``epochs``; training
    continues from epoch ``len(history) + 1`` to ``epochs`` (none when the run
    is complete), the seed becomes ``seed + len(history)`` and the optimizer
    starts afresh. A history longer than ``epochs`` is an error.

    ``device``: where to train (default: ``$VAECORE_DEVICE`` if set, else where
    the model is; :func:`vaecore.device.default_device`); the model (in place)
    and the data are moved there. A model already there is not moved.

    Speed options, off by default because they change the arithmetic (the
    default reproduces the course's numbers bit for bit; benchmarks/ measures
    both and checks the loss): ``autocast=torch.bfloat16`` computes the loss
    under ``torch.autocast`` (matrix products in bfloat16, about twice as fast
    on CPUs with AVX-512 BF16 and on GPUs; weights, gradients, optimizer and
    validation stay float32); ``compile=True`` runs ``loss_fn(model, *batch)``
    through ``torch.compile`` (a warm-up of seconds to a minute on the first
    steps; it needs a C++ compiler on the CPU). For the Bernoulli VAE,
    ``loss_fn=vaecore.elbo.negative_elbo_fast`` gives the loss of
    ``negative_elbo`` without its per-call checks.

    Several processes (``torchrun --nproc_per_node=N script.py``; the same
    script, unchanged): each rank joins the process group (gloo on CPU, nccl on
    CUDA) and trains the same model through ``DistributedDataParallel``.
    ``batch_size``, ``lr`` and ``epochs`` keep their one-process meaning:
    every rank shuffles with the same seed, cuts the same *global* batches of
    ``batch_size`` and takes its contiguous slice of each (so ``batch_size``
    must be at least N); a last batch that does not split evenly is weighted
    so that the gradient is still its mean (``distributed.shard``). The
    history holds global means (the ranks' sums are added each epoch). Only
    rank 0 shows progress and writes the checkpoint; every rank resumes from
    it. Callbacks run on every rank; training stops when one returns True on
    any rank. Noise: rank 0 draws from the one-process streams (``seed``),
    rank r from its own (``distributed.rank_seed``), for the model's
    sampling and for ``transform``; a run with sampling is therefore an
    equally valid draw, not the same numbers, while a deterministic loss gives
    the one-process weights up to float rounding (the gradient sums are
    reduced in another order). BatchNorm normalises with each rank's slice
    (batch_size / N examples), as DDP does; running statistics are rank 0's,
    broadcast every step (for statistics over the global batch on GPUs,
    convert with ``torch.nn.SyncBatchNorm.convert_sync_batchnorm`` first).
    """
    check_positive_int("epochs", epochs)
    check_positive_int("batch_size", batch_size)
    seed = _check_seed(seed)
    if clip_grad_norm is not None and not clip_grad_norm > 0:
        raise ValueError(f"clip_grad_norm: expected a positive float, got {clip_grad_norm!r}")
    device = default_device(device, fallback=next(model.parameters(), torch.empty(0)).device)
    if autocast not in (None, torch.bfloat16):  # float16 would need loss scaling
        raise ValueError(f"autocast: expected None or torch.bfloat16, got {autocast!r}")
    train = _on(device, _as_tensors("train", train))
    val = None if val is None else _on(device, _as_tensors("val", val))
    if history is not None and not isinstance(history, History):
        raise ValueError(f"history: expected a History or None, got {type(history).__name__}")
    history = History() if history is None else History.from_dict(history.to_dict())
    done = len(history)
    if done > epochs:
        raise ValueError(f"epochs: expected the run's total number of epochs, at least the "
                         f"{done} already in history, got {epochs}")
    if done == epochs:  # the run is complete: nothing to train
        return history
    params = list(model.to(device).parameters())
    if not params:
        raise ValueError("model: expected a module with trainable parameters, got none")
    _check_dtypes(model, {"train": train, "val": val})
    distributed.init(device)
    _check_world(batch_size, train, val)
    objective = distributed.wrap(model, loss_fn, device)  # loss_fn(model, *batch); DDP if N > 1
    objective = torch.compile(objective) if compile else objective
    mixed = (lambda: torch.autocast(device.type, dtype=autocast)) if autocast \
        else contextlib.nullcontext
    main = distributed.is_main()  # rank 0: the one that writes and shows progress
    config = {"batch_size": batch_size, "lr": lr, "seed": seed}
    n_steps, saved = math.ceil(len(train[0]) / batch_size), None
    model.train()
    with _fork_rng(device), tqdm(range(done + 1, epochs + 1), desc="epochs",
                                 disable=not (progress and main)) as bar:
        torch.manual_seed(distributed.rank_seed(seed + done))  # the model's own draws
        shuffle = torch.Generator().manual_seed(seed + done)  # one order on every rank
        noise = torch.Generator(device).manual_seed(distributed.rank_seed(seed + done + 1))
        opt = optimizer(params) if optimizer else adam(params, lr)
        factor = (lambda e: lr_schedule(done + e)) if lr_schedule else (lambda e: 1.0)
        scheduler = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        for epoch in bar:  # counted from 1, continuing a resumed history
            start, sums = time.perf_counter(), {}
            history.lr.append(opt.param_groups[0]["lr"])
            order = torch.randperm(len(train[0]), generator=shuffle)
            for step, batch, weight in _batches(train, batch_size, device, transform, noise,
                                                order):
                with mixed():
                    out = _loss_terms(objective, batch, training=True)
                # this rank's share of the global batch mean (weight 1 in one process)
                loss = out.loss if weight == 1 else out.loss * weight
                opt.zero_grad(set_to_none=True)
                if loss.requires_grad:  # (a constant loss gets here only as NaN/inf)
                    loss.backward()  # under DDP: gradients averaged over the ranks here
                # the one host sync per step: the loss and every gradient entry finite?
                if not distributed.all_true(_all_finite([loss, *(p.grad for p in params
                                                                 if p.grad is not None)])):
                    raise _non_finite(model, loss, f"at epoch {epoch}, step {step} of "
                                      f"{n_steps}", _last_good(checkpoint, saved, history))
                if clip_grad_norm is not None:
                    torch.nn.utils.clip_grad_norm_(params, clip_grad_norm)
                opt.step()
                if weight:
                    _accumulate(sums, out, len(batch[0]))
            scheduler.step()
            _record(history.train, distributed.all_reduce_sums(sums), len(train[0]))
            if val is not None:
                sums = _evaluate(model, loss_fn, val, batch_size, device, transform, seed)
                _record(history.val, sums, len(val[0]))
            history.epoch_time.append(time.perf_counter() - start)
            problem = _not_good(model, history)
            if problem:  # before the checkpoint: its file keeps the last good epoch
                raise NonFiniteLossError(f"{problem} after epoch {epoch}; "
                                         f"{_last_good(checkpoint, saved, history)}")
            if checkpoint is not None:
                if main:
                    _save_good_epoch(checkpoint, model, history, config)
                saved = epoch
            bar.set_postfix({f"{s}_loss": f"{h['loss'][-1]:.4g}"
                             for s, h in (("train", history.train), ("val", history.val)) if h})
            stop = any([cb(epoch, history) is True for cb in callbacks])  # call all, then stop
            if not distributed.all_true(torch.tensor(not stop)):  # ... if one rank says stop
                break
    return history
