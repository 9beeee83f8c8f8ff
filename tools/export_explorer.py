"""Export a small decoder for the book's live latent-space explorer.

    python tools/export_explorer.py [--out book/_static/explorer] [--dtype auto] [NAME ...]

For each model-zoo checkpoint NAME (default: ``mnist-mlp-bernoulli-z2-e30``, the
D = 2 model of the latent-space chapter) it writes ``OUT/NAME/``:

- ``decoder.bin``: the decoder's dense layers, little-endian, layer by layer:
  the weight ``(out, in)`` row by row, then the bias ``(out,)``;
- ``manifest.json``: the layer sizes and activations, the number type, the
  latent plane the page shows, the posterior means ``mu`` of a fixed subset of
  MNIST test images with their digits (the scatter plot), and the codes of the
  first test image of each digit (the ends of the interpolation view).

``book/_static/latent-explorer.js`` reads the two files and decodes in the
page. With ``--dtype auto`` the weights are float16 when the probabilities
they decode stay within ``QUANTIZATION_BUDGET`` of the float32 decoder on a
grid over the plane and on every interpolation path, else float32; the
manifest records the measured difference. ``make book`` runs this first.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "book" / "_static" / "explorer"
MODELS = ["mnist-mlp-bernoulli-z2-e30"]
N_CODES = 3000  # test codes in the scatter plot
EXTENT = 3.0  # the plot shows [-EXTENT, EXTENT]² of the plane (the chapter's sliders)
QUANTIZATION_BUDGET = 1.5 / 255  # largest |E[x|z] float16 − E[x|z] float32| accepted
ACTIVATIONS = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid"}
IGNORED = (nn.Dropout, nn.Flatten, nn.Unflatten, nn.Identity)


def load_model(name: str) -> nn.Module:
    """The trained model NAME from the course's model zoo (the one place that knows its API)."""
    from vaecourse import zoo
    model, _ = zoo.load(name, train_if_missing=False, device="cpu")
    return model.eval()


def dense_layers(decoder: nn.Module, likelihood: str) -> list[tuple[torch.Tensor, torch.Tensor, str]]:
    """``(weight (out, in), bias (out,), activation)`` of each layer of an MLP decoder.

    The last activation turns the decoder's output into E[x | z]: the sigmoid of
    the logits for a Bernoulli decoder, the identity for a Gaussian mean.
    """
    modules = [m for part in (decoder.body, decoder.to_x) for m in part.children()]
    layers: list[list] = []
    for m in modules:
        if isinstance(m, nn.Linear):
            layers.append([m.weight.detach(), m.bias.detach(), "identity"])
        elif type(m) in ACTIVATIONS and layers:
            layers[-1][2] = ACTIVATIONS[type(m)]
        elif not isinstance(m, IGNORED):
            raise ValueError(f"the explorer decodes dense layers only; found {type(m).__name__}")
    if likelihood not in ("bernoulli", "normal"):
        raise ValueError(f"likelihood {likelihood!r}: expected 'bernoulli' or 'normal'")
    layers[-1][2] = "sigmoid" if likelihood == "bernoulli" else "identity"
    return [tuple(layer) for layer in layers]


def decode_numpy(layers, z: np.ndarray) -> np.ndarray:
    """E[x | z] from ``dense_layers`` in float64, as the page computes it: (B, out)."""
    h = np.asarray(z, dtype=np.float64)
    for weight, bias, activation in layers:
        h = h @ np.asarray(weight, dtype=np.float64).T + np.asarray(bias, dtype=np.float64)
        if activation == "relu":
            h = np.maximum(h, 0.0)
        elif activation == "tanh":
            h = np.tanh(h)
        elif activation == "sigmoid":
            h = 1.0 / (1.0 + np.exp(-h))
    return h


def lerp(z0: np.ndarray, z1: np.ndarray, t: float) -> np.ndarray:
    return (1 - t) * z0 + t * z1


def slerp(z0: np.ndarray, z1: np.ndarray, t: float) -> np.ndarray:
    """Equation (slerp) of the chapter, linear where the two codes are parallel."""
    cos = z0 @ z1 / (np.linalg.norm(z0) * np.linalg.norm(z1))
    omega = math.acos(min(1.0, max(-1.0, cos)))
    if math.sin(omega) < 1e-7:
        return lerp(z0, z1, t)
    return (math.sin((1 - t) * omega) * z0 + math.sin(t * omega) * z1) / math.sin(omega)


