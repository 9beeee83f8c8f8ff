"""The model zoo: train → record → verify → load, resume to the total epochs, the shipped checkpoints."""
from __future__ import annotations

import dataclasses
import json
from typing import NamedTuple

import pytest
import torch

from vaecore.checkpoint import load_checkpoint, save_checkpoint
from vaecore.seeding import local_seed
from vaecore.train import History, fit
from vaecourse import provenance, store, zoo
from vaecourse.recipe import Recipe

CHECKPOINTS = store.CHECKOUT_DIR


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Linear(3, 3)


class Out(NamedTuple):
    loss: torch.Tensor


def _loss(model, x):
    return Out(((model.w(x) - x) ** 2).sum(1).mean())


def tiny_recipe(calls: list, epochs: int = 3) -> Recipe:
    def build(seed=0):
        with local_seed(seed):
            return Tiny()

    def trainer(model, loss, train, *, history=None, **kwargs):
        if kwargs.get("checkpoint") is not None:  # a training run, not zoo.first_steps
            calls.append(history)
        return fit(model, loss, train, history=history, **kwargs)

    return Recipe(build=build, loss=_loss, epochs=epochs,
                  data=lambda: (torch.randn(64, 3, generator=torch.Generator().manual_seed(0)), None),
                  evaluate=lambda m: {"test_mse": 0.5}, summary="a linear map on 3-d noise",
                  trainer=trainer)


@pytest.fixture
def fake(monkeypatch):
    calls: list = []
    monkeypatch.setattr(zoo, "RECIPES", {"tiny": tiny_recipe(calls)})
    return calls


def test_train_writes_checkpoint_and_record_then_load_uses_it(tmp_path, fake):
    zoo.train("tiny", directory=tmp_path, progress=False)
    info = zoo.record("tiny", directory=tmp_path)
    assert info["bytes"] == (tmp_path / "tiny.pt").stat().st_size
    assert info["command"] == "python -m vaecourse.zoo train tiny"
    assert info["metrics"] == {"test_mse": 0.5} and info["epochs"] == 3
    assert zoo.verify(tmp_path) == []
    assert not (tmp_path / "tiny.partial.pt").exists()
    model, ckpt = zoo.load("tiny", directory=tmp_path)
    assert len(fake) == 1 and not model.training  # loaded, not retrained
    torch.testing.assert_close(model.state_dict()["w.weight"], ckpt.state_dict["w.weight"])
    assert "tiny" in zoo.table(tmp_path)


def test_load_trains_when_missing_unless_told_not_to(tmp_path, fake):
    with pytest.raises(FileNotFoundError, match="python -m vaecourse.zoo train tiny"):
        zoo.load("tiny", directory=tmp_path, train_if_missing=False)
    zoo.load("tiny", directory=tmp_path)
    assert len(fake) == 1


def _partial(tmp_path, epochs_kept: int):
    """A partial checkpoint of a run that died after ``epochs_kept`` epochs."""
    recipe = zoo.RECIPES["tiny"]
    model = recipe.build()
    history = fit(model, _loss, recipe.data()[0], epochs=epochs_kept, progress=False)
    save_checkpoint(tmp_path / "tiny.partial.pt", model, config={}, metrics={}, history=history)


def test_an_interrupted_run_resumes_to_the_total_number_of_epochs(tmp_path, fake):
    _partial(tmp_path, 2)
    zoo.train("tiny", directory=tmp_path, progress=False)
    assert len(fake) == 1 and len(fake[0]) == 2  # resumed from the 2-epoch history
    assert zoo.record("tiny", directory=tmp_path)["epochs"] == 3


def test_a_run_that_died_after_its_last_epoch_trains_no_more(tmp_path, fake):
    _partial(tmp_path, 3)  # every epoch done, killed before the final save
    zoo.train("tiny", directory=tmp_path, progress=False)
    assert fake == []  # not one epoch too many
    assert zoo.record("tiny", directory=tmp_path)["epochs"] == 3


