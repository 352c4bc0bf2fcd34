"""Would we pick it again? Recompute a recorded run and compare it with its record.

The run is recomputed with ``recommend(data_path, record=False, models=[its candidates], **its
options)``: from the feature cache by default (the estimators, the ranking and the pick are
recomputed; the forward passes are reused when the model revision, preprocessing and data sample
are unchanged, since they key the cache), or with ``recompute=True`` from a fresh temporary cache
so that every forward pass runs again. Reproduced means: the same data fingerprint, the same model
revisions, every score equal within ``|a − b| ≤ atol + rtol·max(|a|, |b|)`` (defaults
``rtol=1e-6``, ``atol=1e-9``: float32 features re-embedded on another thread count or BLAS can
move a score in its 7th digit), the same ranking and the same pick. When something differs, the
reasons name the first causes to look at: the data (which sample ids), a model's revision (and the
registry event that moved it), a model no longer registered, the history signal.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tlreg.registry import Registry
from tlreg.registry.errors import BadInputError, TlregError

from .. import defaults
from ..answer import HISTORY
from ..cache import FeatureCache
from ..result import RecommendResult
from .records import RunRecord, load_run, plan_word

#: the CLI's exit code when a run does not reproduce (0: it does; 2: bad input such as an unknown id)
NOT_REPRODUCED = defaults.NOT_REPRODUCED
RTOL = defaults.VERIFY_RTOL
ATOL = defaults.VERIFY_ATOL


def close(a: float | None, b: float | None, *, rtol: float = RTOL, atol: float = ATOL) -> bool:
    """Equal within tolerance; two missing (unscorable) values are equal, one missing is not."""
    if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)):
        return (a is None or not math.isfinite(a)) and (b is None or not math.isfinite(b))
    return abs(a - b) <= atol + rtol * max(abs(a), abs(b))


@dataclass
class VerifyResult:
    """What ``tlreg runs verify`` found."""

    run_id: str
    recompute: bool
    rtol: float
    atol: float
    fingerprint: dict[str, Any]
    revisions: list[dict[str, Any]]
    scores: list[dict[str, Any]]
    ranking: dict[str, Any]
    pick: dict[str, Any]
    #: each recorded transfer plan and learning curve against the recomputed one
    plans: list[dict[str, Any]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def reproduced(self) -> bool:
        return not self.reasons

    @property
    def mismatched_scores(self) -> list[dict[str, Any]]:
        return [s for s in self.scores if not s["ok"]]

    def to_dict(self) -> dict[str, Any]:
        return {**vars(self), "reproduced": self.reproduced}


def _rerun_options(record: RunRecord, overrides: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The run's options for recommend(): current fields only, its candidates, no --top, and the
    estimators and aggregation it ran with, not today's defaults: a run made before tlreg's defaults
    changed is recomputed as it was made (a note says what the defaults are now)."""
    from ..rank import DEFAULT_ESTIMATORS
    from ..recommend import Options  # torch and timm come with it: loaded when a run is verified

    known = {f.name for f in dataclasses.fields(Options)}
    recorded = record.run.options
    notes = [f"the run's option {k!r} no longer exists and was ignored" for k in recorded if k not in known]
    options = {k: v for k, v in recorded.items() if k in known}
    options.update(models=record.models(), top=None, tags=[], max_params=None)
    ran = [e for e in record.estimators if e != HISTORY]
    if not options.get("estimators") and ran:
        options["estimators"] = ran
        now = list(DEFAULT_ESTIMATORS.get(record.run.task, ()))
        if now and now != ran:
            run_with, default = ", ".join(ran), ", ".join(now)
            notes.append(f"recomputed with the run's estimators ({run_with}); the default is now {default}")
    if not options.get("aggregation"):
        used = options["aggregation"] = record.aggregation
        if used != defaults.AGGREGATION:
            notes.append(
                f"recomputed with the run's aggregation ({used}); the default is now {defaults.AGGREGATION}"
            )
    if recorded.get("trials") and "trial_epochs" not in recorded:
        # recorded before --trial-epochs: its trials trained one epoch (the default is now more)
        options["trial_epochs"] = 1
        notes.append(
            f"recomputed with the run's trial length (1 epoch); the default is now {defaults.TRIAL_EPOCHS}"
        )
    options.update({k: v for k, v in overrides.items() if v is not None})
    return options, notes


