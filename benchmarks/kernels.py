"""Kernel Gram matrices: ``vaecore.mmd.rbf_kernel`` against one ``(N, M, D)`` broadcast.

The reference computes every squared distance at once, ``((x[:, None] - y[None]) ** 2).sum(-1)``,
the formula vaecore used before it worked in blocks of rows (``vaecore.mmd._BLOCK_ELEMENTS``
elements at a time). Both sides compute the same numbers, checked bit for bit here; only
the memory traffic differs. Shapes: the codes of chapters 10 and 11 (2,000 × 20; chapter 11
computes eight MMDs of 2,000 codes against 2,000 prior samples), a training batch of
InfoVAE (200 × 20) and flattened MNIST images (500 × 784).

Runs alternate (reference, vaecore, ...) so that both see the same machine state; each
run computes the three Gram matrices of one unbiased MMD² (x with x, y with y, x with y).
Prints the median seconds of each side and their ratio.

    python benchmarks/kernels.py [--repeats 5] [--threads 1]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from vaecore.mmd import rbf_kernel

SHAPES = {"codes, 2,000 x 20": (2000, 20), "InfoVAE batch, 200 x 20": (200, 20),
          "MNIST images, 500 x 784": (500, 784)}


def broadcast_rbf(x: torch.Tensor, y: torch.Tensor, bandwidth: float) -> torch.Tensor:
    """The reference: all N × M × D differences in one tensor."""
    return torch.exp(-((x[:, None, :] - y[None, :, :]) ** 2).sum(-1) / (2 * bandwidth ** 2))


def gram_matrices(kernel, x, y, bandwidth):
    return kernel(x, x, bandwidth), kernel(y, y, bandwidth), kernel(x, y, bandwidth)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"seconds per unbiased MMD² (three Gram matrices), median of {args.repeats}, "
          f"{args.threads} thread(s)")
    print(f"{'shape':26s} {'broadcast':>10s} {'vaecore':>10s} {'ratio':>7s}")
    for label, (n, d) in SHAPES.items():
        g = torch.Generator().manual_seed(0)
        x, y = torch.randn(n, d, generator=g), torch.randn(n, d, generator=g)
        bandwidth = float(d) ** 0.5
        for a, b in zip(gram_matrices(broadcast_rbf, x, y, bandwidth),
                        gram_matrices(rbf_kernel, x, y, bandwidth)):
            if not torch.equal(a, b):
                raise AssertionError(f"{label}: the two sides differ")
        times = {"broadcast": [], "vaecore": []}
        for _ in range(args.repeats):
            for side, kernel in (("broadcast", broadcast_rbf), ("vaecore", rbf_kernel)):
                start = time.perf_counter()
                gram_matrices(kernel, x, y, bandwidth)
                times[side].append(time.perf_counter() - start)
        ref, ours = (statistics.median(times[s]) for s in ("broadcast", "vaecore"))
        print(f"{label:26s} {ref:10.3f} {ours:10.3f} {ref / ours:6.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
