"""Errors of the advisor: bad datasets, estimators that cannot score, runs with no candidate.

They extend the registry's hierarchy (:class:`tlreg.registry.errors.TlregError`), so the CLI
handles every tlreg error in one place, and subclass the builtins a caller would catch.
"""

from __future__ import annotations

from tlreg.registry.errors import BadInputError, TlregError


class DatasetError(BadInputError):
    """A dataset that cannot be used as given: the message names the file or column and the fix."""


class EstimatorError(BadInputError):
    """Features or labels an estimator cannot score (one class, NaN, fewer samples than classes, ...)."""


class ClassMismatchError(DatasetError):
    """Fine-tuning data whose classes are not the ones the run ranked the models on."""


class NoBlocksError(BadInputError):
    """``--mode partial`` on a model whose block sequence cannot be found."""


class StorageError(TlregError, OSError):
    """A file tlreg must write or read cannot be (a full disk, another user's folder). It is no one
    model's fault, so a run stops on it instead of skipping candidate after candidate. Exit code 1."""


class DiskFullError(StorageError):
    """The disk filled up while saving; nothing already saved was overwritten. Exit code 1."""


class CacheAccessError(StorageError, PermissionError):
    """A feature cache entry or folder this user may not read or write (a cache shared by several
    users without group permissions); reported as such, never taken for a corrupt entry."""


class TrainingOutOfMemoryError(TlregError, MemoryError):
    """Even one sample at a time does not fit on the device."""


class BackendError(TlregError):
    """The embedding backend cannot run (a Ray cluster that cannot be reached or has nothing to run on)."""


class NoCandidatesError(TlregError):
    """No candidate model could be evaluated: exit code 3."""

    exit_code = 3


class TrackingError(TlregError, ConnectionError):
    """An experiment tracker (MLflow) that cannot be reached, or that refuses what tlreg logs;
    nothing half-logged is left in it. Exit code 1."""
