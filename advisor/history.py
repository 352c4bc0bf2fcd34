"""Learning from the registry's own history: similar past datasets and how each model did on them.

Every run stores a *signature* of its dataset — the per-dimension mean and standard deviation of a
fixed probe model's features on up to 256 evenly spread items, L2-normalised — and fine-tune
outcomes are recorded by ``tlreg finetune`` or imported from a CSV. For a new dataset, the nearest
past datasets (cosine similarity in a FAISS inner-product index over signatures from the same probe)
and the fine-tuned accuracy of each candidate on them give one more signal: per neighbour, the
candidates' accuracies are mapped to ranks in [0, 1] (1 = best), then averaged with weights that fall
off sharply from the nearest neighbour (a softmax of the similarities, :data:`TEMPERATURE`). It is
only as good as the history: with no similar past dataset that has
outcomes for two or more of the candidates, there is no history signal at all.

The probe is the bundled model of the data's modality when it is registered (``pkg:efficientnet_lite0``,
``pkg:all-minilm-l6-v2``), else model-free features (16×16 pixels; hashed character n-grams), so
signatures exist on any install; only signatures from the same probe are compared.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tlreg.registry import OutcomeStore, Registry
from tlreg.registry.errors import TlregError
from tlreg.registry.outcomes import DatasetSignature, FinetuneOutcome

from .baselines import pixels
from .cache import FeatureCache
from .data import Dataset, fingerprint, load_dataset, sample
from .embed import EmbedRequest, features_for
from .errors import DatasetError
from .rank import average_ranks

PROBES = {"image": "pkg:efficientnet_lite0", "text": "pkg:all-minilm-l6-v2"}
SIGNATURE_ITEMS = 256
NEIGHBOURS = 5
#: How sharply the nearest past datasets outweigh the others: neighbour i weighs
#: exp((s_i - s_max) / TEMPERATURE) for cosine similarities s: a dataset of another kind (digits vs
#: photo patches: cosine 0.42 against 0.99) weighs 0.3 % of the nearest, where raw cosines as weights
#: left it about 30 %. 0.1 gives the best combined + history ranking of the temperatures compared on
#: the first benchmark (``bench/history_quality.py``), by a margin within its noise.
TEMPERATURE = 0.1


def signature_items(n: int) -> np.ndarray:
    """Evenly spread indices into a sample (which is ordered by class), at most SIGNATURE_ITEMS."""
    return np.unique(np.linspace(0, n - 1, min(n, SIGNATURE_ITEMS)).round().astype(int))


def signature_vector(features: np.ndarray) -> np.ndarray:
    x = np.asarray(features, dtype=np.float64)
    vector = np.concatenate([x.mean(axis=0), x.std(axis=0)])
    norm = np.linalg.norm(vector)
    return (vector / norm if norm > 0 else vector).astype(np.float32)


def _model_free(sample: Dataset) -> np.ndarray:
    """Features for a signature when no probe model is registered.

    Images: 16×16 pixels scaled to [-1, 1], *not* standardised per pixel as the raw-input baseline is:
    standardised, every dataset has mean 0 and standard deviation 1 in every pixel, so every
    signature is the same vector (cosine 1.000001 between a colour and a grey dataset).
    """
    if sample.modality == "image":
        return pixels(sample) * 2.0 - 1.0
    from sklearn.feature_extraction.text import HashingVectorizer

    hashed = HashingVectorizer(
        analyzer="char_wb", ngram_range=(2, 4), n_features=1024, alternate_sign=False, norm="l2"
    ).transform([str(t) for t in sample.items])
    return hashed.toarray().astype(np.float32)


def compute_signature(
    registry: Registry,
    sample: Dataset,
    fingerprint: str,
    *,
    cache: FeatureCache,
    device: object,
    data_path: str = "",
    probe_features: np.ndarray | None = None,
) -> DatasetSignature:
    """The signature of ``sample``; ``probe_features`` (the probe's features on the whole sample, when the
    probe was a candidate) avoids a forward pass."""
    idx = signature_items(len(sample))
    probe_ref = PROBES.get(sample.modality)
    record = None
    if probe_ref:
        try:
            record = registry.get(probe_ref)
        except TlregError:
            record = None
    if record is not None and probe_features is not None:
        vectors, probe = probe_features[idx], f"{record.ref}@{record.revision}"
    elif record is not None:
        subset, key = sample.subset(idx.tolist()), f"signature:{fingerprint}"
        feats = features_for(EmbedRequest(registry, subset, key, cache=cache, device=device), record)
        vectors, probe = feats.features, f"{record.ref}@{feats.revision}"
    else:
        vectors, probe = _model_free(sample.subset(idx.tolist())), f"model-free:{sample.modality}"
    return DatasetSignature(
        fingerprint=fingerprint,
        probe=probe,
        modality=sample.modality,
        n_samples=len(sample),
        data_path=data_path,
        vector=signature_vector(vectors).tolist(),
    )


@dataclass
class HistorySignal:
    """The history's opinion of each candidate, and where it comes from."""

    scores: dict[str, float] = field(default_factory=dict)
    neighbours: list[dict[str, object]] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        return sum(math.isfinite(v) for v in self.scores.values()) >= 2

    def detail(self, signature: DatasetSignature) -> dict[str, object]:
        """What a run's answer says about its history: the probe, whether the signal was used, the
        neighbours and the candidates' history scores."""
        return {
            "probe": signature.probe,
            "used": self.usable,
            "neighbours": self.neighbours,
            "scores": {r: v for r, v in self.scores.items() if np.isfinite(v)},
        }


