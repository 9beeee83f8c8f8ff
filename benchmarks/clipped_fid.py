"""Chapter 17's pixel-space diffusion models sampled with the estimate of x_0 clamped.

Ho et al.'s Algorithm 2, which the records' ``sample_fid`` follows, lets a pixel model's
chain leave [-1, 1]; their code clamps each step's estimate of x_0 to that range
(``clip_denoised``). For each seed of each pixel model, this draws the chapter's 1,000
samples (the same generator) with the clamp and prints their Fréchet distance
(``vaecourse.chapters.ch17_latent_diffusion.clipped_fid``); with ``--write`` it stores it in
the record under ``"clipped_fid"``, tied to the seed's weights by their sha256 (so run it
where the seeds' weights are, after training).

    python benchmarks/clipped_fid.py [--write] [--seeds 0,1,2] [NAME ...]
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time

import torch

from vaecourse import zoo
from vaecourse.chapters import ch17_latent_diffusion as ch

SETTINGS = {ch.NAMES[s.key]["pixel"]: s for s in (ch.MNIST, ch.CIFAR)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=sorted(SETTINGS), metavar="NAME")
    parser.add_argument("--seeds", default="0,1,2", metavar="S,...")
    parser.add_argument("--write", action="store_true",
                        help="store each result in the checkpoint's record (NAME.json)")
    args = parser.parse_args(argv)
    unknown = [m for m in args.models if m not in SETTINGS]
    if unknown:
        parser.error(f"not a pixel-space model of chapter 17: {unknown}; "
                     f"expected some of {sorted(SETTINGS)}")
    torch.set_num_threads(1)
    for name in args.models:
        for seed in (int(s) for s in args.seeds.split(",")):
            model = zoo.load_run(name, seed)[0]
            start = time.perf_counter()
            fid = ch.clipped_fid(model, SETTINGS[name])
            print(f"{name} (seed {seed}): FID {fid:.2f} with x_0 clamped to "
                  f"{ch.PIXEL_RANGE} ({time.perf_counter() - start:.0f} s)", flush=True)
            if args.write:
                command = "python benchmarks/clipped_fid.py --write " + shlex.join(
                    [name, "--seeds", str(seed)])
                zoo.write_seed_result(name, seed, "clipped_fid", {
                    "fid": fid, "n": ch.N_FID, "range": list(ch.PIXEL_RANGE),
                    "command": command})
    return 0


if __name__ == "__main__":
    sys.exit(main())
