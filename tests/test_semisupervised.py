"""vaecore.semisupervised (M2) against a model whose log p(x) and posteriors are exact.

The tractable model: K classes, x | y, z ~ N(W z + b_y, s2 I) with W's columns
orthogonal, so p(x | y) = N(b_y, W W^T + s2 I), p(y | x) by Bayes' rule, and the exact
posterior p(z | x, y) is a diagonal Gaussian: the bounds are then exact in expectation.
"""
import math

import pytest
import torch
from torch.distributions import MultivariateNormal

from vaecore import semisupervised as ss
from vaecore.likelihoods import log_prob_normal


class Exact:
    n_classes, latent_dim, x_dim = 3, 2, 4

    def __init__(self, exact=True):
        g = torch.Generator().manual_seed(0)
        q, _ = torch.linalg.qr(torch.randn(self.x_dim, self.latent_dim, generator=g,
                                           dtype=torch.float64))
        self.W = q * torch.tensor([2.0, 0.7], dtype=torch.float64)  # orthogonal columns
        self.b = 1.5 * torch.randn(self.n_classes, self.x_dim, generator=g, dtype=torch.float64)
        self.s2, self.exact = 0.3, exact

    def p_x_given_y(self, y):
        return MultivariateNormal(self.b[y], self.W @ self.W.T + self.s2 * torch.eye(self.x_dim,
                                                                                   dtype=torch.float64))

    def log_p_x(self, x):
        parts = torch.stack([self.p_x_given_y(k).log_prob(x) for k in range(self.n_classes)], 1)
        return torch.logsumexp(parts, 1) - math.log(self.n_classes)

    def classify(self, x):
        exact = torch.stack([self.p_x_given_y(k).log_prob(x) for k in range(self.n_classes)], 1)
        return exact if self.exact else torch.zeros_like(exact)

    def encode(self, x, onehot):
        b = onehot @ self.b
        precision = 1 + (self.W ** 2).sum(0) / self.s2  # diagonal: W^T W is diagonal
        mu = ((x - b) @ self.W) / self.s2 / precision
        logvar = -precision.log().expand_as(mu)
        return (mu, logvar) if self.exact else (0.5 * mu, logvar + 0.5)

    def log_likelihood(self, x, z, onehot):
        return log_prob_normal(x, z @ self.W.T + onehot @ self.b, math.log(self.s2))


def data(model, n=6):
    g = torch.Generator().manual_seed(1)
    y = torch.randint(model.n_classes, (n,), generator=g)
    z = torch.randn(n, model.latent_dim, generator=g, dtype=torch.float64)
    return z @ model.W.T + model.b[y] + model.s2 ** 0.5 * torch.randn(
        n, model.x_dim, generator=g, dtype=torch.float64), y


def mc(bound, x, *args, draws=20_000, se=False):
    """The mean over ``draws`` draws of z of ``bound(x_repeated, *args_repeated)``, per image
    (and its standard error with ``se``): the images are repeated along the batch, so all
    draws are made in one call."""
    g = torch.Generator().manual_seed(2)
    reps = [a.repeat(draws, *([1] * (a.dim() - 1))) for a in (x, *args)]
    values = bound(*reps, generator=g).view(draws, len(x))
    mean = values.mean(0)
    return (mean, values.std(0) / draws ** 0.5) if se else mean


def test_with_the_exact_posteriors_the_bounds_are_log_p_x_y_and_log_p_x():
    model = Exact()
    x, y = data(model)
    log_p_xy = torch.stack([model.p_x_given_y(int(k)).log_prob(x[i])
                            for i, k in enumerate(y)]) - math.log(model.n_classes)
    labelled = mc(lambda *a, generator: ss.labelled_bound(model, *a, generator=generator), x, y)
    torch.testing.assert_close(labelled, log_p_xy, atol=0.02, rtol=0)
    unlabelled = mc(lambda *a, generator: ss.unlabelled_bound(model, *a, generator=generator), x)
    torch.testing.assert_close(unlabelled, model.log_p_x(x), atol=0.02, rtol=0)


def test_with_other_posteriors_the_unlabelled_bound_is_below_log_p_x():
    model = Exact(exact=False)
    x, _ = data(model)
    gap = model.log_p_x(x) - mc(lambda *a, generator: ss.unlabelled_bound(
        model, *a, generator=generator), x)
    assert bool((gap > 0.1).all())


