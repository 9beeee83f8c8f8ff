"""Training throughput: ``vaecore.fit`` against a per-sample ``DataLoader`` loop.

Both sides train the MLP VAE of the official PyTorch example (784-400-20,
Bernoulli likelihood, negative ELBO, Adam 1e-3) for one epoch on MNIST's
60,000 training images, from the same initial weights:

(a) ``vaecore.fit``: the images held in memory as one float tensor, batches
    sliced by a shuffled index;
(b) the reference: ``torch.utils.data.DataLoader`` (shuffle, no workers) over
    a ``Dataset`` that keeps the raw uint8 images and, like torchvision's
    ``MNIST`` with ``ToTensor()``, turns one image at a time into a PIL image
    and that into a float tensor in [0, 1]; then the usual zero_grad /
    backward / step loop.

Runs alternate (a, b, a, b, ...) so that both see the same machine state.
Prints images per second for every run and the ratio of the medians, and the
share of the machine's matrix-product peak that each side reaches.

``--variants`` adds speed options of ``fit`` to (a), each timed in the same
alternation: ``default`` (the course's arithmetic), ``bf16``
(``autocast=torch.bfloat16``), ``compile`` (``compile=True``), ``fast``
(the loss ``negative_elbo_fast`` instead of ``negative_elbo``), ``b512``
(batch 512, learning rate 2e-3), or combinations such as ``fast+bf16`` or
``bf16+b512``. ``--quality E`` trains each variant E epochs for 3 seeds and
compares its final loss with the default's (mean ± 2 standard deviations).

    python benchmarks/throughput.py [--repeats 2] [--batch-size 128] [--threads N] [--limit N]
                                    [--variants default,fast+bf16] [--quality 3]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset

from vaecore.data import mnist
from vaecore.elbo import negative_elbo, negative_elbo_fast
from vaecore.mlp import MLPDecoder, MLPEncoder
from vaecore.train import fit
from vaecore.vae import VAE


def example_vae(seed: int = 0) -> VAE:
    """The PyTorch example's VAE: 784 → 400 → 20 → 400 → 784 logits, seeded weights."""
    torch.manual_seed(seed)
    return VAE(MLPEncoder((1, 28, 28), 20, hidden=(400,)),
               MLPDecoder(20, (1, 28, 28), hidden=(400,)))


class PerItemImages(TorchDataset):
    """Raw uint8 images (N, 28, 28); each item converted on access, as torchvision does.

    torchvision's ``MNIST.__getitem__`` makes a PIL image of the uint8 array;
    ``ToTensor`` turns it back into a (1, 28, 28) float tensor divided by 255.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        picture = Image.fromarray(self.images[i], mode="L")
        image = torch.from_numpy(np.array(picture, copy=True)).view(28, 28, 1).permute(2, 0, 1)
        return image.float().div(255), int(self.labels[i])


def fit_options(variant: str, batch_size: int) -> dict:
    """``fit`` keyword arguments of a variant: ``default`` or options joined by ``+``."""
    options = {"batch_size": batch_size, "lr": 1e-3}
    for part in variant.split("+"):
        if part == "fast":  # the loss, not an option: see loss_function
            continue
        if part == "bf16":
            options["autocast"] = torch.bfloat16
        elif part == "compile":
            options["compile"] = True
        elif part.startswith("b") and part[1:].isdigit():  # a larger batch, lr scaled by sqrt
            options["batch_size"] = int(part[1:])
            options["lr"] = 1e-3 * (int(part[1:]) / batch_size) ** 0.5
        elif part != "default":
            raise SystemExit(f"unknown variant {part!r}: expected default, fast, bf16, compile, "
                             "bNNN")
    return options


def loss_function(variant: str):
    """``negative_elbo_fast`` for a variant with ``fast``, else ``negative_elbo``."""
    return negative_elbo_fast if "fast" in variant.split("+") else negative_elbo


def epoch_vaecore(x: torch.Tensor, batch_size: int, seed: int, variant: str = "default",
                  epochs: int = 1) -> tuple[float, float]:
    """``epochs`` of ``fit``; returns (images per second, final mean loss)."""
    model = example_vae()
    start = time.perf_counter()
    history = fit(model, loss_function(variant), x, epochs=epochs, seed=seed, progress=False,
                  **fit_options(variant, batch_size))
    return epochs * len(x) / (time.perf_counter() - start), history.train["loss"][-1]


def flops_per_image(model: torch.nn.Module) -> int:
    """Multiply-adds of the linear layers, x2: forward, and backward (no input gradient at the first)."""
    layers = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    macs = sum(m.in_features * m.out_features for m in layers)
    first = layers[0].in_features * layers[0].out_features
    return 2 * macs + 2 * (2 * macs - first)


def gemm_peak(dtype=torch.float32, n: int = 1024, tries: int = 7) -> float:
    """The best FLOP/s of an n x n matrix product at the current thread count."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    a @ b
    best = 0.0
    for _ in range(tries):
        start = time.perf_counter()
        for _ in range(4):
            a @ b
        best = max(best, 4 * 2 * n ** 3 / (time.perf_counter() - start))
    return best


