"""Checks for the exercises of chapter 15 (conditional and semi-supervised VAEs): M2's
unlabelled bound from its labelled bounds, the best classifier for that bound, and M2 as a
generator of a chosen digit.

The implement check compares the student's bound with the definition on random cases and
names the usual slips (the entropy left out or with the wrong sign, logits used as
probabilities); the derive check compares the student's closed form with the log-sum-exp
(tested against a numerical maximisation over q(y | x)); the experiment check reads the
student's generated digits with chapter 9's judge.
"""
from __future__ import annotations

import torch

from vaecore.semisupervised import m2_loss, unlabelled_bound
from ._answers import call, measured
from ._check import CheckResult
from ._submission import exercise, rng

__all__ = ["check_unlabelled_from_labelled", "check_best_unlabelled_bound",
           "check_conditional_generator", "GENERATOR_IMAGES", "GENERATOR_SHARE",
           "GENERATOR_SPREAD"]


#: Agreement asked of the two numerical answers: float32 arithmetic on bounds of about −100
#: nats is exact to a few 1e-6, and every slip is off by more than 1e-3.
TOLERANCE = 1e-5


def _cases(seed: int, n: int = 6):
    """Random (logits, labelled bounds) pairs of several shapes, bounds of the size of MNIST's."""
    g = rng(seed)
    shapes = [(1, 2), (3, 10), (5, 4), (2, 10), (8, 3), (4, 10)][:n]
    return [(3 * torch.randn(shape, generator=g, dtype=torch.float64),
             -100 + 20 * torch.randn(shape, generator=g, dtype=torch.float64)) for shape in shapes]


def _reference(logits: torch.Tensor, labelled: torch.Tensor) -> torch.Tensor:
    log_q = torch.log_softmax(logits, -1)
    q = log_q.exp()
    return (q * labelled).sum(-1) - (q * log_q).sum(-1)


def _tensor_answer(name: str, answer, shape) -> CheckResult | None:
    if not isinstance(answer, torch.Tensor) or tuple(answer.shape) != tuple(shape):
        got = tuple(answer.shape) if isinstance(answer, torch.Tensor) else type(answer).__name__
        return measured(name, False, f"your function returned {got}", "shape",
                        f"Return one value per image: a tensor of shape {tuple(shape)}.")
    if not torch.isfinite(answer).all():
        return measured(name, False, "your answer holds NaN or inf", "nan",
                        "Work with log-probabilities (log_softmax) rather than log(softmax).")
    return None


def _slip_or_value(name: str, answer: torch.Tensor, want: torch.Tensor, slips: dict,
                   where: str, hint: str) -> CheckResult:
    """The failed result for a wrong ``answer``: the slip it equals, else how far off it is."""
    for slip, (value, detail) in slips.items():
        if torch.allclose(answer.double(), value, rtol=TOLERANCE, atol=TOLERANCE):
            return measured(name, False, f"your value differs {where}", slip, detail)
    gap = (answer.double() - want).abs().max().item()
    return measured(name, False, f"your value is off by up to {gap:.3g} nats {where}", "value",
                    hint)


# Exercise: the unlabelled bound from the labelled ones (implement)
@exercise(unlabelled_bound, m2_loss)
def check_unlabelled_from_labelled(unlabelled_from_labelled) -> CheckResult:
    """Check ``unlabelled_from_labelled(logits, labelled)`` → ``(B,)``: M2's unlabelled bound
    U(x) = Σ_y q(y|x) L(x, y) + H(q(y|x)) from the classifier's logits ``(B, K)`` and the
    labelled bounds ``(B, K)``, on random cases in float64."""
    name = "unlabelled_from_labelled"
    for i, (logits, labelled) in enumerate(_cases(1501)):
        answer, failed = call(name, unlabelled_from_labelled, logits.clone(), labelled.clone())
        if failed is not None:
            return failed
        wrong = _tensor_answer(name, answer, logits.shape[:1])
        if wrong is not None:
            return wrong
        want = _reference(logits, labelled)
        if torch.allclose(answer.double(), want, rtol=TOLERANCE, atol=TOLERANCE):
            continue
        where = f"(case {i + 1}: B = {logits.shape[0]}, K = {logits.shape[1]})"
        q = torch.softmax(logits, -1)
        entropy = -(q * torch.log_softmax(logits, -1)).sum(-1)
        slips = {
            "no-entropy": ((q * labelled).sum(-1), "the entropy of q(y|x) is part of the bound "
                           "(Jensen's log-ratio holds −log q(y|x)); without it the bound is "
                           "looser."),
            "entropy-sign": ((q * labelled).sum(-1) - entropy,
                             "the entropy is added: −Σ q log q = H(q) ≥ 0."),
            "logits": ((logits * labelled).sum(-1), "weight L(x, y) by the probabilities "
                       "q(y|x) = softmax(logits), not by the logits."),
        }
        return _slip_or_value(name, answer, want, slips, where,
                              "U(x) = Σ_y q(y|x) L(x, y) − Σ_y q(y|x) log q(y|x).")
    return measured(name, True, "U(x) matches the definition on 6 random cases")


