"""The one small mechanism that names estimators: :class:`EstimatorInfo`, :func:`register`, lookup.

Built-in estimators register through :func:`register` exactly as a third party would. Third-party
packages are found through the entry-point group ``tlreg.estimators``; an entry point's value is a
module (importing it runs its ``@register`` decorators) or a callable taking no argument that
registers. Plugins are loaded lazily, on the first lookup, so ``import tlreg.advisor.estimators``
stays cheap and a broken plugin costs a warning, not the package.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib.metadata
import inspect
import math
import types
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray
from tlreg.advisor.errors import EstimatorError

#: What an estimator can score: labelled classes, real-valued targets, or features alone.
TASKS = frozenset({"classification", "regression", "unlabelled"})
ENTRY_POINT_GROUP = "tlreg.estimators"

#: ``fn(features, labels, *, source_probs=None, **options) -> float``; higher means better transfer.
EstimatorFn = Callable[..., float]
#: model -> {component -> value} in, model -> combined score out (see :func:`pool_normalize`).
PoolNormalizer = Callable[..., dict[str, float]]
#: The score of a subset of the rows an estimator was prepared on: row indices in, the score out.
RowScorer = Callable[[NDArray[np.intp]], float]
#: ``prepare(features, labels, *, source_probs=None, **options) -> RowScorer`` (see :func:`prepared`).
Preparer = Callable[..., RowScorer]
F = TypeVar("F", bound=EstimatorFn)


class EstimatorOverwriteWarning(UserWarning):
    """A registration replaced an estimator of the same name (timm warns the same way)."""


class EstimatorPluginWarning(UserWarning):
    """An entry point of the ``tlreg.estimators`` group failed to load; it was skipped."""


@dataclass(frozen=True)
class EstimatorInfo:
    """What a caller needs to know to pick and call an estimator, without calling it.

    ``tasks`` is a subset of :data:`TASKS`; ``uses_features`` is False for scores computed from the
    source model's probabilities alone (LEEP, NCE); ``components`` names the parts of a score whose
    paper normalises them across the pool of candidate models (``pool_normalizer`` does that);
    ``prepare`` is the estimator's expensive, sample-wide step done once, for callers that score many
    subsets of one sample (the resampling of :mod:`tlreg.advisor.confidence`; see :func:`prepared`).
    """

    name: str
    fn: EstimatorFn = field(repr=False, compare=False)
    paper: str
    summary: str
    needs_labels: bool = True
    needs_source_probs: bool = False
    uses_features: bool = True
    tasks: frozenset[str] = frozenset({"classification"})
    cost: str = ""
    higher_is_better: bool = True
    components: tuple[str, ...] = ()
    pool_normalizer: PoolNormalizer | None = field(default=None, repr=False, compare=False)
    #: the largest value the score can take with C classes (None: unbounded); two models both at it
    #: are told apart by nothing but rounding, so comparisons there decide nothing
    ceiling: Callable[[int], float] | None = field(default=None, repr=False, compare=False)
    #: fit once on the whole sample, score subsets of its rows cheaply (None: every subset is scored
    #: from scratch); on all rows it must give the estimator's own score
    prepare: Preparer | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tasks", frozenset(self.tasks))
        object.__setattr__(self, "components", tuple(self.components))
        if not self.name or not self.name.replace("_", "").replace("-", "").isalnum():
            raise ValueError(
                f"Estimator name {self.name!r} must be a non-empty identifier such as 'my_score'."
            )
        if not self.tasks or not self.tasks <= TASKS:
            raise ValueError(
                f"Estimator {self.name!r}: tasks {sorted(self.tasks)} must be a non-empty subset "
                f"of {sorted(TASKS)}."
            )
        if not self.higher_is_better:
            raise ValueError(
                f"Estimator {self.name!r}: tlreg ranks by 'higher is better'; register the negated "
                "score instead."
            )
        if not callable(self.fn):
            raise ValueError(f"Estimator {self.name!r}: fn must be callable.")
        if self.prepare is not None and not callable(self.prepare):
            raise ValueError(f"Estimator {self.name!r}: prepare must be callable.")

    @property
    def needs(self) -> tuple[str, ...]:
        """The inputs a call must provide, in the order of the signature."""
        return tuple(
            need
            for need, wanted in (
                ("features", self.uses_features),
                ("labels", self.needs_labels),
                ("source_probs", self.needs_source_probs),
            )
            if wanted
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready metadata (the function itself is left out)."""
        return {
            "name": self.name,
            "paper": self.paper,
            "summary": self.summary,
            "needs": list(self.needs),
            "needs_labels": self.needs_labels,
            "needs_source_probs": self.needs_source_probs,
            "uses_features": self.uses_features,
            "tasks": sorted(self.tasks),
            "cost": self.cost,
            "higher_is_better": self.higher_is_better,
            "components": list(self.components),
            "pool_normalization": self.pool_normalizer is not None,
            "bounded_above": self.ceiling is not None,
            "prepared_resampling": self.prepare is not None,
        }

    def at_ceiling(self, value: float, n_classes: int, *, tolerance: float = 0.02) -> bool:
        """Whether ``value`` lies within ``tolerance`` (relative, at least an absolute one) of the score's
        ceiling for ``n_classes`` classes."""
        if self.ceiling is None or not math.isfinite(value):
            return False
        top = float(self.ceiling(n_classes))
        return value >= top - tolerance * max(1.0, abs(top))


