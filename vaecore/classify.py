"""Training a classifier with ``fit``: the loss shared by the course's judges.

Three chapters train a small classifier to measure generative models (a
LeNet for FID features, a shape judge, a bird-vs-horse judge); they all use
this loss, so ``fit`` records the cross-entropy and the accuracy per epoch.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

__all__ = ["ClassifierTerms", "classifier_loss"]


class ClassifierTerms(NamedTuple):
    """``loss``: batch-mean cross-entropy; ``nll`` and ``correct``: ``(B,)``."""
    loss: torch.Tensor
    nll: torch.Tensor
    correct: torch.Tensor


def classifier_loss(model, x: torch.Tensor, y: torch.Tensor) -> ClassifierTerms:
    """Cross-entropy of the labels ``y`` ``(B,)``; per-example terms ``(B,)``, loss their mean.

    ``model(x)`` returns logits ``(B, classes)``; ``correct`` is 1.0 where the
    arg-max class is ``y``, so its epoch mean in a History is the accuracy.
    """
    logits = model(x)
    nll = F.cross_entropy(logits, y, reduction="none")
    return ClassifierTerms(nll.mean(), nll, (logits.argmax(1) == y).float())