# Exercise: the best classifier for the unlabelled bound (derive)
def _numerical_best(labelled: torch.Tensor, steps: int = 500) -> torch.Tensor:
    """max over q(y|x) of U, by gradient ascent on free logits (an independent reference)."""
    logits = torch.zeros_like(labelled, requires_grad=True)
    optimiser = torch.optim.Adam([logits], lr=0.5)
    for _ in range(steps):
        loss = -_reference(logits, labelled).sum()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return _reference(logits.detach(), labelled)


@exercise(unlabelled_bound)
def check_best_unlabelled_bound(best_unlabelled_bound) -> CheckResult:
    """Check ``best_unlabelled_bound(labelled)`` → ``(B,)``: the largest U(x) any q(y|x) can
    give, in closed form, from the labelled bounds ``(B, K)`` (each includes log p(y)), on
    random cases (the closed form is tested against :func:`_numerical_best`)."""
    name = "best_unlabelled_bound"
    for i, (_, labelled) in enumerate(_cases(1502)):
        answer, failed = call(name, best_unlabelled_bound, labelled.clone())
        if failed is not None:
            return failed
        wrong = _tensor_answer(name, answer, labelled.shape[:1])
        if wrong is not None:
            return wrong
        want = torch.logsumexp(labelled, -1)  # tests/: equal to _numerical_best
        if torch.allclose(answer.double(), want, rtol=TOLERANCE, atol=TOLERANCE):
            continue
        where = f"(case {i + 1}: K = {labelled.shape[1]})"
        k = labelled.shape[1]
        slips = {
            "max": (labelled.max(-1).values, "the best q(y|x) is not the one-hot on the best "
                    "class: spreading q over classes earns the entropy too."),
            "prior-twice": (want - torch.log(torch.tensor(float(k), dtype=torch.float64)),
                            "L(x, y) already holds log p(y) = −log K; do not add it again."),
        }
        return _slip_or_value(name, answer, want, slips, where,
                              "Write U as minus a KL from q(y|x) to a distribution "
                              "proportional to exp L(x, y), plus a term without q.")
    return measured(name, True, "the largest U(x) matches on 6 random cases")


# Exercise: draw a chosen digit (experiment)
#: The check asks for GENERATOR_IMAGES images of each digit; it passes when the judge reads the
#: requested digit in at least GENERATOR_SHARE of all of them and the images vary: their
#: per-pixel sd within a digit, averaged over the ten digits, is at least GENERATOR_SPREAD.
GENERATOR_IMAGES, GENERATOR_SHARE, GENERATOR_SPREAD = 20, 0.92, 0.05


@exercise()
def check_conditional_generator(draw_digits) -> CheckResult:
    """Check ``draw_digits(model, digit, n)`` → ``(n, 1, 28, 28)`` in [0, 1]: images of ``digit``
    from the shipped M2 (draw 0), read by chapter 9's judge (``mnist32-lenet-classifier-e3``).

    The student's function runs under a fixed global seed (drawn from ``rng``), so that a
    rerun gives the same verdict.
    """
    from vaecore.data import pad_to_32
    from vaecore.seeding import local_seed
    from vaecourse import zoo
    from vaecourse.chapters.ch15_conditional_vae import SEMI_SUPERVISED
    name = "draw_digits"
    model = zoo.load(SEMI_SUPERVISED[0][1], train_if_missing=False)[0].eval()
    judge = zoo.load("mnist32-lenet-classifier-e3", train_if_missing=False)[0].eval()
    seed = int(torch.randint(2 ** 31, (1,), generator=rng(1503)))
    agree, spreads = [], []
    with local_seed(seed):
        for digit in range(10):
            answer, failed = call(name, draw_digits, model, digit, GENERATOR_IMAGES)
            if failed is not None:
                return failed
            shape = (GENERATOR_IMAGES, 1, 28, 28)
            if not isinstance(answer, torch.Tensor) or tuple(answer.shape) != shape:
                got = (tuple(answer.shape) if isinstance(answer, torch.Tensor)
                       else type(answer).__name__)
                return measured(name, False, f"your function returned {got} for digit {digit}",
                                "shape", f"Return a tensor of shape {shape}.")
            images = answer.detach().float()
            if not torch.isfinite(images).all() or images.min() < 0 or images.max() > 1:
                return measured(name, False, f"the images of digit {digit} are not all in "
                                "[0, 1]", "range", "Decode to logits, then take the sigmoid.")
            with torch.no_grad():
                agree.append((judge(pad_to_32(images)).argmax(1) == digit).float())
            spreads.append(images.flatten(1).std(0).mean().item())
    share, spread = torch.cat(agree).mean().item(), sum(spreads) / len(spreads)
    what = (f"the judge reads the requested digit in {share:.0%} of {10 * GENERATOR_IMAGES} "
            f"images; their per-pixel sd within a digit is {spread:.3f} on average")
    if spread < GENERATOR_SPREAD:
        return measured(name, False, what, "copies", "The images of one digit should differ: "
                        f"at least {GENERATOR_SPREAD:g} of per-pixel sd on average.")
    if share < 0.5:
        return measured(name, False, what, "class", "Most images show another digit: check that "
                        "the one-hot vector you decode with is the requested digit's.")
    return measured(name, share >= GENERATOR_SHARE, what, "share",
                    f"At least {GENERATOR_SHARE:.0%} are needed; draw z closer to the prior's "
                    "centre, where the decoder has seen the most codes.")