def test_verify_reports_a_changed_file(tmp_path, fake):
    zoo.train("tiny", directory=tmp_path, progress=False)
    with open(tmp_path / "tiny.pt", "ab") as f:
        f.write(b"x")
    assert zoo.verify(tmp_path) == ["tiny: tiny.pt does not match its recorded sha256/size"]


def test_verify_understands_seeds_recorded_without_weights(tmp_path, fake):
    zoo.train("tiny", directory=tmp_path, progress=False)
    meta = tmp_path / "tiny.json"
    info = json.loads(meta.read_text())
    shipped = {"seed": 1, "metrics": {"test_mse": 0.4}, "file": "tiny.pt",
               "bytes": info["bytes"], "sha256": info["sha256"]}
    info["seeds"] = [{"seed": 2, "metrics": {"test_mse": 0.6}}, shipped]  # 2: metrics only
    meta.write_text(json.dumps(info))
    assert zoo.verify(tmp_path) == []
    assert "2 more seeds recorded (1 with weights)" in zoo.table(tmp_path)
    info["seeds"][1]["file"] = "tiny-seed1.pt"  # listed as shipped, but missing
    meta.write_text(json.dumps(info))
    assert zoo.verify(tmp_path) == ["tiny: tiny-seed1.pt is missing"]
    info["seeds"] = [{"seed": 2}]  # no metrics
    meta.write_text(json.dumps(info))
    (problem,) = zoo.verify(tmp_path)
    assert "seeds[0]" in problem and "metrics" in problem


def test_unknown_name_is_a_clear_error(fake):
    with pytest.raises(ValueError, match="unknown checkpoint 'nope'"):
        zoo.load("nope")


def test_old_names_are_deprecated_aliases_of_the_new_ones():
    assert set(zoo.ALIASES.values()) <= set(zoo.RECIPES)
    assert not set(zoo.ALIASES) & set(zoo.RECIPES)
    with pytest.warns(DeprecationWarning, match="mnist-mlp-bernoulli-z1-e30"):
        assert zoo.canonical("mnist-mlp-latent1") == "mnist-mlp-bernoulli-z1-e30"


# The shipped checkpoints
RECORDS = sorted(CHECKPOINTS.glob("*.json"))


def test_shipped_checkpoints_match_their_recorded_hashes():
    assert zoo.verify() == []


def test_every_recipe_has_a_shipped_checkpoint_and_every_checkpoint_a_recipe():
    assert {p.stem for p in RECORDS} == set(zoo.RECIPES)


@pytest.mark.parametrize("meta", RECORDS, ids=lambda p: p.stem)
def test_shipped_checkpoint_loads_weights_only_into_its_recipe(meta):
    info = json.loads(meta.read_text())
    model = zoo.RECIPES[info["name"]].build()
    ckpt = load_checkpoint(CHECKPOINTS / info["file"], model)  # weights_only=True inside
    old_names = {old for old, new in zoo.ALIASES.items() if new == info["name"]}
    assert ckpt.config["recipe"] in {info["name"]} | old_names  # weights predate the renaming
    assert store._renamed(ckpt.metrics) == info["metrics"]
    assert len(ckpt.history) == info["epochs"] == zoo.RECIPES[info["name"]].epochs
    assert info["bytes"] < 8 * 2**20, "checkpoints stay small"


def test_the_zoo_readme_lists_every_shipped_checkpoint():
    assert (CHECKPOINTS / "README.md").read_text() == zoo.readme(), \
        "regenerate it: python -m vaecourse.zoo readme"


def test_load_gives_current_field_names_for_old_checkpoints():
    _, ckpt = zoo.load("mnist-mlp-bernoulli-z20-e10", train_if_missing=False)
    assert "log_likelihood" in ckpt.history.train and "reconstruction" not in ckpt.history.val
    assert "test_log_likelihood" in ckpt.metrics


# The file is checked against its record before it is loaded

