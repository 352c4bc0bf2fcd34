"""The embedding of many candidates spread over a Ray cluster: one actor per GPU, or per CPU slot.

Only the forward passes move. This process (the driver) still decides what to compute, reads and
writes the feature cache, pins revisions in the registry and yields the jobs in their order, so the
cache, the scores and the run record are the ones the local backend would produce. Jobs whose
features are cached never reach the cluster (nor does a run that is wholly cached: no cluster is
even started). Actors get the model record and the sample, load the model through its source and
return plain arrays: they never touch the registry database or the cache.

On a multi-node cluster every node must see the same paths: the data, local model files and the
Hugging Face / timm caches (a shared filesystem), and have the same tlreg installed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from types import ModuleType
from typing import Any

from tlreg.registry.errors import BadInputError, TlregError

from ..errors import BackendError, StorageError
from ..progress import Reporter
from .cached import cached_features, new_entry, read_entry
from .ray_worker import Embedded, Embedder, Failed
from .request import EmbedRequest, Features, Job

#: what actors need from the driver's environment to load models as it would (offline mode, caches)
FORWARDED_ENV = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HOME", "HF_HUB_CACHE", "TORCH_HOME")


def import_ray() -> ModuleType:
    try:
        import ray
    except ImportError as exc:
        raise BadInputError(
            "--backend ray needs Ray, which is not installed.",
            hint='pip install "tlreg[ray]", or use --backend local.',
        ) from exc
    return ray


@contextlib.contextmanager
def connect(address: str | None, reporter: Reporter) -> Iterator[ModuleType]:
    """Ray, connected: to ``address`` (``auto``, ``ray://host:10001``, ``host:6379``), to the cluster this
    process already joined, or to a new local cluster on this machine; only a cluster or a connection
    opened here is shut down on exit."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    address = address or os.environ.get("RAY_ADDRESS")  # what `ray.init()` itself would join
    quiet = {"logging_level": logging.WARNING, "log_to_driver": False}  # stdout carries only the result
    saved_auth = os.environ.get("RAY_AUTH_MODE")
    try:
        if address:
            ray.init(address=address, **quiet)
        else:
            # A throwaway cluster for this run: no token file written into ~/.ray, no dashboard.
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")
            ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, **quiet)
            reporter.note(f"started a local Ray cluster ({os.cpu_count()} CPUs)")
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
        _restore_auth(saved_auth)
        where = f"the Ray cluster at {address!r}" if address else "a local Ray cluster"
        raise BackendError(
            f"Cannot connect to {where}: {' '.join(str(exc).split())}",
            hint="Check --ray-address (auto, ray://HOST:10001) and that the cluster is up (ray status).",
        ) from exc
    try:
        yield ray
    finally:
        ray.shutdown()
        _restore_auth(saved_auth)


def _restore_auth(saved: str | None) -> None:
    if saved is None:
        os.environ.pop("RAY_AUTH_MODE", None)
    else:
        os.environ["RAY_AUTH_MODE"] = saved


def actor_plan(resources: dict[str, float], jobs: int) -> tuple[int, dict[str, Any], str]:
    """(how many actors, their resource request, their device) for a cluster's total resources.

    GPUs when the cluster has any, one actor each; otherwise one single-CPU actor per CPU slot. Never
    more actors than jobs, and never a request the cluster cannot meet: such a task would stay
    pending forever.
    """
    gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 0))
    if gpus >= 1:
        n = min(gpus, jobs)
        return n, {"num_gpus": 1, "num_cpus": 1 if cpus >= n else 0}, "cuda"
    if cpus >= 1:
        return min(cpus, jobs), {"num_cpus": 1}, "cpu"
    raise BackendError(
        f"The Ray cluster has neither a GPU nor a CPU to run on (its resources: {resources}).",
        hint="Add workers to the cluster, or use --backend local.",
    )


