"""Chapter 10's recipe pieces: the data splits, the judge, the input-noise encoder, the metrics."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from vaecore.classify import classifier_loss
from vaecore.elbo import negative_elbo
from vaecore.mmd import info_vae_loss
from vaecore.proportions import wilson_interval
from vaecourse import zoo
from vaecourse.zoo import RECIPES
from vaecourse.chapters import ch10_mmd_vae as S
from vaecore.train import fit


def test_splits_are_binary_disjoint_seeds_and_balanced():
    train, val, test = S.splits()
    assert [len(d.x) for d in (train, val, test)] == [10_000, 1_000, 2_000]
    for d in (train, val, test):
        assert d.x.shape[1:] == (1, 32, 32) and set(d.x.unique().tolist()) == {0.0, 1.0}
        assert torch.bincount(d.y).tolist() == [len(d.y) // 3 + (i < len(d.y) % 3)
                                                for i in range(3)]
    assert not torch.equal(train.x[:1000], val.x) and not torch.equal(val.x, test.x[:1000])


def test_recipes_are_listed_and_builders_are_seeded():
    names = {"shapes-cnn-classifier-e8", "shapes-mlp-bernoulli-z8-e50", "shapes-mlp-bernoulli-mmd-z8-e50", "shapes-mlp-bernoulli-mmd-noise-z8-e50",
             "shapes-mlp-bernoulli-mmd-noise-unitscale-z8-e50"}
    assert names <= set(RECIPES)
    for name in names:
        a, b = RECIPES[name].build(), RECIPES[name].build()
        for (k, va), (_, vb) in zip(a.state_dict().items(), b.state_dict().items()):
            assert torch.equal(va, vb), (name, k)
    vae = RECIPES["shapes-mlp-bernoulli-z8-e50"].build()
    n_bytes = 4 * sum(p.numel() for p in vae.parameters())
    assert n_bytes < 3 * 2**20  # the checkpoint stays under 3 MB


def test_classifier_shapes_and_loss_terms():
    model = S.shape_classifier()
    x = torch.rand(5, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1, 2, 0, 1])
    logits = model(x)
    assert logits.shape == (5, 4) and S.JUDGE_CLASSES[-1] == "no shape"
    terms = classifier_loss(model, x, y)
    want = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    torch.testing.assert_close(terms.nll, want)
    torch.testing.assert_close(terms.loss, want.mean())
    assert terms.correct.tolist() == (logits.argmax(1) == y).float().tolist()
    probs = S.class_probabilities(model, x, batch_size=2)
    torch.testing.assert_close(probs, logits.softmax(1))


def test_a_short_classifier_training_learns_the_shapes():
    train, _, test = S.splits()
    torch.manual_seed(0)
    model = S.shape_classifier()
    fit(model, classifier_loss, (train.x[:800], train.y[:800]), epochs=3,
        batch_size=64, progress=False)
    accuracy = (S.class_probabilities(model, test.x[:300]).argmax(1) == test.y[:300]).float().mean()
    assert accuracy > 0.5  # chance is 1/3


def test_input_noise_only_in_training_mode():
    vae = S.shapes_vae(latent_dim=2, hidden=(8,), noise_std=0.5)
    x = torch.rand(4, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    vae.eval()
    torch.testing.assert_close(vae.encode(x).mu, vae.encoder.encoder(x)[0])
    vae.train()
    torch.manual_seed(1)
    noisy = vae.encode(x).mu
    torch.manual_seed(1)
    eps = torch.randn_like(x)
    torch.testing.assert_close(noisy, vae.encoder.encoder(x + 0.5 * eps)[0])
    with pytest.raises(ValueError):
        S.InputNoise(vae.encoder.encoder, 0.0)
    assert S.NOISE_STD_8BIT == pytest.approx(math.sqrt(5) / 255)


def test_mmd_and_vae_objectives_as_used_by_the_recipes():
    vae = S.shapes_vae(latent_dim=3, hidden=(8,)).double()
    x = torch.bernoulli(torch.rand(16, 1, 32, 32, dtype=torch.float64,
                                   generator=torch.Generator().manual_seed(0)))
    plain = info_vae_loss(vae, x, alpha=0.0, lam=1.0, generator=torch.Generator().manual_seed(2))
    elbo = negative_elbo(vae, x, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(plain.loss, elbo.loss)  # alpha = 0, lambda = 1 is the VAE
    mmd = S.mmd_vae_loss(vae, x, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(mmd.loss, -mmd.log_likelihood.mean() + 1000.0 * mmd.mmd)


def test_evaluate_autoencoder_metrics():
    vae = S.shapes_vae(latent_dim=3, hidden=(8,)).eval()
    x = S.splits()[2].x[:64]
    metrics = S.evaluate_autoencoder(vae, x)
    assert set(metrics) == {"test_mse", "test_elbo", "test_log_likelihood", "test_kl",
                            "test_mmd2_prior"}
    assert metrics["test_elbo"] == pytest.approx(metrics["test_log_likelihood"] - metrics["test_kl"])
    assert 0 < metrics["test_mse"] < 1 and metrics["test_kl"] >= 0
    assert metrics == S.evaluate_autoencoder(vae, x)  # fixed seed: deterministic


def test_judge_data_labels_and_the_recognised_rule():
    test = S.splits()[2]
    small = test._replace(x=test.x[:40], y=test.y[:40])
    x, y = S.judge_data(small, seed=0)
    assert x.shape == (100, 1, 32, 32) and torch.equal(y[:40], small.y) and torch.equal(y[40:80], small.y)
    assert (y[80:] == 3).all() and x.min() >= 0 and x.max() <= 1
    torch.testing.assert_close(S.blur(torch.ones(1, 1, 32, 32), 1.0)[..., 8:-8, 8:-8],
                               torch.ones(1, 1, 16, 16))  # a blur keeps a flat region flat
    assert torch.equal(x, S.judge_data(small, seed=0)[0])  # seeded
    probs = torch.tensor([[0.95, 0.02, 0.01, 0.02], [0.5, 0.4, 0.05, 0.05], [0.0, 0.0, 0.05, 0.95]])
    assert S.recognised(probs, 0.9).tolist() == [True, False, False]


def _chapter_counts(model, judge, test, n_samples, seed, tau):
    """The counts of cells c055 and c060, computed as those cells compute them (the oracle)."""
    samples = model.sample(n_samples, generator=torch.Generator().manual_seed(seed))
    p = S.class_probabilities(judge, samples)
    ok = S.recognised(p, tau)
    classes = torch.bincount(p[ok, :3].argmax(1), minlength=3)
    r = S.class_probabilities(judge, model.reconstruct(test.x))
    ok_r = S.recognised(r, tau) & (r[:, :3].argmax(1) == test.y)
    return {"samples": (int(ok.sum()), n_samples), "classes": classes.tolist(),
            "reconstructions": (int(ok_r.sum()), len(ok_r)),
            "by_class": [(int(ok_r[test.y == i].sum()), int((test.y == i).sum())) for i in range(3)],
            "as_circle": (int((r[test.y != 1].argmax(1) == 1).sum()), int((test.y != 1).sum()))}


class _Toy:
    """An autoencoder's two methods, with outputs the judge answers in every way.

    Samples: images drawn with the generator from ``pool``; reconstructions:
    a third of the images unchanged, a third replaced by the previous image
    (another class, sometimes a circle), a third blended with it.
    """

    def __init__(self, pool):
        self.pool = pool

    def sample(self, n, generator=None):
        return self.pool[torch.randint(len(self.pool), (n,), generator=generator)]

    def reconstruct(self, x):
        kind = (torch.arange(len(x)) % 3).view(-1, 1, 1, 1)
        return torch.where(kind == 0, x, torch.where(kind == 1, x.roll(1, 0), 0.5 * (x + x.roll(1, 0))))


@torch.no_grad()
def test_judged_metrics_count_what_the_chapter_counts():
    test = S.splits()[2]
    pool, _ = S.judge_data(test._replace(x=test.x[:200], y=test.y[:200]), seed=0)  # shapes, non-shapes
    small = test._replace(x=test.x[:90], y=test.y[:90])
    model, judge = _Toy(pool), S._judge()  # the shipped judge
    m = S.judged_metrics(model, judge, small, n_samples=300, seed=3)
    want = _chapter_counts(model, judge, small, 300, 3, 0.9)
    assert (m["samples_recognised_k"], m["samples_n"]) == want["samples"]
    assert [m[f"samples_recognised_{c}_k"] for c in ("rectangle", "circle", "triangle")] == want["classes"]
    assert (m["test_reconstructions_recognised_k"], m["test_reconstructions_n"]) == want["reconstructions"]
    assert [(m[f"test_reconstructions_recognised_{c}_k"], m[f"test_reconstructions_{c}_n"])
            for c in ("rectangle", "circle", "triangle")] == want["by_class"]
    assert (m["test_reconstructions_noncircle_as_circle_k"],
            m["test_reconstructions_noncircle_n"]) == want["as_circle"]
    # every count is exercised: neither 0 nor all
    assert 0 < min(want["classes"]) and 0 < want["samples"][0] < 300
    assert all(0 < k < n for k, n in [want["reconstructions"], *want["by_class"], want["as_circle"]])
    assert m["samples_recognised_at_0.5_k"] > m["samples_recognised_k"] > m["samples_recognised_at_0.99_k"]
    assert all(isinstance(v, int) for v in m.values())
    assert m != S.judged_metrics(model, judge, small, n_samples=300, seed=4)  # the seed draws the samples


#: The four autoencoders, with the labels the chapter prints.
LABELS = {"VAE": "shapes-mlp-bernoulli-z8-e50", "MMD-VAE": "shapes-mlp-bernoulli-mmd-z8-e50",
          "MMD + noise √5/255": "shapes-mlp-bernoulli-mmd-noise-z8-e50",
          "MMD + noise √5": "shapes-mlp-bernoulli-mmd-noise-unitscale-z8-e50"}

def _printed(cell_id: str) -> dict[str, list[str]]:
    """The rows of the table that chapters/10_mmd_vae.ipynb's cell ``cell_id`` shows (its
    committed output, ``vaecourse.show.table``'s text form): ``{model label: other cells}``."""
    nb = json.loads((Path(__file__).parents[1] / "chapters" / "10_mmd_vae.ipynb").read_text())
    cell = next(c for c in nb["cells"] if c.get("id") == cell_id)
    text = "".join("".join(o.get("text") or o.get("data", {}).get("text/plain", ""))
                   for o in cell["outputs"])
    rows = [[c.strip() for c in line.split(" | ")] for line in text.splitlines() if " | " in line]
    return {row[0]: row[1:] for row in rows[1:]}  # the first row is the header


