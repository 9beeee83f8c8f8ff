"""Checks for the exercises of chapter 09 (VAE vs GAN, measured with FID)."""
from __future__ import annotations

import torch

from vaecore.metrics import frechet_distance
from vaecore.gan import discriminator_loss, generator_loss_nonsaturating
from ._answers import call, check_number, measured
from ._check import CheckResult, _fail, run_cases
from ._submission import exercise, rng

__all__ = ["check_frechet_distance", "check_discriminator_loss",
           "check_generator_loss_nonsaturating", "check_fid_mean_term", "check_better_sampler"]


def _spd(f: int, g: torch.Generator) -> torch.Tensor:
    a = torch.randn(f, f, generator=g, dtype=torch.float64)
    return a @ a.T / f + 0.3 * torch.eye(f, dtype=torch.float64)


def _close(a, b) -> bool:
    try:
        return torch.allclose(torch.as_tensor(a).double(), b.double(), rtol=1e-6, atol=1e-8)
    except Exception:
        return False


def _elementwise_root(mu1, s1, mu2, s2):  # sqrt of each entry instead of the matrix root
    cross = (s1 @ s2).clamp(min=0).sqrt().trace()
    return ((mu1 - mu2) ** 2).sum() + s1.trace() + s2.trace() - 2 * cross


def _norm_not_squared(mu1, s1, mu2, s2):
    return frechet_distance(mu1, s1, mu2, s2) - ((mu1 - mu2) ** 2).sum() + (mu1 - mu2).norm()


def _no_root(mu1, s1, mu2, s2):  # tr(Σ1 Σ2) where tr((Σ1 Σ2)^½) is due
    return ((mu1 - mu2) ** 2).sum() + s1.trace() + s2.trace() - 2 * (s1 @ s2).trace()


_FROM_LOGITS = ("the result has NaN or inf where the reference is finite: at logits of ±200, "
                "D = sigmoid(logit) rounds to 0 or 1 and its log is log 0. Compute the logs "
                "from the logits: −log D = −logsigmoid(logit) = softplus(−logit), "
                "−log(1 − D) = softplus(logit).")


_FID_SLIPS = [
    (_norm_not_squared, "mean", "the mean term is the squared norm ‖μ₁ − μ₂‖², not the norm."),
    (_elementwise_root, "sqrtm", "the square root must be the matrix square root (from an "
                                 "eigendecomposition), not the square root of each entry."),
    (_no_root, "sqrtm", "the cross term is −2 tr((Σ₁^½ Σ₂ Σ₁^½)^½): the square root is missing."),
]


@exercise(frechet_distance)
def check_frechet_distance(frechet) -> CheckResult:
    """Check ``frechet(mu1, sigma1, mu2, sigma2)``: Equation (fid), a scalar tensor."""
    g = rng(9)
    cases = [(torch.randn(f, generator=g, dtype=torch.float64), _spd(f, g),
              torch.randn(f, generator=g, dtype=torch.float64), _spd(f, g)) for f in (1, 4, 12)]
    mu, s = cases[1][0], cases[1][1]
    cases.append((mu, s, mu.clone(), s.clone()))  # identical Gaussians: distance 0
    name = "frechet_distance"
    for i, case in enumerate(cases):
        want = frechet_distance(*case)
        try:
            got = frechet(*case)
        except NotImplementedError:
            return CheckResult(False, "todo", f"✗ {name}: not implemented yet.")
        except Exception as exc:
            return _fail(name, "error", f"your function raised {type(exc).__name__}: {exc}")
        if not isinstance(got, torch.Tensor):
            return _fail(name, "type", f"expected a torch.Tensor, got {type(got).__name__}.")
        if got.shape != ():
            return _fail(name, "shape", f"expected a scalar, got shape {tuple(got.shape)}.")
        if _close(got, want):
            continue
        where = f" (case {i + 1} of {len(cases)})"
        if _close(-got, want) and want.abs() > 1e-8:
            return _fail(name, "sign", "the result has the wrong sign." + where)
        for slip, hint, detail in _FID_SLIPS:
            if _close(got, slip(*case)):
                return _fail(name, hint, detail + where)
        err = (got.double() - want).abs().item()
        return _fail(name, "values", f"the value differs from the reference (max abs error "
                     f"{err:.3g})." + where)
    return CheckResult(True, "", f"✓ {name}: passed on {len(cases)} cases.")


def _d_cases(g: torch.Generator):
    return [(torch.randn(8, generator=g, dtype=torch.float64) * 3,
             torch.randn(8, generator=g, dtype=torch.float64) * 3),
            (torch.randn(3, generator=g, dtype=torch.float64),
             torch.randn(3, generator=g, dtype=torch.float64) - 2),
            (torch.tensor([200.0, -200.0, 0.0], dtype=torch.float64),   # D certain: stable?
             torch.tensor([-200.0, 200.0, 0.0], dtype=torch.float64))]


@exercise(discriminator_loss)
def check_discriminator_loss(d_loss) -> CheckResult:
    """Check ``d_loss(real_logits, fake_logits)``: −log D(x) − log(1 − D(G(z))), shape (B,)."""
    cases = _d_cases(rng(10))
    result = run_cases("discriminator_loss", d_loss, discriminator_loss, cases, event_size=1,
                       nan=_FROM_LOGITS)
    if result.hint == "values":
        try:
            swapped = d_loss(cases[0][1], cases[0][0])
        except Exception:
            return result
        if _close(swapped, discriminator_loss(*cases[0])):
            return _fail("discriminator_loss", "labels", "real images have target 1 and fakes "
                         "target 0; your labels are the other way round.")
    return result