class RayBackend:
    """Embeds the candidates on a Ray cluster through a ``ray.util.ActorPool``.

    The actors use the cluster's GPUs when it has any (mixed precision, as locally), else one CPU each.
    """

    def __init__(self, *, address: str | None = None) -> None:
        import_ray()  # fail at once, before any data is read, when Ray is missing
        self.address = address

    def run(self, request: EmbedRequest, jobs: Sequence[Job]) -> Iterator[tuple[Job, Features | TlregError]]:
        sample, settings, reporter = request.sample, request.settings, request.reporter
        ready: dict[int, Features | TlregError] = {}  # served here: from the cache, or failed already
        for i, job in enumerate(jobs):
            try:
                hit = cached_features(request, job)
            except StorageError:
                raise  # an unreadable cache is no model's fault: the run stops
            except TlregError as exc:  # e.g. a local model whose weights file is gone
                hit = exc
            if hit is not None:
                ready[i] = hit
        # the rest goes to the cluster, but for the baseline of a model that failed here already
        failed = {jobs[i].record.ref for i, r in ready.items() if isinstance(r, TlregError)}
        remote = [i for i, job in enumerate(jobs) if i not in ready and job.record.ref not in failed]
        if not remote:
            yield from _in_order(request, jobs, ready, set(), None)
            return
        with connect(self.address, reporter) as ray:
            from ray.util import ActorPool

            n, resources, actor_device = actor_plan(ray.cluster_resources(), len(remote))
            env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
            actor_class = ray.remote(Embedder).options(**resources, runtime_env={"env_vars": env})
            actors = [actor_class.remote(actor_device) for _ in range(n)]
            # CPU actors hold one CPU each: DataLoader workers would only compete with the other actors.
            workers = settings.workers if actor_device == "cuda" else 0
            cached = sum(isinstance(r, Features) for r in ready.values())
            reporter.note(
                f"Ray: embedding {len(remote)} of {len(jobs)} jobs on {n} {actor_device.upper()} actor(s); "
                f"{cached} from the cache"
            )
            pool, sample_ref = ActorPool(actors), ray.put(sample)
            for i in remote:
                pool.submit(lambda a, job: a.embed.remote(job, sample_ref, settings, workers), jobs[i])

            def next_result(label: str) -> Embedded | Failed:
                try:
                    return pool.get_next()
                except ray.exceptions.RayActorError as exc:
                    actors.append(actor_class.remote(actor_device))
                    pool.push(actors[-1])  # the pool drops the dead actor; keep its size
                    message = f"the Ray actor embedding {label} died ({type(exc).__name__}); out of memory?"
                    return Failed(TlregError, message)

            try:
                yield from _in_order(request, jobs, ready, set(remote), next_result)
            finally:
                for actor in actors:
                    ray.kill(actor)


def _in_order(
    request: EmbedRequest,
    jobs: Sequence[Job],
    ready: dict[int, Features | TlregError],
    remote: set[int],
    next_result: Callable[[str], Embedded | Failed] | None,
) -> Iterator[tuple[Job, Features | TlregError]]:
    """Jobs in their order, as the local backend yields them: a model that failed takes its
    random-init baseline with it (computed or not, it is neither yielded nor cached)."""
    failed: set[str] = set()
    for i, job in enumerate(jobs):
        if i in ready:
            result = ready[i]
        elif i in remote and next_result is not None:
            result = next_result(job.label)  # results come back in submission order
        else:
            continue  # never sent out: its model failed in the driver
        if job.record.ref in failed:
            continue
        if isinstance(result, Failed):
            result = result.error()
        if isinstance(result, TlregError):
            failed.add(job.record.ref)
        elif isinstance(result, Embedded):
            result = _store(request, job, result)
        yield job, result


def _store(request: EmbedRequest, job: Job, done: Embedded) -> Features:
    """An actor's arrays into the feature cache, under the key and with the description the local
    backend would give them; the revision a load found is pinned in the registry, as Registry.load does."""
    start, record, sample = time.perf_counter() - done.seconds, job.record, request.sample
    if job.pretrained and done.revision and done.revision != record.revision:
        request.registry.set_revision(record.ref, done.revision)
    cached = read_entry(request, job, done.revision, start=start)
    if cached is not None:  # an unpinned model whose now-known revision an earlier run cached
        return cached
    classes = None if done.probs is None else done.probs.shape[1]
    writer = new_entry(request, job, done.revision, dim=done.features.shape[1], classes=classes)
    try:
        writer.write(done.features, done.probs)
        entry = writer.commit()
    except BaseException:
        writer.abort()
        raise
    request.reporter.start(job.label, len(sample))
    request.reporter.advance(len(sample))
    request.reporter.done(job.label, seconds=done.seconds, samples_per_s=done.samples_per_s)
    return Features.computed(
        entry, label=job.label, revision=done.revision, start=start, samples_per_s=done.samples_per_s
    )
