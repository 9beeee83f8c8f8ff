r"""Chapter 15 (``chapters/15_conditional_vae.ipynb``): VAEs that use labels.

Two uses of side information, each on chapter 5's MNIST protocol (dynamically
binarized training images, the 55,000 of :func:`vaecourse.protocol.mnist_split`,
the fixed binarized test set of :func:`vaecourse.protocol.test_images`,
Adam 1e-3):

- **completing an image** (:data:`COMPLETION`): the conditional VAE
  :class:`vaecore.cvae.ConditionalVAE` sees the bottom-left quadrant
  (:data:`OBSERVED`) and models the other three, with a conditional prior
  :math:`p(z \mid y)`; the deterministic :class:`vaecore.cvae.Completer` fills
  the same pixels with one Bernoulli probability each. Both MLPs with two
  hidden layers of :data:`COMPLETION_HIDDEN` units; three seeds each.
- **learning from 100 labels** (:data:`SEMI_SUPERVISED`): Kingma et al.'s M2
  (:class:`vaecore.semisupervised.M2`, one hidden layer of :data:`M2_HIDDEN`
  softplus units, a latent of :data:`M2_LATENT`, as in the paper) trained on
  the 55,000 training images of which :data:`LABELS_PER_CLASS` per class keep
  their label; and the same classifier network, at the same initialisation,
  trained on those labelled images alone. Seed ``s`` draws the labelled subset
  (:func:`labelled_subset` with seed ``s``), so the three seeds are three draws
  of the 100 labels, and the two recipes of one seed share theirs. The unlabelled
  images are binarized afresh in every batch; the labelled rows (the 100 images
  repeated) once each (:func:`labelled_rows`).

- **generating a chosen digit** (:data:`LABEL_CVAE`): a CVAE given the class of
  every training image (:class:`vaecore.cvae.LabelCVAE`, one learned Gaussian
  prior per class), the completion models' widths; three seeds.

M2 is also a label-conditional generator: :math:`p(x \mid y, z)` draws a
chosen digit in a chosen style.
"""
from __future__ import annotations

import math
from dataclasses import replace
from functools import partial
from typing import NamedTuple

import torch
from torch import nn

from vaecore import data
from vaecore.cvae import (Completer, ConditionalVAE, LabelCVAE, completer_loss,
                          conditional_log_likelihood_is, cvae_loss, label_cvae_loss)
from vaecore.data import pad_to_32
from vaecore.semisupervised import M2, labelled_pairs, m2_fit_loss, unlabelled_bound
from vaecore.seeding import local_seed
from vaecore.train import fit

from .. import store
from ..protocol import (EVAL_SEED, N_VAL, SPLIT_SEED, evaluate_elbo, mnist_recipe, mnist_split,
                        test_images)
from ..recipe import Recipe, checkpoint_name
from .ch09_vae_vs_gan import NAMES as CH09_NAMES, lenet

__all__ = ["OBSERVED", "COMPLETION_LATENT", "COMPLETION_HIDDEN", "COMPLETION_EPOCHS",
           "IS_IMAGES", "IS_K", "cvae_model", "completer_model", "evaluate_cvae",
           "evaluate_completer", "COMPLETION", "LABEL_CVAE", "SAMPLES_PER_CLASS", "JUDGE",
           "label_cvae_model", "evaluate_label_cvae", "LABELS_PER_CLASS", "M2_HIDDEN",
           "M2_LATENT", "M2_EPOCHS", "CLASSIFIER_WEIGHT", "M2_BATCH", "VAL_SEED",
           "BASELINE_STEPS", "m2_model", "M2Classifier", "m2_classifier", "labelled_subset",
           "train_split", "labelled_rows",
           "ClassifierTerms", "classifier_loss", "evaluate_m2", "evaluate_classifier",
           "SEMI_SUPERVISED", "SEEDS", "RECIPES"]

SEEDS = (0, 1, 2)

# --- completing an image ------------------------------------------------------------------

#: The observed quadrant: 2 is the bottom left (0 top left, 1 top right, 3 bottom right).
OBSERVED = (2,)
COMPLETION_LATENT = 20
COMPLETION_HIDDEN = (256, 256)
COMPLETION_EPOCHS = 20
#: The importance-sampled conditional log-likelihood: the first IS_IMAGES test images, IS_K
#: samples each.
IS_IMAGES, IS_K = 2_000, 500


