"""Tests for vaecore.distributed: fit under torchrun (2 CPU processes, gloo) against one process.

The tests launch this very file with ``python -m torch.distributed.run`` (the
``torchrun`` command); run as a script, it trains a small deterministic
autoencoder with ``fit`` and rank 0 saves what it got. The loss has no
sampling, so two processes must reproduce one process's weights up to float
rounding: DDP adds the ranks' gradients (each a mean over half of the global
batch, weighted by ``distributed.shard``) in another order than one process
sums the batch. With float32, Adam, 12 steps: ``TOL`` below.
"""
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from vaecore import distributed
from vaecore.checkpoint import load_checkpoint
from vaecore.train import fit

# float32 rounding, amplified a little by Adam's normalised steps; measured: ~1e-7
TOL = {"rtol": 1e-5, "atol": 1e-5}
N_TRAIN, N_VAL, BATCH = 251, 101, 64  # last batches of 59 and 37: uneven halves


class Recon(NamedTuple):
    loss: torch.Tensor
    mse: torch.Tensor


def recon_loss(model, x):
    mse = ((model(x) - x) ** 2).sum(dim=1)
    return Recon(mse.mean(), mse)


def build():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 8))


def data():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(N_TRAIN + N_VAL, 3, generator=g) @ torch.randn(3, 8, generator=g)
    return x[:N_TRAIN], x[N_TRAIN:]


def train(epochs, checkpoint, kill_after=None):
    """Train to ``epochs`` in all, resuming from ``checkpoint`` if it exists."""
    model, history = build(), None
    if Path(checkpoint).is_file():
        history = load_checkpoint(checkpoint, model).history
    x, v = data()

    def kill(epoch, history):  # rank 0 dies after saving this epoch, as a crash would
        if epoch == kill_after and distributed.rank() == 0:
            os.kill(os.getpid(), signal.SIGKILL)

    history = fit(model, recon_loss, x, val=v, epochs=epochs,
                  batch_size=BATCH, lr=1e-2, progress=False, checkpoint=checkpoint,
                  history=history, callbacks=[kill])
    return model, history


def _worker(out: str, epochs: int, kill_after: int | None) -> None:
    """Run under torchrun: train; log which rank saves; rank 0 writes the result."""
    import vaecore.checkpoint
    torch.set_num_threads(1)
    save, log = vaecore.checkpoint.save_checkpoint, Path(out).with_suffix(".saves")

    def logged_save(*args, **kwargs):
        with open(log, "a") as f:
            f.write(f"{distributed.rank()}\n")
        save(*args, **kwargs)

    vaecore.checkpoint.save_checkpoint = logged_save
    model, history = train(epochs, Path(out).with_suffix(".ckpt.pt"), kill_after)
    if distributed.is_main():
        torch.save({"state_dict": model.state_dict(), "history": history.to_dict(),
                    "world": distributed.world_size()}, out)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(out: Path, epochs: int, kill_after=None, nproc=2) -> int:
    """Launch this file under torchrun on 127.0.0.1 with gloo; return its exit code."""
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}",
           "--nnodes=1", "--master_addr=127.0.0.1", f"--master_port={_free_port()}",
           __file__, str(out), str(epochs), str(kill_after or 0)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "VAECORE_DEVICE": "cpu",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]),
                                          os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True, text=True)
    try:
        output, _ = proc.communicate(timeout=120)
    finally:  # never leave workers behind: the whole session goes
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    if proc.returncode and not kill_after:
        print(output)
    return proc.returncode


def one_process(tmp_path, sittings):
    """The same training in this process, in sittings of so many epochs, resuming each time."""
    checkpoint, done = tmp_path / "one.pt", 0
    for epochs in sittings:
        done += epochs
        model, history = train(done, checkpoint)
    return model, history


