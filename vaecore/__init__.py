"""vaecore: the small library behind the variational-autoencoder course.

Every function here is derived in a chapter of the book; its docstring names
the equation label it implements. Per-example quantities have shape ``(B,)``,
summed over event dimensions (pixels, latent dimensions); only training
objectives average over the batch.
"""
__version__ = "0.2.0"
