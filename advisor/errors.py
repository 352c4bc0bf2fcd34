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


class DiskFullError(TlregError, OSError):
    """The disk filled up while saving; nothing already saved was overwritten. Exit code 1."""


class TrainingOutOfMemoryError(TlregError, MemoryError):
    """Even one sample at a time does not fit on the device."""


class BackendError(TlregError):
    """The embedding backend cannot run (a Ray cluster that cannot be reached or has nothing to run on)."""


class NoCandidatesError(TlregError):
    """No candidate model could be evaluated: exit code 3."""

    exit_code = 3