def cvae_model(seed: int = 0) -> ConditionalVAE:
    """A seeded CVAE: prior, recognition and decoder MLPs with hidden layers 256-256, z of 20."""
    with local_seed(seed):
        return ConditionalVAE(28, OBSERVED, latent_dim=COMPLETION_LATENT,
                              hidden=COMPLETION_HIDDEN)


def completer_model(seed: int = 0) -> Completer:
    """A seeded deterministic completer: an MLP 784-256-256-588 to the hidden pixels' logits."""
    with local_seed(seed):
        return Completer(28, OBSERVED, hidden=COMPLETION_HIDDEN)


@torch.no_grad()
def evaluate_cvae(model: ConditionalVAE) -> dict:
    """What the record keeps of a CVAE, on the fixed binarized test images, nats per image.

    ``test_loss``, ``test_log_likelihood``, ``test_kl``: minus the conditional
    ELBO, :math:`\\log p(x \\mid y, z)` and the KL, on all 10,000 (one z each,
    :func:`vaecourse.protocol.evaluate_elbo`);
    ``nll_is``, ``nll_is_se``: :math:`-\\log \\hat p(x \\mid y)` of the hidden
    pixels with :data:`IS_K` importance samples on the first :data:`IS_IMAGES`
    (mean and standard error over images; one generator seeded with
    ``EVAL_SEED``, batches of 100 in order).
    """
    model.eval()
    x = test_images()
    metrics = evaluate_elbo(model, x, loss_fn=cvae_loss)
    g = torch.Generator().manual_seed(EVAL_SEED)
    log_p = torch.cat([conditional_log_likelihood_is(model, x[i:i + 100], IS_K, generator=g)
                       for i in range(0, IS_IMAGES, 100)]).double()
    metrics.update({"nll_is": -log_p.mean().item(),
                    "nll_is_se": log_p.std().item() / math.sqrt(IS_IMAGES)})
    return metrics


@torch.no_grad()
def evaluate_completer(model: Completer) -> dict:
    """``test_loss`` and ``test_log_likelihood`` (exact) on all 10,000 test images;
    ``nll_is_images`` and ``nll_is_images_se``: minus the (exact) log-likelihood on the first
    :data:`IS_IMAGES`, the images of the CVAE's importance-sampled ``nll_is``."""
    model.eval()
    x = test_images()
    metrics = evaluate_elbo(model, x, loss_fn=completer_loss)
    log_p = completer_loss(model, x[:IS_IMAGES]).log_likelihood.double()
    metrics.update({"nll_is_images": -log_p.mean().item(),
                    "nll_is_images_se": log_p.std().item() / math.sqrt(IS_IMAGES)})
    return metrics


_DATA = "55,000 training images, a random 5,000 held out, seed 0"
_QUADRANTS = "the bottom-left quadrant observed, the other three modelled (Bernoulli)"


def _completion_name(kind: str) -> str:
    z = COMPLETION_LATENT if kind == "cvae" else None
    return checkpoint_name("mnist", "mlp", "bernoulli", kind, "quadrant2", z=z,
                           epochs=COMPLETION_EPOCHS)


#: ``(label, checkpoint name)`` of the two completion models.
COMPLETION = (("CVAE", _completion_name("cvae")), ("deterministic", _completion_name("completer")))

# --- generating a chosen digit -------------------------------------------------------------

#: The label-conditional CVAE: the completion models' widths, latent size and epochs.
LABEL_CVAE = checkpoint_name("mnist", "mlp", "bernoulli", "labelcvae", z=COMPLETION_LATENT,
                             epochs=COMPLETION_EPOCHS)
#: Its recorded samples: SAMPLES_PER_CLASS of each class, read by chapter 9's judge.
SAMPLES_PER_CLASS = 100
JUDGE = CH09_NAMES["judge"]


def label_cvae_model(seed: int = 0) -> LabelCVAE:
    """A seeded label-conditional CVAE: a Gaussian prior per class, recognition 794-256-256-40,
    decoder 30-256-256-784."""
    with local_seed(seed):
        return LabelCVAE(28, 10, latent_dim=COMPLETION_LATENT, hidden=COMPLETION_HIDDEN)


