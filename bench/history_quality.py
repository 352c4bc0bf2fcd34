"""Does the history signal improve the ranking? (issue #6, item 6)

On the transfer-quality zoo (``bench/transfer_quality.py``: 23 models fine-tuned on 7 targets), each
target in turn is the "new dataset" and the other six are the history: their full fine-tune
accuracies are recorded as outcomes, every target's signature is stored, and tlreg's own
``history_signal`` (nearest past datasets by signature, FAISS) scores each model for the held-out
target. The held-out target's accuracies are never in the history. Printed side by side, mean τw (and
regret) over the 7 targets of: the default combined ranking (``rank.DEFAULT_ESTIMATORS``), the history
signal alone, and the two combined (the history as one more equally weighted signal, as ``recommend``
adds it).

Signatures are those ``recommend`` stores: the probe ``pkg:efficientnet_lite0``'s features (as the zoo
runs it, 64 px) on 256 evenly spread training images of each target, mean and standard deviation,
L2-normalised. They are committed in ``data/bench/history_signatures.json``.

    python bench/history_quality.py            # signatures from the zoo's work folder, then evaluate
    python bench/history_quality.py --report   # evaluate from the committed signatures only
    python bench/history_quality.py --hub [--report]   # the same on the Hub-like benchmark (8 targets)

The Hub-like benchmark's signatures (``data/bench/hub_history_signatures.json``) come the same way
from ``bench/hub_quality.py``'s work folder.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

import jsonio
import torch
import transfer_eval as ev
from tlreg.advisor import rank
from tlreg.advisor.history import TEMPERATURE, HistorySignal, compute_signature, history_signal
from tlreg.registry import OutcomeStore, Registry
from tlreg.registry.outcomes import DatasetSignature, FinetuneOutcome

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "data" / "bench" / "transfer_quality_results.json"
SIGNATURES = ROOT / "data" / "bench" / "history_signatures.json"
HUB_RESULTS = ROOT / "data" / "bench" / "hub_quality_results.json"
HUB_SIGNATURES = ROOT / "data" / "bench" / "hub_history_signatures.json"
HUB_EVALUATION = ROOT / "data" / "bench" / "hub_quality.json"
PROBE_MODEL = "efficientnet_lite0-imagenet"  # the zoo's copy of pkg:efficientnet_lite0, run at 64 px


def compute_signatures(work: Path, results: dict, *, hub: bool = False) -> dict[str, dict]:
    """Each target's signature, from the probe's cached features in the build's work folder (the
    zoo's, or with ``hub`` the Hub-like benchmark's: ``bench/hub_quality.py``)."""
    import zoo_build as zb
    from tlreg.advisor.cache import FeatureCache
    from tlreg.advisor.embed import EmbedRequest, EmbedSettings, features_for

    if hub:
        import hub_build as build

        cfg = build.config_from_dict(results["config"])
    else:
        build, cfg = zb, zb.BuildConfig(seed=results["config"]["seed"])
    registry = Registry(f"sqlite:///{work / 'registry.db'}")
    record = registry.get(f"local-dir:{build.model_folder(work, cfg, PROBE_MODEL)}")
    out = {}
    for name in results["targets"]:
        target = build.load_target(work, cfg, name, zb.Stopwatch())
        request = EmbedRequest(
            registry,
            target.train,
            target.train_fp,
            cache=FeatureCache(work / "cache"),
            device=torch.device("cpu"),
            settings=EmbedSettings(batch_size=128, workers=0),
        )
        feats = features_for(request, record)
        sig = compute_signature(
            registry,
            target.train,
            target.train_fp,
            cache=FeatureCache(work / "cache"),
            device="cpu",
            probe_features=feats.features,
        )
        out[name] = {
            "fingerprint": target.train_fp,
            "probe": sig.probe,
            "vector": [round(v, 6) for v in sig.vector],
        }
    return out


#: Neighbour temperatures compared (inf: the k nearest weigh the same); history.TEMPERATURE is shipped.
TEMPERATURES = (math.inf, 0.1, 0.05, 0.02, 0.01, 0.005)


def held_out_history(
    results: dict, signatures: dict, target: str, models: list[str], *, temperature: float | None = None
) -> HistorySignal:
    """tlreg's history signal for ``target`` with the other targets' fine-tunes as the only history."""
    registry = Registry("sqlite://")
    store = OutcomeStore(registry.engine)
    for name, sig in signatures.items():
        store.add_signature(
            DatasetSignature(
                fingerprint=sig["fingerprint"], probe=sig["probe"], vector=sig["vector"], data_path=name
            )
        )
    for pair in results["pairs"]:
        if pair["target"] != target and pair["model"] in models:
            store.record(
                FinetuneOutcome(
                    ref=pair["model"],
                    fingerprint=signatures[pair["target"]]["fingerprint"],
                    dataset=pair["target"],
                    mode="full",
                    val_accuracy=pair["finetune_acc"],
                )
            )
    sig = signatures[target]
    query = DatasetSignature(fingerprint=sig["fingerprint"], probe=sig["probe"], vector=sig["vector"])
    return history_signal(registry, query, models, temperature=temperature)


def table_of(results: dict) -> ev.Table:
    """The benchmark's table: the zoo's, or the Hub-like benchmark's (its candidates only)."""
    if "candidates" not in results:
        return ev.table_from_results(results)
    import hub_eval

    return hub_eval.hub_table(results)