def flip_a_weight_bit(path):
    """Flip one bit inside the stored weights: the file still loads, with other weights."""
    raw = bytearray(path.read_bytes())
    weights = load_checkpoint(path).state_dict["w.weight"].numpy().tobytes()
    at = raw.find(weights)
    assert at > 0
    raw[at + 5] ^= 0x10
    path.write_bytes(bytes(raw))


def test_load_refuses_a_file_that_differs_from_its_record(tmp_path, fake):
    zoo.train("tiny", directory=tmp_path, progress=False)
    sha = zoo.record("tiny", directory=tmp_path)["sha256"]
    flip_a_weight_bit(tmp_path / "tiny.pt")
    load_checkpoint(tmp_path / "tiny.pt")  # still a readable checkpoint: only the hash can tell
    with pytest.raises(ValueError, match=rf"tiny.pt does not match its record tiny.json: expected "
                       rf"tiny.pt of \d+ bytes with sha256 {sha} \(.*sha256 [0-9a-f]{{64}}.*\)\."
                       r".*python -m vaecourse.zoo train tiny"):
        zoo.load("tiny", directory=tmp_path)
    with open(tmp_path / "tiny.pt", "ab") as f:
        f.write(b"x")
    with pytest.raises(ValueError, match="tiny.pt does not match its record"):
        zoo.load("tiny", directory=tmp_path)
    assert len(fake) == 1  # refused, not silently retrained


def test_load_refuses_a_checkpoint_without_a_record(tmp_path, fake):
    zoo.train("tiny", directory=tmp_path, progress=False)
    (tmp_path / "tiny.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"tiny.pt has no record .*tiny.json, so it cannot "
                       r"be checked .*python -m vaecourse.zoo train tiny"):
        zoo.load("tiny", directory=tmp_path)
    assert len(fake) == 1


@pytest.mark.parametrize("text", ["", '{"name": "tiny", "fi', "[1, 2]", '{"name": "tiny"}',
                                  '{"name": "tiny", "file": "tiny.pt", "bytes": "many"}'])
def test_a_broken_record_is_a_clear_error_naming_file_and_keys(tmp_path, fake, text):
    zoo.train("tiny", directory=tmp_path, progress=False)
    (tmp_path / "tiny.json").write_text(text)
    message = r"tiny.json.*expected a JSON object with keys name, file, bytes, sha256"
    with pytest.raises(ValueError, match=message):
        zoo.record("tiny", directory=tmp_path)
    with pytest.raises(ValueError, match=message):
        zoo.table(tmp_path)
    with pytest.raises(ValueError, match=message):
        zoo.load("tiny", directory=tmp_path)
    (problem,) = zoo.verify(tmp_path)
    assert problem.startswith("tiny: ") and "tiny.json" in problem


def test_records_are_replaced_atomically(tmp_path, fake, monkeypatch):
    import os
    zoo.train("tiny", directory=tmp_path, progress=False)
    before = (tmp_path / "tiny.json").read_bytes()
    (tmp_path / "tiny.pt").unlink()
    real_replace = os.replace

    def fail_for_records(src, dst):
        if str(dst).endswith(".json"):
            raise OSError("killed while renaming the record")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", fail_for_records)
    with pytest.raises(OSError, match="killed while renaming the record"):
        zoo.train("tiny", directory=tmp_path, progress=False)
    assert (tmp_path / "tiny.json").read_bytes() == before  # never half-written
    assert not list(tmp_path.glob(".tiny.json.*"))


def test_load_maps_the_weights_to_the_chosen_device(tmp_path, fake):
    """The device plumbing, on the ``meta`` device (no GPU here): model and weights follow it."""
    zoo.train("tiny", directory=tmp_path, progress=False)
    model, ckpt = zoo.load("tiny", directory=tmp_path, device="meta")
    assert {p.device.type for p in model.parameters()} == {"meta"}
    assert {t.device.type for t in ckpt.state_dict.values()} == {"meta"}
    model, ckpt = zoo.load("tiny", directory=tmp_path)  # default: the CPU
    assert {p.device.type for p in model.parameters()} == {"cpu"}


