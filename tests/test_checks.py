"""Tests for vaecore._checks: each check accepts what it should and says what it expected."""
import math

import pytest
import torch

from vaecore._checks import all_finite, check_batch, check_dtype, check_positive_int


def test_check_positive_int():
    np = pytest.importorskip("numpy")
    assert check_positive_int("n", 3) == 3
    assert check_positive_int("n", np.int64(3)) == 3 and type(check_positive_int("n", np.int32(2))) is int
    for bad in (0, -1, 2.5, 2.0, "2", True, None):
        with pytest.raises(ValueError, match=r"n: expected a positive integer, got "):
            check_positive_int("n", bad)
    with pytest.raises(ValueError, match=r"got a tensor of shape \(128,\)$"):
        check_positive_int("k", torch.arange(128))  # labels in place of k: no dump of the tensor


def test_check_dtype():
    x = torch.zeros(2, 3)
    assert check_dtype("x", x, None) is x and check_dtype("x", x, torch.float32) is x
    with pytest.raises(ValueError, match=r"x: expected torch.float64, the dtype of the model's "
                                         r"parameters, got torch.float32; .*x.to\(torch.float64\)"):
        check_dtype("x", x, torch.float64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert check_dtype("x", x, torch.bfloat16) is x  # autocast casts float32
        with pytest.raises(ValueError, match="torch.float64"):
            check_dtype("x", x, torch.float64)  # but never float64


def test_check_batch():
    x = torch.zeros(2, 3)
    assert check_batch("x", x) is x
    assert check_batch("x", x[:0], allow_empty=True).shape == (0, 3)
    with pytest.raises(ValueError, match=r"x: expected at least one example, got an empty batch "
                                         r"of shape \(0, 3\)"):
        check_batch("x", x[:0])
    with pytest.raises(ValueError, match=r"got a tuple of 2 \(did you pass \(x, y\)\?\); hint$"):
        check_batch("x", (x, x), "; hint")
    with pytest.raises(ValueError, match="at least 2 dimension"):
        check_batch("x", torch.zeros(3))


def test_all_finite():
    assert all_finite(torch.tensor([1.0, -2.0])) and all_finite(torch.zeros(0))
    for bad in (math.nan, math.inf, -math.inf):
        assert not all_finite(torch.tensor([1.0, bad]))


def test_a_check_shows_its_message_wrapped_to_the_column_and_records_it_whole():
    from vaecourse.exercises._check import CheckResult
    message = "✓ name: " + " ".join(["word"] * 40) + "\nsecond line"
    shown = repr(CheckResult(True, "", message))
    assert max(len(line) for line in shown.splitlines()) <= 88
    assert shown.split() == message.split() and shown.splitlines()[1].startswith("  word")
    assert CheckResult(True, "", message).message == message
