"""Chapter 15's recipes: the labelled subsets, the trainers' data, the losses and the records."""
from __future__ import annotations

import math

import pytest
import torch

from _records import reproduced_metrics, seed_runs
from vaecore.cvae import Completer, ConditionalVAE
from vaecore.semisupervised import M2
from vaecourse import zoo
from vaecourse.chapters import ch15_conditional_vae as C
from vaecourse.protocol import mnist_split


def test_labelled_subset_draws_ten_of_each_class_the_same_for_a_seed():
    y = torch.arange(1000) % 10
    a = C.labelled_subset(y, seed=0)
    assert len(a) == 100 and torch.equal(torch.bincount(y[a], minlength=10), torch.full((10,), 10))
    assert torch.equal(a, C.labelled_subset(y, seed=0)) and torch.equal(a, a.sort().values)
    assert not torch.equal(a, C.labelled_subset(y, seed=1))
    with pytest.raises(ValueError, match="fewer than 10"):
        C.labelled_subset(torch.arange(50) % 10, seed=0)
    with pytest.raises(ValueError, match="per_class"):
        C.labelled_subset(y, 0, seed=0)
    with pytest.raises(ValueError, match="integer labels"):
        C.labelled_subset(y + 5, seed=0)
    with pytest.raises(ValueError, match="seed"):
        C.labelled_subset(y, seed=None)


def test_labelled_rows_repeat_one_draw_of_the_training_images_binarized():
    (x, y), _ = C.train_split()
    assert len(x) == 55_000 and len(y) == 55_000
    x_l, y_l = C.labelled_rows(250, seed=1)
    assert x_l.shape == (250, 1, 28, 28) and set(x_l.unique().tolist()) <= {0.0, 1.0}
    chosen = C.labelled_subset(y, seed=1)
    assert set(y_l.tolist()) == set(range(10)) and torch.bincount(y_l).max() <= 30
    # every row is a binarization of one of the chosen images: 0 where the image is 0
    grey = x[chosen].flatten(1)
    for row, label in zip(x_l[:20].flatten(1), y_l[:20]):
        fits = [(row <= (g > 0).float()).all() for g, c in zip(grey, y[chosen]) if c == label]
        assert any(fits)
    x2, y2 = C.labelled_rows(250, seed=1)
    assert torch.equal(x_l, x2) and torch.equal(y_l, y2)


def test_models_are_seeded_and_shaped_as_the_summaries_say():
    assert isinstance(C.cvae_model(), ConditionalVAE)
    assert isinstance(C.completer_model(), Completer)
    m = C.m2_model(1)
    assert isinstance(m, M2) and m.latent_dim == C.M2_LATENT
    assert torch.equal(m.classifier[-1].weight, C.m2_model(1).classifier[-1].weight)
    assert not torch.equal(m.classifier[-1].weight, C.m2_model(2).classifier[-1].weight)
    alone = C.m2_classifier(1)  # M2's classifier at M2's initialisation, without the VAE
    assert all(torch.equal(a, b) for a, b in zip(alone.parameters(), m.classifier.parameters()))
    assert sum(p.numel() for p in alone.parameters()) == sum(
        p.numel() for p in m.classifier.parameters())
    params = sum(p.numel() for p in C.cvae_model().parameters())
    assert params > sum(p.numel() for p in C.completer_model().parameters())


def test_the_two_recipes_of_a_seed_train_on_the_same_labelled_rows(monkeypatch):
    seen = {}

    def fake_fit(model, loss, data, *, seed, **options):
        seen.setdefault(seed, []).append(data[-2:])  # (x_l, y_l): the last two tensors
    monkeypatch.setattr(C, "fit", fake_fit)
    x = C.train_split()[0][0][:300]
    assert torch.equal(x, mnist_split().train[:300])
    for _, name in C.SEMI_SUPERVISED:
        recipe = zoo.recipes()[name]
        recipe.trainer(C.m2_model(), recipe.loss, x, seed=2, **recipe.fit_options)
    (x_m2, y_m2), (x_alone, y_alone) = seen[2]
    assert torch.equal(x_m2, x_alone) and torch.equal(y_m2, y_alone)  # both 300 rows


def test_classifier_loss_is_the_cross_entropy():
    m = C.m2_model()
    x, y = torch.rand(6, 1, 28, 28), torch.arange(6)
    t = C.classifier_loss(m, x, y)
    assert t.loss.item() == pytest.approx(
        torch.nn.functional.cross_entropy(m.classify(x), y).item())
    assert 0 <= t.accuracy.item() <= 1


def test_the_recipes_use_the_chapters_builders_and_evaluations():
    recipes = zoo.recipes()
    assert recipes[C.COMPLETION[0][1]].evaluate is C.evaluate_cvae
    assert recipes[C.COMPLETION[1][1]].evaluate is C.evaluate_completer
    assert recipes[C.SEMI_SUPERVISED[0][1]].evaluate is C.evaluate_m2
    assert recipes[C.SEMI_SUPERVISED[1][1]].evaluate is C.evaluate_classifier
    assert recipes[C.LABEL_CVAE].evaluate is C.evaluate_label_cvae
    assert all(n in recipes for _, n in C.COMPLETION + C.SEMI_SUPERVISED)


@pytest.mark.parametrize("label, name", C.COMPLETION + C.SEMI_SUPERVISED
                         + (("label CVAE", C.LABEL_CVAE),))
def test_every_record_holds_three_seeds_with_the_same_metrics(label, name):
    for run in seed_runs(name, C.SEEDS):
        m = run["metrics"]
        assert all(math.isfinite(v) for v in m.values())
        if "test_error" in m:
            assert 0 <= m["test_error"] <= 100
        if "nll_is" in m:
            assert m["nll_is_se"] > 0 and m["test_kl"] > 0


def test_the_completer_classifier_and_label_cvae_records_are_reproduced():
    reproduced_metrics(C.COMPLETION[1][1], C.evaluate_completer)
    reproduced_metrics(C.SEMI_SUPERVISED[1][1], C.evaluate_classifier)
    reproduced_metrics(C.LABEL_CVAE, C.evaluate_label_cvae)


@pytest.mark.slow
def test_the_m2_record_is_reproduced():
    reproduced_metrics(C.SEMI_SUPERVISED[0][1], C.evaluate_m2)
