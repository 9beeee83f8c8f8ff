"""Test negative log-likelihood of the course's models, beside the published numbers.

Recomputes the chapter 11 table from the shipped checkpoints with the
protocol of :mod:`vaecore.nll` and :mod:`vaecourse.protocol`: dynamically binarized MNIST, the 10,000 test
images binarized once with a fixed seed, ``-log p(x)`` estimated by importance
sampling with ``k`` samples (5000 by default), nats per image.

    python benchmarks/nll.py                          # every model of the table, k = 5000
    python benchmarks/nll.py mnist-mlp-bernoulli-flow-z20-e30 --k 500   # one model, fewer samples
    python benchmarks/nll.py --write NAME ...         # store the results in the records
    python benchmarks/nll.py --write NAME --seed-runs 0,1,2 --k 1000   # every seed on one k

Options: ``--k``, ``--n-test N`` (the first N test images), ``--batch-size``,
``--chunk`` (z samples decoded at once per batch, 50 by default: 5,000 decoder rows a pass,
which ran 1.5 times as fast as 500 on one core for the reference MLP; a model that draws z in
:func:`~vaecore.elbo.log_likelihood_is` all at once gets the same draws at any chunk, a
hierarchy draws chunk by chunk, so its command records the chunk),
``--seed`` (of the importance samples), ``--threads``, ``--seed-runs S,...``
(these training seeds: 0 is the shipped weights, any other the unshipped weights
trained on this machine with ``python -m vaecourse.zoo train NAME --seed S``;
``--write`` stores each result in that seed's entry of the record, seed 0's in
its ``seed0`` entry, so that every seed is compared at one k while the headline
``nll`` of the shipped seed keeps its larger k). The full protocol costs about k × 10,000 decoder
passes per model: minutes for the MLPs, longer for the conv VAE.
"""
from __future__ import annotations

import argparse
import shlex
import sys

import torch

from vaecore import nll
from vaecourse import zoo
from vaecourse.chapters.ch11_evaluation import BENCHMARK, PUBLISHED, write_nll
from vaecourse.protocol import test_images


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=list(BENCHMARK), metavar="NAME")
    parser.add_argument("--k", type=int, default=5000)
    parser.add_argument("--n-test", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--chunk", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed-runs", default="", metavar="S,...",
                        help="evaluate these unshipped training seeds instead of seed 0")
    parser.add_argument("--write", action="store_true",
                        help="store each result in the checkpoint's record (NAME.json)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    x = test_images()[:args.n_test]
    print(f"test NLL, nats per image: {len(x):,} dynamically binarized MNIST test images, "
          f"k = {args.k:,} importance samples; ± one standard error over images")
    print(f"{'model':44s} {'-log p(x)':>16s} {'-ELBO (k=1)':>16s} {'time':>8s}")
    seed_runs = [int(s) for s in args.seed_runs.split(",") if s]
    runs = seed_runs or [0]
    for name in map(zoo.canonical, args.models):  # an old name is stored under the new one
        for run in runs:
            model = zoo.load_run(name, run)[0]
            result, _ = nll.estimate_nll(model, x, args.k, seed=args.seed,
                                         batch_size=args.batch_size, chunk=args.chunk)
            label = name if run == 0 else f"{name} (seed {run})"
            print(f"{label:44s} {result.nll:9.2f} ± {result.nll_se:4.2f} "
                  f"{result.negative_elbo:9.2f} ± {result.negative_elbo_se:4.2f} "
                  f"{result.wall_time_s:7.0f}s", flush=True)
            if args.write:
                command = "python benchmarks/nll.py --write " + shlex.join(
                    [name, "--k", str(args.k), "--n-test", str(args.n_test), "--seed", str(args.seed),
                     "--batch-size", str(args.batch_size), "--chunk", str(args.chunk)]
                    + (["--seed-runs", str(run)] if seed_runs else []))
                if not seed_runs:
                    write_nll(name, result, command)
                else:
                    zoo.write_seed_result(name, run, "nll", {**result._asdict(), "command": command,
                                                             "threads": torch.get_num_threads()})
    print("published, each with its own protocol:")
    for p in PUBLISHED:
        print(f"{p.model:44s} {p.nll:9.2f}          [{p.source}, {p.where}; {p.protocol}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