_REGISTRY: dict[str, EstimatorInfo] = {}
_plugins_loaded = False


def add(info: EstimatorInfo) -> EstimatorInfo:
    """Register ``info`` under ``info.name``; replacing another estimator warns, as timm does."""
    previous = _REGISTRY.get(info.name)
    if previous is not None and previous.fn is not info.fn:
        warnings.warn(
            f"Estimator {info.name!r} is registered again: the new registration replaces the old one.",
            EstimatorOverwriteWarning,
            stacklevel=3,
        )
    _REGISTRY[info.name] = info
    return info


def register(
    name: str,
    *,
    paper: str,
    summary: str | None = None,
    needs_labels: bool = True,
    needs_source_probs: bool = False,
    uses_features: bool = True,
    tasks: Iterable[str] = ("classification",),
    cost: str = "",
    components: Iterable[str] = (),
    pool_normalizer: PoolNormalizer | None = None,
    ceiling: Callable[[int], float] | None = None,
    prepare: Preparer | None = None,
) -> Callable[[F], F]:
    """Decorator registering ``fn`` as estimator ``name`` (``summary``: the docstring's first line)."""

    def decorator(fn: F) -> F:
        doc_line = (inspect.getdoc(fn) or "").partition("\n")[0]
        add(
            EstimatorInfo(
                name=name,
                fn=fn,
                paper=paper,
                summary=summary or doc_line,
                needs_labels=needs_labels,
                needs_source_probs=needs_source_probs,
                uses_features=uses_features,
                tasks=frozenset(tasks),
                cost=cost,
                components=tuple(components),
                pool_normalizer=pool_normalizer,
                ceiling=ceiling,
                prepare=prepare,
            )
        )
        return fn

    return decorator


def unregister(name: str) -> EstimatorInfo:
    """Remove estimator ``name`` and return its info (for plugins replacing themselves, and tests)."""
    try:
        return _REGISTRY.pop(name)
    except KeyError:
        raise _unknown(name) from None


def _entry_points() -> Iterable[importlib.metadata.EntryPoint]:
    return importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)


def load_plugins(*, force: bool = False) -> list[str]:
    """Import the ``tlreg.estimators`` entry points once (again with ``force``); return the names added."""
    global _plugins_loaded
    if _plugins_loaded and not force:
        return []
    _plugins_loaded = True
    before = set(_REGISTRY)
    for entry_point in _entry_points():
        try:
            obj = entry_point.load()
            already = any(info.fn is obj for info in _REGISTRY.values())  # a decorated estimator itself
            if not isinstance(obj, types.ModuleType) and not already:
                if not callable(obj):
                    raise TypeError(f"{entry_point.value} is neither a module nor a callable")
                obj()
        except Exception as error:  # a plugin must not break tlreg: report it and go on
            warnings.warn(
                f"Estimator plugin {entry_point.name!r} ({entry_point.value}) failed to load and was "
                f"skipped: {type(error).__name__}: {error}",
                EstimatorPluginWarning,
                stacklevel=2,
            )
    return sorted(set(_REGISTRY) - before)


def _unknown(name: str) -> EstimatorError:
    close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.5)
    hint = f"Did you mean: {', '.join(close)}?" if close else "See `tlreg estimators list`."
    return EstimatorError(f"Unknown estimator {name!r}.", hint=hint)


