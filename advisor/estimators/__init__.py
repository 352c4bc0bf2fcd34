"""Transferability estimators: pure functions ``fn(features, labels, *, source_probs=None, **options)``.

Each returns a float; higher always means better expected transfer. Call one by name, list them
with their metadata, or register your own (in your package, point the entry-point group
``tlreg.estimators`` at the module holding your ``@register`` functions)::

    from tlreg.advisor.estimators import available, register, score
    score("logme", features, labels)
    score("leep", features, labels, source_probs=probs)
    score("logme", features, targets, task="regression")
    [info.name for info in available(task="unlabelled")]

A score whose paper normalises its components across the candidate models (ETran, NCTI) lists
them in ``EstimatorInfo.components``; component ``c`` of estimator ``e`` is registered as estimator
``e_c``, and :func:`pool_normalize` combines them once the pool is known.
"""

from __future__ import annotations

from importlib import import_module

from .registry import (
    ENTRY_POINT_GROUP,
    TASKS,
    EstimatorFn,
    EstimatorInfo,
    EstimatorOverwriteWarning,
    EstimatorPluginWarning,
    add,
    available,
    get,
    load_plugins,
    pool_normalize,
    prepared,
    register,
    score,
    unregister,
)

#: The built-in estimator modules, imported (and so registered) explicitly, in this order.
BUILTIN_MODULES = (
    "logme",
    "knn",
    "leep",
    "nce",
    "hscore",
    "transrate",
    "gbc",
    "sfda",
    "etran",
    "ncti",
    "rankme",
)

for _module in BUILTIN_MODULES:
    import_module(f"{__name__}.{_module}")

__all__ = [
    "BUILTIN_MODULES",
    "ENTRY_POINT_GROUP",
    "TASKS",
    "EstimatorFn",
    "EstimatorInfo",
    "EstimatorOverwriteWarning",
    "EstimatorPluginWarning",
    "add",
    "available",
    "get",
    "load_plugins",
    "pool_normalize",
    "prepared",
    "register",
    "score",
    "unregister",
]
