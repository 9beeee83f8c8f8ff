"""Tests for vaecore.vq_bits: tiny cases computed by hand, in bits."""
import math

import pytest
import torch

from vaecore.discretized_logistic import discretized_logistic
from vaecore.likelihoods import bernoulli, normal
from vaecore.vq_bits import vq_bits_per_dim

F64 = torch.float64


def test_discretized_logistic_case_by_hand():
    # two sub-pixels at the edge levels 0 and 255, means on them, s = (1/510) / ln 3:
    # each level gets sigma(ln 3) = 3/4, so the image costs 2 log2(4/3) bits
    x = torch.tensor([[[[0.0, 1.0]]]], dtype=F64)
    log_scale = torch.full_like(x, math.log(1 / 510 / math.log(3)))
    # two codes, each 1 of 4 under a uniform prior: 4 bits
    log_prob_codes = torch.tensor([2 * math.log(1 / 4)], dtype=F64)
    bpd = vq_bits_per_dim(x, (x.clone(), log_scale), discretized_logistic, log_prob_codes)
    expected = (4 + 2 * math.log2(4 / 3)) / 2  # = 4 - log2 3 = 2.415...
    assert bpd.shape == (1,) and math.isclose(bpd.item(), expected, rel_tol=1e-12)
    assert math.isclose(expected, 4 - math.log2(3))


def test_bernoulli_case_by_hand_one_value_per_image():
    # p(x_i = 1) = 1/2, 1/2, 3/4: images (1, 0, 1) and (0, 0, 0)
    logits = torch.tensor([[0.0, 0.0, math.log(3)]] * 2, dtype=F64)
    x = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]], dtype=F64)
    log_prob_codes = torch.tensor([math.log(1 / 8), math.log(1 / 2)], dtype=F64)  # 3 bits, 1 bit
    bpd = vq_bits_per_dim(x, logits, bernoulli, log_prob_codes)
    first = (3 + 1 + 1 + math.log2(4 / 3)) / 3
    second = (1 + 1 + 1 + 2) / 3
    torch.testing.assert_close(bpd, torch.tensor([first, second], dtype=F64), rtol=1e-12, atol=0)


def test_densities_grey_levels_and_wrong_shapes_are_refused():
    x = torch.zeros(2, 3)
    codes = torch.zeros(2)
    with pytest.raises(ValueError, match="expected a discrete likelihood.*got normal"):
        vq_bits_per_dim(x, x, normal(0.0), codes)
    with pytest.raises(ValueError, match="expected binary images"):
        vq_bits_per_dim(x + 0.5, x, bernoulli, codes)
    with pytest.raises(ValueError, match="same shape"):
        vq_bits_per_dim(x, x, bernoulli, torch.zeros(3))
    with pytest.raises(ValueError, match="log_prob_codes: expected 1 dimensions"):
        vq_bits_per_dim(x, x, bernoulli, torch.zeros(2, 1))