@torch.no_grad()
def evaluate_label_cvae(model: LabelCVAE) -> dict:
    """``test_loss``, ``test_log_likelihood``, ``test_kl``: minus the conditional ELBO of each
    fixed binarized test image given its label and its terms (nats per image, one z each, a
    generator seeded with ``EVAL_SEED``, batches of 1,000); ``sample_agreement``: the share of
    :data:`SAMPLES_PER_CLASS` samples of each class that chapter 9's judge
    (``mnist32-lenet-classifier-e3``) reads as that class."""
    model.eval()
    x, y = test_images(), data.mnist("test").y
    g = torch.Generator().manual_seed(EVAL_SEED)
    sums = {"loss": 0.0, "log_likelihood": 0.0, "kl": 0.0}
    for i in range(0, len(x), 1000):
        terms = label_cvae_loss(model, x[i:i + 1000], y[i:i + 1000], generator=g)
        sums["loss"] += terms.loss.item() * len(terms.kl)
        sums["log_likelihood"] += terms.log_likelihood.sum().item()
        sums["kl"] += terms.kl.sum().item()
    metrics = {f"test_{k}": v / len(x) for k, v in sums.items()}
    judge = lenet()
    store.load_weights(JUDGE, judge)
    judge.eval()
    wanted = torch.arange(10).repeat_interleave(SAMPLES_PER_CLASS)
    samples = model.sample(wanted, generator=g)
    metrics["sample_agreement"] = (judge(pad_to_32(samples)).argmax(1) == wanted
                                   ).double().mean().item()
    return metrics

# --- learning from 100 labels --------------------------------------------------------------

LABELS_PER_CLASS = 10
M2_HIDDEN, M2_LATENT = 500, 50
M2_EPOCHS = 20
#: The weight of the classifier's log-likelihood on the labelled pairs, per labelled image,
#: beside the per-image bounds (:func:`vaecore.semisupervised.m2_loss`; the paper's α, see
#: the chapter for the conversion).
CLASSIFIER_WEIGHT = 0.1
M2_BATCH = 100
#: The one binarization of the held-out images behind the learning curves.
VAL_SEED = 3
#: The classifier alone: steps of ``M2_BATCH`` labelled images (dynamically binarized).
BASELINE_STEPS = 2_000


def m2_model(seed: int = 0) -> M2:
    """A seeded M2: classifier 784-500-10, encoder 794-500-50, decoder 60-500-784, softplus."""
    with local_seed(seed):
        return M2(784, 10, latent_dim=M2_LATENT, hidden=M2_HIDDEN)


class M2Classifier(nn.Module):
    """M2's classifier network alone (784-500-10, softplus): the baseline trained on the
    labelled images only, without M2's encoder and decoder (which it would not train)."""

    def __init__(self, classifier: nn.Module):
        super().__init__()
        self.classifier = classifier

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(x.flatten(1))


def m2_classifier(seed: int = 0) -> M2Classifier:
    """The classifier of :func:`m2_model` ``(seed)``, the same initial weights, alone."""
    return M2Classifier(m2_model(seed).classifier)


def train_split() -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """``((x, y), (x_val, y_val))``: the protocol's 55,000 training and 5,000 held-out images
    with their labels (the same split as :func:`vaecourse.protocol.mnist_split`)."""
    mnist = data.mnist("train")
    return data.train_val_split((mnist.x, mnist.y), n_val=N_VAL, seed=SPLIT_SEED)


def labelled_subset(y: torch.Tensor, per_class: int = LABELS_PER_CLASS, *, seed: int,
                    n_classes: int = 10) -> torch.Tensor:
    """Indices of ``per_class`` images of each class, drawn at random (``seed``), sorted.

    ``y``: integer labels in ``[0, n_classes)``. The same indices for the same
    labels and seed; a different ``seed`` is another draw of the labelled subset.
    """
    if isinstance(per_class, bool) or not (isinstance(per_class, int) and per_class >= 1):
        raise ValueError(f"per_class: expected an integer >= 1, got {per_class!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed: expected an integer, got {seed!r}")
    if y.dtype.is_floating_point or y.dim() != 1 or (len(y) and (y.min() < 0
                                                             or y.max() >= n_classes)):
        raise ValueError(f"y: expected integer labels in [0, {n_classes}) of shape (N,), got "
                         f"{y.dtype} of shape {tuple(y.shape)}")
    g = torch.Generator().manual_seed(seed)
    chosen = []
    for c in range(n_classes):
        members = (y == c).nonzero().flatten()
        if len(members) < per_class:
            raise ValueError(f"class {c} has {len(members)} images, fewer than {per_class}")
        chosen.append(members[torch.randperm(len(members), generator=g)[:per_class]])
    return torch.cat(chosen).sort().values


