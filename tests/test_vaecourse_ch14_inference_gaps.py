"""Chapter 14's recipes (the width-by-length grid, the gradient estimators) and its gap measurement."""
from __future__ import annotations

from functools import partial

import pytest
import torch

from vaecore.elbo import negative_elbo
from vaecore.gradients import iwae_dreg_loss, negative_elbo_stl
from vaecourse.chapters import ch14_inference_gaps as C
from vaecourse.chapters.ch05_first_vae import REFERENCE, mlp_vae
from vaecourse.zoo import RECIPES


def test_grid_names_and_width_400_is_chapter_5s_model():
    assert C.GRID[(400, 30)] == REFERENCE == "mnist-mlp-bernoulli-z20-e30"
    assert C.GRID[(400, 10)] == "mnist-mlp-bernoulli-z20-e10"
    assert C.GRID[(100, 3)] == "mnist-mlp-bernoulli-enc100-z20-e3"
    assert C.GRID[(1000, 30)] == "mnist-mlp-bernoulli-enc1000-z20-e30"
    assert set(C.GRID.values()) | {name for _, name in C.ESTIMATORS} <= set(RECIPES)
    # the chapter adds only what chapters 5 and 11 do not already train
    assert set(C.RECIPES).isdisjoint({REFERENCE, C.GRID[(400, 10)], C.ESTIMATORS[2][1]})
    a, b = C.gap_vae(400, seed=3), mlp_vae(seed=3)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    counts = {w: sum(p.numel() for p in C.gap_vae(w).encoder.parameters()) for w in C.WIDTHS}
    assert counts == {w: 784 * w + w + 2 * (w * 20 + 20) for w in C.WIDTHS}


def test_recipes_train_the_objectives_they_name_and_test_the_plain_elbo():
    for (width, epochs), name in C.GRID.items():
        recipe = RECIPES[name]
        assert recipe.epochs == epochs and recipe.loss is negative_elbo
        assert recipe.build().encoder.to_mu.in_features == width
        assert f"784-{width}-20" in recipe.summary and f"{epochs} epochs" in recipe.summary
    stl, dreg = RECIPES[C.ESTIMATORS[1][1]], RECIPES[C.ESTIMATORS[3][1]]
    assert stl.loss is negative_elbo_stl
    assert isinstance(dreg.loss, partial) and dreg.loss.func is iwae_dreg_loss
    assert dreg.loss.keywords == {"k": C.IWAE_K}
    for recipe in (stl, dreg):
        assert recipe.evaluate.keywords["loss_fn"] is negative_elbo


def test_measure_gaps_adds_up_and_the_optimised_posteriors_do_better(monkeypatch):
    """On a small untrained model and 6 images: the decomposition is an identity, and SVI helps."""
    for name, value in (("SVI_STEPS", 30), ("FLOW_STEPS", 20), ("GAP_K", 50),
                        ("ELBO_SAMPLES", 20), ("GAP_BATCH", 4)):
        monkeypatch.setattr(C, name, value)
    x = torch.bernoulli(torch.full((6, 1, 28, 28), 0.2),
                        generator=torch.Generator().manual_seed(0))
    model = C.gap_vae(100)
    r = C.measure_gaps(model, x)
    mean = {k: r[k]["mean"] for k in ("log_px", "elbo_encoder", "elbo_gaussian", "elbo_flow",
                                      "total", "amortization", "approximation", "flow_gain",
                                      "flow_remaining")}
    # per-image differences in float32, means in float64
    close = partial(pytest.approx, abs=1e-4, rel=0)
    assert mean["total"] == close(mean["amortization"] + mean["approximation"])
    assert mean["approximation"] == close(mean["flow_gain"] + mean["flow_remaining"])
    assert mean["total"] == close(mean["log_px"] - mean["elbo_encoder"])
    assert mean["amortization"] > 0 and mean["log_px"] > mean["elbo_gaussian"]
    assert r["n_images"] == 6 and r["settings"]["k"] == 50
    assert r["total"]["se"] == pytest.approx(r["total"]["sd"] / 6 ** 0.5)
    assert all(p.grad is None for p in model.parameters())
    again = C.measure_gaps(model, x)
    assert again["log_px"] == r["log_px"]  # seeded: a record can be reproduced
    # no SVI steps: q* is the encoder's q, and the common draws make the gap exactly zero
    unmoved = C.measure_gaps(model, x, steps=0)
    assert unmoved["amortization"] == {"mean": 0.0, "sd": 0.0, "se": 0.0}
    with pytest.raises(ValueError, match="x"):
        C.measure_gaps(model, x[:0])
