"""The model zoo: train → record → verify → load, and the shipped checkpoints match their records."""
from __future__ import annotations

import json

import pytest
import torch

from vaecore import zoo
from vaecore.checkpoint import CHECKPOINT_DIR, load_checkpoint
from vaecore.train import History, fit


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Linear(3, 3)


def _loss(model, x):
    from typing import NamedTuple

    class Out(NamedTuple):
        loss: torch.Tensor
    return Out(((model.w(x) - x) ** 2).sum(1).mean())


def tiny_recipe(calls: list):
    def build():
        torch.manual_seed(0)
        return Tiny()

    def train(model, checkpoint=None, history=None):
        calls.append(history)
        x = torch.randn(64, 3, generator=torch.Generator().manual_seed(0))
        return fit(model, _loss, x, epochs=3 - (len(history) if history else 0),
                   progress=False, checkpoint=checkpoint, history=history)

    return zoo.Recipe(build, train, lambda m: {"test_mse": 0.5}, "a linear map on 3-d noise")


@pytest.fixture
def fake(monkeypatch):
    calls: list = []
    monkeypatch.setattr(zoo, "recipes", lambda: {"tiny": tiny_recipe(calls)})
    return calls


def test_train_writes_checkpoint_and_record_then_load_uses_it(tmp_path, fake):
    zoo.train("tiny", directory=tmp_path, progress=False)
    info = zoo.record("tiny", directory=tmp_path)
    assert info["bytes"] == (tmp_path / "tiny.pt").stat().st_size
    assert info["command"] == "python -m vaecore.zoo train tiny"
    assert info["metrics"] == {"test_mse": 0.5} and info["epochs"] == 3
    assert zoo.verify(tmp_path) == []
    assert not (tmp_path / "tiny.partial.pt").exists()
    model, ckpt = zoo.load("tiny", directory=tmp_path)
    assert len(fake) == 1 and not model.training  # loaded, not retrained
    torch.testing.assert_close(model.state_dict()["w.weight"], ckpt.state_dict["w.weight"])
    assert "tiny" in zoo.table(tmp_path)


def test_load_trains_when_missing_unless_told_not_to(tmp_path, fake):
    with pytest.raises(FileNotFoundError, match="python -m vaecore.zoo train tiny"):
        zoo.load("tiny", directory=tmp_path, train_if_missing=False)
    zoo.load("tiny", directory=tmp_path)
    assert len(fake) == 1


def test_an_interrupted_run_resumes_from_its_partial_checkpoint(tmp_path, fake):
    recipe = zoo.recipes()["tiny"]
    model = recipe.build()
    history = recipe.train(model, checkpoint=tmp_path / "tiny.partial.pt")  # 3 epochs
    # pretend the run died after epoch 3 of a longer schedule: keep only 2 epochs' history
    d = history.to_dict()
    d = {k: ({s: v[:2] for s, v in d[k].items()} if isinstance(d[k], dict) else d[k][:2]) for k in d}
    from vaecore.checkpoint import save_checkpoint
    save_checkpoint(tmp_path / "tiny.partial.pt", model, config={}, metrics={},
                    history=History.from_dict(d))
    zoo.train("tiny", directory=tmp_path, progress=False)
    assert len(fake[-1]) == 2  # the second call resumed from the 2-epoch history
    assert zoo.record("tiny", directory=tmp_path)["epochs"] == 3


def test_verify_reports_a_changed_file(tmp_path, fake):
    zoo.train("tiny", directory=tmp_path, progress=False)
    with open(tmp_path / "tiny.pt", "ab") as f:
        f.write(b"x")
    assert zoo.verify(tmp_path) == ["tiny: tiny.pt does not match its recorded sha256/size"]


def test_unknown_name_is_a_clear_error(fake):
    with pytest.raises(ValueError, match="unknown checkpoint 'nope'"):
        zoo.load("nope")


# The shipped checkpoints
RECORDS = sorted(CHECKPOINT_DIR.glob("*.json"))


def test_shipped_checkpoints_match_their_recorded_hashes():
    assert zoo.verify() == []


def test_every_recipe_has_a_shipped_checkpoint_and_every_checkpoint_a_recipe():
    shipped = {p.stem for p in RECORDS}
    assert shipped == set(zoo.recipes())


@pytest.mark.parametrize("meta", RECORDS, ids=lambda p: p.stem)
def test_shipped_checkpoint_loads_weights_only_into_its_recipe(meta):
    info = json.loads(meta.read_text())
    model = zoo.recipes()[info["name"]].build()
    ckpt = load_checkpoint(CHECKPOINT_DIR / info["file"], model)  # weights_only=True inside
    assert ckpt.config["recipe"] == info["name"]
    assert ckpt.metrics == info["metrics"]
    assert len(ckpt.history) == info["epochs"]
    assert info["bytes"] < 8 * 2**20, "checkpoints stay small"


def test_the_zoo_readme_lists_every_shipped_checkpoint():
    assert (CHECKPOINT_DIR / "README.md").read_text() == zoo.readme(), \
        "regenerate it: python -m vaecore.zoo readme"


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
                       rf"tiny.pt of \d+ bytes with sha256 {sha}, got \d+ bytes with sha256 "
                       r"[0-9a-f]{64}\..*python -m vaecore.zoo train tiny"):
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
                       r"be checked .*python -m vaecore.zoo train tiny"):
        zoo.load("tiny", directory=tmp_path)


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
