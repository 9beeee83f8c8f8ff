"""Every shipped record was produced by today's recipe, and every comparison has three seeds.

A recipe's result changes when its arithmetic changes (initialisation, data,
loss, optimizer, learning rate, ``fit`` itself). Each record stores the losses
of the recipe's first optimisation steps (:func:`vaecourse.zoo.first_steps`);
recomputing them takes a second, and a difference beyond
``zoo.FIRST_STEPS_RTOL`` means the checkpoint is stale: retrain it with its
command. ``NOT_YET_RETRAINED`` names the records that predate this check; it
may only shrink.
"""
from __future__ import annotations

import dataclasses
import functools

import pytest

from vaecourse import store, zoo
from vaecourse.chapters import ch16_vq_vae as ch16
from vaecourse.chapters import ch17_latent_diffusion as ch17
from vaecourse.chapters import ch18_priors_and_hierarchies as ch18

#: Records written before records named their code and first steps (release 0.1's training).
NOT_YET_RETRAINED: set[str] = set()

#: The records each chapter draws a conclusion from by comparing them.
COMPARISONS = {
    "05_first_vae": ["mnist-mlp-bernoulli-z20-e10", "mnist-mlp-normal-unitvar-z20-e10",
                     "mnist-mlp-normal-learnedvar-z20-e10", "mnist-mlp-bernoulli-pixelmean-z20-e10",
                     "mnist-conv-bernoulli-z20-e10"],
    "06_latent_space": ["mnist-mlp-bernoulli-z1-e30", "mnist-mlp-bernoulli-z2-e30",
                        "mnist-mlp-bernoulli-z20-e30", "mnist-mlp-bernoulli-z50-e30"],
    "07_beta": ["mnist-mlp-bernoulli-z20-beta0.1-e30", "mnist-mlp-bernoulli-z20-beta0.5-e30",
                "mnist-mlp-bernoulli-z20-e30", "mnist-mlp-bernoulli-z20-beta2-e30",
                "mnist-mlp-bernoulli-z20-beta10-e30", "mnist-mlp-bernoulli-z50-e30",
                "mnist-mlp-bernoulli-warmup-z50-e30", "mnist-mlp-bernoulli-noise-z20-e30"],
    "08_residual_vae": ["cifar-bh-resnet-bernoulli-z64-beta0.01-e15",
                        "cifar-bh-resnet-bernoulli-z64-e15", "cifar-bh-conv-bernoulli-z64-e15",
                        "cifar-bh-resnet-dlogistic-z64-e15"],
    "09_vae_vs_gan": ["mnist32-mlp-bernoulli-z100-e20", "mnist32-mlp-gan-z100-e20",
                      "mnist32-mlp-gan-smooth-z100-e20"],
    "10_mmd_vae": ["shapes-mlp-bernoulli-z8-e50", "shapes-mlp-bernoulli-mmd-z8-e50",
                   "shapes-mlp-bernoulli-mmd-noise-z8-e50",
                   "shapes-mlp-bernoulli-mmd-noise-unitscale-z8-e50"],
    # The best model (mnist-mlp2-bernoulli-flow-iwae-k5-z50-e50) is compared with no other
    # recipe: it stands beside published numbers as one training run, and the chapter says so.
    "11_evaluation": ["mnist-mlp-bernoulli-z20-e30", "mnist-mlp-bernoulli-flow-z20-e30",
                      "mnist-mlp-bernoulli-iwae-k5-z20-e30", "mnist-mlp-bernoulli-fixedbin-z20-e30"],
    "12_disentanglement": [f"dsprites-mlp-bernoulli{variant}-z10-beta{beta}-e30"
                           for variant in ("", "-tcvae") for beta in (2, 4, 8)],
    "13_posterior_collapse": [f"mnist-pixelcnn-bernoulli{variant}-z32-e4" for variant in
                              ("", "-warmup", "-cyclical", "-freebits", "-delta")],
    # The grid's other points are one seed each, and the chapter says so.
    "14_inference_gaps": ["mnist-mlp-bernoulli-enc100-z20-e30",
                          "mnist-mlp-bernoulli-enc1000-z20-e30",
                          "mnist-mlp-bernoulli-z20-e30", "mnist-mlp-bernoulli-stl-z20-e30",
                          "mnist-mlp-bernoulli-iwae-k5-z20-e30",
                          "mnist-mlp-bernoulli-iwae-k5-dreg-z20-e30"],
    "15_conditional_vae": ["mnist-mlp-bernoulli-cvae-quadrant2-z20-e20",
                           "mnist-mlp-bernoulli-completer-quadrant2-e20",
                           "mnist-mlp-bernoulli-m2-labels100-z50-e20",
                           "mnist-mlp-classifier-only-labels100-e20"],
    # the main models on both data sets, and every codebook-health recipe (ch16.HEALTH)
    "16_vq_vae": [*(name for data in ("mnist", "cifar-bh") for name in ch16.NAMES[data].values()),
                  *(ch16.vq_name(c) for c in ch16.HEALTH)],
    # The autoencoders and both diffusion models on both data sets; the sweep of the KL
    # weight (ch17.SWEEP) is one seed per weight but the chosen one, and the chapter says so.
    "17_latent_diffusion": [name for data in ch17.NAMES.values() for name in data.values()],
    # Every model of the prior and depth comparisons and of the collapse table; the two
    # candidates for the best model are one training run each, and the chapter says so.
    "18_priors_and_hierarchies": sorted({*ch18.PRIORS.values(), *ch18.DEPTH.values(),
                                         *ch18.COLLAPSE.values()}),
}
#: Comparisons whose records do not have three seeds yet; may only shrink.
NOT_YET_REPLICATED: set[str] = set()