def quality(x: torch.Tensor, variants, batch_size: int, epochs: int, seeds=(0, 1, 2)) -> None:
    """Final training loss of each variant after ``epochs``, over seeds, against the default's."""
    print(f"quality: final training loss after {epochs} epochs, seeds {list(seeds)}")
    base = None
    for variant in ["default", *[v for v in variants if v != "default"]]:
        losses = [epoch_vaecore(x, batch_size, seed, variant, epochs)[1] for seed in seeds]
        mean, sd = statistics.mean(losses), statistics.stdev(losses)
        base = base or (mean, sd)
        verdict = "" if variant == "default" else (
            "  within 2 sd of default" if abs(mean - base[0]) <= 2 * max(sd, base[1])
            else "  NOT within 2 sd of default")
        print(f"  {variant:16s} {mean:8.3f} ± {sd:.3f}  ({', '.join(f'{v:.3f}' for v in losses)})"
              f"{verdict}")


def epoch_reference(dataset: PerItemImages, batch_size: int, seed: int) -> tuple[float, float]:
    """One epoch of the DataLoader loop; returns (images per second, mean loss)."""
    model = example_vae()
    torch.manual_seed(seed)
    start = time.perf_counter()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=0)
    model.train()
    total = 0.0
    for x, _ in loader:
        optimizer.zero_grad()
        loss = negative_elbo(model, x).loss
        loss.backward()
        optimizer.step()
        total += loss.item() * len(x)
    return len(dataset) / (time.perf_counter() - start), total / len(dataset)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=2, help="epochs timed per side")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads (default: leave torch's choice)")
    parser.add_argument("--limit", type=int, default=None,
                        help="use only the first N training images (a quick check)")
    parser.add_argument("--variants", default="default",
                        help="fit variants, comma-separated: default, fast, bf16, compile, "
                             "b512, fast+bf16, fast+bf16+compile, ...")
    parser.add_argument("--quality", type=int, default=0, metavar="E",
                        help="also train each variant E epochs x 3 seeds and compare losses")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    data = mnist("train")
    x, y = data.x[:args.limit], data.y[:args.limit]
    raw = PerItemImages((x[:, 0] * 255).round().to(torch.uint8).numpy(), y.numpy())
    print(f"MNIST train, {len(x)} images, batch {args.batch_size}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    variants = args.variants.split(",")
    # first-call costs (and compile's warm-up), not timed; with a last batch as short as the
    # epoch's, so that compile also meets that shape here
    warm = slice(0, min(len(x), 4096 + len(x) % args.batch_size))
    for variant in variants:
        start = time.perf_counter()
        epoch_vaecore(x[warm], args.batch_size, 0, variant)
        print(f"warm-up of {variant}: {time.perf_counter() - start:.1f} s for {warm.stop} images")
    epoch_reference(PerItemImages(raw.images[warm], raw.labels[warm]), args.batch_size, 0)
    ours, ref = {v: [] for v in variants}, []
    for r in range(args.repeats):
        for variant in variants:
            ours[variant].append(epoch_vaecore(x, args.batch_size, r, variant))
        ref.append(epoch_reference(raw, args.batch_size, seed=r))
        print(f"run {r + 1}: " + " | ".join(f"fit[{v}] {ours[v][-1][0]:6.0f} images/s (loss "
                                            f"{ours[v][-1][1]:.2f})" for v in variants)
              + f" | DataLoader {ref[-1][0]:6.0f} images/s (loss {ref[-1][1]:.2f})")
    flops = flops_per_image(example_vae())
    peaks = {torch.float32: gemm_peak(torch.float32), torch.bfloat16: gemm_peak(torch.bfloat16)}
    b = statistics.median(s for s, _ in ref)
    print(f"FLOPs per image (forward + backward, linear layers): {flops / 1e6:.3f} M; "
          f"GEMM peak here ({torch.get_num_threads()} thread(s), 1024^3): "
          f"fp32 {peaks[torch.float32] / 1e9:.0f} GFLOP/s, bf16 {peaks[torch.bfloat16] / 1e9:.0f}")
    print(f"median over {args.repeats} run(s):")
    print(f"  {'DataLoader reference':24s} {b:8.0f} images/s  1.00x  "
          f"{b * flops / peaks[torch.float32]:5.1%} of fp32 peak")
    for variant in variants:
        a = statistics.median(s for s, _ in ours[variant])
        dtype = torch.bfloat16 if "bf16" in variant else torch.float32
        print(f"  {'vaecore.fit [' + variant + ']':24s} {a:8.0f} images/s  {a / b:.2f}x  "
              f"{a * flops / peaks[dtype]:5.1%} of {'bf16' if 'bf16' in variant else 'fp32'} peak")
    if args.quality:
        quality(x, variants, args.batch_size, args.quality)


if __name__ == "__main__":
    main()
