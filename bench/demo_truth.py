"""Is what the README's first command prints about the demo digits true? Its frozen-feature claims
against a linear probe, on digits tlreg never saw.

``tlreg recommend data/demo/digits`` ranks the three bundled ImageNet EfficientNet-Lites on 120
scikit-learn digits and, from the kNN probe (``advisor/verdicts.py``), may say that a Lite's *frozen*
features lose to its random init or to 16x16 raw pixels, with the advice to fine-tune the whole
network rather than train a linear head. A claim the product prints is measured before it ships:

1. ``--n-per-class`` other scikit-learn digits per class (none of the demo's 120), written exactly as
   the demo's (``data/demo/make_demo.write_digit``), are embedded once through tlreg's own code: the
   three Lites from ``tlreg registry import bundled``, each randomly initialised as ``recommend``
   does, and the raw-pixel baseline.
2. ``--samples`` times, a demo-sized sample (12 per class) is drawn; the rest is the test set.
   *Claim*: tlreg's ``beaten_by`` on the sample, with ``recommend``'s 50 resampling rounds.
   *Truth*: a linear probe (logistic regression, C = 1, on standardised features, as the benchmarks')
   trained on the sample and tested on the rest is worse on the candidate's frozen features than on
   the baseline's.

Printed: each model's and baseline's probe accuracy (mean over the samples), and per comparison how
often tlreg makes the claim and how often it is true; precision and recall over all of them.

    python bench/demo_truth.py                    # ~10 min on 2 cores the first time (embedding)
    python bench/demo_truth.py --samples 5 --n-per-class 40
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jsonio
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "data" / "demo"
MODELS = ("pkg:efficientnet_lite0", "pkg:efficientnet_lite1", "pkg:efficientnet_lite2")
PER_CLASS_SAMPLE = 12  # the demo's 120 digits
ROUNDS = 50  # recommend's --bootstrap default


def default_work() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("tlreg")) / "bench" / "demo_truth"


def demo_indices() -> set[int]:
    """The scikit-learn indices of the demo's digits (their file names)."""
    return {int(p.stem) for p in (DEMO / "digits").glob("*/*.png")}


def write_other_digits(folder: Path, per_class: int, seed: int) -> Path:
    """``per_class`` digits per class that the demo does not hold, as the demo stores them; written
    into a temporary folder renamed into place, so an interrupted run leaves nothing half-written."""
    sys.path.insert(0, str(DEMO))
    from make_demo import write_digit
    from sklearn.datasets import load_digits

    if folder.is_dir():
        return folder
    digits, taken, rng = load_digits(), demo_indices(), np.random.default_rng(seed)
    tmp = folder.with_name(folder.name + ".tmp")
    for digit in range(10):
        pool = [i for i in np.flatnonzero(digits.target == digit) if int(i) not in taken]
        (tmp / str(digit)).mkdir(parents=True, exist_ok=True)
        for index in np.sort(rng.choice(pool, per_class, replace=False)):
            write_digit(digits.images[index], tmp / str(digit) / f"{index:04d}.png")
    tmp.rename(folder)
    return folder


def embed(work: Path, folder: Path) -> tuple[dict[str, np.ndarray], np.ndarray, dict[str, str]]:
    """{label: features} for the Lites (ImageNet and random init) and the raw pixels, the labels, and
    {candidate: its random init's label}."""
    from tlreg.advisor.baselines import raw_baseline
    from tlreg.advisor.cache import FeatureCache
    from tlreg.advisor.data import fingerprint, load_dataset, sample
    from tlreg.advisor.embed import EmbedRequest, EmbedSettings, features_for
    from tlreg.registry import Registry

    registry = Registry(f"sqlite:///{work / 'registry.db'}")
    registry.import_from("bundled")
    data = sample(load_dataset(folder))
    fp, cache = fingerprint(data), FeatureCache(work / "cache")
    request = EmbedRequest(
        registry, data, fp, cache=cache, device="cpu", settings=EmbedSettings(batch_size=64)
    )
    feats, own = {}, {}
    for ref in MODELS:
        record = registry.get(ref)
        feats[ref] = features_for(request, record).features
        own[ref] = f"{ref} (random init)"
        feats[own[ref]] = features_for(request, record, pretrained=False).features
        print(f"embedded {ref} and its random init", file=sys.stderr, flush=True)
    feats["raw pixels"] = raw_baseline(data, fp, cache=cache, seed=0).features
    return feats, np.asarray(data.labels), own


def probe_accuracy(x: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000, random_state=0))
    probe.fit(x[train], y[train])
    return float(probe.score(x[test], y[test]))


