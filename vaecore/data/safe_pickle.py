"""Unpickle plain data and numpy arrays only: what the official CIFAR-10 batches hold.

``pickle`` calls whatever importable function a file names while loading (a
``__reduce__`` naming ``os.system`` runs a command), so ``pickle.loads`` on a
planted file runs its code. ``loads`` here uses an ``Unpickler`` whose
``find_class`` admits only the globals numpy arrays are rebuilt from
(``numpy.ndarray``, ``numpy.dtype``, ``_reconstruct``, ``_frombuffer``) and
``_codecs.encode`` (how protocol-2 pickles written by Python 3 store bytes).
Dicts, lists, numbers and bytes need no global. Any other global is refused
before it is imported; every failure raises ``CorruptDataError`` naming the
file.
"""
from __future__ import annotations

import codecs
import io
import pickle

import numpy as np

from vaecore.data.errors import CorruptDataError

try:
    from numpy._core import multiarray as _multiarray, numeric as _numeric
except ImportError:  # numpy < 2
    from numpy.core import multiarray as _multiarray, numeric as _numeric

__all__ = ["ALLOWED_GLOBALS", "loads"]

# Pickles name numpy's internals as numpy.core (numpy 1) or numpy._core (numpy 2).
ALLOWED_GLOBALS = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,
    **{(f"numpy.{core}.multiarray", "_reconstruct"): _multiarray._reconstruct
       for core in ("core", "_core")},
    **{(f"numpy.{core}.numeric", "_frombuffer"): _numeric._frombuffer
       for core in ("core", "_core")},
}


class _ArrayUnpickler(pickle.Unpickler):
    """An ``Unpickler`` that resolves only the globals in ``ALLOWED_GLOBALS``."""

    def find_class(self, module: str, name: str):
        try:
            return ALLOWED_GLOBALS[module, name]
        except KeyError:
            raise pickle.UnpicklingError(
                f"it names the global {module}.{name}, which is refused: only numpy "
                f"arrays, dicts, lists, numbers and bytes are unpickled") from None


def loads(blob: bytes, source) -> object:
    """Unpickle ``blob`` (``encoding="bytes"``, as for Python 2 pickles) from ``source``.

    Returns dicts, lists, numbers, bytes and numpy arrays only. Raises
    ``CorruptDataError`` naming ``source`` for any other global it names (a
    missing class, or code such as ``os.system``) and for damaged data.
    """
    try:
        return _ArrayUnpickler(io.BytesIO(blob), encoding="bytes").load()
    except Exception as err:  # any failure on untrusted bytes means a bad file
        raise CorruptDataError(f"{source}: not unpickled ({type(err).__name__}: {err}); "
                               f"expected a pickled dict of numpy arrays and lists") from err