def assert_same_training(result, model, history):
    assert result["world"] == 2
    for name, tensor in model.state_dict().items():
        assert_close(result["state_dict"][name], tensor, **TOL)
    for split in ("train", "val"):
        assert_close(result["history"][split]["loss"], getattr(history, split)["loss"],
                     rtol=1e-5, atol=0)
    assert result["history"]["lr"] == history.lr


@pytest.mark.slow
def test_two_processes_train_the_weights_of_one(tmp_path):
    out = tmp_path / "ddp.pt"
    assert torchrun(out, epochs=3) == 0
    result = torch.load(out, weights_only=True)
    model, history = one_process(tmp_path, [3])
    assert_same_training(result, model, history)
    # and not trivially: the weights moved well beyond the tolerance
    assert (result["state_dict"]["0.weight"] - build().state_dict()["0.weight"]).abs().max() > 0.05
    assert out.with_suffix(".saves").read_text().split() == ["0"] * 3  # rank 0 alone writes


@pytest.mark.slow
def test_a_killed_distributed_run_resumes_from_its_checkpoint(tmp_path):
    out = tmp_path / "ddp.pt"
    assert torchrun(out, epochs=4, kill_after=2) != 0  # rank 0 died after epoch 2
    assert not out.exists()
    assert len(load_checkpoint(out.with_suffix(".ckpt.pt")).history) == 2
    assert torchrun(out, epochs=4) == 0  # started again: resumes at epoch 3
    result = torch.load(out, weights_only=True)
    assert len(result["history"]["epoch_time"]) == 4
    model, history = one_process(tmp_path, [2, 2])
    assert_same_training(result, model, history)
    assert out.with_suffix(".saves").read_text().split() == ["0"] * 4


def test_one_process_helpers_are_the_identity(monkeypatch):
    for name in ("WORLD_SIZE", "RANK"):
        monkeypatch.delenv(name, raising=False)
    idx = torch.arange(10)
    assert distributed.world_size() == 1 and distributed.rank() == 0 and distributed.is_main()
    local, weight = distributed.shard(idx)
    assert local is idx and weight == 1.0
    assert distributed.rank_seed(7) == 7
    sums = {"loss": torch.tensor(3.0, dtype=torch.float64)}
    assert distributed.all_reduce_sums(sums) is sums


@pytest.mark.parametrize("size, world", [(59, 2), (64, 2), (5, 3), (1, 2)])
def test_shards_cover_the_batch_and_weights_give_its_mean(monkeypatch, size, world):
    idx = torch.arange(100, 100 + size)
    monkeypatch.setenv("WORLD_SIZE", str(world))
    slices, weights = [], []
    for r in range(world):
        monkeypatch.setenv("RANK", str(r))
        local, weight = distributed.shard(idx)
        slices.append(local if weight else local[:0])
        weights.append(weight)
    assert torch.equal(torch.cat(slices), idx)  # contiguous, in order, each example once
    # DDP averages the ranks' weighted batch means: (1/W) sum_r w_r mean_r = the global mean
    values = torch.rand(size, dtype=torch.float64)
    means = [values[s - 100].mean() if len(s) else torch.tensor(0.0) for s in slices]
    ddp = sum(w * m for w, m in zip(weights, means)) / world
    assert_close(ddp, values.mean())


def test_rank_seeds_differ_between_ranks(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "4")
    seeds = []
    for r in range(4):
        monkeypatch.setenv("RANK", str(r))
        seeds.append(distributed.rank_seed(5))
    assert seeds[0] == 5 and len(set(seeds)) == 4


def test_fit_refuses_fewer_examples_than_processes(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setattr(distributed, "init", lambda device: None)  # no process group here
    with pytest.raises(ValueError, match="batch_size: expected at least one example per"):
        fit(build(), recon_loss, data()[0], epochs=1, batch_size=2, progress=False)
    with pytest.raises(ValueError, match=r"len\(val\)"):
        fit(build(), recon_loss, data()[0], val=data()[1][:3], epochs=1, progress=False)


if __name__ == "__main__":
    _worker(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) or None)
