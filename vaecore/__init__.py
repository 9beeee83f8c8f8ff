"""vaecore: the small library behind the variational-autoencoder course.

Every function here is derived in a chapter of the book; its docstring names
the equation label it implements. Per-example quantities have shape ``(B,)``,
summed over event dimensions (pixels, latent dimensions); only training
objectives average over the batch.

This is the library layer: likelihoods, KLs, bounds, the posterior, priors,
flows, MMD, the total-correlation split of the KL, metrics (sample quality,
disentanglement), networks (masked-convolution PixelCNNs among them), vector
quantisation, the trainer, checkpoint I/O and data. It names
no chapter, report or checkpoint and imports nothing from the course layer
that builds the chapters' recipes, exercise checks and model zoo on top of it.
"""
__version__ = "0.2.0"
