"""A recipe is data: what to build, which loss, which data, how many epochs in total, how to evaluate.

:class:`Recipe` holds plain callables and values; nothing in it trains.
:func:`vaecourse.zoo.train` is the one driver: it builds the model, resumes
from a partial checkpoint, runs ``recipe.trainer`` (``vaecore.train.fit`` by
default) for the epochs still missing, evaluates and records.

Checkpoint names follow one scheme, built by :func:`checkpoint_name`::

    <data>-<net>-<kind>[-<variant>...][-z<latent size>][-beta<β>]-e<epochs>

(a hierarchy's latent sizes, bottom layer first, joined by ``x``: ``z100x50``).

``kind`` is the likelihood (``bernoulli``, ``normal-unitvar``, ...; ``mse``
for an autoencoder's squared error), ``gan``, ``classifier``, or the space a
diffusion model works in (``latent`` or ``pixel``, with no latent size); β appears
only when it is not 1; ``e`` is the total number of epochs, equal to
``Recipe.epochs``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import torch

from vaecore.train import fit

__all__ = ["Recipe", "checkpoint_name"]


@dataclass(frozen=True)
class Recipe:
    """How one checkpoint is made.

    - ``build()``: a fresh, seeded model; it must leave the global RNG as it
      found it (build under :func:`vaecore.seeding.local_seed`);
    - ``loss``: the loss function passed to ``trainer`` (``fit``'s ``loss_fn``).
      A loss with a schedule (e.g. a KL warm-up) exposes ``start(epochs_done)``,
      which the driver calls before training, so that a resumed run continues it;
    - ``data()``: ``(train, val)``, each a tensor or a tuple of tensors
      (``val`` may be None);
    - ``epochs``: the total number of epochs of the run;
    - ``evaluate(model)``: the held-out metrics recorded with the checkpoint;
    - ``summary``: data, model, objective and schedule in one line;
    - ``fit_options``: further keyword arguments of ``trainer`` (``lr``,
      ``batch_size``, ``transform``, ``lr_schedule``, ...);
    - ``callbacks``: factories ``model -> callback`` for ``trainer(callbacks=...)``;
    - ``trainer``: ``fit`` or a function with its signature; ``seed``: its seed;
    - ``requires``: the checkpoints whose weights the trainer loads (at the same seed),
      which must be trained first (e.g. the VQ-VAE under a prior over its codes); a run
      trained into a folder passes it to the trainer as ``weights_from``.
    """
    build: Callable[[], torch.nn.Module]
    loss: Callable
    data: Callable[[], tuple]
    epochs: int
    evaluate: Callable[[torch.nn.Module], dict]
    summary: str
    fit_options: Mapping[str, Any] = field(default_factory=dict)
    callbacks: tuple[Callable[[torch.nn.Module], Callable], ...] = ()
    trainer: Callable = fit
    seed: int = 0
    requires: tuple[str, ...] = ()


def checkpoint_name(data: str, net: str, kind: str, *variants: str,
                    z: int | tuple[int, ...] | None = None, beta: float = 1.0, epochs: int) -> str:
    """The checkpoint name of the scheme above, e.g. ``mnist-mlp-bernoulli-z20-beta0.5-e30``.

    ``z`` is the latent size, or a hierarchy's sizes bottom first (``(100, 50)``: ``z100x50``).
    """
    parts = [data, net, kind, *variants]
    if z is not None:
        parts.append("z" + "x".join(map(str, z if isinstance(z, tuple) else (z,))))
    if beta != 1:
        parts.append(f"beta{beta:g}")
    return "-".join([*parts, f"e{epochs}"])