def _record(name: str) -> dict:
    return store.read_record(store.CHECKOUT_DIR / f"{name}.json")


def test_the_lists_name_real_recipes():
    names = set(zoo.recipes())
    assert NOT_YET_RETRAINED <= names
    assert {n for ns in COMPARISONS.values() for n in ns} <= names
    assert NOT_YET_REPLICATED <= set(COMPARISONS)


@functools.lru_cache(maxsize=2)
def _loaded(data):
    """``data()``, loaded once for all the recipes with this data function (59 of the 88
    share chapter 5's MNIST split; loading it took about half of their first steps). The
    recipes are taken in name order, so those with the same data mostly follow each other.
    ``first_steps`` only reads the tensors."""
    return data()


@pytest.mark.parametrize("name", sorted(zoo.recipes()))
def test_record_was_produced_by_todays_recipe(name, monkeypatch):
    info = _record(name)
    if name in NOT_YET_RETRAINED:
        assert "first_steps" not in info, f"{name} is retrained: remove it from NOT_YET_RETRAINED"
        pytest.skip(f"{name}: trained before records stored their first steps")
    assert info["seed"] == 0 and info["code"]["clean"] is True and len(info["code"]["commit"]) == 40
    recipe = zoo.recipes()[name]
    monkeypatch.setitem(zoo.RECIPES, name,
                        dataclasses.replace(recipe, data=functools.partial(_loaded, recipe.data)))
    stale = zoo.stale_first_steps(info["first_steps"], zoo.first_steps(name))
    assert not stale, (f"{name}: today's recipe no longer reproduces its checkpoint "
                       f"({'; '.join(stale)}); retrain: python -m vaecourse.zoo train {name}")


@pytest.mark.parametrize("chapter", sorted(COMPARISONS))
def test_every_compared_record_has_three_seeds(chapter):
    if chapter in NOT_YET_REPLICATED:
        pytest.skip(f"{chapter}: its comparisons are not replicated yet")
    for name in COMPARISONS[chapter]:
        info = _record(name)
        seeds = [info["seed"]] + [r["seed"] for r in info.get("seeds", [])]
        assert len(set(seeds)) >= 3, f"{name}: seeds {seeds}; expected at least three"
        assert all(r["code"]["clean"] and "first_steps" in r for r in info["seeds"]), name
        assert {frozenset(r["metrics"]) for r in info["seeds"]} == {frozenset(info["metrics"])}, \
            f"{name}: every seed must record the same metrics"
