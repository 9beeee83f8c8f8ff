"""The KL term of chapter 18's one-layer models split into mutual information and KL(q(z) || p(z)).

For each seed of each model of the prior comparison (``ch18_priors_and_hierarchies.PRIORS``:
the standard normal, flow, mixture and VampPrior models), this encodes the 10,000 test
images, draws ``SPLIT_DRAWS`` points of their aggregate posterior and prints the two terms
of ``vaecore.priors.elbo_surgery`` (``ch18_priors_and_hierarchies.marginal_split``); with
``--write`` it stores them in the record under ``"marginal_split"``, tied to the seed's
weights by their sha256 (so run it where the seeds' weights are).

    python benchmarks/elbo_surgery.py [--write] [--seeds 0,1,2] [NAME ...]
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time

import torch

from vaecourse import zoo
from vaecourse.chapters import ch18_priors_and_hierarchies as ch


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", metavar="NAME",
                        help="models of chapter 18's prior comparison (default: all four)")
    parser.add_argument("--seeds", default="0,1,2", metavar="S,...")
    parser.add_argument("--write", action="store_true",
                        help="store each result in the checkpoint's record (NAME.json)")
    args = parser.parse_args(argv)
    models = args.models or list(ch.PRIORS.values())
    if not set(models) <= set(ch.PRIORS.values()):
        parser.error(f"expected models of chapter 18's prior comparison, "
                     f"{', '.join(ch.PRIORS.values())}; got {', '.join(models)}")
    torch.set_num_threads(1)
    for name in models:
        for seed in (int(s) for s in args.seeds.split(",")):
            model = zoo.load_run(name, seed)[0]
            start = time.perf_counter()
            result = ch.marginal_split(model)
            print(f"{name} (seed {seed}): I(n; z) {result['mutual_information']:.2f} ± "
                  f"{result['mutual_information_se']:.2f}, KL(q(z) || p(z)) "
                  f"{result['marginal_kl']:.2f} ± {result['marginal_kl_se']:.2f} nats "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
            if args.write:
                command = "python benchmarks/elbo_surgery.py --write " + shlex.join(
                    [name, "--seeds", str(seed)])
                zoo.write_seed_result(name, seed, "marginal_split", {**result,
                                                                     "command": command})
    return 0


if __name__ == "__main__":
    sys.exit(main())