def history_signal(
    registry: Registry,
    signature: DatasetSignature,
    candidates: Sequence[str],
    *,
    k: int = NEIGHBOURS,
    temperature: float | None = None,
) -> HistorySignal:
    """Similarity-weighted rank of each candidate's fine-tuned accuracy on the nearest past datasets,
    each neighbour weighted by ``exp((s - s_max) / temperature)`` (default :data:`TEMPERATURE`)."""
    temperature = TEMPERATURE if temperature is None else temperature
    store = OutcomeStore(registry.engine)
    past = [s for s in store.signatures(probe=signature.probe) if s.fingerprint != signature.fingerprint]
    signal = HistorySignal(scores=dict.fromkeys(candidates, math.nan))
    if not past:
        return signal
    by_fp = {}
    for s in past:
        by_fp.setdefault(s.fingerprint, s)
    past = list(by_fp.values())
    import faiss  # only with past datasets: a registry without history never loads it

    matrix = np.asarray([s.vector for s in past], dtype=np.float32)
    index = faiss.IndexFlatIP(matrix.shape[1])
    index.add(matrix)
    query = np.asarray([signature.vector], dtype=np.float32)
    sims, ids = index.search(query, min(k, len(past)))
    total = dict.fromkeys(candidates, 0.0)
    weight = dict.fromkeys(candidates, 0.0)
    wanted = set(candidates)
    nearest = float(sims[0][0]) if len(sims[0]) else 0.0
    for sim, i in zip(sims[0], ids[0], strict=True):
        if i < 0 or sim <= 0:
            continue
        w = math.exp((float(sim) - nearest) / temperature)
        neighbour = past[i]
        best: dict[str, float] = {}
        for o in store.outcomes_for_dataset(neighbour.fingerprint):
            if o.ref in wanted and o.val_accuracy is not None:
                best[o.ref] = max(best.get(o.ref, -math.inf), o.val_accuracy)
        signal.neighbours.append(
            {
                "fingerprint": neighbour.fingerprint,
                "data_path": neighbour.data_path,
                "similarity": float(sim),
                "weight": w,
                "outcomes": len(best),
            }
        )
        if len(best) < 2:
            continue
        refs = list(best)
        ranks = average_ranks([-best[r] for r in refs])
        for r, rank in zip(refs, ranks, strict=True):
            total[r] += w * (1.0 - (rank - 1) / (len(refs) - 1))
            weight[r] += w
    signal.scores = {r: (total[r] / weight[r] if weight[r] > 0 else math.nan) for r in candidates}
    return signal


