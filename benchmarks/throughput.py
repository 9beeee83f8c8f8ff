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
Prints images per second for every run and the ratio of the medians.

    python benchmarks/throughput.py [--repeats 2] [--batch-size 128] [--threads N] [--limit N]
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
from vaecore.elbo import negative_elbo
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


def epoch_vaecore(x: torch.Tensor, batch_size: int, seed: int) -> tuple[float, float]:
    """One epoch of ``fit``; returns (images per second, mean loss)."""
    model = example_vae()
    start = time.perf_counter()
    history = fit(model, negative_elbo, x, epochs=1, batch_size=batch_size, lr=1e-3,
                  seed=seed, progress=False)
    return len(x) / (time.perf_counter() - start), history.train["loss"][-1]


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
    warm = slice(0, min(len(x), 2048))  # first-call costs, not timed
    epoch_vaecore(x[warm], args.batch_size, 0)
    epoch_reference(PerItemImages(raw.images[warm], raw.labels[warm]), args.batch_size, 0)
    ours, ref = [], []
    for r in range(args.repeats):
        ours.append(epoch_vaecore(x, args.batch_size, seed=r))
        ref.append(epoch_reference(raw, args.batch_size, seed=r))
        print(f"run {r + 1}: vaecore.fit {ours[-1][0]:8.0f} images/s (loss {ours[-1][1]:.2f})"
              f" | DataLoader {ref[-1][0]:8.0f} images/s (loss {ref[-1][1]:.2f})")
    a = statistics.median(s for s, _ in ours)
    b = statistics.median(s for s, _ in ref)
    print(f"median over {args.repeats} run(s): vaecore.fit {a:.0f} images/s, "
          f"DataLoader {b:.0f} images/s, ratio vaecore/reference {a / b:.2f}x")


if __name__ == "__main__":
    main()
