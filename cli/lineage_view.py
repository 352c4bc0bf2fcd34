"""How lineage reads: a model's family as lines of ``registry show``, the registry as a rich Tree."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from rich.tree import Tree


def _how(node: dict[str, Any]) -> str:
    """'linear, val acc 0.933, run 20261201-...' for a fine-tuned model; '' for any other."""
    parts = []
    if node.get("mode"):
        parts.append(str(node["mode"]))
    if node.get("val_accuracy") is not None:
        parts.append(f"val acc {node['val_accuracy']:.3f}")
    if node.get("run_id"):
        parts.append(f"run {node['run_id']}")
    return ", ".join(parts)


def family_lines(family: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, value) rows for ``registry show``: parent, how this model was made, its children."""
    rows = []
    parent = family.get("parent")
    if parent:
        state = "" if parent["registered"] else f" (removed {parent['removed']})" if parent["removed"] else ""
        revision = f" @ {parent['revision'][:12]}" if parent["revision"] else ""
        rows.append(("parent", f"{parent['ref']}{revision}{state}"))
    outcome = family.get("outcome")
    if outcome:
        acc = "-" if outcome["val_accuracy"] is None else f"{outcome['val_accuracy']:.3f}"
        rows.append(("fine-tune", f"{outcome['mode']}, val acc {acc}, run {outcome['run_id'] or '-'}"))
    for child in family.get("children", []):
        how = _how(child)
        rows.append(("child", child["ref"] + (f" ({how})" if how else "")))
    return rows


def lineage_tree(forest: list[dict[str, Any]]) -> Tree:
    """The registry as a forest: each root an entry without a (listed) parent, fine-tunes beneath."""
    root = Tree(Text("registry", style="bold"), guide_style="dim")

    def grow(branch: Tree, node: dict[str, Any]) -> None:
        label = Text(node["ref"])
        label.append(f" @ {(node['revision'] or 'unpinned')[:12]}", style="dim")
        if how := _how(node):
            label.append(f"  {how}")
        if node.get("parent_ref") and branch is root:
            label.append(f"  (child of {node['parent_ref']})", style="dim")
        child_branch = branch.add(label)
        for child in node["children"]:
            grow(child_branch, child)

    for node in forest:
        grow(root, node)
    return root