def test_the_unlabelled_bound_is_the_expected_labelled_bound_plus_the_entropy():
    """U(x) = sum_y q(y | x) L(x, y) + H(q(y | x)), in expectation over the draws of z."""
    model = Exact(exact=False)
    x, _ = data(model)
    logits = torch.tensor([[0.3, -1.0, 2.0]] * len(x), dtype=torch.float64)
    q = torch.softmax(logits, 1)
    labelled, se_l = map(torch.stack, zip(*[mc(lambda *a, generator: ss.labelled_bound(
        model, *a, generator=generator), x, torch.full((len(x),), k), se=True)
        for k in range(3)]))
    unlabelled, se_u = mc(lambda *a, generator: ss.unlabelled_bound(
        model, a[0], generator=generator, logits=a[1]), x, logits, se=True)
    entropy = -(q * q.log()).sum(1)
    expected = (q * labelled.T).sum(1) + entropy
    se = (se_u ** 2 + (q ** 2 * se_l.T ** 2).sum(1)).sqrt()  # independent draws
    assert bool(((unlabelled - expected).abs() < 4 * se).all()), (unlabelled - expected) / se


def test_m2_trains_its_classifier_from_labels_and_its_generator_from_all_images():
    torch.manual_seed(0)
    model = ss.M2(x_dim=16, n_classes=4, latent_dim=3, hidden=32)
    x = torch.rand(8, 16)
    y = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    terms = ss.m2_loss(model, x[:4], y[:4], x[4:], classifier_weight=1.0)
    assert terms.loss.dim() == 0 and 0 <= terms.accuracy <= 1
    torch.testing.assert_close(terms.loss.detach(), -terms.labelled - terms.unlabelled
                               - terms.classifier)
    terms.loss.backward()
    for part in (model.classifier, model.encoder, model.decoder):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())
    # the unlabelled bound alone also reaches the classifier (through q(y | x))
    model.zero_grad()
    ss.unlabelled_bound(model, x).mean().backward()
    assert model.classifier[-1].weight.grad.abs().sum() > 0


def test_bad_inputs_are_refused():
    model = ss.M2(x_dim=16, n_classes=4, latent_dim=3, hidden=8)
    x = torch.rand(2, 16)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\]"):
        ss.labelled_bound(model, x, torch.tensor([0, 4]))
    with pytest.raises(ValueError, match="1-d integer"):
        ss.labelled_bound(model, x, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="2 images but y has 1 labels"):
        ss.labelled_bound(model, x, torch.tensor([0]))
    with pytest.raises(ValueError, match="classifier_weight must be a number >= 0"):
        ss.m2_loss(model, x, torch.tensor([0, 1]), x, classifier_weight=-1)
    with pytest.raises(ValueError, match="expected images of 16 values, got 9"):
        model.classify(torch.rand(2, 9))


def test_labelled_pairs_repeat_the_few_labels_evenly():
    x_l, y = torch.arange(10.0)[:, None], torch.arange(10) % 4
    x_rep, y_rep = ss.labelled_pairs(95, x_l, y, generator=torch.Generator().manual_seed(0))
    assert x_rep.shape == (95, 1) and y_rep.shape == (95,)
    counts = torch.bincount(x_rep[:, 0].long(), minlength=10)
    assert counts.min() == 9 and counts.max() == 10  # 9 full rounds and part of a tenth
    assert torch.equal(y_rep, y[x_rep[:, 0].long()])  # pairs stay pairs
    with pytest.raises(ValueError, match="as many labels as labelled images"):
        ss.labelled_pairs(5, x_l, y[:3])


def test_fit_trains_m2_from_a_few_labels_and_the_unlabelled_rest():
    """On two well-separated classes, 10 labels and 1,000 unlabelled images: the classifier
    learns from the labels through fit, and the unlabelled bound rises."""
    import functools
    from vaecore.train import fit
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.9] * 8 + [0.1] * 8, [0.1] * 8 + [0.9] * 8])
    labels = torch.randint(2, (1010,), generator=g)
    images = (centres[labels] + 0.05 * torch.randn(1010, 16, generator=g)).clamp(0, 1)
    x_u, x_l, y_l = images[10:], images[:10], labels[:10]
    torch.manual_seed(0)
    model = ss.M2(x_dim=16, n_classes=2, latent_dim=2, hidden=16)
    history = fit(model, functools.partial(ss.m2_fit_loss, classifier_weight=10.0),
                  (x_u, *ss.labelled_pairs(len(x_u), x_l, y_l, generator=g)), epochs=8,
                  batch_size=50, lr=3e-3, progress=False)
    assert history.train["unlabelled"][-1] > history.train["unlabelled"][0]
    accuracy = (model.classify(x_u).argmax(1) == labels[10:]).float().mean().item()
    assert accuracy > 0.95