def by_temperature(results: dict, signatures: dict) -> dict[str, dict[str, float]]:
    """Mean τw of the history alone and of combined + history for each neighbour temperature."""
    table = table_of(results)
    names = list(rank.DEFAULT_ESTIMATORS["classification"])
    out = {}
    for temp in TEMPERATURES:
        signals = {
            t: held_out_history(results, signatures, t, table.models, temperature=temp) for t in table.targets
        }
        alone = ev.judge(table, lambda t, s=signals: s[t].scores)
        both = ev.judge(
            table,
            lambda t, s=signals: rank.combine(
                {m: {**table.scores[t][m], "history": s[t].scores[m]} for m in table.models},
                [*names, "history"],
            ),
        )
        out[str(temp)] = {
            "history alone": ev.mean(alone, "tau_w"),
            "combined + history": ev.mean(both, "tau_w"),
        }
    return out


def evaluate(results: dict, signatures: dict) -> dict:
    table = table_of(results)
    names = list(rank.DEFAULT_ESTIMATORS["classification"])
    signals = {t: held_out_history(results, signatures, t, table.models) for t in table.targets}

    def with_history(t: str) -> dict[str, dict[str, float]]:
        return {m: {**table.scores[t][m], "history": signals[t].scores[m]} for m in table.models}

    rankers = {
        "combined (default)": lambda t: rank.combine(table.scores[t], names),
        "history alone": lambda t: signals[t].scores,
        "combined + history": lambda t: rank.combine(with_history(t), [*names, "history"]),
    }
    per_target = {name: ev.judge(table, fn) for name, fn in rankers.items()}
    return {
        "mean_tau_w": {n: ev.mean(p, "tau_w") for n, p in per_target.items()},
        "regret": {n: ev.mean(p, "regret") for n, p in per_target.items()},
        "worst_regret": {n: max(float(v["regret"]) for v in p.values()) for n, p in per_target.items()},
        "per_target": per_target,
        "neighbours": {
            t: [(n["data_path"], round(n["similarity"], 3), round(n["weight"], 3)) for n in s.neighbours[:3]]
            for t, s in signals.items()
        },
        "temperature": TEMPERATURE,
        "by_temperature": by_temperature(results, signatures),
    }


