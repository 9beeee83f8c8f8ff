"""Chapter 14's inference gaps of the course's models, measured and stored in their records.

For each model and training seed, :func:`vaecourse.chapters.ch14_inference_gaps.measure_gaps`
on the first 1,000 fixed binarized MNIST test images: the encoder's ELBO, the
ELBO of the best diagonal Gaussian per image (SVI), that of a per-image IAF,
and log p(x) by importance sampling; the gaps between them, nats per image.

    python benchmarks/gaps.py NAME [NAME ...]                  # seed 0 (the shipped weights)
    python benchmarks/gaps.py NAME --seed-runs 0,1,2 --write   # every seed, stored in the record
    python benchmarks/gaps.py NAME --convergence 125,250,500,1000 --n-images 100 --write
        # seed 0 with each number of SVI (and flow) steps, stored as "gap_convergence"

Seeds other than 0 use the unshipped weights trained on this machine
(``python -m vaecourse.zoo train NAME --seed S``). About 4 to 5 minutes per
model and seed on one core.
"""
from __future__ import annotations

import argparse
import shlex
import sys

import torch

from vaecourse import zoo
from vaecourse.chapters.ch14_inference_gaps import GAP_IMAGES, measure_gaps
from vaecourse.protocol import test_images


def _line(label: str, r: dict) -> str:
    return (f"{label}: log p(x) {r['log_px']['mean']:.2f}, gap {r['total']['mean']:.2f} = "
            f"amortization {r['amortization']['mean']:.2f} + approximation "
            f"{r['approximation']['mean']:.2f} (a flow recovers {r['flow_gain']['mean']:.2f}), "
            f"{r['wall_time_s']:.0f} s")


def convergence(name: str, x, steps: list[int], write: bool) -> None:
    """Seed 0's gaps with each number of steps; stored as ``gap_convergence`` with ``write``."""
    model = zoo.load(name, train_if_missing=False)[0]
    results = {}
    for n in steps:
        results[str(n)] = measure_gaps(model, x, steps=n)
        print(_line(f"{name}, {n} steps", results[str(n)]), flush=True)
    if write:
        command = "python benchmarks/gaps.py --write " + shlex.join(
            [name, "--convergence", ",".join(map(str, steps)), "--n-images", str(len(x))])
        zoo.write_seed_result(name, 0, "gap_convergence",
                              {"by_steps": results, "command": command,
                               "threads": torch.get_num_threads()})


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", metavar="NAME")
    parser.add_argument("--seed-runs", default="0", metavar="S,...")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--convergence", default="", metavar="STEPS,...",
                        help="seed 0 only: measure with each number of optimisation steps")
    parser.add_argument("--n-images", type=int, default=None,
                        help="the first N test images (default: the chapter's 1,000)")
    parser.add_argument("--write", action="store_true",
                        help="store each result in the seed's entry of the record (key 'gaps')")
    args = parser.parse_args(argv)
    if args.n_images is not None and args.n_images < 1:
        parser.error(f"--n-images: expected at least 1 image, got {args.n_images}")
    if args.convergence and args.seed_runs != "0":
        parser.error("--convergence measures seed 0 only; drop --seed-runs")
    if args.threads:
        torch.set_num_threads(args.threads)
    x = test_images()[:args.n_images or GAP_IMAGES]
    for name in map(zoo.canonical, args.models):
        if args.convergence:
            convergence(name, x, [int(s) for s in args.convergence.split(",")], args.write)
            continue
        for run in (int(s) for s in args.seed_runs.split(",")):
            model = (zoo.load(name, train_if_missing=False)[0] if run == 0
                     else zoo.load_seed(name, run)[0])
            r = measure_gaps(model, x)
            print(_line(f"{name} (seed {run})", r), flush=True)
            if args.write:
                command = "python benchmarks/gaps.py --write " + shlex.join(
                    [name, "--seed-runs", str(run), "--n-images", str(len(x))])
                zoo.write_seed_result(name, run, "gaps", {**r, "command": command,
                                                          "threads": torch.get_num_threads()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