def claims_on(feats: dict[str, np.ndarray], y: np.ndarray, idx: np.ndarray, own: dict[str, str]) -> dict:
    """What ``recommend`` would say on this sample: {candidate: [baselines its frozen features lose to]}."""
    from tlreg.advisor.confidence import bootstrap
    from tlreg.advisor.scoring import as_dict, score_features
    from tlreg.advisor.verdicts import beaten_by, verdict_names

    names = verdict_names("classification", [])
    labels = y[idx]
    scores = {
        k: as_dict(score_features(f[idx], None, labels, "classification", names)) for k, f in feats.items()
    }
    cands = {r: (feats[r][idx], None) for r in MODELS}
    bases = {k: (f[idx], None) for k, f in feats.items() if k not in MODELS}
    conf = bootstrap(cands, labels, "classification", names, [], rounds=ROUNDS, seed=0, baselines=bases)
    n_classes = len(np.unique(labels))
    return {
        r: beaten_by(r, scores, [own[r], "raw pixels"], names, n_classes=n_classes, rounds=conf.round_scores)
        for r in MODELS
    }


def evaluate(
    feats: dict[str, np.ndarray], y: np.ndarray, own: dict[str, str], samples: int, seed: int
) -> dict:
    probe: dict[str, list[float]] = {k: [] for k in feats}
    pairs = []  # (candidate, baseline, claimed, true)
    for s in range(samples):
        rng = np.random.default_rng([seed, s])
        idx = np.sort(
            np.concatenate(
                [rng.choice(np.flatnonzero(y == c), PER_CLASS_SAMPLE, replace=False) for c in np.unique(y)]
            )
        )
        test = np.setdiff1d(np.arange(len(y)), idx)
        acc = {k: probe_accuracy(f, y, idx, test) for k, f in feats.items()}
        for k, a in acc.items():
            probe[k].append(a)
        claims = claims_on(feats, y, idx, own)
        for r in MODELS:
            for b in (own[r], "raw pixels"):
                pairs.append((r, b, b in claims[r], acc[r] < acc[b]))
        print(f"sample {s + 1}/{samples} done", file=sys.stderr, flush=True)
    tp = sum(c and t for *_, c, t in pairs)
    fp = sum(c and not t for *_, c, t in pairs)
    fn = sum(t and not c for *_, c, t in pairs)
    return {
        "samples": samples,
        "per_class_in_sample": PER_CLASS_SAMPLE,
        "items": len(y),
        "probe_accuracy": {k: float(np.mean(v)) for k, v in probe.items()},
        "comparisons": [
            {
                "model": r,
                "baseline": b,
                "claimed": sum(c for r2, b2, c, _ in pairs if (r2, b2) == (r, b)),
                "true": sum(t for r2, b2, _, t in pairs if (r2, b2) == (r, b)),
            }
            for r in MODELS
            for b in (own[r], "raw pixels")
        ],
        "precision": tp / (tp + fp) if tp + fp else None,
        "recall": tp / (tp + fn) if tp + fn else None,
        "false_alarms": fp,
        "pairs": len(pairs),
    }


def report(doc: dict) -> str:
    lines = [
        f"Demo digits' frozen-feature claims on {doc['items']} other scikit-learn digits, "
        f"{doc['samples']} samples of {doc['per_class_in_sample']} per class (the demo's size);",
        "truth: a linear probe trained on the sample, tested on the rest.",
        "",
        "linear-probe accuracy (mean over samples):",
        *(f"  {k:<42} {v:.3f}" for k, v in doc["probe_accuracy"].items()),
        "",
        f"{'frozen features of':<26} {'lose to':<40} {'tlreg says so':>13} {'true':>6}",
    ]
    for c in doc["comparisons"]:
        lines.append(
            f"{c['model']:<26} {c['baseline']:<40} {c['claimed']:>8} of {doc['samples']:<2} "
            f"{c['true']:>3} of {doc['samples']}"
        )

    def pct(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.0%}"

    lines += [
        "",
        f"precision {pct(doc['precision'])}, recall {pct(doc['recall'])}, "
        f"false alarms {doc['false_alarms']} of {doc['pairs']}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n\n")[0])
    parser.add_argument("--work", type=Path, default=None, help="Cache folder (default: user cache).")
    parser.add_argument("--n-per-class", type=int, default=60, help="Other digits per class (default 60).")
    parser.add_argument("--samples", type=int, default=10, help="Demo-sized samples drawn (default 10).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="Also write the figures to this file.")
    args = parser.parse_args(argv)
    if args.n_per_class <= PER_CLASS_SAMPLE:
        parser.error(f"--n-per-class must exceed the sample's {PER_CLASS_SAMPLE} per class")
    work = (args.work or default_work()) / f"n{args.n_per_class}-seed{args.seed}"
    work.mkdir(parents=True, exist_ok=True)
    folder = write_other_digits(work / "digits", args.n_per_class, args.seed)
    feats, y, own = embed(work, folder)
    doc = evaluate(feats, y, own, args.samples, args.seed)
    if args.json:
        jsonio.write_json(args.json, doc)
    print(report(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
