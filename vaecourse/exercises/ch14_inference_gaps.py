"""Checks for the exercises of chapter 14 (inference gaps): the sticking-the-landing loss,
the approximation gap of an equicorrelated posterior, and an amortization gap closed at test time.

The implement check compares the value and the gradient of every parameter of the
student's loss with the library's on the same draw of ε, and names the usual slips (the
score term kept, z detached); the derive check compares the student's closed form with a
numerical log-determinant on several correlations and sizes; the experiment check measures
the posteriors the student's function returns on the shipped reference model.
"""
from __future__ import annotations

import math

import torch

from vaecore.elbo import iwae_loss
from vaecore.gaps import elbo_mc, inference_gaps, optimise_posterior
from vaecore.gradients import negative_elbo_stl
from vaecore.mlp import MLPDecoder, MLPEncoder
from vaecore.posterior import Posterior
from vaecore.seeding import local_seed
from vaecore.vae import VAE
from ._answers import call, call_number, measured
from ._check import CheckResult
from ._submission import exercise, rng

__all__ = ["check_stl_loss", "check_equicorrelated_gap", "check_refine", "REFINE_IMAGES",
           "REFINE_GAIN", "REFINE_SAMPLES"]


# Exercise: the sticking-the-landing loss (implement)
def _small_vae(seed: int) -> VAE:
    with local_seed(seed):
        return VAE(MLPEncoder((1, 6, 6), 3, hidden=(16,)), MLPDecoder(3, (1, 6, 6), hidden=(16,)))


def _value_and_grads(loss_fn, model, x, seed):
    loss = loss_fn(model, x, torch.Generator().manual_seed(seed))
    loss = getattr(loss, "loss", loss)
    grads = torch.autograd.grad(loss, list(model.parameters()), allow_unused=True)
    return loss.detach(), [torch.zeros_like(p) if g is None else g
                           for p, g in zip(model.parameters(), grads)]


def _same(a, b) -> bool:
    return all(torch.allclose(x, y, rtol=1e-5, atol=1e-6) for x, y in zip(a, b))


def _detached_z(model, x, generator):
    """The slip of detaching z instead of q's parameters: only the score reaches the encoder."""
    posterior = model.encode(x)
    z = posterior.rsample(generator=generator).detach()
    return -(model.log_likelihood(x, z) + model.prior.log_prob(z) - posterior.log_prob(z)).mean()


@exercise(negative_elbo_stl)
def check_stl_loss(stl_loss) -> CheckResult:
    """Check ``stl_loss(model, x, generator)``: minus the one-sample ELBO, batch mean, whose
    gradient is the sticking-the-landing estimator, on small random VAEs; the same draw of
    ε (one ``posterior.rsample(generator=generator)``) must give the library's value and the
    library's gradient for every parameter."""
    name = "stl_loss"
    g = rng(1414)
    for case in range(3):
        model = _small_vae(int(torch.randint(10_000, (1,), generator=g)))
        x = torch.bernoulli(torch.rand(5 + case, 1, 6, 6, generator=g), generator=g)
        seed = int(torch.randint(10_000, (1,), generator=g))
        try:
            got_loss, got_grads = _value_and_grads(stl_loss, model, x, seed)
        except NotImplementedError:
            return CheckResult(False, "todo", f"✗ {name}: not implemented yet.")
        except Exception as exc:  # report what the student's code raised
            return measured(name, False, f"your function raised {type(exc).__name__}: {exc}",
                            "error")
        want_loss, want_grads = _value_and_grads(
            lambda m, xb, gen: negative_elbo_stl(m, xb, generator=gen), model, x, seed)
        where = f"(case {case + 1} of 3)"
        if got_loss.shape != () or not torch.allclose(got_loss, want_loss, rtol=1e-5):
            return measured(name, False, f"the loss is {got_loss.flatten()[:3].tolist()}, "
                            f"expected {want_loss.item():.6g} {where}", "value",
                            "Return one number, minus the mean over the batch of "
                            "log p(x|z) + log p(z) − log q(z|x), with one z per image drawn by "
                            "posterior.rsample(generator=generator).")
        if _same(got_grads, want_grads):
            continue
        standard = _value_and_grads(lambda m, xb, gen: iwae_loss(m, xb, 1, generator=gen),
                                    model, x, seed)[1]
        if _same(got_grads, standard):
            return measured(name, False, f"your gradient is the standard one {where}", "score",
                            "log q(z|x) still passes the gradient of μ and log σ² directly: "
                            "evaluate it with detached parameters, so that φ reaches it through "
                            "z only.")
        frozen = _value_and_grads(_detached_z, model, x, seed)[1]
        encoder = [i for i, (n, _) in enumerate(model.named_parameters())
                   if n.startswith("encoder")]
        if _same(got_grads, frozen) or all(got_grads[i].abs().max() == 0 for i in encoder):
            return measured(name, False, f"the encoder gets no path gradient {where}", "path",
                            "z must stay a function of μ and σ (the path): detach the "
                            "parameters inside log q, not z.")
        return measured(name, False, f"the gradients differ from the library's {where}",
                        "gradient", "Only log q(z|x) changes: its parameters are detached; "
                        "log p(x|z) and log p(z) are computed as usual at the same z.")
    return measured(name, True, "value and gradient of every parameter match on 3 models")