def test_only_rank_0_writes(tmp_path, fake, monkeypatch):
    """On another rank, train() trains but writes nothing: no partial file, weights or record."""
    from vaecore import distributed
    monkeypatch.setattr(distributed, "is_main", lambda: False)
    monkeypatch.setattr(distributed, "barrier", lambda: None)
    with pytest.raises(FileNotFoundError):  # rank 0, which would write it, is not running
        zoo.train("tiny", directory=tmp_path, progress=False)
    assert len(fake) == 1 and list(tmp_path.iterdir()) == []


def test_record_accepts_an_old_name_like_load(tmp_path, fake, monkeypatch):
    zoo.train("tiny", directory=tmp_path, progress=False)
    monkeypatch.setitem(zoo.ALIASES, "tiny-old", "tiny")
    with pytest.warns(DeprecationWarning, match="tiny-old"):
        assert zoo.record("tiny-old", directory=tmp_path)["name"] == "tiny"


def test_a_recipe_with_its_own_loop_is_refused_under_torchrun(tmp_path, fake, monkeypatch):
    """Only fit splits batches over processes; another trainer would train N copies."""
    from vaecore import distributed
    monkeypatch.setattr(distributed, "init", lambda device: None)
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    with pytest.raises(ValueError, match="run it without torchrun"):
        zoo.train("tiny", directory=tmp_path, progress=False)
    assert fake == [] and list(tmp_path.iterdir()) == []


