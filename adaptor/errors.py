"""Errors a command reports as one line that names the file, key or sample and what to do.

In a module of their own, standard library only, so that the command line catches them without
importing the heavy modules that raise them (every job would otherwise pay for torch's import).
"""

import errno


class ConfigError(ValueError):
    """A config file that is missing, not YAML, or against the schema; the message names it."""


class SettingsError(ValueError):
    """A dataset setting that the reader does not know or cannot use; the message names the key."""


class ManifestError(ValueError):
    """Raised for input that cannot be read; the message names the file and the row."""


class SampleError(ManifestError):
    """A sample that cannot be embedded while ``on_error`` is ``fail``; names the sample and file."""


class ImageError(ValueError):
    """An image that cannot be decoded; the message names the file."""


class CacheMismatch(ValueError):
    """A cache was built from different inputs than the ones now asked for, or is unfinished."""


class CacheDamaged(ValueError):
    """Cache files deleted or corrupted after they were written; the message names files and rows."""


class WeightsNotFound(FileNotFoundError):
    """The configured weights cannot be found; the message says which encoder and how to fix it."""


REPORTED = (
    FileNotFoundError,
    ConfigError,
    SettingsError,
    ManifestError,
    ImageError,
    CacheMismatch,
    CacheDamaged,
    WeightsNotFound,
)

# Writes that fail because of the storage, not the data: a full disk or quota, a file-size limit,
# a read-only file system.
STORAGE_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS}


def storage_problem(error: OSError, outputs: list[str]) -> str | None:
    """One sentence for a write the storage refused, or None for any other OS error. ``outputs``:
    the files the command writes, named when the error does not say which one failed."""
    if error.errno not in STORAGE_ERRNOS:
        return None
    where = error.filename or f"its outputs ({', '.join(outputs) or 'unknown'})"
    return (
        f"cannot write {where}: {error.strerror} (errno {error.errno}). Free space, raise the quota or "
        "file-size limit, or point the results elsewhere, then rerun: the job's partial outputs are "
        "removed, and finished jobs are kept."
    )