# Exercise: the approximation gap of an equicorrelated posterior (derive)
def _gap(rho: float, dim: int) -> float:
    """½(Σ_i log Λ_ii − log det Λ), Λ the inverse of the equicorrelation matrix, numerically."""
    precision = torch.linalg.inv(_equicorrelation(rho, dim))
    return 0.5 * (torch.log(torch.diagonal(precision)).sum() - torch.logdet(precision)).item()


def _equicorrelation(rho: float, dim: int) -> torch.Tensor:
    sigma = torch.full((dim, dim), rho, dtype=torch.float64)
    return sigma.fill_diagonal_(1.0)


def _forward_slips(rho: float, dim: int) -> tuple[float, float]:
    """Two answers of the forward KL's best diagonal (the marginal variances, here 1).

    Its own minimum, KL(p ‖ q) = −½ log det Σ; and what the ELBO loses with it,
    KL(q ‖ p) = ½(Σ_i (Σ⁻¹)_ii − D + log det Σ).
    """
    sigma = _equicorrelation(rho, dim)
    log_det = torch.logdet(sigma).item()
    return -0.5 * log_det, 0.5 * (torch.linalg.inv(sigma).diagonal().sum().item() - dim + log_det)


@exercise()
def check_equicorrelated_gap(equicorrelated_gap) -> CheckResult:
    """Check ``equicorrelated_gap(rho, dim)``: the smallest gap log p(x) − ELBO a diagonal
    Gaussian q reaches when the posterior is Gaussian with unit variances and every
    correlation ``rho`` (Equation (mean-field-gap)), on several ``rho`` and ``dim``."""
    name = "equicorrelated_gap"
    cases = [(0.5, 2), (0.9, 2), (0.3, 5), (-0.2, 4), (0.8, 20), (0.0, 3), (0.99, 10)]
    for i, (rho, dim) in enumerate(cases):
        got, failed = call_number(name, equicorrelated_gap, rho, dim, what="the gap in nats")
        if failed is not None:
            return failed
        want = _gap(rho, dim)
        where = f"(case {i + 1} of {len(cases)}: ρ = {rho:g}, D = {dim})"
        if math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-10):
            continue
        forward = ("that is the diagonal that matches the marginal variances, the best in "
                   "KL(p ‖ q); the ELBO's q minimises KL(q ‖ p) and matches the diagonal of the "
                   "precision Σ⁻¹ instead.")
        forward_min, forward_gap = _forward_slips(rho, dim)
        slips = {"forward": (forward_min, forward), "forward-q": (forward_gap, forward),
                 "half": (2 * want, "the Gaussian KL has a factor ½."),
                 "two-d": (-0.5 * math.log1p(-rho ** 2), "−½ log(1 − ρ²) is the answer for "
                           "D = 2 only: write det Σ and (Σ⁻¹)_ii for D dimensions.")}
        for slip, (value, detail) in slips.items():
            if not math.isclose(value, want, rel_tol=1e-6) and math.isclose(got, value,
                                                                             rel_tol=1e-6):
                return measured(name, False, f"gap {got:.6g} {where}", slip, detail)
        return measured(name, False, f"gap {got:.6g}, expected {want:.6g} {where}", "value",
                        "Σ = (1 − ρ) I + ρ 11ᵀ has eigenvalues 1 + (D − 1)ρ (once) and 1 − ρ "
                        "(D − 1 times); invert it in the same form to get (Σ⁻¹)_ii.")
    return measured(name, True, f"the gap matches on {len(cases)} cases, e.g. ρ = 0.8, D = 20: "
                                f"{_gap(0.8, 20):.3f} nats")