def plane(mu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Origin (D,) and two orthonormal axes (2, D) of the plane the page shows.

    D = 2: the latent space itself. D > 2: the plane of the codes' first two
    principal directions, through their mean.
    """
    d = mu.shape[1]
    if d == 2:
        return np.zeros(2), np.eye(2)
    if d < 2:
        raise ValueError(f"the explorer needs a latent space of at least 2 dimensions, got {d}")
    origin = mu.mean(0)
    _, _, vt = np.linalg.svd(mu - origin, full_matrices=False)
    return origin, vt[:2]


def quantization_error(layers, dtype, check_points: np.ndarray) -> float:
    """Largest |E[x|z] with the weights stored as ``dtype`` − E[x|z] in float32|."""
    stored = [(w.numpy().astype(dtype), b.numpy().astype(dtype), a) for w, b, a in layers]
    exact = [(w.numpy(), b.numpy(), a) for w, b, a in layers]
    return float(np.abs(decode_numpy(stored, check_points) - decode_numpy(exact, check_points)).max())


def export(decoder: nn.Module, likelihood: str, mu: np.ndarray, labels: np.ndarray,
           endpoints: list[dict], out: Path, *, title: str, dtype: str = "auto",
           image_shape=(28, 28), extent: float = EXTENT, default_endpoints=(0, 1)) -> dict:
    """Write ``out/decoder.bin`` and ``out/manifest.json``; return the manifest.

    ``mu`` (N, D) and ``labels`` (N,) are the scatter plot's codes; each endpoint
    is ``{"index", "label", "z"}``, a test image's code for the interpolation view,
    and ``default_endpoints`` are the two the page starts with (positions in that list).
    """
    layers = dense_layers(decoder, likelihood)
    origin, axes = plane(mu)
    g = np.linspace(-extent - 1, extent + 1, 41)
    grid = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    ends = [np.asarray(e["z"], dtype=np.float64) for e in endpoints]
    paths = [f(a, b, t) for a in ends for b in ends for f in (lerp, slerp)
             for t in np.linspace(0, 1, 9)]
    check_points = np.concatenate([origin + grid @ axes, np.array(paths).reshape(-1, mu.shape[1])])
    errors = {name: quantization_error(layers, name, check_points) for name in ("float16", "float32")}
    if dtype == "auto":
        dtype = "float16" if errors["float16"] <= QUANTIZATION_BUDGET else "float32"
    stored = np.dtype(dtype).newbyteorder("<")  # little-endian, whatever the machine
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "decoder.bin", "wb") as f:
        for weight, bias, _ in layers:
            f.write(weight.numpy().astype(stored).tobytes() + bias.numpy().astype(stored).tobytes())
    points = (mu - origin) @ axes.T
    manifest = {
        "format": 1,
        "title": title,
        "latent_dim": int(mu.shape[1]),
        "image_shape": list(image_shape),
        "weights": {"file": "decoder.bin", "dtype": dtype, "byte_order": "little",
                    "layout": "per layer: weight (out, in) row by row, then bias (out)",
                    "max_abs_error_vs_float32": errors[dtype],
                    "checked_on": f"a 41 x 41 grid over [-{extent + 1:g}, {extent + 1:g}]² of the "
                                  "plane and 9 points of every linear and slerp path"},
        "layers": [{"in": int(w.shape[1]), "out": int(w.shape[0]), "activation": a}
                   for w, _, a in layers],
        "output": "E[x | z]: pixel probabilities (Bernoulli decoder)" if likelihood == "bernoulli"
                  else "E[x | z]: the decoder's mean",
        "plane": {"origin": origin.round(6).tolist(), "axes": axes.round(6).tolist(),
                  "labels": ["z₁", "z₂"] if mu.shape[1] == 2 else ["PC 1", "PC 2"],
                  "extent": extent, "prior_circles": [1, 2, 3] if mu.shape[1] == 2 else []},
        "codes": {"what": f"posterior means μ(x) of {len(mu):,} test images, in plane coordinates",
                  "points": points.round(3).tolist(), "labels": [int(k) for k in labels]},
        "endpoints": [{"index": int(e["index"]), "label": int(e["label"]),
                       "z": np.asarray(e["z"], dtype=np.float64).round(6).tolist()}
                      for e in endpoints],
        "default_endpoints": list(default_endpoints),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, separators=(",", ":")),
                                       encoding="utf-8")
    return manifest


def export_zoo_model(name: str, out: Path, dtype: str = "auto") -> dict:
    """Export the zoo's model NAME with the codes of MNIST test images (binarized as in the chapter)."""
    from vaecore import data, latent
    model = load_model(name)
    test = data.mnist("test")
    x = data.binarize_dynamic(test.x, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        mu = latent.encode_dataset(model, x).mu.double().numpy()
    labels = test.y.numpy()
    subset = torch.randperm(len(mu), generator=torch.Generator().manual_seed(0))[:N_CODES].numpy()
    firsts = [int(np.flatnonzero(labels == k)[0]) for k in range(10)]
    endpoints = [{"index": i, "label": int(labels[i]), "z": mu[i]} for i in firsts]
    return export(model.decoder, model.likelihood.name, mu[subset], labels[subset], endpoints,
                  out / name, title=f"{name}: D = {mu.shape[1]}, MNIST test images", dtype=dtype,
                  image_shape=model.decoder.out_shape[-2:],
                  default_endpoints=(2, 7))  # a 2 and a 7: the chapter's pair


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", default=MODELS, help="model-zoo checkpoints to export")
    parser.add_argument("--out", type=Path, default=OUT, help="folder to write into")
    parser.add_argument("--dtype", choices=["auto", "float16", "float32"], default="auto")
    args = parser.parse_args(argv)
    for name in args.names:
        manifest = export_zoo_model(name, args.out, args.dtype)
        w = manifest["weights"]
        print(f"{args.out / name}: {folder_bytes(args.out / name) / 1e6:.2f} MB, weights {w['dtype']} "
              f"(max |Δ E[x|z]| vs float32 {w['max_abs_error_vs_float32']:.1e})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
