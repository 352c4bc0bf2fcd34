"""What a run compares: the candidate models (registry entries matching the data and the filters) and
the estimators that score them."""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatch

from tlreg.registry import ModelRecord, Registry
from tlreg.registry.availability import summary as unavailable_summary
from tlreg.registry.errors import BadInputError, UnknownModelError

from . import estimators as est
from .errors import NoCandidatesError
from .rank import DEFAULT_ESTIMATORS, to_compute


def select_candidates(
    registry: Registry,
    *,
    modality: str,
    models: Sequence[str] | None = None,
    tags: Sequence[str] = (),
    max_params: int | None = None,
) -> list[ModelRecord]:
    """Registered models of the data's modality that match the filters.

    ``models`` holds refs or globs ('timm:convnext*', 'pkg:*'); a plain ref that is not registered is
    an error with suggestions, rather than silently evaluating nothing.
    """
    pool = registry.list(modality=modality, tags=tags, max_params=max_params)
    if not models:
        return pool
    chosen: dict[str, ModelRecord] = {}
    for pattern in models:
        if any(c in pattern for c in "*?["):
            hits = [r for r in pool if fnmatch(r.ref, pattern) or fnmatch(r.ref.partition(":")[2], pattern)]
        else:
            record = registry.get(pattern)
            hits = [r for r in pool if r.ref == record.ref]
            if not hits and record.modality != modality:
                raise UnknownModelError(pattern, what=f"a {modality} model (it is a {record.modality} model)")
        chosen.update({r.ref: r for r in hits})
    return [chosen[k] for k in sorted(chosen)]


def require_candidates(candidates: Sequence[ModelRecord], *, modality: str, filtered: bool) -> None:
    """No candidate at all is an error (exit 3) that says how to register some."""
    if not candidates:
        raise NoCandidatesError(
            f"No registered {modality} model matches{' the filters' if filtered else ''}.",
            hint="Register some: tlreg registry import bundled (offline), tlreg registry import catalog, "
            "or tlreg registry add REF.",
        )


def loadable(
    registry: Registry, candidates: list[ModelRecord], *, include: bool, warns: list[str]
) -> tuple[list[ModelRecord], list[dict[str, str]]]:
    """The candidates that can be loaded now (all of them with ``include``), and the others as
    skipped rows; the count and the reasons become one warning, instead of one failure per model."""
    if include:
        return candidates, []
    keep, left_out = registry.split_available(candidates)
    if not left_out:
        return candidates, []
    line = unavailable_summary(left_out, len(candidates))
    if not keep:
        raise NoCandidatesError(
            f"None of the candidate models can be loaded now: {line.partition(': ')[2]}.",
            hint="Connect once so they download, register local ones (tlreg registry import bundled), "
            "or pass --include-unavailable to try them anyway.",
        )
    warns.append(f"{line}; --include-unavailable lists and tries them.")
    return keep, [{"ref": u.ref, "reason": f"cannot be loaded now: {u.reason}"} for u in left_out]


def choose_estimators(names: Sequence[str] | None, task: str) -> list[str]:
    """The estimators named (or the task's defaults), each checked to score ``task`` targets."""
    chosen = list(names) if names else list(DEFAULT_ESTIMATORS[task])
    for name in dict.fromkeys([*chosen, *to_compute(chosen)]):
        info = est.get(name)
        if task not in info.tasks:
            raise BadInputError(
                f"Estimator {name!r} does not score {task} targets.",
                hint=f"Ones that do: {', '.join(i.name for i in est.available(task=task))}.",
            )
    return chosen