def _sample_changes(record: RunRecord, data: str, options: dict[str, Any]) -> str:
    """Which sampled items differ, to say what in the data changed."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the recomputation has already reported them
            cols = {k: options.get(k) for k in ("text_col", "image_col", "label_col")}
            sizes = {k: options.get(k) for k in ("per_class", "max_samples")}
            from ..data import load_dataset, sample

            ids = set(sample(load_dataset(data, **cols), **sizes, seed=options.get("seed", 0)).ids)
    except TlregError:
        return ""
    old = set(record.run.sample_ids)
    added, removed = sorted(ids - old), sorted(old - ids)
    if not added and not removed:
        return "; the same items were sampled, so a file's content or a label changed"
    parts = [
        f"{len(x)} sample ids {what} (e.g. {', '.join(x[:3])})"
        for x, what in ((added, "new"), (removed, "gone"))
        if x
    ]
    return "; " + ", ".join(parts)


def current_revision(registry: Registry, ref: str) -> str | None:
    """The revision the model's weights have now, not only the one the registry pins.

    A Hub or timm revision is a commit sha: pinned weights cannot change under it. A local model's
    revision is the hash of its files, which can be edited in place; features read from the cache
    would then hide the change, so the source says what the revision is now
    (:meth:`~tlreg.registry.sources.Source.current_revision`).
    """
    from tlreg.registry.sources import current_revision as revision_now

    try:
        return revision_now(registry.get(ref))
    except TlregError:
        return None  # missing or unreadable: the recomputation reports why


def _revision_reason(registry: Registry, ref: str, old: str | None, new: str | None) -> str:
    """The change, and who made it where the registry knows (a revision event), else that the files moved."""
    moved = [e for e in registry.events(ref) if e.action == "revision" and e.detail.get("new") == new]
    why = " (its files changed in place)"
    if moved:
        why = f" (registry: revision by {moved[-1].user} at {moved[-1].at:%Y-%m-%d %H:%M} UTC)"
    return f"{ref} changed revision: {(old or 'unpinned')[:12]} -> {(new or 'unpinned')[:12]}{why}"


def _history_basis(history: dict[str, Any]) -> tuple[bool, list[tuple[str, int]]]:
    """What the history signal rested on: whether it was used, and the neighbours that carried it (those
    with outcomes for at least two candidates). A past dataset without outcomes moves nothing: a later
    run on other data adds such a neighbour without changing the signal."""
    neighbours = [
        (n.get("fingerprint", ""), n.get("outcomes", 0))
        for n in history.get("neighbours", [])
        if n.get("outcomes", 0) >= 2
    ]
    return bool(history.get("used")), neighbours


def history_changed(old: dict[str, Any], now: dict[str, Any]) -> bool:
    """Whether the history signal differs between the run and its recomputation; never when neither
    used it."""
    if not (old.get("used") or now.get("used")):
        return False
    return _history_basis(old) != _history_basis(now)


def _compare(
    record: RunRecord,
    now: RecommendResult,
    registry: Registry,
    result: VerifyResult,
    *,
    rtol: float,
    atol: float,
) -> None:
    rows = {r.ref: r for r in [*now.ranking, *now.baselines]}
    for c in record.candidates:
        if c.status != "ok" or c.ref not in rows or c.baseline_of is not None:
            continue
        again = rows[c.ref].revision
        if again == c.revision:
            again = current_revision(registry, c.ref) or again  # cached features hide an in-place edit
        if again != c.revision:
            result.revisions.append({"ref": c.ref, "recorded": c.revision, "now": again})
            result.reasons.append(_revision_reason(registry, c.ref, c.revision, again))
    recorded = record.score_table()
    for ref, values in recorded.items():
        for est, value in values.items():
            again = rows[ref].scores.get(est) if ref in rows else None
            if ref in rows and est not in rows[ref].scores:
                continue  # an estimator the recomputation did not run (e.g. no history signal now)
            ok = ref in rows and close(value, again, rtol=rtol, atol=atol)
            delta = None if value is None or again is None or not math.isfinite(again) else again - value
            again = again if again is None or math.isfinite(again) else None
            result.scores.append(
                {"ref": ref, "estimator": est, "recorded": value, "now": again, "delta": delta, "ok": ok}
            )
    bad = result.mismatched_scores
    if bad:
        worst = max(bad, key=lambda s: abs(s["delta"] or 0.0))
        result.reasons.append(
            f"{len(bad)} of {len(result.scores)} scores differ beyond rtol={rtol:g}, atol={atol:g} "
            f"(largest: {worst['estimator']} of {worst['ref']}: {worst['recorded']} -> {worst['now']})"
        )
    old = (record.result.detail.get("history") or {}) if record.result else {}
    if history_changed(old, now.history or {}):
        result.reasons.append(
            "the history signal changed since the run (new fine-tune outcomes or similar datasets)"
        )
    for row in record.ranking():  # short fine-tunes (--trials): trained again, on the same items and seed
        if not row.get("trial"):
            continue
        trial = rows[row["ref"]].trial if row["ref"] in rows else None
        again = trial["val_acc"] if trial else None
        if not close(row["trial"]["val_acc"], again, rtol=rtol, atol=atol):
            result.reasons.append(
                f"the trial of {row['ref']} reached {again if again is not None else 'nothing'} now, "
                f"{row['trial']['val_acc']} when recorded"
            )
    before = [r["ref"] for r in record.ranking()]
    after = [r.ref for r in now.ranking]
    same = after[: len(before)] == before if record.run.options.get("top") else after == before
    result.ranking = {"recorded": before, "now": after, "same": same}
    if not same:
        result.reasons.append(f"the ranking changed: {' > '.join(before)} -> {' > '.join(after)}")
    pick_now = now.best.ref if now.best else None
    result.pick = {"recorded": record.pick, "now": pick_now, "same": pick_now == record.pick}
    if pick_now != record.pick:
        result.reasons.append(f"the pick changed: {record.pick} -> {pick_now}")
    _compare_plans(record, now, result, rtol=rtol, atol=atol)


def _expected(curve: dict[str, Any] | None) -> float | None:
    predict = (curve or {}).get("predict") or []
    return predict[0]["expected"] if predict else None


def _compare_plans(
    record: RunRecord, now: RecommendResult, result: VerifyResult, *, rtol: float, atol: float
) -> None:
    """The recorded transfer plans and learning curves against the recomputed ones."""
    rows = {r.ref: r for r in now.ranking}
    for r in record.ranking():
        if not r.get("plan") and not r.get("learning_curve"):
            continue
        again = rows.get(r["ref"])
        plan_then = plan_word(r["plan"]) if r.get("plan") else None
        plan_now = plan_word(again.plan) if again is not None and again.plan else None
        curve_then = _expected(r.get("learning_curve"))
        curve_now = _expected(again.learning_curve) if again is not None else None
        same_curve = (curve_then is None) == (curve_now is None) and (
            curve_then is None or close(curve_then, curve_now, rtol=rtol, atol=atol)
        )
        result.plans.append(
            {
                "ref": r["ref"],
                "recorded": plan_then,
                "now": plan_now,
                "curve_recorded": curve_then,
                "curve_now": curve_now,
                "ok": plan_then == plan_now and same_curve,
            }
        )
        if plan_then != plan_now:
            result.reasons.append(f"the transfer plan of {r['ref']} changed: {plan_then} -> {plan_now}")
        elif not same_curve:
            result.reasons.append(
                f"the learning curve of {r['ref']} changed: a linear head with 2x the labels "
                f"{curve_then} -> {curve_now}"
            )


def verify_run(
    run_id: str,
    *,
    recompute: bool = False,
    data: str | Path | None = None,
    device: str | None = None,
    workers: int | None = None,
    rtol: float = RTOL,
    atol: float = ATOL,
    cache: FeatureCache | None = None,
    registry: Registry | None = None,
) -> VerifyResult:
    """Recompute run ``run_id`` and compare (``tlreg runs verify``); ``data`` if the data moved."""
    registry = registry or Registry()
    record = load_run(run_id, registry=registry)
    if record.result is None:
        raise BadInputError(
            f"Run {record.id} is {record.run.status}: it has no result to verify.",
            hint="Verify a run whose status is done (see `tlreg runs list`).",
        )
    options, notes = _rerun_options(record, {"device": device, "workers": workers})
    path = str(data or record.run.data_path)
    result = VerifyResult(
        run_id=record.id,
        recompute=recompute,
        rtol=rtol,
        atol=atol,
        fingerprint={"recorded": record.run.fingerprint, "now": None, "same": False},
        revisions=[],
        scores=[],
        ranking={},
        pick={"recorded": record.pick, "now": None, "same": False},
    )
    registered = {r.ref for r in registry.list()}
    result.missing = [m for m in record.models() if m not in registered]
    for ref in result.missing:
        gone = [e for e in registry.events(ref) if e.action == "remove"]
        when = f" (removed by {gone[-1].user} at {gone[-1].at:%Y-%m-%d %H:%M} UTC)" if gone else ""
        result.reasons.append(f"{ref} is no longer in the registry{when}")
    options["models"] = [m for m in options["models"] if m in registered]
    if not options["models"]:
        result.error = "none of the run's candidate models is registered any more"
        result.reasons.append(result.error)
        return result
    try:
        with tempfile.TemporaryDirectory(prefix="tlreg-verify-") as tmp:
            fresh = FeatureCache(tmp) if recompute else cache
            from ..recommend import recommend

            now = recommend(
                path, registry=registry, cache=fresh, record=False, reuse_answers=False, **options
            )
    except TlregError as exc:
        result.error = str(exc)
        result.reasons.insert(0, f"the run could not be recomputed: {exc}")
        return result
    result.notes += notes
    fp = now.data["fingerprint"]
    result.fingerprint.update(now=fp, same=fp == record.run.fingerprint)
    if fp != record.run.fingerprint:
        result.reasons.insert(
            0,
            f"the data changed: fingerprint {record.run.fingerprint[:12]} -> {fp[:12]} at {path}"
            + _sample_changes(record, path, options),
        )
    _compare(record, now, registry, result, rtol=rtol, atol=atol)
    return result
