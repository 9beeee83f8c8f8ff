r"""Sample-quality metrics on feature vectors: the Fréchet distance and k-NN coverage.

Both compare a set of *real* and a set of *generated* feature vectors, each
``(N, F)`` (one row per image, e.g. the penultimate layer of a classifier).

- :func:`fid`: the Fréchet distance between the Gaussians fitted to the two
  sets (the "Fréchet Inception Distance" when the features come from
  Inception-v3; here any feature extractor).
- :func:`precision_recall`: the k-nearest-neighbour precision and recall of
  Kynkäänniemi et al. (2019): how many generated points fall inside the real
  manifold (sharpness) and how many real points fall inside the generated one
  (coverage).
- :func:`nearest_distance`: the Euclidean distance of each query to its
  nearest reference point (a memorisation check on pixels or features).

Everything is computed in float64.
"""
from __future__ import annotations

import torch

__all__ = ["gaussian_stats", "sqrtm_psd", "frechet_distance", "fid", "precision_recall",
           "nearest_distance"]


def _check_features(name: str, x, min_rows: int = 2) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 2:
        raise ValueError(f"{name}: expected features of shape (N, F), got {tuple(x.shape)}")
    if x.shape[0] < min_rows or x.shape[1] < 1:
        raise ValueError(f"{name}: expected at least {min_rows} rows and one feature, "
                         f"got shape {tuple(x.shape)}")
    x = x.detach().double()
    if not torch.isfinite(x).all():
        raise ValueError(f"{name}: contains NaN or inf")
    return x


def _check_pair(real, fake, min_rows: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    real = _check_features("real_features", real, min_rows)
    fake = _check_features("fake_features", fake, min_rows)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"real_features and fake_features: expected the same number of "
                         f"features, got {real.shape[1]} and {fake.shape[1]}")
    return real, fake


