"""Checks for the exercises of chapter 16 (the VQ-VAE): the straight-through quantiser, the
code length of the best prior that ignores where a code sits, and a prior that knows.

The implement check compares the student's quantiser with nearest codes found by brute force
and its gradients with autograd's on random cases, and names the usual slips (the code
returned without the straight-through trick, the encoder's output returned, a gradient
reaching the codebook, the farthest code); the derive check compares the student's closed
form with a numerical optimum over categorical priors; the experiment check scores the
student's position-wise prior on the test codes of the shipped VQ-VAE.
"""
from __future__ import annotations

import math
from functools import lru_cache

import torch

from vaecore.vq import VectorQuantizer, nearest_codes, quantize
from ._answers import call, call_number, measured, wrong_shape
from ._check import CheckResult
from ._submission import exercise, rng

__all__ = ["check_straight_through", "check_best_iid_code_length", "check_position_prior",
           "POSITION_PRIOR_NATS", "N_TRAIN_CODES", "training_codes"]

#: Agreement asked of the numerical answers (float64 cases; every slip is off by far more).
TOLERANCE = 1e-6
#: The position-wise prior passes at this many nats per test image or fewer (the chapter's
#: MNIST VQ-VAE, seed 0): tables of one categorical per position fitted to the codes of
#: N_TRAIN_CODES training images with smoothed counts reach 214.2; the best prior that ignores
#: positions, 231.8; the uniform prior, 237.7.
POSITION_PRIOR_NATS = 220.0
#: The training images whose codes the student's prior is fitted to: the first of the split.
N_TRAIN_CODES = 10_000


def _cases(seed: int):
    """Random (z_e, codebook) pairs: flat vectors, grids, a code dimension of 1."""
    g = rng(seed)
    shapes = [((5, 3), 4), ((2, 3, 4, 4), 7), ((3, 1, 2, 5), 3), ((1, 6, 3, 3), 9)]
    return [(torch.randn(shape, generator=g, dtype=torch.float64),
             torch.randn(k, shape[1], generator=g, dtype=torch.float64)) for shape, k in shapes]


def _gradients(fn, z_e, codebook, w):
    z_e, codebook = z_e.clone().requires_grad_(True), codebook.clone().requires_grad_(True)
    out = fn(z_e, codebook)
    if not out.requires_grad:
        return None, None
    d_ze, d_cb = torch.autograd.grad((w * out).sum(), (z_e, codebook), allow_unused=True)
    return d_ze, d_cb


# Exercise: the straight-through quantiser (implement)
@exercise(quantize, nearest_codes, VectorQuantizer)
def check_straight_through(straight_through) -> CheckResult:
    """Check ``straight_through(z_e, codebook)`` → ``z_q`` like ``z_e`` ``(B, D, ...)``: the
    nearest code of each position's vector, with the gradient of ``z_q`` copied to ``z_e``
    unchanged and none reaching the codebook, on random cases in float64."""
    name = "straight_through"
    g = rng(1602)
    for i, (z_e, codebook) in enumerate(_cases(1601)):
        where = f"(case {i + 1}: z_e {tuple(z_e.shape)}, K = {len(codebook)})"
        answer, failed = call(name, straight_through, z_e.clone().requires_grad_(True),
                              codebook.clone().requires_grad_(True))
        if failed is not None:
            return failed
        failed = wrong_shape(name, answer, z_e.shape, where, "z_q with the shape of z_e")
        if failed is not None:
            return failed
        e_c = codebook[nearest_codes(z_e, codebook)].movedim(-1, 1)
        tol = TOLERANCE if answer.dtype == torch.float64 else 1e-5  # float32 arithmetic
        answer = answer.detach().to(torch.float64)
        if not torch.allclose(answer, e_c, rtol=tol, atol=tol):
            farthest = (z_e.movedim(1, -1).unsqueeze(-2) - codebook).pow(2).sum(-1).argmax(-1)
            if torch.allclose(answer, z_e, rtol=tol, atol=tol):
                detail = "you returned z_e itself: z_q takes the value of the nearest code."
                slip = "identity"
            elif torch.allclose(answer, codebook[farthest].movedim(-1, 1), rtol=tol, atol=tol):
                detail = "these are the farthest codes: take the argmin of the distance."
                slip = "farthest"
            else:
                detail = "each position's vector becomes the code nearest to it (L2 distance)."
                slip = "value"
            return measured(name, False, f"your values are not the nearest codes {where}",
                            slip, detail)
        w = torch.randn(z_e.shape, generator=g, dtype=torch.float64)
        d_ze, d_cb = _gradients(straight_through, z_e, codebook, w)
        if d_ze is None or d_ze.abs().sum() == 0:
            return measured(name, False, f"no gradient reaches z_e {where}", "no-gradient",
                            "Returning the codes themselves cuts the graph: add to z_e the "
                            "detached difference between the codes and z_e.")
        if not torch.allclose(d_ze.to(torch.float64), w, rtol=1e-5, atol=1e-5):
            return measured(name, False, f"the gradient reaching z_e is not the one at z_q "
                            f"{where}", "gradient", "The backward pass should copy the gradient "
                            "at z_q to z_e unchanged: z_q = z_e + (e_c - z_e).detach().")
        if d_cb is not None and d_cb.abs().sum() > 0:
            return measured(name, False, f"a gradient reaches the codebook {where}",
                            "codebook-gradient", "Detach the difference e_c − z_e as a whole, "
                            "so that the codebook is moved only by the codebook term.")
    return measured(name, True, "values and gradients match on 4 random cases")


