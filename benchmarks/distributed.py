"""Data-parallel throughput: ``fit`` in one process against ``fit`` under torchrun.

The model, loss and data of ``throughput.py`` (the PyTorch example's MLP VAE,
MNIST, batch 128 = the *global* batch, Adam 1e-3), trained for ``--epochs``
in three ways, alternated so that all see the same machine state:

- ``1 proc x 1 thread``: ``python`` and ``fit``, ``torch.set_num_threads(1)``;
- ``1 proc x 2 threads``: the same with two threads;
- ``2 procs x 1 thread``: ``torchrun --nproc_per_node=2``, gloo, the same
  script and the same ``fit`` call (each rank takes 64 of every 128).

Each run is a fresh process (start-up and a short warm-up ``fit`` not timed:
the time is ``fit``'s own, measured on rank 0). Prints images per second and the final training loss
(global mean over the 60,000 images); the loss of the two-process run is an
equally valid draw, not the same number, as each rank samples its own noise.

    python benchmarks/distributed.py [--repeats 2] [--epochs 1] [--limit N]
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time

WAYS = {"1 proc x 1 thread": (1, 1), "1 proc x 2 threads": (1, 2), "2 procs x 1 thread": (2, 1)}


def worker(epochs: int, limit: int | None, threads: int) -> None:
    """Train under whatever launched us; rank 0 prints one JSON line."""
    import torch

    from throughput import example_vae
    from vaecore import distributed
    from vaecore.data import mnist
    from vaecore.elbo import negative_elbo
    from vaecore.train import fit

    torch.set_num_threads(threads)
    x = mnist("train").x[:limit]
    fit(example_vae(), negative_elbo, x[:2048], epochs=1, progress=False)  # first-call costs
    model = example_vae()
    start = time.perf_counter()
    history = fit(model, negative_elbo, x, epochs=epochs, batch_size=128, lr=1e-3, seed=0,
                  progress=False)
    seconds = time.perf_counter() - start
    if distributed.is_main():
        print(json.dumps({"images_per_s": epochs * len(x) / seconds,
                          "loss": history.train["loss"][-1],
                          "world": distributed.world_size()}), flush=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(nproc: int, threads: int, args) -> dict:
    here = os.path.dirname(os.path.abspath(__file__))
    script = [os.path.abspath(__file__), "--worker", "--epochs", str(args.epochs),
              "--threads", str(threads)] + (["--limit", str(args.limit)] if args.limit else [])
    if nproc == 1:
        cmd = [sys.executable, *script]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}",
               "--nnodes=1", "--master_addr=127.0.0.1", f"--master_port={_free_port()}",
               *script]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "VAECORE_DEVICE": "cpu",
           "PYTHONPATH": os.pathsep.join([here, os.path.dirname(here),
                                          os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads([line for line in out.splitlines() if line.startswith("{")][-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.epochs, args.limit, args.threads)
    results = {way: [] for way in WAYS}
    for r in range(args.repeats):
        for way, (nproc, threads) in WAYS.items():
            results[way].append(launch(nproc, threads, args))
        print(f"run {r + 1}: " + " | ".join(f"{way} {res[-1]['images_per_s']:6.0f} images/s "
                                            f"(loss {res[-1]['loss']:.2f})"
                                            for way, res in results.items()), flush=True)
    base = statistics.median(res["images_per_s"] for res in results["1 proc x 1 thread"])
    print(f"median over {args.repeats} run(s), {args.epochs} epoch(s), global batch 128:")
    for way, res in results.items():
        speed = statistics.median(x["images_per_s"] for x in res)
        print(f"  {way:20s} {speed:8.0f} images/s  {speed / base:.2f}x  final loss "
              f"{statistics.mean(x['loss'] for x in res):.2f}")


if __name__ == "__main__":
    main()
