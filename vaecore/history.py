"""The record of a training run: per-epoch metrics as plain python floats.

``vaecore.fit`` returns a :class:`History`; ``vaecore.checkpoint`` stores it
beside the weights. It lives in its own module so that neither of those two
imports the other.
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field

__all__ = ["History"]


@dataclass
class History:
    """Per-epoch metrics of a training run, as plain python floats.

    ``train[name][e]`` and ``val[name][e]`` are the example-weighted means of
    the loss function's fields over epoch ``e``; ``epoch_time[e]`` is its wall
    time in seconds (training and validation), ``lr[e]`` the learning rate it
    used. ``len(history)`` is the number of epochs done.
    """
    train: dict[str, list[float]] = field(default_factory=dict)
    val: dict[str, list[float]] = field(default_factory=dict)
    epoch_time: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.epoch_time)

    def last(self, split: str = "train") -> dict[str, float]:
        """The final epoch's metrics of ``split`` ("train" or "val")."""
        if split not in ("train", "val"):
            raise ValueError(f"split: expected 'train' or 'val', got {split!r}")
        return {name: values[-1] for name, values in getattr(self, split).items() if values}

    def to_dict(self) -> dict:
        """A deep copy in plain python types, so it can be saved with the weights."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> History:
        """Inverse of ``to_dict`` (a deep copy)."""
        if not isinstance(d, dict) or set(d) != {"train", "val", "epoch_time", "lr"}:
            raise ValueError("expected a dict with keys train, val, epoch_time, lr "
                             f"(History.to_dict()), got {d!r:.80}")
        return cls(**copy.deepcopy(d))
