"""An example for the ``--help`` of every command, kept in one place so they read as one manual.

:func:`add_examples` appends them to each command's help as an "Examples" section when the command
group loads the command (``cli/main.py``); a command that sets its own ``epilog`` keeps it. The
tests walk the whole command tree and fail on a command without an example.
"""

from __future__ import annotations

import click

RUN = "20261125-024100-3f9a2c"

EXAMPLES: dict[str, list[str]] = {
    "": [
        "tlreg registry import bundled",
        "tlreg recommend ./data",
        f"tlreg runs show {RUN}",
        f"tlreg finetune {RUN} --out ./ft",
        'eval "$(_TLREG_COMPLETE=bash_source tlreg)"   # shell completion (zsh_source, fish_source)',
    ],
    "recommend": [
        "tlreg recommend ./data",
        "tlreg recommend ./reviews.csv --text-col review --label-col stars --models 'hf:*' --top 5",
        "tlreg recommend ./data --json | jq -r .best.ref",
        "tlreg recommend ./data --models @champion --models 'timm:convnext*' --per-class 50",
        "tlreg recommend ./data --plan all --json | jq '.ranking[] | {ref, mode: .plan.mode}'",
    ],
    "finetune": [
        f"tlreg finetune {RUN} --out ./ft",
        f"tlreg finetune {RUN} --mode partial --unfreeze 2 --epochs 5 --out ./ft",
        f"tlreg finetune {RUN} --export timm --out ./handoff",
        f"tlreg finetune {RUN} --out ./ft --register   # the fine-tune joins the registry, with its lineage",
        "tlreg finetune --model @champion --data ./data --out ./ft --mode partial",
    ],
    "registry": ["tlreg registry import timm --filter 'convnext*' --limit 5", "tlreg registry list"],
    "registry add": [
        "tlreg registry add timm:resnet50.a1_in1k",
        "tlreg registry add ./weights.safetensors --arch resnet18 --tag in-house",
        "tlreg registry add ./ft/model                        # a fine-tune, with its lineage",
        "tlreg registry add ./mine/ --parent timm:resnet50.a1_in1k",
    ],
    "registry import": ["tlreg registry import catalog", "tlreg registry import hf --filter timm --limit 20"],
    "registry list": [
        "tlreg registry list 'convnext*' --max-params 3e7",
        "tlreg registry list --json",
        "tlreg registry list --available          # offline: what can be loaded now",
        "tlreg registry list --tree               # fine-tuned models under their parents",
    ],
    "registry show": ["tlreg registry show timm:resnet50.a1_in1k", "tlreg registry show @champion --json"],
    "registry remove": ["tlreg registry remove timm:resnet50.a1_in1k"],
    "registry tag": ["tlreg registry tag timm:resnet50.a1_in1k baseline --remove candidate"],
    "registry history": ["tlreg registry history", "tlreg registry history @champion"],
    "registry alias": [
        "tlreg registry alias set champion timm:convnext_tiny.fb_in1k",
        "tlreg recommend ./data --models @champion --models 'timm:efficientnet*'",
    ],
    "registry alias set": [
        "tlreg registry alias set champion timm:resnet50.a1_in1k",
        "tlreg registry alias set champion @candidate     # where another alias points",
    ],
    "registry alias list": ["tlreg registry alias list", "tlreg registry alias list --json"],
    "registry alias history": ["tlreg registry alias history champion", "tlreg registry alias history"],
    "registry alias remove": ["tlreg registry alias remove champion"],
    "cache": ["tlreg cache list", "tlreg cache prune --older-than 30"],
    "cache list": ["tlreg cache list --all"],
    "cache prune": ["tlreg cache prune --older-than 30 --max-size 2e9"],
    "cache clear": ["tlreg cache clear --yes"],
    "estimators": ["tlreg estimators list"],
    "estimators list": ["tlreg estimators list --json | jq -r '.[].name'"],
    "history": ["tlreg history list", "tlreg history import outcomes.csv"],
    "history import": ["tlreg history import outcomes.csv"],
    "history list": ["tlreg history list --json"],
    "history remove": ["tlreg history remove 12 13", "tlreg history remove --dataset 4aba4f56b964 --yes"],
    "runs": ["tlreg runs list --since 7d", f"tlreg runs show {RUN}"],
    "runs list": ["tlreg runs list --since 7d --limit 20"],
    "runs show": [f"tlreg runs show {RUN[:17]}", f"tlreg runs show {RUN} --json"],
    "runs diff": [f"tlreg runs diff {RUN} 20261126-101500-9c01de"],
    "runs export": [
        f"tlreg runs export {RUN} --format md --out decision.md",
        f"tlreg runs export {RUN} --mlflow --tracking-uri sqlite:///mlflow.db",
        f"tlreg runs export {RUN} --mlflow --register-model pets --alias champion",
    ],
    "runs verify": [f"tlreg runs verify {RUN}", f"tlreg runs verify {RUN} --recompute"],
    "report": [f"tlreg report {RUN} --out report.html"],
    "ui": [
        "tlreg ui                                  # http://127.0.0.1:8765/, this machine only",
        "tlreg ui --db postgresql://reviewer@db.internal/tlreg --port 9000",
    ],
    "doctor": ["tlreg doctor", "tlreg doctor --json"],
}


def epilog(lines: list[str]) -> str:
    # \b: click keeps the lines as they are instead of rewrapping them into one paragraph
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


def add_examples(command: click.Command, path: str) -> click.Command:
    """Give ``command`` (named ``path``, e.g. ``runs export``) and its subcommands their examples."""
    if command.epilog is None and path in EXAMPLES:
        command.epilog = epilog(EXAMPLES[path])
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            add_examples(sub, f"{path} {name}")
    return command
