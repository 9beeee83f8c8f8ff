"""Checkpoints: a model's ``state_dict`` with its config, metrics and history.

A checkpoint is a plain dict saved with ``torch.save`` and read back with
``torch.load(..., weights_only=True)``: tensors and JSON-like python values
only, never a pickled module. Chapters whose training takes longer than a
minute use ``load_or_train``: the checkpoint exists → load it, else train once
and save it.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, NamedTuple

try:  # POSIX: a writer locks its temporary file, so no cleaner takes it for a dead one
    import fcntl
except ImportError:  # Windows refuses to delete a file that is open anyway
    fcntl = None

import torch

import vaecore
from vaecore.history import History

__all__ = ["Checkpoint", "save_checkpoint", "load_checkpoint", "load_or_train", "file_sha256"]

_KEYS = ("state_dict", "config", "metrics", "history", "vaecore_version")


class Checkpoint(NamedTuple):
    """What a checkpoint file holds; ``history`` is a History or None."""
    state_dict: dict[str, torch.Tensor]
    config: dict
    metrics: dict
    history: History | None
    vaecore_version: str


def _check_json_like(name: str, value) -> None:
    """Raise ``ValueError`` unless ``value`` is made of dicts, lists and scalars."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_json_like(f"{name}[{i}]", v)
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError(f"{name}: expected string keys, got {k!r}")
            _check_json_like(f"{name}[{k!r}]", v)
        return
    raise ValueError(f"{name}: expected plain JSON-like values (dict, list, str, "
                     f"int, float, bool, None), got {type(value).__name__}")


STALE_AFTER_S = 60.0  # a temporary file untouched this long, and unlocked, is a dead save's


def _remove_stale_temporaries(path: Path) -> None:
    """Delete the temporary files that killed saves of ``path`` left in its folder.

    Only ``.NAME.XXXXXXXX.tmp`` files of this very ``path`` are considered, and
    only those that no live writer holds locked and nobody has modified for
    ``STALE_AFTER_S`` seconds: a save that is still running is never touched.
    """
    pattern = re.compile(rf"\.{re.escape(path.name)}\.[a-z0-9_]{{8}}\.tmp")
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):  # glob is a prefilter only
        if not pattern.fullmatch(tmp.name):
            continue
        try:
            if time.time() - tmp.stat().st_mtime < STALE_AFTER_S:
                continue
            if fcntl is None:  # Windows: unlink fails while a live writer has it open
                tmp.unlink()
                continue
            with open(tmp, "rb") as f:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)  # OSError: a live writer
                tmp.unlink()
        except OSError:  # locked, renamed by its writer meanwhile, or not ours to delete
            continue


@contextmanager
def _atomic_file(path) -> Iterator[BinaryIO]:
    """Yield a binary file that replaces ``path`` only once it is complete.

    The file is a temporary one in ``path``'s folder (``.NAME.XXXXXXXX.tmp``,
    locked while it is written), flushed to disk and renamed over ``path``; an
    error or a kill leaves ``path`` as it was. Temporary files that earlier,
    killed writes of ``path`` left behind are removed first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            if fcntl is not None:
                fcntl.flock(f, fcntl.LOCK_EX)  # released when the file is closed or we die
            os.chmod(tmp, 0o644)  # mkstemp makes it private; a checkpoint is shared
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def save_checkpoint(path, model: torch.nn.Module, *, config: dict, metrics: dict,
                    history: History | None = None) -> None:
    """Write ``model``'s weights with ``config``, ``metrics`` and ``history`` to ``path``.

    The write is atomic: a temporary file in the same folder is renamed over
    ``path`` only once it is complete, so an error leaves no partial file and
    any older checkpoint intact. Temporary files left by earlier saves of
    ``path`` that were killed (unlocked, untouched for a minute) are removed.
    """
    _check_json_like("config", config)
    _check_json_like("metrics", metrics)
    if history is not None and not isinstance(history, History):
        raise ValueError(f"history: expected a History or None, got {type(history).__name__}")
    payload = {"state_dict": model.state_dict(), "config": config, "metrics": metrics,
               "history": None if history is None else history.to_dict(),
               "vaecore_version": vaecore.__version__}
    with _atomic_file(path) as f:
        torch.save(payload, f)


def _load_weights(model: torch.nn.Module, state_dict: dict, path: Path) -> None:
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as e:
        raise ValueError(f"{path} does not fit {type(model).__name__}: {e}") from e


def load_checkpoint(path, model: torch.nn.Module | None = None,
                    map_location="cpu") -> Checkpoint:
    """Read a checkpoint with ``weights_only=True``; load its weights into ``model`` if given.

    Returns ``Checkpoint(state_dict, config, metrics, history, vaecore_version)``.
    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` for a
    file that is not a vaecore checkpoint or does not fit ``model`` (strict).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file at {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        raise ValueError(f"{path} is not a readable checkpoint (corrupt or truncated?): "
                         f"{e}") from e
    if not isinstance(payload, dict) or not set(_KEYS) <= payload.keys():
        raise ValueError(f"{path} is not a vaecore checkpoint: expected a dict with keys {_KEYS}")
    if model is not None:
        _load_weights(model, payload["state_dict"], path)
    history = payload["history"]
    return Checkpoint(payload["state_dict"], payload["config"], payload["metrics"],
                      None if history is None else History.from_dict(history),
                      payload["vaecore_version"])


def load_or_train(name: str, train_fn: Callable[[torch.nn.Module], History], *,
                  model: torch.nn.Module, config: dict | None = None,
                  directory) -> Checkpoint:
    """Checkpoint exists → load it into ``model``; else train once, save, return it.

    The file is ``directory / f"{name}.pt"``. Training calls
    ``history = train_fn(model)``; the metrics saved are the last epoch's
    ``{"train": ..., "val": ...}``. If ``config`` is given and differs from the
    stored one, ``ValueError`` says the checkpoint is stale (delete it to retrain).
    """
    if not isinstance(name, str) or not name or os.sep in name or "/" in name:
        raise ValueError(f"name: expected a file stem without folders, got {name!r}")
    _check_json_like("config", config)  # fail before training, not after
    path = Path(directory) / f"{name}.pt"
    if path.is_file():
        stored = load_checkpoint(path)
        if config is not None and stored.config != config:
            raise ValueError(f"{path} was trained with config {stored.config}, expected "
                             f"{config}; delete the file to retrain")
        _load_weights(model, stored.state_dict, path)
        return stored
    history = train_fn(model)
    if not isinstance(history, History):
        raise ValueError("train_fn: expected it to return a History, got "
                         f"{type(history).__name__}")
    metrics = {"train": history.last("train"), "val": history.last("val")}
    save_checkpoint(path, model, config={} if config is None else config,
                    metrics=metrics, history=history)
    return load_checkpoint(path)


def file_sha256(path) -> str:
    """The SHA-256 hex digest of the file at ``path``."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
