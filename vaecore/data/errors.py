"""The two ways loading a dataset can fail, each with its own exception.

``DataNotFoundError`` (a ``FileNotFoundError``): the files are nowhere on disk
and could not be downloaded; its message lists every place looked and how to
provide the files offline. ``CorruptDataError`` (a ``ValueError``): a file was
found but is damaged (bad gzip, wrong magic number, truncated, wrong md5 after
a download); its message names the file and what was wrong. Neither is ever
swallowed: a loader never returns silently wrong data.
"""
from __future__ import annotations

__all__ = ["DataNotFoundError", "CorruptDataError"]


class DataNotFoundError(FileNotFoundError):
    """A dataset's files are not on disk and could not be downloaded."""


class CorruptDataError(ValueError):
    """A dataset file exists but its content is damaged or not what was expected."""