def test_the_partial_file_outlives_a_failure_before_the_record(tmp_path, fake, monkeypatch):
    """A crash between the final save and the record keeps the run resumable."""
    def no_record(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(zoo, "_atomic_file", no_record)
    with pytest.raises(OSError, match="disk full"):
        zoo.train("tiny", directory=tmp_path, progress=False)
    assert (tmp_path / "tiny.partial.pt").is_file()


# --- seeds, code version, first steps ----------------------------------------------

def test_seeds_add_metrics_to_the_record_and_keep_weights_unshipped(tmp_path, fake):
    zoo.train("tiny", directory=tmp_path, progress=False)
    for seed in (1, 2):
        zoo.train("tiny", seed=seed, directory=tmp_path, progress=False)
    info = zoo.record("tiny", directory=tmp_path)
    assert [r["seed"] for r in info["seeds"]] == [1, 2] and info["seed"] == 0
    assert info["seeds"][0]["command"] == "python -m vaecourse.zoo train tiny --seed 1"
    assert all("file" not in r and r["code"]["vaecore"] for r in info["seeds"])
    assert (tmp_path / "seeds" / "tiny.seed2.pt").is_file()
    assert not list(tmp_path.glob("*.partial.pt")) and not list((tmp_path / "seeds").glob("*.partial.pt"))
    # Another seed: another initialisation, hence other first steps.
    assert info["seeds"][0]["first_steps"] != info["first_steps"]
    assert sorted(zoo.seed_metrics("tiny", "test_mse", directory=tmp_path)) == [0, 1, 2]
    with pytest.raises(KeyError, match="no metric 'test_nll'"):
        zoo.seed_metrics("tiny", "test_nll", directory=tmp_path)
    assert zoo.verify(tmp_path) == []


def test_a_seed_needs_seed_0s_record_at_todays_recipe(tmp_path, fake, monkeypatch):
    with pytest.raises(FileNotFoundError, match="train seed 0 first"):
        zoo.train("tiny", seed=1, directory=tmp_path, progress=False)
    assert fake == []  # refused before training
    zoo.train("tiny", directory=tmp_path, progress=False)
    zoo.train("tiny", seed=1, directory=tmp_path, progress=False)
    changed = tiny_recipe(fake)
    changed = Recipe(**{**changed.__dict__, "fit_options": {"lr": 0.1}})
    monkeypatch.setattr(zoo, "RECIPES", {"tiny": changed})
    with pytest.raises(RuntimeError, match="retrain seed 0 first"):
        zoo.train("tiny", seed=2, directory=tmp_path, progress=False)
    # Retraining seed 0 with the changed recipe drops the seed that no longer matches it.
    zoo.train("tiny", directory=tmp_path, progress=False)
    assert zoo.record("tiny", directory=tmp_path)["seeds"] == []


def test_retraining_seed_0_keeps_seeds_that_still_match(tmp_path, fake):
    zoo.train("tiny", directory=tmp_path, progress=False)
    zoo.train("tiny", seed=3, directory=tmp_path, progress=False)
    zoo.train("tiny", directory=tmp_path, progress=False)
    assert [r["seed"] for r in zoo.record("tiny", directory=tmp_path)["seeds"]] == [3]


def test_first_steps_follow_the_recipe(fake):
    steps = zoo.first_steps("tiny")
    assert list(steps) == ["loss"] and len(steps["loss"]) == zoo.FIRST_STEPS
    assert steps == zoo.first_steps("tiny")  # deterministic
    assert steps["loss"][0] > steps["loss"][-1]  # the optimiser moved
    assert zoo.stale_first_steps(steps, steps) == []
    nudged = {"loss": [v * (1 + 1e-3) for v in steps["loss"]]}
    assert zoo.stale_first_steps(steps, nudged) and zoo.stale_first_steps(steps, {"x": []})


def test_records_name_the_code_and_a_modified_checkout_is_refused(tmp_path, fake, monkeypatch):
    zoo.train("tiny", directory=tmp_path, progress=False)
    code = zoo.record("tiny", directory=tmp_path)["code"]
    assert set(code) == {"vaecore", "commit", "clean"}
    monkeypatch.setattr(store, "CHECKOUT_DIR", tmp_path)
    monkeypatch.setattr(provenance, "AT_IMPORT", {**provenance.AT_IMPORT, "commit": "ab"})
    monkeypatch.setattr(provenance, "_git", lambda *a: " M vaecore/train.py\n" if a[0] == "status"
                        else "ab\n")
    with pytest.raises(RuntimeError, match="modified tree"):
        zoo.train("tiny", directory=tmp_path, progress=False)
    assert len(fake) == 1  # refused before training
    monkeypatch.setattr(provenance, "_git", lambda *a: "" if a[0] == "status" else "ab\n")
    zoo.train("tiny", directory=tmp_path, progress=False)
    assert zoo.record("tiny", directory=tmp_path)["code"]["clean"] is True
    # The checkout moved on while this process ran the old commit's code: refused.
    monkeypatch.setattr(provenance, "_git", lambda *a: "" if a[0] == "status" else "cd\n")
    with pytest.raises(RuntimeError, match="moved from commit ab to cd"):
        zoo.train("tiny", directory=tmp_path, progress=False)


def test_code_version_outside_a_checkout(monkeypatch):
    monkeypatch.setattr(provenance, "_git", lambda *a: None)
    assert provenance.code_version() == {"vaecore": zoo.__version__, "commit": None, "clean": None}


@pytest.mark.parametrize("argv, names, seeds", [
    (["a"], ["a"], [0]), (["a", "b", "--seeds", "0,1,2"], ["a", "b"], [0, 1, 2]),
    (["--seed", "4", "a"], ["a"], [4])])
def test_train_command_line(argv, names, seeds):
    assert zoo._train_arguments(argv) == (names, seeds, False)
    assert zoo._train_arguments([*argv, "--missing"]) == (names, seeds, True)


def test_missing_skips_what_todays_recipe_recorded(tmp_path, fake, monkeypatch, capsys):
    monkeypatch.setenv(store.ENV_VAR, str(tmp_path))
    assert not zoo.done("tiny") and not zoo.done("tiny", 1)
    assert zoo.main(["train", "tiny", "--seeds", "0,1", "--missing"]) == 0
    assert zoo.done("tiny") and zoo.done("tiny", 1) and len(fake) == 2
    assert zoo.main(["train", "tiny", "--seeds", "0,1,2", "--missing"]) == 0
    assert len(fake) == 3 and "seed 1): recorded by today's recipe; skipped" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [[], ["a", "--seeds", "1,x"], ["a", "--seed", "-1"],
                                  ["a", "--seed"]])
