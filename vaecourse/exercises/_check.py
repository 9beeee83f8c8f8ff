"""The machinery behind every exercise check: compare, then explain the difference.

A check calls the student's function and the library's reference on the same
inputs (random ones from a fixed seed, plus edge cases) and returns a
:class:`CheckResult`. When the two differ, :func:`diagnose` names the most
likely reason, and only a reason it can tell apart from the others: a shape, a
sign, a reduction (mean where a sum was due), a constant factor, a missing
additive constant, or float32 precision. (Which functions a check accepts, and
what a grader reads, is in :mod:`._submission`.)
"""
from __future__ import annotations

import math
import textwrap
from typing import Callable, NamedTuple

import torch

__all__ = ["CheckResult", "diagnose", "run_cases", "known_mistakes"]

PRECISION_RTOL = 1e-5  # agreement reached in float32 arithmetic (about 1e-7 per operation)


class CheckResult(NamedTuple):
    """Outcome of an exercise check; it displays as its message in a notebook."""

    passed: bool
    hint: str  # "" when passed, else a short tag: shape, sign, reduction, factor, constant, ...
    message: str

    def __repr__(self) -> str:
        # Shown in the notebook: wrapped to the book's 88-character column, continuation
        # lines indented; the message itself (what grading records) is unchanged.
        return "\n".join(textwrap.fill(line, 88, subsequent_indent="  ", break_long_words=False,
                                        break_on_hyphens=False) for line in self.message.split("\n"))

    def __bool__(self) -> bool:
        return self.passed


def _fail(name: str, hint: str, detail: str) -> CheckResult:
    return CheckResult(False, hint, f"✗ {name}: not yet. Hint ({hint}): {detail}")


def _is_const(t: torch.Tensor, rtol: float = 1e-6) -> float | None:
    """The common value of ``t`` if all its entries agree, else None."""
    t = t.flatten().double()
    if t.numel() == 0 or not torch.isfinite(t).all():
        return None
    c = t.mean().item()
    return c if torch.allclose(t, torch.full_like(t, c), rtol=rtol, atol=1e-9) else None


def _shape_detail(got: torch.Tensor, want: torch.Tensor) -> str:
    """What a wrong shape says about the computation, only where the values tell it."""
    detail = f"expected shape {tuple(want.shape)}, got {tuple(got.shape)}."
    if got.numel() == want.numel():
        return detail + (" The values are all there, in another shape: a size-1 dimension "
                         "was kept (keepdim=True, a (B, 1) column) or dropped (squeeze() also "
                         "drops a batch of one). Return the expected shape.")
    if got.dim() == 0 and want.dim() >= 1:
        return detail + " One value per example is expected: do not reduce over the batch."
    if want.dim() == 1 and got.dim() == 2 and got.shape == (len(want), len(want)):
        return detail + (" A (B,) tensor met a (B, 1) one, and broadcasting made a B × B "
                         "table: keep every per-example term one-dimensional.")
    if got.dim() > want.dim() and got.shape[:1] == want.shape[:1] and want.dim() == 1:
        if torch.allclose(got.flatten(1).sum(1), want, rtol=1e-5, atol=1e-6):
            return detail + (" Sum over the dimensions after the batch one "
                             "(.flatten(1).sum(1)): summed, your values are right.")
        return detail + " One value per example is expected: reduce the dimensions after the batch one."
    if got.dim() < want.dim():
        return detail + " A dimension that must be kept was reduced (summed or averaged)."
    return detail


def _nonfinite_detail(got: torch.Tensor) -> str:
    if torch.isnan(got).any():
        return ("the result has NaN where the reference is finite: look for 0/0, inf − inf, "
                "0·inf, or the log or square root of a negative number.")
    return ("the result has ±inf where the reference is finite: look for exp of a large "
            "number, the log of 0, or a division by 0.")


def _precision_detail(got_dtype, want_dtype, rel: float, rtol: float) -> str:
    detail = (f"your values agree with the reference to about {rel:.0e} (relative), not to "
              f"the {rtol:g} the check asks for: that is float32 precision (about 1e-7 per "
              "operation). ")
    if got_dtype != want_dtype:
        return detail + (f"Your result is {got_dtype} while the inputs are {want_dtype}: "
                         "compute in the inputs' dtype (no .float(), no torch.tensor(...) "
                         "without dtype=).")
    return detail + ("A step in float32 (a tensor created without dtype=, a .float()) or a "
                     "rounded constant (3.14 for π) loses the digits.")