def get(name: str) -> EstimatorInfo:
    """The :class:`EstimatorInfo` registered as ``name`` (plugins included)."""
    load_plugins()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise _unknown(name) from None


def available(
    pattern: str | None = None, *, task: str | None = None, needs_source_probs: bool | None = None
) -> list[EstimatorInfo]:
    """Registered estimators sorted by name, optionally filtered by an fnmatch ``pattern`` ('etran*'),
    a supported ``task``, or whether they need the source model's probabilities."""
    load_plugins()
    infos = sorted(_REGISTRY.values(), key=lambda info: info.name)
    if pattern is not None:
        infos = [info for info in infos if fnmatch.fnmatchcase(info.name, pattern)]
    if task is not None:
        infos = [info for info in infos if task in info.tasks]
    if needs_source_probs is not None:
        infos = [info for info in infos if info.needs_source_probs == needs_source_probs]
    return infos


def score(name: str, features: Any, labels: Any = None, *, source_probs: Any = None, **options: Any) -> float:
    """Score ``features`` (and ``labels``) with estimator ``name``; higher means better transfer.

    ``task`` ("classification" by default, "regression", "unlabelled") is checked against the
    estimator's metadata here and passed on only when it is not the default, so an estimator that
    supports classification alone need not accept it.
    """
    info = _for_task(name, options)
    return _finite(name, float(info.fn(features, labels, source_probs=source_probs, **options)))


def prepared(
    name: str, features: Any, labels: Any = None, *, source_probs: Any = None, **options: Any
) -> RowScorer:
    """Estimator ``name`` made ready to score many subsets of one sample: ``scorer(rows)`` is the
    score of ``features[rows]`` (and their labels and probabilities).

    An estimator registered with a ``prepare`` step does its expensive, sample-wide work once here
    (N-LEEP fits its Gaussian mixture) and each subset then costs little; for the others, each call
    scores the subset from scratch, exactly as :func:`score` would. The checks of :func:`score` (task,
    a finite value) apply to both; errors of the preparation are raised here, before any subset.
    """
    info = _for_task(name, options)
    if info.prepare is not None:
        rows_scorer = info.prepare(features, labels, source_probs=source_probs, **options)
        return lambda rows: _finite(name, float(rows_scorer(rows)))
    feats, targets, probs = (None if a is None else np.asarray(a) for a in (features, labels, source_probs))

    def from_scratch(rows: NDArray[np.intp]) -> float:
        f, y, p = (None if a is None else a[rows] for a in (feats, targets, probs))
        return _finite(name, float(info.fn(f, y, source_probs=p, **options)))

    return from_scratch


def _for_task(name: str, options: dict[str, Any]) -> EstimatorInfo:
    """Estimator ``name``'s info once ``options["task"]`` is checked against what it supports (and
    dropped from ``options`` when it is the default, so a classification-only estimator need not take it)."""
    info = get(name)
    task = options.pop("task", "classification")
    if task not in TASKS:
        raise EstimatorError(f"Unknown task {task!r}: use one of {', '.join(sorted(TASKS))}.")
    if task not in info.tasks:
        able = [other.name for other in available(task=task)]
        raise EstimatorError(
            f"Estimator {name!r} does not support task {task!r} (it supports "
            f"{', '.join(sorted(info.tasks))}); estimators that do: {', '.join(able) or 'none'}."
        )
    if task != "classification":
        options["task"] = task
    return info


def _finite(name: str, value: float) -> float:
    if not math.isfinite(value):
        raise EstimatorError(
            f"Estimator {name!r} returned {value} on these inputs; check the features for "
            "near-duplicate or degenerate columns."
        )
    return value


def pool_normalize(
    name: str, component_scores: Mapping[str, Mapping[str, float]], **options: Any
) -> dict[str, float]:
    """Combine per-model component scores the way estimator ``name``'s paper does across a model pool.

    ``component_scores`` maps model -> {component -> value} (component names as in
    ``get(name).components``); the result maps model -> combined score, higher is better.
    """
    info = get(name)
    if info.pool_normalizer is None:
        raise EstimatorError(
            f"Estimator {name!r} has no pool normalisation: its score is used as it is.",
            hint="Estimators with one: "
            + ", ".join(i.name for i in available() if i.pool_normalizer is not None)
            + ".",
        )
    return info.pool_normalizer(component_scores, **options)