#: The tables of cell c055 (samples), cell c060 (reconstructions) and c053 (per model).
PRINTED_SAMPLES, PRINTED_RECONSTRUCTIONS = _printed("c055"), _printed("c060")
#: The "mean σ of q(z|x)" column of cell c053.
PRINTED_SIGMA = {label: row[4] for label, row in _printed("c053").items()}


def _lines(label: str, m: dict) -> tuple[list[str], list[str]]:
    """Cell c055's and cell c060's row for one model, written from its recorded counts alone."""
    classes = ("rectangle", "circle", "triangle")
    s = wilson_interval(m["samples_recognised_k"], m["samples_n"])
    sample_row = [f"{s.share:.1%}", f"{s.low:.1%} to {s.high:.1%}",
                  *(f"{m[f'samples_recognised_{c}_k'] / m['samples_recognised_k']:.0%}"
                    for c in classes)]
    r = wilson_interval(m["test_reconstructions_recognised_k"], m["test_reconstructions_n"])
    per_class = [f"{m[f'test_reconstructions_recognised_{c}_k'] / m[f'test_reconstructions_{c}_n']:.0%}"
                 for c in classes]
    circles = m["test_reconstructions_noncircle_as_circle_k"] / m["test_reconstructions_noncircle_n"]
    recon_row = [f"{r.share:.1%}", f"{r.low:.1%} to {r.high:.1%}", *per_class, f"{circles:.0%}"]
    return sample_row, recon_row