@dataclass
class ImportSummary:
    outcomes: int = 0
    datasets: list[dict[str, object]] = field(default_factory=list)
    unregistered: list[str] = field(default_factory=list)


def import_outcomes(
    csv_path: str | Path, *, registry: Registry, cache: FeatureCache | None = None, device: object = "cpu"
) -> ImportSummary:
    """Record fine-tune outcomes from a CSV (the Python twin of ``tlreg history import``).

    Columns: ``model`` (a ref), ``accuracy`` (validation accuracy in [0, 1]), and either ``data`` (a
    dataset path, read as ``tlreg recommend`` reads it, with its default sample) or ``fingerprint`` (of
    a dataset a past run has seen); optional ``mode`` and ``dataset`` (a name). Datasets given by path
    get their signature computed and stored, so they count as history for new datasets.
    """
    import pandas as pd

    path = Path(csv_path)
    try:
        frame = pd.read_csv(path, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot read it as CSV ({exc}).") from exc
    missing = {"model", "accuracy"} - set(frame.columns)
    if missing or not ({"data", "fingerprint"} & set(frame.columns)):
        need = sorted(missing) + (
            [] if {"data", "fingerprint"} & set(frame.columns) else ["data or fingerprint"]
        )
        raise DatasetError(
            f"{path}: missing column(s) {', '.join(need)}; found {', '.join(frame.columns)}.",
            hint="Columns: data (or fingerprint), model, accuracy[, mode, dataset].",
        )
    accuracy = pd.to_numeric(frame["accuracy"], errors="coerce")
    bad = frame.index[~accuracy.between(0.0, 1.0)]
    if len(bad):
        raise DatasetError(
            f"{path}: accuracy must be a number in [0, 1]; row {int(bad[0]) + 2} has "
            f"{frame['accuracy'].iloc[bad[0]]!r}."
        )
    store = OutcomeStore(registry.engine)
    cache = cache or FeatureCache()
    known = {s.fingerprint for s in store.signatures()}
    fingerprints: dict[str, str] = {}
    summary = ImportSummary()
    for i, row in frame.iterrows():
        data = str(row.get("data", "") or "")
        fp = str(row.get("fingerprint", "") or "")
        if data:
            if data not in fingerprints:
                target = (path.parent / data) if not Path(data).is_absolute() else Path(data)
                sub = sample(load_dataset(target))
                fingerprints[data] = fingerprint(sub)
                sig = compute_signature(
                    registry,
                    sub,
                    fingerprints[data],
                    cache=cache,
                    device=device,
                    data_path=str(target.resolve()),
                )
                store.add_signature(sig)
                known.add(sig.fingerprint)
                summary.datasets.append(
                    {"data": str(target), "fingerprint": sig.fingerprint, "probe": sig.probe}
                )
            fp = fingerprints[data]
        elif fp not in known:
            raise DatasetError(
                f"{path}: row {int(i) + 2}: no past run has seen a dataset with fingerprint {fp!r}.",
                hint="Give the dataset's path in a 'data' column instead.",
            )
        ref = str(row["model"])
        try:
            record = registry.get(ref)
            ref, revision = record.ref, record.revision
        except TlregError:
            revision = None
            summary.unregistered.append(ref)
        store.record(
            FinetuneOutcome(
                ref=ref,
                revision=revision,
                fingerprint=fp,
                dataset=str(row.get("dataset", "") or data) or None,
                mode=str(row.get("mode", "") or "imported"),
                val_accuracy=float(accuracy.iloc[i]),
                source="import",
            )
        )
        summary.outcomes += 1
    summary.unregistered = sorted(set(summary.unregistered))
    return summary
