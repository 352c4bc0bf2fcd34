"""The choices and defaults that the command line and the Python API share, written once.

The CLI builds its options' choices, defaults and help texts from these values, and the advisor its
options' defaults, so ``tlreg recommend --help`` cannot say one thing while ``recommend(...)`` does
another. Only plain values: nothing here imports torch, so the CLI reads it at start for free.
"""

from __future__ import annotations

# --- recommend ------------------------------------------------------------------------------------

#: Where the candidates are embedded: this process, or a Ray cluster (see ``advisor/embed/backends.py``).
BACKENDS = ("local", "ray")
BACKEND = "local"
#: Seed of the sample, the random-init baselines and the resampling.
SEED = 0
#: Items per forward pass.
BATCH_SIZE = 32
#: Resampling rounds for P(best) and the rank intervals (0: off).
BOOTSTRAP = 50
#: auto: CUDA, then MPS, then CPU.
DEVICE = "auto"
#: How much embedding a run spends: ``auto`` halves (successive halving, ``advisor/halving.py``) from
#: :data:`HALVING_FROM` candidates on; ``full`` embeds every candidate on the whole sample.
BUDGETS = ("auto", "full")
BUDGET = "auto"
HALVING_FROM = 12
#: How the estimators' scores become one: each one's ranks, or z-scores, over the candidates, averaged
#: (``advisor/rank.py``). The default is what both benchmarks' ground truth selects
#: (``bench/joint_defaults.py``); runs recorded before it was an option used ``rank``.
AGGREGATIONS = ("rank", "zscore")
AGGREGATION = "zscore"

#: Short fine-tunes of the combined ranking's top K before the pick (``advisor/trials.py``; 0: none),
#: and the recipe each one trains with (``tlreg finetune`` options; the seed is the run's).
TRIALS = 0
TRIAL_RECIPE: dict[str, float | int | str] = {"mode": "full", "lr": 1e-3, "patience": 0}
#: ... for this many epochs: three, about the benchmarks' ground-truth budget (on both benchmarks one
#: epoch rewarded the model that starts fastest, not the one that ends best: README, "Short fine-tunes")
TRIAL_EPOCHS = 3
#: ... and on a small sample, as many epochs as reach this many optimiser steps for each epoch asked
#: for (both benchmarks' trials train on 800 and 1,200 items: one epoch is 25 and 38 steps there)
TRIAL_MIN_STEPS = 25
#: ... and how many times each candidate is tried, on splits drawn with seeds S, S+1, ...: its trial
#: accuracy is their mean (``bench/trial_quality.py`` measures 1 and 2)
TRIAL_REPEATS = 1

# --- finetune -------------------------------------------------------------------------------------

#: What a fine-tune trains: a new head on cached features, also the last N blocks, or everything.
FINETUNE_MODES = ("linear", "partial", "full")
FINETUNE_MODE = "linear"
#: Epochs and learning rate by mode: linear epochs are cheap (cached features) and a head alone takes
#: a high learning rate; a backbone only needs nudging.
MODE_DEFAULTS: dict[str, dict[str, float]] = {
    "linear": {"epochs": 50, "lr": 1e-2},
    "partial": {"epochs": 10, "lr": 1e-4},
    "full": {"epochs": 10, "lr": 5e-5},
}
UNFREEZE = 2
FINETUNE_BATCH_SIZE = 32
VAL_SPLIT = 0.2
LABEL_SMOOTHING = 0.0
#: Epochs without improvement before stopping (0: never stop early).
PATIENCE = 5
WEIGHT_DECAY = 0.01
#: What ``--export`` writes instead of training: a PyTorch script, timm train.py arguments and
#: script, or a Hugging Face Trainer script.
EXPORTS = ("script", "timm", "hf")

# --- the audit trail (tlreg runs) ----------------------------------------------------------------
#: What ``tlreg runs export --format`` writes.
EXPORT_FORMATS = ("json", "csv", "md")
#: The MLflow model-version alias ``runs export --mlflow --register-model`` sets on the pick.
MLFLOW_ALIAS = "tlreg-pick"
#: ``tlreg runs verify``: score tolerances, and the exit code of a run that does not reproduce
#: (0: it does; 2: bad input such as an unknown id).
VERIFY_RTOL = 1e-6
VERIFY_ATOL = 1e-9
NOT_REPRODUCED = 4