def test_train_command_line_refuses_bad_arguments(argv):
    with pytest.raises(SystemExit):
        zoo._train_arguments(argv)


@pytest.mark.parametrize("seed", [-1, 1.5, True, "1"])
def test_train_refuses_a_bad_seed(tmp_path, fake, seed):
    with pytest.raises(ValueError, match="seed"):
        zoo.train("tiny", seed=seed, directory=tmp_path, progress=False)


def test_every_recipe_builds_a_different_model_per_seed():
    for name, recipe in zoo.recipes().items():
        a, b = recipe.build(seed=0), recipe.build(seed=1)
        assert any(not torch.equal(p, q) for p, q in zip(a.state_dict().values(),
                                                        b.state_dict().values())), name


def test_readme_lists_every_seeds_metrics(tmp_path, fake):
    zoo.train("tiny", directory=tmp_path, progress=False)
    assert "Every seed" not in zoo.readme(tmp_path)  # one seed: nothing to list
    zoo.train("tiny", seed=1, directory=tmp_path, progress=False)
    text = zoo.readme(tmp_path)
    assert "## Every seed" in text
    assert "| `tiny` | test_mse | 0: 0.5, 1: 0.5 | 0.5 ± 0 |" in text
    # every seed's stored NLL gets a row once all seeds have one, at one k
    zoo.write_seed_result("tiny", 1, "nll", {"nll": 90.5, "k": 1000}, directory=tmp_path)
    assert "| test NLL, k" not in zoo.readme(tmp_path)
    zoo.write_seed_result("tiny", 0, "nll", {"nll": 90.25, "k": 1000}, directory=tmp_path)
    assert "| `tiny` | test NLL, k = 1,000 | 0: 90.25, 1: 90.50 | 90.38 ± 0.18 |" in zoo.readme(tmp_path)


def test_unshipped_seeds_load_only_when_their_sha256_matches(tmp_path, fake):
    zoo.train("tiny", directory=tmp_path, progress=False)
    zoo.train("tiny", seed=1, directory=tmp_path, progress=False)
    model, _ = zoo.load_seed("tiny", 1, directory=tmp_path)
    trained = torch.load(tmp_path / "seeds" / "tiny.seed1.pt", weights_only=True)["state_dict"]
    assert torch.equal(model.w.weight, trained["w.weight"])
    for seed in (0, 1):  # the course layer loads any seed's weights into a model it built
        other = zoo.RECIPES["tiny"].build(seed=5)
        store.load_seed_weights("tiny", other, seed, directory=tmp_path)
        expected = zoo.load("tiny", directory=tmp_path)[0] if seed == 0 else model
        assert torch.equal(other.w.weight, expected.w.weight)
    zoo.write_seed_result("tiny", 1, "nll", {"nll": 1.5}, directory=tmp_path)
    entry = zoo.record("tiny", directory=tmp_path)["seeds"][0]
    assert entry["nll"] == {"nll": 1.5, "sha256": entry["weights_sha256"]}
    with pytest.raises(ValueError, match="no seed 2"):
        zoo.load_seed("tiny", 2, directory=tmp_path)
    with pytest.raises(ValueError, match="seed 0 is the shipped file"):
        zoo.load_seed("tiny", 0, directory=tmp_path)
    path = tmp_path / "seeds" / "tiny.seed1.pt"
    path.write_bytes(path.read_bytes() + b"x")
    with pytest.raises(ValueError, match="does not match"):
        zoo.load_seed("tiny", 1, directory=tmp_path)
    path.unlink()
    with pytest.raises(FileNotFoundError, match="not shipped"):
        zoo.load_seed("tiny", 1, directory=tmp_path)