@pytest.mark.parametrize("label", list(LABELS), ids=list(LABELS.values()))
def test_recipe_evaluate_records_what_the_chapter_prints(label):
    """The recipe's evaluate on the shipped seed-0 model gives the numbers of cells c053, c055, c060."""
    name = LABELS[label]
    model, _ = zoo.load(name, train_if_missing=False)
    m = RECIPES[name].evaluate(model)
    sample_row, recon_row = _lines(label, m)
    assert PRINTED_SAMPLES[label] == sample_row
    assert PRINTED_RECONSTRUCTIONS[label] == recon_row
    assert f"{m['test_posterior_std_mean']:.4f}" == PRINTED_SIGMA[label]
    assert (m["samples_n"], m["test_reconstructions_n"]) == (4000, 2000)
    recorded = zoo.record(name)["metrics"]  # the metrics recorded before are unchanged
    assert {k: m[k] for k in recorded} == pytest.approx(recorded, rel=1e-4, abs=1e-6)


#: ``zoo.first_steps(NAME)`` of the four autoencoders, computed with the recipes as they were
#: before their evaluation gained the judged metrics (commit 64b9e1e): evaluate only, no arithmetic.
FIRST_STEPS_BEFORE = {
    "shapes-mlp-bernoulli-z8-e50": {
        "loss": [718.26935, 700.4953, 683.88098, 665.03864],
        "log_likelihood": [-718.11519, -699.80482, -682.36782, -662.15997],
        "kl": [0.15414379, 0.69056602, 1.5132049, 2.8786287]},
    "shapes-mlp-bernoulli-mmd-z8-e50": {
        "loss": [732.76178, 724.03601, 695.69012, 676.39197],
        "log_likelihood": [-718.11519, -702.03403, -685.45281, -669.72613],
        "kl": [0.15414379, 0.39264521, 0.31008258, 0.26378186],
        "mmd": [0.014646530, 0.022002041, 0.010237277, 0.0066658258]},
    "shapes-mlp-bernoulli-mmd-noise-z8-e50": {
        "loss": [717.57263, 722.57874, 700.74677, 666.20068],
        "log_likelihood": [-718.08457, -701.36165, -685.26394, -668.96278],
        "kl": [0.15404077, 0.55679499, 0.3616934, 0.13302389],
        "mmd": [-0.00051194429, 0.021217167, 0.015482843, -0.0027620792]},
    "shapes-mlp-bernoulli-mmd-noise-unitscale-z8-e50": {
        "loss": [764.57233, 702.88477, 706.60205, 697.48920],
        "log_likelihood": [-720.86424, -700.95866, -685.15292, -670.15022],
        "kl": [2.1157936, 1.2719409, 1.8105415, 1.9740919],
        "mmd": [0.043708146, 0.001926005, 0.021449149, 0.027338982]},
}


@pytest.mark.parametrize("name", sorted(FIRST_STEPS_BEFORE))
def test_the_judged_evaluation_left_the_first_steps_unchanged(name):
    assert zoo.stale_first_steps(FIRST_STEPS_BEFORE[name], zoo.first_steps(name)) == []