def diagnose(name: str, got, want: torch.Tensor, *, event_size: int | None = None,
             batch_size: int | None = None, rtol: float = 1e-5,
             atol: float = 1e-6, nan: str | None = None) -> CheckResult | None:
    """Return a failed :class:`CheckResult` explaining how ``got`` differs, or None if equal.

    ``event_size`` is the number of summed event elements per example (to spot a
    mean where a sum was due); ``batch_size`` spots a batch mean or sum where one
    value per example was expected; ``nan`` replaces the generic detail for a
    non-finite result (a check on logits can name them). A hint is given only
    where the values tell it apart: no factor or constant for a single number
    (any two numbers differ by both), and agreement to float32 precision is
    named as such, never as a factor close to 1.
    """
    if not isinstance(got, torch.Tensor):
        return _fail(name, "type", f"expected a torch.Tensor, got {type(got).__name__}.")
    got_dtype = got.dtype
    got, want = got.detach().double(), want.detach().double()
    if got.shape != want.shape:
        return _fail(name, "shape", _shape_detail(got, want))
    if not torch.isfinite(got).all() and torch.isfinite(want).all():
        return _fail(name, "nan", nan or _nonfinite_detail(got))
    if torch.allclose(got, want, rtol=rtol, atol=atol):
        return None
    scale = want.abs().max().item() if want.numel() else 0.0
    loose = {"rtol": max(rtol, PRECISION_RTOL), "atol": max(atol, 1e-7 * scale)}
    if torch.isfinite(got).all() and torch.allclose(got, want, **loose):
        rel = ((got - want).abs() / want.abs().clamp_min(max(1e-300, 1e-7 * scale))).max().item()
        return _fail(name, "precision", _precision_detail(got_dtype, want.dtype, rel, rtol))
    if torch.allclose(got, -want, **loose):
        return _fail(name, "sign", "the result has the wrong sign everywhere.")
    single = want.numel() == 1
    ratio = _is_const(got / want, rtol=1e-6 if got_dtype == torch.float64 else 1e-5) \
        if (want.abs() > 1e-9).all() else None
    if ratio is not None:
        if event_size and math.isclose(ratio, 1 / event_size, rel_tol=1e-4):
            return _fail(name, "reduction", f"the values are {event_size}× too small: "
                         "you took a mean over the event dimensions where a sum is due.")
        if event_size and math.isclose(ratio, event_size, rel_tol=1e-4):
            return _fail(name, "reduction", f"the values are {event_size}× too large: "
                         "divide by the number of dimensions.")
        if batch_size and math.isclose(ratio, batch_size, rel_tol=1e-4):
            return _fail(name, "reduction", "the values are batch-size times too large: "
                         "something is summed over the batch.")
        if not single:
            for c, say in ((0.5, "half"), (2.0, "twice")):
                if math.isclose(ratio, c, rel_tol=1e-4):
                    return _fail(name, "factor", f"the result is {say} the reference: "
                                 "check the factor ½.")
            if math.isclose(ratio, 1 / math.log(10), rel_tol=1e-4) or math.isclose(
                    ratio, math.log(2) / math.log(10), rel_tol=1e-4):
                return _fail(name, "factor", "off by a constant factor: use natural logs "
                             "(nats), or log 2 for bits, not log 10.")
            if got_dtype == torch.float64 and abs(ratio - 1) > 1e-3:
                return _fail(name, "factor", f"off by a constant factor {ratio:.4g}.")
    shift = None if single else _is_const(got - want, rtol=1e-4)
    if shift is not None:
        return _fail(name, "constant", f"off by the additive constant {shift:.6g}: "
                     "a constant term (such as ½·log 2π per dimension) is missing or extra.")
    err = (got - want).abs().max().item()
    return _fail(name, "values", f"the values differ from the reference (max abs error {err:.3g}).")


def _event_size(args) -> int | None:
    """Elements per example of the first tensor argument with a batch and event dims."""
    for a in args:
        if isinstance(a, torch.Tensor) and a.dim() >= 2:
            return a[0].numel()
    return None


def run_cases(name: str, student: Callable, reference: Callable, cases,
              event_size: int | Callable | str | None = "auto", explain: Callable | None = None,
              **diag) -> CheckResult:
    """Run ``student`` and ``reference`` on each tuple of arguments in ``cases``.

    Stops at the first difference and returns its diagnosis; exceptions raised
    by the student's code are reported as hints, never swallowed silently.
    ``event_size`` (an int, a function of the arguments, ``"auto"`` for the
    per-example size of the first batched tensor argument, or None) lets a
    mean over the event dimensions be named as such. ``explain(args, got,
    want)`` may name a chapter-specific mistake as ``(hint, detail)``; it is
    asked only when the result differs. A Python number returned by the
    student is compared as a float64 tensor. Other keywords (``rtol``,
    ``atol``, ``batch_size``, ``nan``) go to :func:`diagnose`.
    """
    for i, args in enumerate(cases):
        want = reference(*args)
        try:
            got = student(*args)
        except NotImplementedError:
            return CheckResult(False, "todo", f"✗ {name}: not implemented yet.")
        except Exception as exc:  # report, don't hide, what the student's code raised
            return _fail(name, "error", f"your function raised {type(exc).__name__}: {exc}")
        if isinstance(got, (int, float)) and not isinstance(got, bool):
            got = torch.tensor(float(got), dtype=torch.float64)
        size = (_event_size(args) if event_size == "auto"
                else event_size(args) if callable(event_size) else event_size)
        bad = diagnose(name, got, want, event_size=size, **diag)
        if bad is not None:
            special = explain(args, got, want) if explain is not None else None
            if special is not None:
                bad = _fail(name, *special)
            return bad._replace(message=bad.message + f" (case {i + 1} of {len(cases)})")
    return CheckResult(True, "", f"✓ {name}: passed on {len(cases)} cases.")


def known_mistakes(mistakes, close: Callable) -> Callable:
    """An ``explain`` for :func:`run_cases` from ``(hint, wrong_fn, detail)`` triples.

    A result that ``close(got, wrong_fn(*args))`` matches, where that wrong
    answer is not itself close to the reference, is named by its hint and detail.
    """
    def explain(args, got, want):
        for hint, wrong, detail in mistakes:
            w = wrong(*args)
            if close(got, w) and not close(w, want):
                return hint, detail
        return None
    return explain
