"""Classifiers that judge generative models: their loss, two small CNNs, and their outputs.

A generated image is judged by a classifier trained on the real ones: its
class probabilities say whether the image is recognisable, its penultimate
activations are the features of a Fréchet distance (:func:`vaecore.metrics.fid`).

- :func:`classifier_loss`: cross-entropy for ``fit``, which then records the
  cross-entropy and the accuracy per epoch;
- :class:`ConvClassifier`: ``Conv(3×3) → ReLU → MaxPool(2)`` stages, then a
  two-layer head; :class:`LeNet`: LeNet-5's shape, with :meth:`LeNet.features`;
- :func:`class_probabilities` and :func:`features`: batched, under ``no_grad``;
- :func:`linear_probe_accuracy`: how much of the labels a linear classifier
  reads from a representation (e.g. a VAE's code).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ClassifierTerms", "classifier_loss", "ConvClassifier", "LeNet",
           "class_probabilities", "features", "linear_probe_accuracy"]


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


class ConvClassifier(nn.Module):
    """x ``(B, C, H, W)`` → logits ``(B, n_classes)``.

    One ``Conv2d(3×3, padding 1) → ReLU → MaxPool(2)`` stage per entry of
    ``channels`` (``features``), then ``Linear(hidden) → ReLU →
    Linear(n_classes)`` (``head``). ``H`` and ``W`` must be divisible by
    ``2 ** len(channels)``.
    """

    def __init__(self, in_shape, n_classes: int, channels=(16, 32), hidden: int = 64):
        super().__init__()
        c_in, height, width = in_shape
        scale = 2 ** len(channels)
        if height % scale or width % scale:
            raise ValueError(f"in_shape: expected H and W divisible by {scale}, got {in_shape}")
        layers = []
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            c_in = c
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.head = nn.Sequential(nn.Linear(c_in * (height // scale) * (width // scale), hidden),
                                  nn.ReLU(), nn.Linear(hidden, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the class logits ``(B, n_classes)``."""
        return self.head(self.features(x))


class LeNet(nn.Module):
    """x ``(B, 1, 32, 32)`` → logits ``(B, 10)``; ``features(x)`` gives the 84 penultimate activations.

    LeNet-5's shape: ``Conv(6, 5×5) → ReLU → MaxPool(2) → Conv(16, 5×5) → ReLU →
    MaxPool(2) → Linear(120) → ReLU → Linear(84) → ReLU → Linear(10)``.
    """

    def __init__(self, n_classes: int = 10):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU())
        self.head = nn.Linear(84, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate activations ``(B, 84)``."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


@torch.no_grad()
def class_probabilities(classifier, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Softmax probabilities ``(N, n_classes)`` of the images ``x`` ``(N, ...)``, in eval mode.

    The classifier is left in eval mode.
    """
    classifier.eval()
    return torch.cat([classifier(x[i:i + batch_size]).softmax(1)
                      for i in range(0, len(x), batch_size)])


@torch.no_grad()
def features(classifier, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """``classifier.features(x)`` ``(N, F)`` in float64, batched, in eval mode.

    These are the course's feature spaces for the Fréchet distance
    (:func:`vaecore.metrics.fid`) and for precision and recall, fixed once here: for
    :class:`LeNet` (the MNIST judge) its 84 penultimate activations; for
    :class:`ConvClassifier` (the CIFAR-10 judge) the flattened output of its
    convolutional stages, ``channels[-1] · (H / 2^S) · (W / 2^S)`` values for ``S``
    stages (512 for a 32 × 32 image and channels (16, 32, 32)). The classifier's
    train/eval mode is restored afterwards.
    """
    was_training = classifier.training
    classifier.eval()
    out = torch.cat([classifier.features(x[i:i + batch_size])
                     for i in range(0, len(x), batch_size)])
    classifier.train(was_training)
    return out.double()


def linear_probe_accuracy(fit_x: torch.Tensor, fit_y: torch.Tensor, test_x: torch.Tensor,
                          test_y: torch.Tensor, weight_decay: float = 1e-3,
                          iterations: int = 200) -> float:
    r"""Test accuracy of a multinomial logistic regression fitted on ``(fit_x, fit_y)``.

    Features ``(N, F)`` are standardised with the fitting set's mean and std;
    the weights minimise the mean cross-entropy plus ``weight_decay`` times
    the squared norm of the weight matrix (full batch, L-BFGS, ``iterations``
    steps, float64, deterministic). Labels are integers ``0..C-1``; ``C`` is
    the largest label + 1. Returns the fraction of ``test_y`` predicted.
    """
    for name, t, ndim in (("fit_x", fit_x, 2), ("test_x", test_x, 2), ("fit_y", fit_y, 1),
                          ("test_y", test_y, 1)):
        if not isinstance(t, torch.Tensor) or t.ndim != ndim or len(t) == 0:
            raise ValueError(f"{name}: expected a non-empty {ndim}-d tensor, got "
                             f"{getattr(t, 'shape', type(t).__name__)}")
    if len(fit_x) != len(fit_y) or len(test_x) != len(test_y) or fit_x.shape[1] != test_x.shape[1]:
        raise ValueError(f"expected features and labels of matching sizes, got fit "
                         f"{tuple(fit_x.shape)}/{tuple(fit_y.shape)}, test "
                         f"{tuple(test_x.shape)}/{tuple(test_y.shape)}")
    if not (torch.isfinite(fit_x).all() and torch.isfinite(test_x).all()):
        raise ValueError("linear_probe_accuracy: expected finite features")
    mean, std = fit_x.double().mean(0), fit_x.double().std(0).clamp_min(1e-12)
    a, b = (fit_x.double() - mean) / std, (test_x.double() - mean) / std
    n_classes = int(max(fit_y.max(), test_y.max())) + 1
    weight = torch.zeros(a.shape[1], n_classes, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(n_classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([weight, bias], max_iter=iterations, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(a @ weight + bias, fit_y.long()) + weight_decay * weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    with torch.no_grad():
        return float(((b @ weight + bias).argmax(1) == test_y.long()).double().mean())
