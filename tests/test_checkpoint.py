"""Tests for vaecore.checkpoint: round trip, weights_only, atomic writes, load_or_train."""
import hashlib
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.testing import assert_close

import vaecore
from vaecore import checkpoint as ckpt_module
from vaecore.checkpoint import (file_sha256, load_checkpoint, load_or_train,
                                save_checkpoint)
from vaecore.train import History

CONFIG = {"latent_dim": 2, "hidden": [16, 16], "likelihood": "bernoulli", "beta": 1.0}
METRICS = {"train": {"loss": 1.5}, "val": {"loss": 1.75}}


def tiny_model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Linear(3, 4))


def a_history():
    return History(train={"loss": [2.0, 1.5], "kl": [0.5, 0.25]}, val={"loss": [2.5, 1.75]},
                   epoch_time=[0.1, 0.2], lr=[1e-3, 5e-4])


def test_round_trip_restores_weights_config_metrics_history(tmp_path):
    model, path = tiny_model(0), tmp_path / "model.pt"
    save_checkpoint(path, model, config=CONFIG, metrics=METRICS, history=a_history())
    fresh = tiny_model(1)
    assert not torch.equal(fresh[0].weight, model[0].weight)
    loaded = load_checkpoint(path, fresh)
    assert_close(fresh.state_dict(), model.state_dict(), rtol=0, atol=0)
    assert_close(dict(loaded.state_dict), model.state_dict(), rtol=0, atol=0)
    assert (loaded.config, loaded.metrics) == (CONFIG, METRICS)
    assert loaded.history == a_history() and loaded.vaecore_version == vaecore.__version__


def test_file_loads_with_plain_torch_load_weights_only(tmp_path):
    path = tmp_path / "model.pt"
    save_checkpoint(path, tiny_model(), config=CONFIG, metrics=METRICS)
    payload = torch.load(path, weights_only=True)
    assert set(payload) == {"state_dict", "config", "metrics", "history", "vaecore_version"}
    assert payload["history"] is None and load_checkpoint(path).history is None


@pytest.mark.parametrize("config, message", [
    ({"layer": nn.Linear(2, 2)}, r"config\['layer'\]: expected plain JSON-like values"),
    ({"w": torch.zeros(2)}, "got Tensor"),
    ({1: "a"}, "config: expected string keys"),
    ({"xs": [1, {2, 3}]}, r"config\['xs'\]\[1\].*got set"),
])
def test_non_json_config_raises_and_writes_nothing(tmp_path, config, message):
    with pytest.raises(ValueError, match=message):
        save_checkpoint(tmp_path / "model.pt", tiny_model(), config=config, metrics=METRICS)
    assert list(tmp_path.iterdir()) == []


def test_metrics_must_be_json_like_too(tmp_path):
    with pytest.raises(ValueError, match="metrics"):
        save_checkpoint(tmp_path / "m.pt", tiny_model(), config={},
                        metrics={"loss": torch.ones(1)})


def test_failed_save_leaves_old_file_intact_and_no_partial_file(tmp_path, monkeypatch):
    path, old = tmp_path / "model.pt", tiny_model(0)
    save_checkpoint(path, old, config=CONFIG, metrics=METRICS)
    old_digest = file_sha256(path)

    def half_write_then_fail(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 partial bytes")
        raise OSError("disk full")

    monkeypatch.setattr(ckpt_module.torch, "save", half_write_then_fail)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, tiny_model(1), config=CONFIG, metrics=METRICS)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tmp_path / "new.pt", tiny_model(1), config=CONFIG, metrics=METRICS)
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]
    assert file_sha256(path) == old_digest
    monkeypatch.undo()
    restored = tiny_model(1)
    load_checkpoint(path, restored)
    assert_close(restored.state_dict(), old.state_dict(), rtol=0, atol=0)


def test_missing_file_raises_file_not_found_naming_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing_here.pt"):
        load_checkpoint(tmp_path / "nothing_here.pt")


