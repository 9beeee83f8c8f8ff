r"""The test-likelihood benchmark: its protocol and how results are stored in records.

Protocol (the one of the IWAE paper's Table 1): MNIST with **dynamic
binarization** (each training batch binarized afresh, pixel ~ Bernoulli(grey
level)), a Bernoulli decoder, the 10,000 test images binarized once (fixed
seed), and the test negative log-likelihood in nats per image estimated by
importance sampling with the encoder as proposal, :math:`k = 5000`,
Equation (log-likelihood-is). The single-sample ELBO (:math:`k = 1`) is
reported beside it.

:func:`write_result` stores a result in a checkpoint's JSON record, tied to the
checkpoint's sha256 so that a retrained model cannot inherit an old number;
:func:`stored_result` reads it back and refuses a result of another checkpoint.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import NamedTuple

import torch

from vaecore._checks import check_positive_int
from vaecore.checkpoint import _atomic_file
from vaecore.elbo import log_likelihood_is

__all__ = ["NLLResult", "estimate_nll", "write_result",
           "stored_result"]


class NLLResult(NamedTuple):
    """Test NLL and negative ELBO in nats per image, each with its standard error over images."""
    nll: float
    nll_se: float
    negative_elbo: float
    negative_elbo_se: float
    k: int
    n_test: int
    seed: int
    wall_time_s: float


def _mean_se(values: torch.Tensor) -> tuple[float, float]:
    values = values.double()
    se = values.std().item() / len(values) ** 0.5 if len(values) > 1 else float("nan")
    return values.mean().item(), se


def estimate_nll(model, x: torch.Tensor, k: int = 5000, *, seed: int = 0, batch_size: int = 100,
             chunk: int = 500) -> tuple[NLLResult, torch.Tensor]:
    r"""Estimate the test NLL of ``model`` on binarized images ``x`` ``(N, ...)``.

    Returns ``(result, log_px)``: the :class:`NLLResult` (means over the ``N``
    images of :math:`-\log \hat p(x)` with ``k`` importance samples and of the
    one-sample negative ELBO, with standard errors over images) and the
    per-image estimates ``log_px`` ``(N,)``. Both use generators seeded from
    ``seed``; the model is put in eval mode.
    """
    check_positive_int("k", k)
    model.eval()
    start = time.perf_counter()
    log_px = log_likelihood_is(model, x, k, chunk=min(chunk, k), batch_size=batch_size,
                               generator=torch.Generator().manual_seed(seed))
    elbo = log_likelihood_is(model, x, 1, batch_size=batch_size,
                             generator=torch.Generator().manual_seed(seed + 1))
    if not (torch.isfinite(log_px).all() and torch.isfinite(elbo).all()):
        raise FloatingPointError("estimate_nll: the model gave a non-finite log-weight; "
                                 "refusing to report a mean over NaN/inf")
    (nll, nll_se), (nelbo, nelbo_se) = _mean_se(-log_px), _mean_se(-elbo)
    return NLLResult(nll, nll_se, nelbo, nelbo_se, k, len(x), seed,
                     round(time.perf_counter() - start, 1)), log_px


def _read(record) -> tuple[Path, dict]:
    path = Path(record)
    if not path.is_file():
        raise FileNotFoundError(f"no record {path}")
    return path, json.loads(path.read_text())


def write_result(record, result: NLLResult, command: str) -> dict:
    """Store ``result`` under ``"nll"`` in the JSON record at path ``record``; return the record.

    The result is tied to the record's ``"sha256"`` (the checkpoint it was
    measured on) and to ``command``, which reproduces it.
    """
    path, info = _read(record)
    info["nll"] = {**result._asdict(), "sha256": info["sha256"], "command": command,
                   "threads": torch.get_num_threads()}
    with _atomic_file(path) as f:  # a kill mid-write leaves the old record whole
        f.write((json.dumps(info, indent=2) + "\n").encode())
    return info


def stored_result(record) -> NLLResult | None:
    """The result stored in the JSON record at path ``record``, or None if there is none.

    Raises ``ValueError`` when the stored result belongs to another version of
    the checkpoint (its sha256 differs from the record's): rerun the benchmark.
    """
    path, info = _read(record)
    stored = info.get("nll")
    if stored is None:
        return None
    if stored["sha256"] != info["sha256"]:
        raise ValueError(f"{path.name}: the stored NLL was measured on another checkpoint "
                         f"(sha256 {stored['sha256'][:12]}…, the record's is "
                         f"{info['sha256'][:12]}…); rerun the benchmark")
    return NLLResult(**{field: stored[field] for field in NLLResult._fields})