# Exercise: the best prior that ignores positions (derive)
def _numerical_iid(codes: torch.Tensor, n_codes: int) -> float:
    """min over categorical p of -Σ_i log p(c_i), averaged over grids, by L-BFGS on free
    logits (an independent reference)."""
    counts = torch.bincount(codes.flatten(), minlength=n_codes).double()
    logits = torch.zeros(n_codes, dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([logits], max_iter=200, tolerance_grad=1e-12,
                                  tolerance_change=1e-14, line_search_fn="strong_wolfe")

    def loss():
        optimiser.zero_grad()
        value = -(counts * torch.log_softmax(logits, 0)).sum() / len(codes)
        value.backward()
        return value
    optimiser.step(loss)
    return loss().item()


def _code_cases(seed: int):
    g = rng(seed)
    cases = []
    for n, grid, k in [(50, (3, 3), 6), (20, (7, 7), 16), (200, (2, 5), 4), (30, (4, 4), 12)]:
        weights = torch.rand(k, generator=g, dtype=torch.float64) ** 3  # uneven use
        weights[k - 1] = 0  # one dead code
        codes = torch.multinomial(weights, n * grid[0] * grid[1], replacement=True,
                                  generator=g).view(n, *grid)
        cases.append((codes, k))
    return cases


def best_iid_nats(codes: torch.Tensor, n_codes: int) -> float:
    """The reference: hw times the entropy (nats) of the codes' frequencies."""
    p = torch.bincount(codes.flatten(), minlength=n_codes).double()
    p = p / p.sum()
    return -(torch.special.xlogy(p, p).sum() * codes[0].numel()).item()


@exercise()
def check_best_iid_code_length(best_iid_code_length) -> CheckResult:
    """Check ``best_iid_code_length(codes, n_codes)`` → a float: the fewest nats per grid, on
    average over the grids ``codes`` ``(N, h, w)``, that a prior giving every position the
    same categorical distribution over ``n_codes`` codes can reach on these grids (the
    closed form is tested against :func:`_numerical_iid`)."""
    name = "best_iid_code_length"
    for i, (codes, k) in enumerate(_code_cases(1603)):
        value, failed = call_number(name, best_iid_code_length, codes.clone(), k,
                                    what="nats per grid")
        if failed is not None:
            return failed
        want = best_iid_nats(codes, k)
        if math.isclose(value, want, rel_tol=TOLERANCE, abs_tol=TOLERANCE):
            continue
        positions = codes[0].numel()
        where = f"(case {i + 1}: {tuple(codes.shape[1:])} grids, K = {k})"
        slips = {"bits": (want / math.log(2), "that is the answer in bits; the check asks for "
                          "nats (natural logarithms)."),
                 "uniform": (positions * math.log(k), "that is the uniform prior's length, "
                             "h·w·log K; the best prior follows how often each code is used."),
                 "per-position": (want / positions, "that is per position; the check asks for "
                                  "the length of a whole grid."),
                 "perplexity": (math.exp(want / positions), "that is the perplexity itself; "
                                "the length is h·w times its logarithm.")}
        for slip, (wrong, detail) in slips.items():
            if math.isclose(value, wrong, rel_tol=1e-6):
                return measured(name, False, f"your value {value:.6g} differs {where}", slip,
                                detail)
        return measured(name, False, f"your value {value:.6g} is not the optimum {where}",
                        "value", "Minimise the average of −Σ_i log p(c_i) over p with Σ p = 1 "
                        "(a Lagrange multiplier, or Gibbs' inequality).")
    return measured(name, True, "the length matches the optimum on 4 random sets of codes")


# Exercise: a prior that knows where a code sits (experiment)
@lru_cache(maxsize=1)
def _codes() -> tuple[torch.Tensor, torch.Tensor, int]:
    """(training codes, test codes, K) of the shipped MNIST VQ-VAE (seed 0): the codes of the
    first :data:`N_TRAIN_CODES` training images of the split (binarized once, seed 0) and of
    the 10,000 fixed binarized test images, each ``(N, 7, 7)``."""
    from vaecourse import zoo
    from vaecourse.chapters.ch16_vq_vae import MNIST, NAMES
    model = zoo.load(NAMES["mnist"]["vq"], train_if_missing=False)[0].eval()
    train = MNIST.transform(MNIST.split()[0][:N_TRAIN_CODES], torch.Generator().manual_seed(0))

    def encode(x):
        return torch.cat([model.codes(x[i:i + 1000]) for i in range(0, len(x), 1000)])
    return encode(train), encode(MNIST.test()), model.n_codes


def training_codes() -> torch.Tensor:
    """The codes the experiment's prior is fitted to: those of :func:`_codes`' training images,
    ``(N_TRAIN_CODES, 7, 7)`` (a copy)."""
    return _codes()[0].clone()


@exercise()
def check_position_prior(position_prior) -> CheckResult:
    """Check ``position_prior(train_codes, n_codes)`` → log-probabilities ``(h, w, n_codes)``:
    one categorical distribution per grid position, fitted to :func:`training_codes`; each
    must sum to 1. It passes
    when the test images' codes cost at most :data:`POSITION_PRIOR_NATS` nats each on
    average."""
    name = "position_prior"
    from vaecourse.chapters.ch16_vq_vae import N_CODES
    _, failed = call(name, position_prior, torch.zeros(2, 7, 7, dtype=torch.long), N_CODES)
    if failed is not None:  # e.g. not implemented yet: said before the codes are computed
        return failed
    train, test, k = _codes()
    answer, failed = call(name, position_prior, train.clone(), k)
    if failed is not None:
        return failed
    shape = (*train.shape[1:], k)
    if not isinstance(answer, torch.Tensor) or tuple(answer.shape) != shape:
        got = tuple(answer.shape) if isinstance(answer, torch.Tensor) else type(answer).__name__
        return measured(name, False, f"your function returned {got}", "shape",
                        f"Return log-probabilities of shape {shape}: (h, w, K).")
    log_p = answer.detach().double()
    if torch.isnan(log_p).any() or (log_p > 1e-9).any():
        return measured(name, False, "your table holds NaN or positive log-probabilities",
                        "range", "Return log-probabilities: each at most 0.")
    total = torch.logsumexp(log_p, -1)
    if (total.abs() > 1e-6).any():
        return measured(name, False, f"the probabilities at one position sum to "
                        f"{total.exp().max().item():.4g}, not 1", "normalised",
                        "Normalise each position's distribution (log_softmax of counts' logs).")
    nll = -log_p.flatten(0, 1).gather(1, test.flatten(1).T).sum(0)  # one value per test grid
    if torch.isinf(nll).any():
        return measured(name, False, f"{int(torch.isinf(nll).sum())} test grids get "
                        "probability 0", "zero", "A code never seen at a position in training "
                        "may still occur in a test image: give every code some probability.")
    value = nll.mean().item()
    return measured(name, value <= POSITION_PRIOR_NATS,
                    f"the test codes cost {value:.2f} nats per image under your prior",
                    "nats", f"At most {POSITION_PRIOR_NATS:g} is needed: use each position's "
                    "own counts, smoothed so that no code gets probability 0.")