def labelled_rows(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The labelled subset of seed ``seed`` (:func:`labelled_subset` of the 55,000 training
    images), repeated in shuffled rounds to ``n`` rows and binarized (each row its own
    Bernoulli draw, fixed over epochs): ``(x_l, y_l)``.

    One generator seeded with ``seed`` draws the rounds' orders, then the bits: the first
    rows hold the same images for every ``n``, but their bits depend on ``n``.
    """
    (x, y), _ = train_split()
    idx = labelled_subset(y, seed=seed)
    g = torch.Generator().manual_seed(seed)
    x_l, y_l = labelled_pairs(n, x[idx], y[idx], generator=g)
    return data.binarize_dynamic(x_l, g), y_l


def _held_out() -> tuple[torch.Tensor, torch.Tensor]:
    """The 5,000 held-out training images, binarized once (``VAL_SEED``), and their labels:
    the learning curves' validation set (never used to choose anything)."""
    _, (x_val, y_val) = train_split()
    return data.binarize_dynamic(x_val, torch.Generator().manual_seed(VAL_SEED)), y_val


def _m2_trainer(model, loss, train, *, seed, val=None, **options):
    """``fit`` on (unlabelled images, labelled images, labels): every image of ``train``
    unlabelled (binarized afresh in each batch by ``transform``), and beside each a labelled
    pair of seed ``seed`` (:func:`labelled_rows` to the same length). With ``val``, the
    held-out images are scored as both (their labelled terms give the validation accuracy)."""
    x_l, y_l = labelled_rows(len(train), seed)
    if val is not None:
        x_val, y_val = _held_out()
        val = (x_val, x_val, y_val)
    return fit(model, loss, (train, x_l, y_l), seed=seed, val=val, **options)


class ClassifierTerms(NamedTuple):
    """``loss``: the cross-entropy (batch mean); ``accuracy`` ``()``."""
    loss: torch.Tensor
    accuracy: torch.Tensor


def classifier_loss(model, x: torch.Tensor, y: torch.Tensor,
                    generator: torch.Generator | None = None) -> ClassifierTerms:
    """The cross-entropy of ``model.classify`` on labelled images; a ``fit`` loss (nothing
    sampled)."""
    logits = model.classify(x)
    return ClassifierTerms(nn.functional.cross_entropy(logits, y),
                           (logits.argmax(1) == y).float().mean())


def _classifier_trainer(model, loss, train, *, seed, val=None, batch_size=M2_BATCH, **options):
    """``fit`` on the labelled pairs of seed ``seed`` alone, in rounds (``epochs``) of 100
    batches (fewer when ``train`` is shorter: the zoo's first-steps check)."""
    x_l, y_l = labelled_rows(min(len(train), 100 * batch_size), seed)
    val = None if val is None else _held_out()
    return fit(model, loss, (x_l, y_l), seed=seed, val=val, batch_size=batch_size, **options)


@torch.no_grad()
def _test_error(model, x: torch.Tensor, y: torch.Tensor) -> float:
    predicted = torch.cat([model.classify(x[i:i + 1000]).argmax(1)
                           for i in range(0, len(x), 1000)])
    return 100 * (predicted != y).double().mean().item()


@torch.no_grad()
def evaluate_m2(model: M2) -> dict:
    """``test_error`` (%, the classifier's argmax on the 10,000 fixed binarized test images) and
    ``test_unlabelled_bound``: the mean of :math:`\\mathcal U(x)` over them (nats per image,
    one z per image and class, a generator seeded with ``EVAL_SEED``, batches of 1,000)."""
    model.eval()
    x, y = test_images(), data.mnist("test").y
    g = torch.Generator().manual_seed(EVAL_SEED)
    bound = math.fsum(unlabelled_bound(model, x[i:i + 1000], generator=g).double().sum().item()
                      for i in range(0, len(x), 1000)) / len(x)
    return {"test_error": _test_error(model, x, y), "test_unlabelled_bound": bound}


@torch.no_grad()
def evaluate_classifier(model: M2Classifier) -> dict:
    """``test_error`` (%) of the classifier on the 10,000 fixed binarized test images."""
    model.eval()
    return {"test_error": _test_error(model, test_images(), data.mnist("test").y)}


def _semi_name(kind: str) -> str:
    z = M2_LATENT if kind == "m2" else None
    epochs = M2_EPOCHS if kind == "m2" else BASELINE_STEPS // 100
    return checkpoint_name("mnist", "mlp", "bernoulli" if kind == "m2" else "classifier",
                           kind if kind == "m2" else "only", f"labels{10 * LABELS_PER_CLASS}",
                           z=z, epochs=epochs)


#: ``(label, checkpoint name)``: M2 and the classifier trained on the labelled images alone.
SEMI_SUPERVISED = (("M2", _semi_name("m2")), ("classifier alone", _semi_name("classifier")))

_LABELS = (f"{10 * LABELS_PER_CLASS} labels ({LABELS_PER_CLASS} per class, drawn by the seed) "
           f"among the 55,000 training images (a random 5,000 held out, seed 0)")


def _completion_recipe(build, loss, evaluate, model: str) -> Recipe:
    summary = (f"MNIST (dynamically binarized; {_DATA}), {_QUADRANTS}; {model}, Adam 1e-3, "
               f"batch 128, {COMPLETION_EPOCHS} epochs")
    return replace(mnist_recipe(build, loss=loss, epochs=COMPLETION_EPOCHS, summary=summary),
                   evaluate=evaluate)


RECIPES = {
    COMPLETION[0][1]: _completion_recipe(
        cvae_model, cvae_loss, evaluate_cvae,
        f"conditional VAE: prior, recognition and decoder MLPs 256-256, z of "
        f"{COMPLETION_LATENT}, minus the conditional ELBO"),
    COMPLETION[1][1]: _completion_recipe(
        completer_model, completer_loss, evaluate_completer,
        "deterministic MLP 784-256-256-588, binary cross-entropy"),
    LABEL_CVAE: replace(mnist_recipe(
        label_cvae_model, loss=label_cvae_loss, epochs=COMPLETION_EPOCHS,
        summary=(f"MNIST (dynamically binarized; {_DATA}) with every label; label-conditional "
                 f"VAE: a Gaussian prior per class, recognition 794-256-256-"
                 f"{2 * COMPLETION_LATENT}, decoder {COMPLETION_LATENT + 10}-256-256-784, minus "
                 f"the conditional ELBO, Adam 1e-3, batch 128, {COMPLETION_EPOCHS} epochs")),
        data=train_split, evaluate=evaluate_label_cvae),
    SEMI_SUPERVISED[0][1]: Recipe(
        build=m2_model, loss=partial(m2_fit_loss, classifier_weight=CLASSIFIER_WEIGHT),
        data=mnist_split, epochs=M2_EPOCHS, evaluate=evaluate_m2, trainer=_m2_trainer,
        fit_options={"lr": 1e-3, "batch_size": M2_BATCH, "transform": data.binarize_dynamic},
        summary=(f"MNIST (dynamically binarized), {_LABELS}; M2 (classifier 784-500-10, "
                 f"encoder 794-500-{M2_LATENT}, decoder {M2_LATENT + 10}-500-784, softplus), "
                 f"classifier weight {CLASSIFIER_WEIGHT:g} per labelled image, batches of "
                 f"{M2_BATCH} unlabelled and {M2_BATCH} labelled images, Adam 1e-3, "
                 f"{M2_EPOCHS} epochs")),
    SEMI_SUPERVISED[1][1]: Recipe(
        build=m2_classifier, loss=classifier_loss, data=mnist_split,
        epochs=BASELINE_STEPS // 100,
        evaluate=evaluate_classifier, trainer=_classifier_trainer,
        fit_options={"lr": 1e-3, "batch_size": M2_BATCH},
        summary=(f"MNIST, {_LABELS}, the labelled images alone (each batch binarized once "
                 f"per row); M2's classifier 784-500-10 at M2's initialisation, "
                 f"cross-entropy, Adam 1e-3, {BASELINE_STEPS:,} batches of {M2_BATCH} "
                 f"({BASELINE_STEPS // 100} epochs of 100 batches)")),
}