def against_heuristics(doc: dict, heuristics: dict) -> dict[str, dict]:
    """The Hub-like benchmark's heuristics (``hub_quality.json``'s per-target judgements) against the
    history-aware rankers: the mean difference on shared targets with a 90 % interval over targets."""
    import hub_eval

    per = {**doc["per_target"], **{h: heuristics[h] for h in ("name_match", "most_params")}}
    return {
        f"{a} - {h}": hub_eval.paired(per, a, h)
        for a in ("combined + history", "history alone")
        for h in ("name_match", "most_params")
    }


def report(doc: dict) -> str:
    lines = [
        f"History signal, leave-one-target-out over {len(doc['per_target']['combined (default)'])} targets "
        "(the others are the history)",
        "",
        f"{'ranker':<22} {'mean τw':>8} {'sd':>6} {'regret':>7} {'worst':>6}",
    ]
    for name, tau in doc["mean_tau_w"].items():
        sd = statistics.pstdev(float(v["tau_w"]) for v in doc["per_target"][name].values())
        lines.append(
            f"{name:<22} {tau:8.3f} {sd:6.3f} {doc['regret'][name]:7.1f} {doc['worst_regret'][name]:6.1f}"
        )
    lines += ["", "per target (τw: combined / history / combined + history; nearest past targets):"]
    for t in doc["per_target"]["combined (default)"]:
        taus = " / ".join(f"{doc['per_target'][n][t]['tau_w']:.3f}" for n in doc["mean_tau_w"])
        near = ", ".join(f"{p} {s} (weight {w})" for p, s, w in doc["neighbours"][t])
        lines.append(f"  {t:<12} {taus}   {near}")
    gain = doc["mean_tau_w"]["combined + history"] - doc["mean_tau_w"]["combined (default)"]
    lines += ["", f"adding the history changes mean τw by {gain:+.3f} (temperature {doc['temperature']})"]
    if "vs_heuristics" in doc:
        lines += ["", "against the heuristics, on shared targets (90 % interval over targets):"]
        lines += [
            f"  {k:<36} tau_w {v['tau_w']['mean']:+.3f} ({v['tau_w']['interval'][0]:+.3f} to "
            f"{v['tau_w']['interval'][1]:+.3f}), regret {v['regret']['mean']:+.1f} pts "
            f"({v['regret']['interval'][0]:+.1f} to {v['regret']['interval'][1]:+.1f})"
            for k, v in doc["vs_heuristics"].items()
        ]
    lines += [
        "",
        "by neighbour temperature (inf: the nearest 5 weigh the same): history alone / combined + history",
    ]
    lines += [
        f"  {temp:>6}: {v['history alone']:.3f} / {v['combined + history']:.3f}"
        for temp, v in doc["by_temperature"].items()
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--report", action="store_true", help="use the committed signatures; compute nothing")
    parser.add_argument("--work", type=Path, help="the build's work folder (default: its benchmark's)")
    parser.add_argument("--hub", action="store_true", help="the Hub-like benchmark (bench/hub_quality.py)")
    args = parser.parse_args()
    results_file, signatures_file = (HUB_RESULTS, HUB_SIGNATURES) if args.hub else (RESULTS, SIGNATURES)
    results = json.loads(results_file.read_text())
    if args.report:
        signatures = json.loads(signatures_file.read_text())
    else:
        if args.hub:
            from hub_quality import default_work
        else:
            from transfer_quality import default_work

        signatures = compute_signatures(args.work or default_work(), results, hub=args.hub)
        jsonio.write_json(signatures_file, signatures, indent=0)
        print(f"wrote {signatures_file.relative_to(ROOT)}", file=sys.stderr)
    doc = evaluate(results, signatures)
    if args.hub:
        doc["vs_heuristics"] = against_heuristics(doc, json.loads(HUB_EVALUATION.read_text())["per_target"])
    print(report(doc))
    assert all(math.isfinite(v) for v in doc["mean_tau_w"].values())


if __name__ == "__main__":
    main()
