"""vaecourse/exercises/_check.py: a hint names only what the values tell apart.

Answers here are written as a notebook writes them: executed in a namespace named
``__main__``, so they are the notebook's own functions.
"""
from __future__ import annotations

import pytest
import torch

from vaecourse.exercises import diagnose
from vaecourse.exercises.ch02_elbo import check_log_normal
from vaecourse.exercises.ch06_latent_space import check_slerp


def notebook(source: str) -> dict:
    """Run ``source`` as a notebook cell runs it: in a namespace named ``__main__``."""
    namespace = {"__name__": "__main__"}
    exec(source, namespace)
    return namespace


LOG_NORMAL = ("def log_normal(x, mean, logvar):\n"
              "    per_dim = -0.5 * (math.log(2 * math.pi) + logvar + (x - mean) ** 2 * torch.exp(-logvar))\n"
              "    return per_dim.flatten(1).sum(1){}\n")


def test_a_single_number_gets_no_factor_or_constant_hint():
    want = torch.tensor(1.3, dtype=torch.float64)
    assert diagnose("f", want * 2.7, want).hint == "values"
    assert diagnose("f", want + 0.5, want).hint == "values"
    assert diagnose("f", -want, want).hint == "sign"
    assert diagnose("f", want * 784, want, event_size=784).hint == "reduction"
    vector = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    assert diagnose("f", vector * 2.7, vector).hint == "factor"  # several values: it is told


def test_float32_agreement_is_named_precision_not_a_factor_of_one():
    want = torch.linspace(-300.0, -100.0, 5, dtype=torch.float64)
    got = (want.float() * (1 + 3e-7)).float()
    result = diagnose("f", got, want, rtol=1e-9, atol=1e-9)
    assert result.hint == "precision" and "torch.float32" in result.message
    assert "factor" not in result.message
    nearly = diagnose("f", want * (1 + 2e-8), want, rtol=1e-10, atol=1e-12)
    assert nearly.hint == "precision" and "factor" not in nearly.message
    assert diagnose("f", (-want).float(), want, rtol=1e-9, atol=1e-9).hint == "sign"
    assert diagnose("f", (2 * want).float(), want, rtol=1e-9, atol=1e-9).hint == "factor"
    # float32 noise is not a factor: none is named for a float32 result off by other than ½, 2
    assert diagnose("f", (1.37 * want).float(), want, rtol=1e-9, atol=1e-9).hint == "values"


def test_a_float32_answer_to_a_float64_check_is_told_precision():
    answer = notebook("import math, torch\n" + LOG_NORMAL.format("").replace(
        "per_dim = ", "x, mean, logvar = x.float(), mean.float(), logvar.float()\n    per_dim = "))
    result = check_log_normal(answer["log_normal"])
    assert result.hint == "precision" and "float32" in result.message, result.message


@pytest.mark.parametrize("ending, hint, says, never", [
    ("", "", "passed", None),
    ("[:, None]", "shape", "a size-1 dimension was kept", "Sum over"),
    ("[:, None] + 0 * per_dim.flatten(1).sum(1)", "shape", "broadcasting", "Sum over"),
])
def test_shape_advice_tells_a_kept_dimension_from_a_missing_sum(ending, hint, says, never):
    answer = notebook("import math, torch\n" + LOG_NORMAL.format(ending))["log_normal"]
    result = check_log_normal(answer)
    assert result.hint == hint and says in result.message, result.message
    assert never is None or never not in result.message


def test_shape_advice_says_sum_to_who_did_not_sum():
    answer = notebook("import math, torch\ndef log_normal(x, mean, logvar):\n"
                      "    return -0.5 * (math.log(2 * math.pi) + logvar "
                      "+ (x - mean) ** 2 * torch.exp(-logvar))\n")["log_normal"]
    result = check_log_normal(answer)
    assert result.hint == "shape" and "Sum over" in result.message, result.message


def test_the_generic_nan_hint_names_no_logits():
    answer = notebook("import torch\ndef slerp(z0, z1, t):\n"
                      "    cos = (z0 * z1).sum(1) / (z0.norm(dim=1) * z1.norm(dim=1))\n"
                      "    omega = torch.acos(cos.clamp(-1, 1))[:, None]\n"
                      "    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1)"
                      " / torch.sin(omega)\n")["slerp"]
    result = check_slerp(answer)
    assert result.hint == "nan" and "0/0" in result.message and "logit" not in result.message