def test_a_shipped_seed_loads_from_beside_the_record_and_is_verified(tmp_path, fake):
    zoo.train("tiny", directory=tmp_path, progress=False)
    zoo.train("tiny", seed=1, directory=tmp_path, progress=False)
    with pytest.raises(ValueError, match="ships no weights for seed 1"):
        store.weights_path("tiny", tmp_path, seed=1)
    shipped = zoo.ship_seed("tiny", 1, directory=tmp_path)
    assert shipped == tmp_path / "tiny.seed1.pt"
    entry = zoo.record("tiny", directory=tmp_path)["seeds"][0]
    assert entry["file"] == "tiny.seed1.pt" and entry["sha256"] == entry["weights_sha256"]
    assert entry["bytes"] == shipped.stat().st_size
    (tmp_path / "seeds" / "tiny.seed1.pt").unlink()  # a clone has only the shipped files
    model, _ = zoo.load_seed("tiny", 1, directory=tmp_path)
    trained = torch.load(shipped, weights_only=True)["state_dict"]
    assert torch.equal(model.w.weight, trained["w.weight"])
    assert zoo.verify(tmp_path) == []
    shipped.write_bytes(shipped.read_bytes() + b"x")  # tampered: refused, and verify says so
    with pytest.raises(ValueError, match="does not match its record"):
        zoo.load_seed("tiny", 1, directory=tmp_path)
    assert zoo.verify(tmp_path) == ["tiny: tiny.seed1.pt does not match its recorded sha256/size"]
    with pytest.raises(ValueError, match="no seed 2"):
        zoo.ship_seed("tiny", 2, directory=tmp_path)


def test_seed_results_put_every_seed_on_one_footing(tmp_path, fake):
    zoo.train("tiny", directory=tmp_path, progress=False)
    zoo.train("tiny", seed=1, directory=tmp_path, progress=False)
    zoo.write_seed_result("tiny", 1, "nll", {"nll": 1.5, "k": 1000}, directory=tmp_path)
    with pytest.raises(KeyError, match=r"seeds \[0\] have no 'nll'"):
        zoo.seed_results("tiny", "nll", directory=tmp_path)
    info = zoo.write_seed_result("tiny", 0, "nll", {"nll": 1.25, "k": 1000}, directory=tmp_path)
    assert info["seed0"]["nll"] == {"nll": 1.25, "k": 1000, "sha256": info["sha256"]}
    assert "nll" not in info  # the headline result of the shipped seed is left alone
    results = zoo.seed_results("tiny", "nll", directory=tmp_path)
    assert {s: r["nll"] for s, r in results.items()} == {0: 1.25, 1: 1.5}
    # a result measured on other weights is refused, not mixed in
    path = tmp_path / "tiny.json"
    info = json.loads(path.read_text())
    info["seed0"]["nll"]["sha256"] = "0" * 64
    path.write_text(json.dumps(info))
    with pytest.raises(ValueError, match=r"seeds \[0\] were measured on other weights"):
        zoo.seed_results("tiny", "nll", directory=tmp_path)


def test_seed_result_reads_one_seed_and_checks_its_weights(tmp_path, fake):
    zoo.train("tiny", directory=tmp_path, progress=False)
    zoo.train("tiny", seed=1, directory=tmp_path, progress=False)
    zoo.write_seed_result("tiny", 0, "gaps", {"total": 2.0}, directory=tmp_path)
    assert zoo.seed_result("tiny", "gaps", directory=tmp_path)["total"] == 2.0
    with pytest.raises(KeyError, match="seed 1 has no 'gaps'"):
        zoo.seed_result("tiny", "gaps", 1, directory=tmp_path)
    with pytest.raises(KeyError, match="no seed 5"):
        zoo.seed_result("tiny", "gaps", 5, directory=tmp_path)
    zoo.write_seed_result("tiny", 1, "gaps", {"total": 3.0}, directory=tmp_path)
    assert zoo.seed_result("tiny", "gaps", 1, directory=tmp_path)["total"] == 3.0
    path = tmp_path / "tiny.json"
    info = json.loads(path.read_text())
    info["seeds"][0]["gaps"]["sha256"] = "0" * 64
    path.write_text(json.dumps(info))
    with pytest.raises(ValueError, match="seed 1 was measured on other weights"):
        zoo.seed_result("tiny", "gaps", 1, directory=tmp_path)


