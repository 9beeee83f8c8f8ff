"""Checks for the exercises of chapter 06 (what the latent space looks like)."""
from __future__ import annotations

import functools
import math

import torch

from vaecore.latent import kl_per_dimension, posterior_mean_variance, slerp
from ._answers import call, measured
from ._check import CheckResult, _fail, run_cases
from ._submission import exercise, rng

__all__ = ["check_slerp", "check_posterior_mean_variance", "check_kl_per_dimension",
           "check_slerp_midpoint_norm", "check_separating_projection"]


@exercise(slerp)
def check_slerp(student_slerp) -> CheckResult:
    """Check ``slerp(z0, z1, t)``: spherical interpolation row by row, ``(B, D)`` in and out."""
    g = rng(6)
    z0, z1 = torch.randn(2, 5, 20, generator=g, dtype=torch.float64)
    short = torch.randn(2, 3, 2, generator=g, dtype=torch.float64) * torch.tensor([[[1.0], [3.0], [0.2]]],
                                                                               dtype=torch.float64)
    line = torch.randn(2, 8, generator=g, dtype=torch.float64)
    cases = [(z0, z1, 0.5), (z0, z1, 0.1), (short[0], short[1], 0.7),
             (z0, z1, 0.0), (z0, z1, 1.0),
             (line, 2.5 * line, 0.3)]  # parallel rows: the linear fallback
    return run_cases("slerp", student_slerp, slerp, cases, event_size=None)


@exercise(posterior_mean_variance)
def check_posterior_mean_variance(student_fn) -> CheckResult:
    """Check ``posterior_mean_variance(mu)``: variance over the N rows (divisor N), shape ``(D,)``."""
    g = rng(7)
    scales = torch.tensor([2.0, 1.0, 0.5, 0.05, 0.001], dtype=torch.float64)
    mu = torch.randn(200, 5, generator=g, dtype=torch.float64) * scales + 3.0
    cases = [(mu,), (torch.randn(7, 3, generator=g, dtype=torch.float64),),
             (torch.tensor([[1.0, -2.0], [3.0, -2.0]], dtype=torch.float64),)]
    result = run_cases("posterior_mean_variance", student_fn, posterior_mean_variance, cases)
    if not result.passed and result.hint == "factor":
        got = student_fn(mu)
        if torch.allclose(got.double(), mu.var(dim=0, unbiased=True)):
            return result._replace(message="✗ posterior_mean_variance: not yet. Hint (factor): "
                                   "you divided by N − 1; the variance of the data's "
                                   "empirical distribution divides by N (unbiased=False).")
    return result


@exercise(kl_per_dimension)
def check_kl_per_dimension(student_fn) -> CheckResult:
    """Check ``kl_per_dimension(mu, logvar)``: the KL terms, shape ``(N, D)``, nothing summed."""
    g = rng(8)
    mu = torch.randn(6, 4, generator=g, dtype=torch.float64) * 2
    logvar = torch.randn(6, 4, generator=g, dtype=torch.float64)
    near_prior = (torch.zeros(2, 3, dtype=torch.float64) + 0.1,
                  torch.zeros(2, 3, dtype=torch.float64) - 0.2)
    cases = [(mu, logvar), near_prior,
             (torch.tensor([[1.5, -0.5]], dtype=torch.float64),
              torch.tensor([[-3.0, 2.0]], dtype=torch.float64))]
    return run_cases("kl_per_dimension", student_fn, kl_per_dimension, cases, event_size=None)


# Exercise: how far slerp swings out (derive)
#: (r0, r1, omega): equal norms at a right angle, the chapter's 2 and 7 of the D = 2 model
#: (norms 0.44 and 1.12, 173° apart), unequal norms at small and large angles.
_MIDPOINT_CASES = [(1.0, 1.0, math.pi / 2), (0.44, 1.12, math.radians(173)),
                   (4.6, 4.23, 1.4), (1.0, 3.0, 0.5), (2.0, 0.5, 2.5)]


def _slerp_midpoint(r0: float, r1: float, omega: float) -> float:
    """‖slerp(z0, z1; ½)‖ measured with the library, for plane vectors of norms r0, r1 at angle omega."""
    z0 = torch.tensor([[r0, 0.0]], dtype=torch.float64)
    z1 = torch.tensor([[r1 * math.cos(omega), r1 * math.sin(omega)]], dtype=torch.float64)
    return slerp(z0, z1, 0.5).norm().item()


def _chord(r0: float, r1: float, omega: float) -> float:
    """‖z0 + z1‖ for norms r0, r1 at angle omega."""
    return math.sqrt(max(r0 ** 2 + r1 ** 2 + 2 * r0 * r1 * math.cos(omega), 0.0))


_MIDPOINT_MISTAKES = [
    (lambda r0, r1, w: _chord(r0, r1, w) / 2, "that is the norm of the straight line's "
     "midpoint (z0 + z1)/2; slerp's two weights at t = ½ are sin(ω/2)/sin ω each."),
    (lambda r0, r1, w: (r0 + r1) / 2, "slerp keeps the norm only between codes of equal "
     "norm; in general its midpoint is (z0 + z1) times the weight sin(ω/2)/sin ω."),
    (lambda r0, r1, w: _chord(r0, r1, w) * math.sin(w / 2) / math.sin(w) / 2,
     "the weight sin(ω/2)/sin ω multiplies both z0 and z1: their sum, not their average."),
]