# Exercise: close the amortization gap at test time (experiment)
#: The first REFINE_IMAGES test images; a pass gains REFINE_GAIN nats of ELBO per image on
#: average over the encoder's q, each ELBO estimated with REFINE_SAMPLES draws.
REFINE_IMAGES, REFINE_GAIN, REFINE_SAMPLES = 200, 2.5, 200


@exercise(optimise_posterior, inference_gaps)
def check_refine(refine) -> CheckResult:
    """Check ``refine(model, x)`` → ``(mu, logvar)``, each ``(B, 20)``: better Gaussian
    posteriors for the images ``x`` than the encoder's, for the shipped reference model.

    The check calls it on the first 200 fixed binarized test images, verifies that the
    model's parameters are unchanged, and estimates both ELBOs with the same 200 draws of ε
    per image: the returned posteriors must be at least 2.5 nats better on average.
    """
    from vaecourse import zoo
    from vaecourse.protocol import test_images
    name = "refine"
    model = zoo.load("mnist-mlp-bernoulli-z20-e30")[0].eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = test_images()[:REFINE_IMAGES]
    answer, failed = call(name, refine, model, x.clone())
    if failed is not None:
        return failed
    if any(not torch.equal(before[k], v) for k, v in model.state_dict().items()):
        return measured(name, False, "the model's weights changed", "weights",
                        "Optimise the posterior's parameters only: a changed decoder scores a "
                        "different model.")
    shape = (REFINE_IMAGES, model.latent_dim)
    if not (isinstance(answer, (tuple, list)) and len(answer) == 2
            and all(isinstance(t, torch.Tensor) and t.shape == shape for t in answer)):
        return measured(name, False, "your function did not return two tensors of shape "
                        f"{shape}", "shape", "Return (mu, logvar), one row per image.")
    refined = Posterior(*(t.detach().float() for t in answer))
    if not all(torch.isfinite(t).all() for t in refined):
        return measured(name, False, "your posteriors hold NaN or inf", "nan")
    g = torch.Generator().manual_seed(int(torch.randint(10_000, (1,), generator=rng(1415))))
    with torch.no_grad():
        state = g.get_state()
        encoder = elbo_mc(model, x, model.encode(x), REFINE_SAMPLES, g).mean().item()
        g.set_state(state)
        got = elbo_mc(model, x, refined, REFINE_SAMPLES, g).mean().item()
    what = (f"mean ELBO {got:.2f} nats against the encoder's {encoder:.2f}: "
            f"{got - encoder:+.2f} nats per image")
    return measured(name, got - encoder >= REFINE_GAIN, what, "gain",
                    f"At least {REFINE_GAIN:g} nats are needed; take more steps, or a larger "
                    "learning rate that falls as the steps go on.")