def gaussian_stats(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean ``(F,)`` and unbiased covariance ``(F, F)`` (divisor N − 1) of ``(N, F)`` features, float64."""
    x = _check_features("features", features)
    mu = x.mean(0)
    centred = x - mu
    return mu, centred.T @ centred / (len(x) - 1)


def sqrtm_psd(a: torch.Tensor) -> torch.Tensor:
    r"""The symmetric square root of a symmetric positive semi-definite matrix ``(F, F)``.

    From the eigendecomposition :math:`A = V \Lambda V^\top` (``torch.linalg.eigh``),
    :math:`A^{1/2} = V \Lambda^{1/2} V^\top`; eigenvalues that rounding made
    slightly negative are set to 0. Float64.
    """
    a = a.double()
    a = 0.5 * (a + a.T)
    eigenvalues, v = torch.linalg.eigh(a)
    return (v * eigenvalues.clamp(min=0).sqrt()) @ v.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> torch.Tensor:
    r"""The squared Fréchet (2-Wasserstein) distance between :math:`\mathcal N(\mu_1, \Sigma_1)` and :math:`\mathcal N(\mu_2, \Sigma_2)`.

    .. math::
        d^2 = \lVert \mu_1 - \mu_2 \rVert^2 + \operatorname{tr}\Big(\Sigma_1 + \Sigma_2
        - 2\big(\Sigma_1^{1/2} \Sigma_2 \Sigma_1^{1/2}\big)^{1/2}\Big)

    Equation (fid). The trace of the square root is the sum of the square
    roots of the eigenvalues of the symmetric matrix
    :math:`\Sigma_1^{1/2}\Sigma_2\Sigma_1^{1/2}` (``eigvalsh``; it has the same
    eigenvalues as :math:`\Sigma_1\Sigma_2`), so no complex numbers appear.
    Returns a float64 scalar tensor, clamped at 0 against rounding.
    """
    mu1, mu2 = torch.as_tensor(mu1).double(), torch.as_tensor(mu2).double()
    sigma1, sigma2 = torch.as_tensor(sigma1).double(), torch.as_tensor(sigma2).double()
    f = mu1.shape[-1] if mu1.dim() == 1 else -1
    if (mu1.dim() != 1 or mu2.shape != (f,) or sigma1.shape != (f, f)
            or sigma2.shape != (f, f)):
        raise ValueError(f"expected means (F,) and covariances (F, F) of one F, got "
                         f"{tuple(mu1.shape)}, {tuple(sigma1.shape)}, {tuple(mu2.shape)}, "
                         f"{tuple(sigma2.shape)}")
    root1 = sqrtm_psd(sigma1)
    middle = root1 @ sigma2.double() @ root1
    middle = 0.5 * (middle + middle.T)
    trace_root = torch.linalg.eigvalsh(middle).clamp(min=0).sqrt().sum()
    d2 = ((mu1 - mu2) ** 2).sum() + sigma1.trace() + sigma2.trace() - 2 * trace_root
    return d2.clamp(min=0)


def fid(real_features: torch.Tensor, fake_features: torch.Tensor) -> torch.Tensor:
    r"""The Fréchet distance, Equation (fid), between Gaussians fitted to two feature sets.

    ``real_features`` ``(N, F)`` and ``fake_features`` ``(M, F)`` with
    :math:`N, M \ge 2`: each set gets its mean and unbiased covariance
    (:func:`gaussian_stats`), then :func:`frechet_distance`. Symmetric in its
    arguments; 0 for two identical sets. Raises ``ValueError`` for tensors
    that are not 2-D, have fewer than two rows, different feature sizes, or
    non-finite values. Returns a float64 scalar tensor. The value depends on
    the feature extractor and on N and M (it is biased upwards for small
    sets), so compare FIDs only for one extractor and one sample size.
    """
    real, fake = _check_pair(real_features, fake_features)
    return frechet_distance(*gaussian_stats(real), *gaussian_stats(fake))


def _kth_neighbour_radius(x: torch.Tensor, k: int, batch_size: int) -> torch.Tensor:
    """Distance of each row of ``x`` to its k-th nearest other row, ``(N,)``."""
    radii = []
    for i in range(0, len(x), batch_size):
        d = torch.cdist(x[i:i + batch_size], x)
        radii.append(d.kthvalue(k + 1, dim=1).values)  # the 1st is the point itself (0)
    return torch.cat(radii)


def _inside(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor,
            batch_size: int) -> torch.Tensor:
    """``(N,)`` bool: each point lies in at least one ball (centre, radius)."""
    out = []
    for i in range(0, len(points), batch_size):
        d = torch.cdist(points[i:i + batch_size], centres)
        out.append((d <= radii).any(1))
    return torch.cat(out)


def precision_recall(real_features: torch.Tensor, fake_features: torch.Tensor, k: int = 3,
                     batch_size: int = 1000) -> tuple[float, float]:
    r"""k-NN precision and recall of generated features (Kynkäänniemi et al., 2019).

    The real manifold is the union of balls around each real point with radius
    its distance to its ``k``-th nearest real neighbour; likewise for the fake
    manifold. *Precision*: the share of fake points inside the real manifold
    (are the samples realistic?). *Recall*: the share of real points inside the
    fake manifold (is the data covered?). Both in ``[0, 1]``; float64
    Euclidean distances. Needs more than ``k`` rows in each set.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k: expected a positive int, got {k!r}")
    real, fake = _check_pair(real_features, fake_features, min_rows=k + 1)
    r_real = _kth_neighbour_radius(real, k, batch_size)
    r_fake = _kth_neighbour_radius(fake, k, batch_size)
    precision = _inside(fake, real, r_real, batch_size).double().mean().item()
    recall = _inside(real, fake, r_fake, batch_size).double().mean().item()
    return precision, recall


def nearest_distance(queries: torch.Tensor, reference: torch.Tensor,
                     batch_size: int = 250) -> tuple[torch.Tensor, torch.Tensor]:
    """Distance of each query to its nearest reference row, and that row's index.

    ``queries`` ``(N, ...)`` and ``reference`` ``(M, ...)`` are flattened to
    vectors (e.g. images to pixels). Returns ``(distance (N,), index (N,))``;
    distances in float32 by ``torch.cdist``, in batches of ``batch_size`` queries.
    """
    q = queries.reshape(len(queries), -1).float()
    r = reference.reshape(len(reference), -1).float()
    if q.shape[1] != r.shape[1]:
        raise ValueError(f"queries and reference: expected the same size per row, got "
                         f"{q.shape[1]} and {r.shape[1]}")
    dist, idx = [], []
    for i in range(0, len(q), batch_size):
        d, j = torch.cdist(q[i:i + batch_size], r).min(1)
        dist.append(d)
        idx.append(j)
    return torch.cat(dist), torch.cat(idx)