@exercise(generator_loss_nonsaturating)
def check_generator_loss_nonsaturating(g_loss) -> CheckResult:
    """Check ``g_loss(fake_logits)``: the non-saturating −log D(G(z)), shape (B,)."""
    g = rng(11)
    cases = [(torch.randn(8, generator=g, dtype=torch.float64) * 3,),
             (torch.tensor([-800.0, 0.0, 200.0], dtype=torch.float64),)]
    result = run_cases("generator_loss_nonsaturating", g_loss, generator_loss_nonsaturating,
                       cases, event_size=1, nan=_FROM_LOGITS)
    if result.hint == "values":
        try:
            got = g_loss(cases[0][0])
        except Exception:
            return result
        if _close(got, -torch.nn.functional.softplus(cases[0][0])):
            return _fail("generator_loss_nonsaturating", "minimax", "this is the minimax loss "
                         "log(1 − D(G(z))); the non-saturating loss is −log D(G(z)).")
    return result


# Exercise: the mean term of FID between two samples of one distribution (derive)
#: The trace of the covariance (divisor N − 1) of the LeNet features of the 10,000 MNIST test
#: images (32×32, the judge of the chapter); a test recomputes it.
FEATURE_TRACE = 486.69257
FID_N, FID_POOL = 1000, 10_000   # images in each of the two disjoint sets; test images in all


@exercise()
def check_fid_mean_term(fid_mean_term) -> CheckResult:
    """Check ``fid_mean_term()``: the expected mean term ||μ̂_a − μ̂_b||² of Equation (fid)
    between two disjoint random sets of 1,000 test images each, in the chapter's LeNet
    features: 2 tr(S)/n with S the covariance of the 10,000 test images' features (divisor
    N − 1), 0.973. Answers within 1 % pass.

    The slips named: one set's variance only (tr(S)/n), and a finite-population correction
    (1 − n/N) that the negative correlation of two disjoint sets cancels.
    """
    want = 2 * FEATURE_TRACE / FID_N
    return check_number("fid_mean_term", fid_mean_term, want, rtol=1e-2, mistakes=[
        (FEATURE_TRACE / FID_N, "tr(S)/n is the expected squared error of one set's mean; the "
         "term compares two means, each with its own error: their difference has twice the "
         "variance."),
        (want * (1 - FID_N / FID_POOL), "the sets are drawn without replacement and are "
         "disjoint: each mean's variance has the factor (1 − n/N), but the two means are "
         "negatively correlated (covariance −tr(S)/N), and the two effects cancel exactly."),
    ])


# Exercise: a better sampler for the same VAE (experiment)
SAMPLER_N, SAMPLER_TRAIN = 2000, 10_000   # codes to return; training images given
SAMPLER_FID, SAMPLER_COPY = 41.5, 4.0     # highest FID; lowest median nearest-image distance


@exercise()
def check_better_sampler(better_codes) -> CheckResult:
    """Check ``better_codes(vae, train_x, generator)``: given the chapter's VAE
    (``mnist32-mlp-bernoulli-z100-e20``), the first 10,000 training images (32×32) and a
    generator, return 2,000 codes ``(2000, 100)``. The check decodes them (the decoder's mean,
    as the chapter shows VAE samples) and measures

    - FID against the first 2,000 test images (LeNet features, as every FID of the chapter):
      at most 41.5 (codes from the prior give 46.46);
    - the median distance of the first 200 decoded images to their nearest of the 10,000
      training images given: at least 4.0 (new test digits: 4.69). Reconstructions of
      training images are copies, not samples (about 3.2).
    """
    from vaecore.metrics import fid, nearest_distance
    from vaecourse import zoo
    from vaecourse.chapters import ch09_vae_vs_gan as vg
    name = "better_sampler"
    vae, _ = zoo.load(vg.NAMES["vae"])
    vae.eval()
    train_x = vg.splits32()[0].x[:SAMPLER_TRAIN]
    codes, failed = call(name, better_codes, vae, train_x.clone(), rng(909))
    if failed is not None:
        return failed
    try:
        codes = torch.as_tensor(codes).detach().float()
    except (TypeError, ValueError, RuntimeError):
        return measured(name, False, f"your function returned a {type(codes).__name__}", "type",
                        "Return the codes, a tensor (2000, 100).")
    if codes.shape != (SAMPLER_N, vg.LATENT_DIM) or not torch.isfinite(codes).all():
        return measured(name, False, f"your codes have shape {tuple(codes.shape)}", "shape",
                        f"Return {SAMPLER_N} finite codes of {vg.LATENT_DIM} dimensions.")
    with torch.no_grad():
        images = torch.sigmoid(vae.decode(codes))
    judge, real = vg._judge()
    score = fid(real, vg.features(judge, images)).item()
    distance = nearest_distance(images[:200], train_x)[0].median().item()
    what = (f"FID {score:.2f} against the first {SAMPLER_N:,} test images; median distance to "
            f"the nearest training image {distance:.2f}")
    if distance < SAMPLER_COPY:
        return measured(name, False, what, "copies", "Your samples are closer to the training "
                        "images than new digits are: decoded codes of training images are "
                        "reconstructions, not new samples. Fit a distribution to the codes, "
                        "then draw new codes from it.")
    return measured(name, score <= SAMPLER_FID, what, "fid", f"FID must be at most "
                    f"{SAMPLER_FID:g}. The decoder was trained on the codes of the training "
                    "images, not on the prior: where do those codes lie, and does the prior "
                    "put its mass there?")