def test_a_recipe_that_starts_from_another_checkpoint_waits_for_it(tmp_path, monkeypatch):
    calls: list = []
    loaded: list = []

    def trainer(model, loss, train, *, seed, weights_from=None, **kwargs):
        start = Tiny()
        store.load_seed_weights("tiny", start, seed, weights_from)
        loaded.append((seed, weights_from, start.w.weight.clone()))
        return fit(model, loss, train, seed=seed, **kwargs)
    after = dataclasses.replace(tiny_recipe(calls), requires=("tiny",), trainer=trainer)
    monkeypatch.setattr(zoo, "RECIPES", {"tiny": tiny_recipe(calls), "after": after})
    with pytest.raises(FileNotFoundError, match=r"after starts from the weights of tiny \(seed 0\)"
                       r".*python -m vaecourse.zoo train tiny$"):
        zoo.train("after", directory=tmp_path, progress=False)
    zoo.train("tiny", directory=tmp_path, progress=False)
    zoo.train("after", directory=tmp_path, progress=False)
    with pytest.raises(FileNotFoundError, match=r"train tiny --seed 1"):
        zoo.train("after", seed=1, directory=tmp_path, progress=False)
    zoo.train("tiny", seed=1, directory=tmp_path, progress=False)
    zoo.train("after", seed=1, directory=tmp_path, progress=False)
    assert [r["seed"] for r in zoo.record("after", directory=tmp_path)["seeds"]] == [1]
    # every call (the training and its first steps) loaded tiny's weights of its seed from
    # the folder it trained into
    assert {(seed, folder) for seed, folder, _ in loaded} == {(0, tmp_path), (1, tmp_path)}
    trained = {0: zoo.load("tiny", directory=tmp_path)[0].w.weight,
               1: zoo.load_seed("tiny", 1, directory=tmp_path)[0].w.weight}
    assert all(torch.equal(weight, trained[seed]) for seed, _, weight in loaded)


def test_restore_seed_retrains_missing_weights_and_reties_the_record_to_them(tmp_path, fake):
    zoo.train("tiny", directory=tmp_path, progress=False)
    zoo.train("tiny", seed=1, directory=tmp_path, progress=False)
    zoo.write_seed_result("tiny", 1, "nll", {"nll": 1.5}, directory=tmp_path)
    path = tmp_path / "seeds" / "tiny.seed1.pt"
    original = torch.load(path, weights_only=True)["state_dict"]
    old = zoo.record("tiny", directory=tmp_path)["seeds"][0]["weights_sha256"]
    path.unlink()  # another machine: the record without the unshipped weights
    assert zoo.restore_seed("tiny", 1, directory=tmp_path, progress=False) == path
    entry = zoo.record("tiny", directory=tmp_path)["seeds"][0]
    assert entry["weights_sha256"] != old  # the file holds the new run's wall times
    assert entry["restored"]["original_weights_sha256"] == old
    assert entry["nll"]["sha256"] == entry["weights_sha256"]  # measured on the same weights
    model, _ = zoo.load_seed("tiny", 1, directory=tmp_path)
    assert torch.equal(model.w.weight, original["w.weight"])
    assert zoo.seed_result("tiny", "nll", 1, directory=tmp_path)["nll"] == 1.5
    # a run that does not reproduce the record is refused and the record left alone
    info = json.loads((tmp_path / "tiny.json").read_text())
    info["seeds"][0]["metrics"]["test_mse"] += 1e-9
    (tmp_path / "tiny.json").write_text(json.dumps(info))
    path.unlink()
    with pytest.raises(ValueError, match="differs from the record in metrics"):
        zoo.restore_seed("tiny", 1, directory=tmp_path, progress=False)
    assert json.loads((tmp_path / "tiny.json").read_text()) == info and not path.exists()
    with pytest.raises(ValueError, match="no seed 2"):
        zoo.restore_seed("tiny", 2, directory=tmp_path, progress=False)
