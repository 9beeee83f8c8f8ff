"""Checks of exercises whose answer is a number or the outcome of an experiment.

An implement exercise is compared with the library on many inputs
(:func:`._check.run_cases`). The two other kinds are checked here:

- **derive or predict**: the student's function returns one number, the result
  of a derivation; :func:`check_number` compares it with the value the
  derivation gives and names a known slip (an answer in bits where nats were
  asked, a per-dimension value where the sum was due) only when the answer
  equals that slip's value. A single number cannot tell a factor from a
  constant, so no other hint is given.
- **experiment**: the student's function trains or changes something small;
  the check calls it, measures the property the exercise asks for, and says
  what it measured (:func:`measured`).

Both take the student's *function*, so that the student edition's stub (which
raises ``NotImplementedError``) reports "not implemented yet" and Run All goes on.
"""
from __future__ import annotations

import math
from typing import Callable

from ._check import CheckResult, _fail

__all__ = ["call", "call_number", "trained_vae", "check_number", "measured", "wrong_shape"]


def call(name: str, fn: Callable, *args):
    """``(value, None)`` from ``fn(*args)``, or ``(None, failed CheckResult)`` if it raised."""
    try:
        return fn(*args), None
    except NotImplementedError:
        return None, CheckResult(False, "todo", f"✗ {name}: not implemented yet.")
    except Exception as exc:  # report, don't hide, what the student's code raised
        return None, _fail(name, "error", f"your function raised {type(exc).__name__}: {exc}")


def trained_vae(name: str, fn: Callable, *args, latent_dim: int, builder: str):
    """``(model, None)`` from ``fn(*args)`` when it returns a VAE with ``latent_dim`` latents,
    else ``(None, failed CheckResult)`` that says what went wrong (``builder`` names the
    function that makes the exercise's network, e.g. ``"small_vae(seed)"``)."""
    model, failed = call(name, fn, *args)
    if failed is not None:
        return None, failed
    if not hasattr(model, "encode") or getattr(getattr(model, "prior", None), "latent_dim",
                                               None) != latent_dim:
        return None, measured(name, False, f"your function returned a {type(model).__name__}",
                              "type", f"Return the trained {builder} ({latent_dim} latents).")
    return model, None


def _as_float(value) -> float | None:
    try:
        number = float(value)  # a Python number or a one-element tensor / array
    except (TypeError, ValueError, RuntimeError):
        return None
    return number if not isinstance(value, bool) else None


def call_number(name: str, fn: Callable, *args,
                what: str) -> tuple[float | None, CheckResult | None]:
    """``(value, None)`` from ``fn(*args)`` when it returns one number, else ``(None, failed
    CheckResult)``: what it raised, or a request for one number (``what``: its unit, e.g.
    "nats per grid")."""
    answer, failed = call(name, fn, *args)
    if failed is not None:
        return None, failed
    value = _as_float(answer)
    if value is None:
        return None, measured(name, False, f"your function returned {type(answer).__name__}",
                              "type", f"Return one number: {what}.")
    return value, None


def check_number(name: str, answer: Callable, want: float, *, rtol: float = 1e-3,
                 mistakes=(), unit: str = "") -> CheckResult:
    """Check ``answer()``, a function returning one number, against ``want``.

    ``rtol``: relative tolerance (an answer worked out by hand to four
    significant digits passes). ``mistakes``: ``(value, detail)`` pairs, each a
    known slip and what to say when the answer equals it (within ``rtol``).
    The expected value is never printed.
    """
    value, failed = call(name, answer)
    if failed is not None:
        return failed
    got = _as_float(value)
    if got is None:
        return _fail(name, "type", f"return one number (a float), got {type(value).__name__}.")
    if not math.isfinite(got):
        return _fail(name, "nan", f"your answer is {got}.")
    if math.isclose(got, want, rel_tol=rtol, abs_tol=1e-12):
        return CheckResult(True, "", f"✓ {name}: {got:.6g}{unit} is right.")
    for value, detail in mistakes:
        if math.isclose(got, value, rel_tol=rtol, abs_tol=1e-12):
            return _fail(name, "derivation", detail)
    return _fail(name, "values", f"{got:.6g}{unit} is not the value the derivation gives "
                 f"(to within {rtol:.0e} relative). Write the quantity as a formula first, "
                 "then put the numbers in.")


def measured(name: str, ok: bool, what: str, hint: str = "", detail: str = "") -> CheckResult:
    """The outcome of an experiment check: ``what`` was measured; ``detail`` says why not yet."""
    if ok:
        return CheckResult(True, "", f"✓ {name}: {what}.")
    return _fail(name, hint or "measured", f"{what}. {detail}".strip())


def wrong_shape(name: str, answer, shape: tuple, where: str, what: str) -> CheckResult | None:
    """None when ``answer`` is a tensor of ``shape``; else a failed CheckResult that says what
    came back (``where``: the case) and asks for ``what`` (e.g. "z_q with the shape of z_e")."""
    import torch
    if isinstance(answer, torch.Tensor) and tuple(answer.shape) == tuple(shape):
        return None
    got = tuple(answer.shape) if isinstance(answer, torch.Tensor) else type(answer).__name__
    return measured(name, False, f"your function returned {got} {where}", "shape",
                    f"Return {what}, {tuple(shape)}.")
