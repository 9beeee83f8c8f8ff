"""Latent against pixel diffusion: the cost of a training step and of a sample, as a ratio.

The two diffusion models of chapter 17 (``vaecore.latent_diffusion.SpaceDiffusion``), built
here from the library alone at the chapter's sizes: the same ``GridDenoiser`` (64 channels,
4 residual blocks) on the latents of a ``KLAutoencoder`` (4 channels, a grid 4 times
smaller) or on the pixels stacked in 4 × 4 patches (the same grid). Timed alternately in
one process at one thread, so that both see the same machine state:

- a training step (``diffusion_loss``, backward, Adam) on a batch of 128 random images;
  the latent model's step includes encoding the batch with the frozen autoencoder;
- sampling 100 images with all 100 steps; the latent model's includes decoding them.

Prints the median of ``--repeats`` timings of each and the ratio latent / pixel.

    python benchmarks/latent_diffusion.py [--data mnist|cifar] [--repeats 5]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from vaecore.diffusion import GridDenoiser, Schedule
from vaecore.kl_autoencoder import KLAutoencoder
from vaecore.latent_diffusion import SpaceDiffusion, diffusion_loss

SHAPES = {"mnist": ((1, 28, 28), 16), "cifar": ((3, 32, 32), 32)}


def models(data: str) -> dict[str, SpaceDiffusion]:
    (c, h, w), width = SHAPES[data]
    torch.manual_seed(0)
    latent = SpaceDiffusion(GridDenoiser(4, 64, 4), Schedule.linear(100), (4, h // 4, w // 4),
                            KLAutoencoder(c, 4, width))
    pixel = SpaceDiffusion(GridDenoiser(c, 64, 4, patch=4), Schedule.linear(100), (c, h, w),
                           scale=2.0, shift=0.5)
    return {"latent": latent, "pixel": pixel}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=sorted(SHAPES), default="mnist")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    torch.set_num_threads(1)
    built = models(args.data)
    optimisers = {k: torch.optim.Adam(m.denoiser.parameters(), 1e-3) for k, m in built.items()}
    x = torch.rand(128, *SHAPES[args.data][0], generator=torch.Generator().manual_seed(1))
    step, draw = {k: [] for k in built}, {k: [] for k in built}
    for repeat in range(args.repeats + 1):          # the first round warms up, untimed
        for key, model in built.items():
            model.train()
            start = time.perf_counter()
            for _ in range(5):
                loss = diffusion_loss(model, x).loss
                optimisers[key].zero_grad()
                loss.backward()
                optimisers[key].step()
            middle = time.perf_counter()
            model.eval()
            model.sample(100, generator=torch.Generator().manual_seed(repeat))
            end = time.perf_counter()
            if repeat:
                step[key].append((middle - start) / 5)
                draw[key].append(end - middle)
    for what, times in (("training step, batch of 128", step), ("100 samples, 100 steps", draw)):
        median = {k: statistics.median(v) for k, v in times.items()}
        print(f"{what}: latent {median['latent']:.3f} s, pixel {median['pixel']:.3f} s, "
              f"latent / pixel {median['latent'] / median['pixel']:.2f}")


if __name__ == "__main__":
    main()