@exercise(slerp)
def check_slerp_midpoint_norm(slerp_midpoint_norm) -> CheckResult:
    """Check ``slerp_midpoint_norm(r0, r1, omega)``: the norm of slerp's midpoint between two
    codes of norms ``r0``, ``r1`` an angle ``omega`` (radians) apart, a float:
    ‖z0 + z1‖ / (2 cos(ω/2)).

    Compared, case by case, with the norm of the library's slerp at t = ½; the slips
    named: the straight line's midpoint, a norm-keeping midpoint, and the average
    instead of the sum.
    """
    name = "slerp_midpoint_norm"
    for i, case in enumerate(_MIDPOINT_CASES, 1):
        value, failed = call(name, slerp_midpoint_norm, *case)
        if failed is not None:
            return failed
        try:
            got = float(value)
        except (TypeError, ValueError, RuntimeError):
            return _fail(name, "type", f"return one number (a float), got {type(value).__name__}.")
        want = _slerp_midpoint(*case)
        if math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-9):
            continue
        where = f"(case {i} of {len(_MIDPOINT_CASES)}: r0 = {case[0]}, r1 = {case[1]}, ω = {case[2]:.4g})"
        for wrong, detail in _MIDPOINT_MISTAKES:  # named only where it differs from the answer
            alt = wrong(*case)
            if math.isclose(got, alt, rel_tol=1e-6) and not math.isclose(alt, want, rel_tol=1e-6):
                return _fail(name, "derivation", f"{detail} {where}")
        return _fail(name, "values", f"{got:.6g} is not the norm of slerp's midpoint {where}. "
                     "Put t = ½ into (slerp) and take the norm of the sum.")
    return CheckResult(True, "", f"✓ {name}: right on {len(_MIDPOINT_CASES)} cases.")


# Exercise: a projection that keeps the classes apart (experiment)
TRAIN_CODES, MIN_ACCURACY = 5_000, 0.40


@functools.lru_cache(maxsize=1)
def _codes():
    """Posterior means of the D = 20 reference model: the first 5,000 training images
    (binarized with seed 3) with their labels, and the chapter's 1,000 test codes
    (test set binarized with seed 1, subset drawn with seed 4) with theirs."""
    from vaecore import data, latent
    from vaecourse import zoo
    model, _ = zoo.load("mnist-mlp-bernoulli-z20-e30")
    model.eval()
    train, test = data.mnist("train"), data.mnist("test")
    x_train = data.binarize_dynamic(train.x[:TRAIN_CODES], torch.Generator().manual_seed(3))
    x_test = data.binarize_dynamic(test.x, torch.Generator().manual_seed(1))
    subset = torch.randperm(len(x_test), generator=torch.Generator().manual_seed(4))[:1000]
    return (latent.encode_dataset(model, x_train).mu, train.y[:TRAIN_CODES],
            latent.encode_dataset(model, x_test[subset]).mu, test.y[subset])


def knn_accuracy(points: torch.Tensor, classes: torch.Tensor, k: int = 5) -> float:
    """Leave-one-out k-NN accuracy (majority vote, Euclidean distance), as in the chapter."""
    dist = torch.cdist(points.double(), points.double())
    dist.fill_diagonal_(float("inf"))
    votes = classes[dist.topk(k, largest=False).indices]
    return (votes.mode(dim=1).values == classes).double().mean().item()


@exercise()
def check_separating_projection(separating_projection) -> CheckResult:
    """Check ``separating_projection(mu, labels)`` → ``W``, a ``(20, 2)`` matrix: a linear map
    of the reference model's 20-dimensional codes to the plane, chosen from the codes
    ``mu`` ``(5000, 20)`` of 5,000 training images and their digit ``labels`` ``(5000,)``.

    The check projects the chapter's 1,000 test codes, ``mu_test @ W``, and measures the
    leave-one-out 5-NN accuracy in the plane: it must be at least 40 % (PCA's two
    directions reach 28 %; Fisher's discriminant directions about 45 %).
    """
    name = "separating_projection"
    mu_train, y_train, mu_test, y_test = _codes()
    W, failed = call(name, separating_projection, mu_train.clone(), y_train.clone())
    if failed is not None:
        return failed
    W = torch.as_tensor(W).detach() if not isinstance(W, torch.Tensor) else W.detach()
    if W.shape != (mu_train.shape[1], 2):
        return measured(name, False, f"your matrix has shape {tuple(W.shape)}", "shape",
                        f"Return W of shape ({mu_train.shape[1]}, 2): the plane is mu @ W.")
    if not torch.isfinite(W).all() or torch.linalg.matrix_rank(W.double()) < 2:
        return measured(name, False, "your W is not finite or has rank below 2", "rank",
                        "Its two columns must be two independent directions of the code space.")
    accuracy = knn_accuracy(mu_test.double() @ W.double(), y_test)
    what = f"5-NN accuracy {accuracy:.1%} on the chapter's 1,000 test codes projected with your W"
    return measured(name, accuracy >= MIN_ACCURACY, what, "separation",
                    f"It must reach {MIN_ACCURACY:.0%}. Directions of large variance (PCA) need "
                    "not separate the classes: look for directions along which the class means "
                    "lie far apart compared with the spread within each class, using the labels.")
