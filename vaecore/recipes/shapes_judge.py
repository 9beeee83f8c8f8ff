r"""The judge of chapter 10: a small CNN that names a shape or says "no shape".

``shapes-classifier`` is trained with cross-entropy for 8 epochs on the
training shapes of :func:`splits`, as many blurred and dimmed copies of them
(:func:`degraded_shapes`, same labels), and half as many images that show no
single shape (:func:`non_shapes`: blends of two shapes, noise, blobs, faint
images), so that it can refuse what a plain 3-class classifier would force
into a class.
"""
from __future__ import annotations


import torch
import torch.nn.functional as F
from torch import nn

from .. import data
from ..classify import ClassifierTerms, classifier_loss
from ..train import fit
from ..zoo import Recipe

__all__ = ["SIZE", "N_TRAIN", "N_VAL", "N_TEST", "SETUP", "JUDGE_CLASSES", "splits",
           "ShapeClassifier", "blur", "degraded_shapes", "non_shapes", "judge_data",
           "ClassifierTerms", "classifier_loss", "class_probabilities", "recognised", "RECIPES"]

SIZE = 32
N_TRAIN, N_VAL, N_TEST = 10_000, 1_000, 2_000
SETUP = "Adam 1e-3, batch 128"


def splits() -> tuple[data.Dataset, data.Dataset, data.Dataset]:
    """(train 10,000, validation 1,000, test 2,000) binary 32×32 shape images, seeds 0, 1, 2."""
    return tuple(data.shapes(n, size=SIZE, seed=seed, noise=0.0)
                 for n, seed in ((N_TRAIN, 0), (N_VAL, 1), (N_TEST, 2)))


# --- the judge --------------------------------------------------------------

JUDGE_CLASSES = (*data.SHAPE_CLASSES, "no shape")
NO_SHAPE = 3


class ShapeClassifier(nn.Module):
    """x ``(B, 1, 32, 32)`` → logits ``(B, 4)``: rectangle, circle, triangle, no shape.

    Two ``Conv2d(3×3) → ReLU → MaxPool(2)`` stages (8 and 16 channels), then
    ``Linear(64) → ReLU → Linear(4)``.
    """

    def __init__(self, n_classes: int = len(JUDGE_CLASSES)):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
        self.head = nn.Sequential(nn.Linear(16 * (SIZE // 4) ** 2, 64), nn.ReLU(),
                                  nn.Linear(64, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the class logits, ``(B, n_classes)``."""
        return self.head(self.features(x))


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of standard deviation ``sigma`` pixels (radius 4), ``(N, 1, H, W)``."""
    t = torch.arange(-4.0, 5.0)
    k = torch.exp(-t ** 2 / (2 * sigma ** 2))
    k = (k / k.sum()).to(x.dtype)
    x = F.conv2d(x, k.view(1, 1, 1, 9), padding=(0, 4))
    return F.conv2d(x, k.view(1, 1, 9, 1), padding=(4, 0))


def degraded_shapes(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Still recognisable: blurred (σ 0.5 to 1.5 pixels) and dimmed (× 0.5 to 1) copies of ``x``."""
    sigma = [0.5, 1.0, 1.5][int(torch.randint(3, (), generator=g))]
    dim = 0.5 + 0.5 * torch.rand(len(x), 1, 1, 1, generator=g)
    return blur(x, sigma) * dim


def non_shapes(x: torch.Tensor, y: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """As many images as ``x`` that show no single shape, four kinds in equal parts.

    Blends ``a·x_i + (1 − a)·x_j`` of two shapes of different classes
    (a in [0.35, 0.65]); uniform noise; smooth random blobs (smoothed noise
    through a sigmoid); faint images (a grey level below 0.3 plus noise).
    """
    n = len(x)
    j = torch.randperm(n, generator=g)
    j = torch.where(y[j] == y, j.roll(1), j)  # mostly another class; rare repeats stay blends
    a = 0.35 + 0.3 * torch.rand(n, 1, 1, 1, generator=g)
    blends = a * x + (1 - a) * x[j]
    noise = torch.rand(x.shape, generator=g)
    field = F.avg_pool2d(torch.rand(x.shape, generator=g), 7, 1, 3, count_include_pad=False)
    field = (field - field.mean((2, 3), keepdim=True)) / field.std((2, 3), keepdim=True)
    blobs = torch.sigmoid(4 * (field - 0.5))
    faint = (0.3 * torch.rand(n, 1, 1, 1, generator=g) + 0.1 * torch.rand(x.shape, generator=g))
    kind = torch.arange(n) % 4
    out = torch.where((kind == 0).view(-1, 1, 1, 1), blends, noise)
    out = torch.where((kind == 2).view(-1, 1, 1, 1), blobs, out)
    return torch.where((kind == 3).view(-1, 1, 1, 1), faint, out)


def judge_data(dataset: data.Dataset, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The shapes of ``dataset``, as many degraded copies (same labels) and half as many non-shapes."""
    g = torch.Generator().manual_seed(seed)
    x, y = dataset.x, dataset.y
    half = len(x) // 2
    degraded = torch.cat([degraded_shapes(x[i:i + 500], g) for i in range(0, len(x), 500)])
    negatives = non_shapes(x[:half], y[:half], g)
    return (torch.cat([x, degraded, negatives]),
            torch.cat([y, y, torch.full((half,), NO_SHAPE)]))


@torch.no_grad()
def class_probabilities(classifier, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Softmax probabilities ``(N, 4)`` of the images ``x`` ``(N, 1, 32, 32)``."""
    classifier.eval()
    return torch.cat([classifier(x[i:i + batch_size]).softmax(1)
                      for i in range(0, len(x), batch_size)])


def recognised(probs: torch.Tensor, threshold: float) -> torch.Tensor:
    """``(N,)`` bool: a shape class (not "no shape") has probability above ``threshold``."""
    return probs[:, :NO_SHAPE].max(1).values > threshold


def _build_classifier(seed: int = 0) -> ShapeClassifier:
    torch.manual_seed(seed)
    return ShapeClassifier()


def _train_classifier(model, checkpoint=None, history=None, epochs: int = 8):
    train, val, _ = splits()
    remaining = epochs - (len(history) if history else 0)
    return fit(model, classifier_loss, judge_data(train, seed=10), val=judge_data(val, seed=11),
               epochs=max(remaining, 1), seed=0, checkpoint=checkpoint, history=history)


@torch.no_grad()
def _evaluate_classifier(model) -> dict:
    test = splits()[2]
    x, y = judge_data(test, seed=12)
    probs = class_probabilities(model, x)
    n = len(test.x)
    parts = {"clean": slice(0, n), "degraded": slice(n, 2 * n), "no_shape": slice(2 * n, None)}
    metrics = {f"test_accuracy_{k}": (probs[s].argmax(1) == y[s]).float().mean().item()
               for k, s in parts.items()}
    return {**metrics, "test_nll": F.nll_loss(probs.log(), y).item()}


RECIPES = {
    "shapes-classifier": Recipe(
        build=_build_classifier, train=_train_classifier, evaluate=_evaluate_classifier,
        summary=f"shapes 32×32 (10,000 binary images + 10,000 blurred/dimmed + 5,000 "
                f"non-shapes), CNN conv8-conv16-64-4, cross-entropy, {SETUP}, 8 epochs"),
}