def test_corrupt_or_truncated_file_raises_value_error_naming_it(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a checkpoint")
    with pytest.raises(ValueError, match="garbage.pt is not a readable checkpoint"):
        load_checkpoint(garbage)
    good, truncated = tmp_path / "good.pt", tmp_path / "truncated.pt"
    save_checkpoint(good, tiny_model(), config=CONFIG, metrics=METRICS)
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(ValueError, match="truncated.pt"):
        load_checkpoint(truncated)
    other = tmp_path / "other.pt"
    torch.save({"just": torch.zeros(1)}, other)
    with pytest.raises(ValueError, match="other.pt is not a vaecore checkpoint"):
        load_checkpoint(other)


def test_checkpoint_of_another_architecture_raises_value_error(tmp_path):
    path = tmp_path / "model.pt"
    save_checkpoint(path, tiny_model(), config=CONFIG, metrics=METRICS)
    with pytest.raises(ValueError, match="model.pt does not fit Linear"):
        load_checkpoint(path, nn.Linear(4, 4))


def test_load_or_train_trains_once_then_loads(tmp_path):
    calls = []

    def train_fn(model):
        calls.append(model)
        with torch.no_grad():
            model[0].weight.fill_(0.5)
        return a_history()

    first_model = tiny_model(0)
    first = load_or_train("tiny", train_fn, model=first_model, config=CONFIG, directory=tmp_path)
    second_model = tiny_model(1)
    second = load_or_train("tiny", train_fn, model=second_model, config=CONFIG,
                           directory=tmp_path)
    assert calls == [first_model]
    assert (tmp_path / "tiny.pt").is_file()
    assert torch.all(second_model[0].weight == 0.5)
    assert_close(second_model.state_dict(), first_model.state_dict(), rtol=0, atol=0)
    assert first.metrics == second.metrics == {"train": {"loss": 1.5, "kl": 0.25},
                                               "val": {"loss": 1.75}}
    assert second.history == a_history() and second.config == CONFIG


def test_load_or_train_refuses_a_stale_checkpoint(tmp_path):
    load_or_train("tiny", lambda m: a_history(), model=tiny_model(), config=CONFIG,
                  directory=tmp_path)
    with pytest.raises(ValueError, match="tiny.pt was trained with config .* delete the file"):
        load_or_train("tiny", lambda m: a_history(), model=tiny_model(),
                      config={**CONFIG, "beta": 4.0}, directory=tmp_path)


@pytest.mark.parametrize("name, train_fn, message", [
    ("a/b", lambda m: a_history(), "name: expected a file stem"),
    ("", lambda m: a_history(), "name: expected a file stem"),
    ("ok", lambda m: {"loss": [1.0]}, "train_fn: expected it to return a History"),
    ("ok", lambda m: pytest.fail("trained despite a bad config"), "config"),
])
def test_load_or_train_bad_arguments(tmp_path, name, train_fn, message):
    config = {"bad": object()} if message == "config" else None
    with pytest.raises(ValueError, match=message):
        load_or_train(name, train_fn, model=tiny_model(), config=config, directory=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_file_sha256_matches_known_digest(tmp_path):
    path = tmp_path / "abc.txt"
    path.write_bytes(b"abc")
    assert file_sha256(path) == ("ba7816bf8f01cfea414140de5dae2223"
                                 "b00361a396177a9cb410ff61f20015ad")
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * 10_000)  # several read chunks
    assert file_sha256(big) == hashlib.sha256(big.read_bytes()).hexdigest()


# Temporary files left by saves that were killed

def test_save_removes_stale_temporaries_of_that_checkpoint_only(tmp_path):
    import fcntl
    import os
    old = 1_000_000_000  # 2001: long untouched
    names = {"stale": ".model.pt.abcd_123.tmp", "young": ".model.pt.young123.tmp",
             "locked": ".model.pt.locked12.tmp", "other": ".other.pt.abcd_123.tmp",
             "not ours": ".model.pt.notes.tmp"}
    for key, name in names.items():
        (tmp_path / name).write_bytes(b"PK partial")
        if key != "young":
            os.utime(tmp_path / name, (old, old))
    with open(tmp_path / names["locked"], "rb") as live:  # a writer that is still running
        fcntl.flock(live, fcntl.LOCK_EX)
        save_checkpoint(tmp_path / "model.pt", tiny_model(), config=CONFIG, metrics=METRICS)
        left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted(["model.pt"] + [n for k, n in names.items() if k != "stale"])


CHILD = """
import sys, time, torch
from torch import nn
from vaecore import checkpoint
def stuck(obj, f, *args, **kwargs):
    f.write(b"PK partial bytes"); f.flush()
    print("writing", flush=True)
    time.sleep(120)
checkpoint.torch.save = stuck
checkpoint.save_checkpoint(sys.argv[1], nn.Linear(2, 2), config={}, metrics={})
"""


def test_a_save_killed_by_sigkill_leaves_a_temporary_the_next_save_removes(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    path = tmp_path / "model.pt"
    save_checkpoint(path, tiny_model(0), config=CONFIG, metrics=METRICS)
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE,
                             text=True)
    try:
        assert child.stdout.readline() == "writing\n"
        (tmp,) = tmp_path.glob(".model.pt.*.tmp")
        os.utime(tmp, (1_000_000_000, 1_000_000_000))
        save_checkpoint(path, tiny_model(1), config=CONFIG, metrics=METRICS)
        assert tmp.exists(), "a live writer's temporary file was removed"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert tmp.exists()  # what SIGKILL leaves; the old checkpoint is intact
    restored = tiny_model(2)
    load_checkpoint(path, restored)
    assert_close(restored.state_dict(), tiny_model(1).state_dict(), rtol=0, atol=0)
    save_checkpoint(path, tiny_model(3), config=CONFIG, metrics=METRICS)
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]
