"""Fine-tune a timm model on your images with timm's own library API (the pieces timm's train.py uses).

Written by ``tlreg finetune --export timm`` next to ``timm_train_args.txt`` (the equivalent command
line for timm's ``train.py``). The data is ``data/train`` and ``data/validation`` (class folders of
links to your images, in tlreg's split), the classes are numbered by ``data/class_map.txt``. It uses
``timm.create_model``, ``timm.data.create_dataset`` / ``create_transform``,
``timm.optim.create_optimizer_v2`` (AdamW) and ``timm.scheduler.create_scheduler_v2`` (cosine with
warm-up), one learning rate for every trained parameter as ``train.py`` does, and saves the best
epoch with ``timm.models.save_for_hf``. ``--max-steps 1`` is a smoke test.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import timm
import timm.data
import timm.optim
import timm.scheduler
import torch
from torch import nn

DEFAULTS: dict[str, Any] = {}  # replaced by tlreg finetune --export

HERE = Path(__file__).resolve().parent


def main() -> None:
    cfg = DEFAULTS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=HERE / "data")
    parser.add_argument("--model", default=f"local-dir:{HERE / cfg['backbone']}")
    parser.add_argument("--out", type=Path, default=HERE / "output")
    parser.add_argument("--epochs", type=int, default=cfg["epochs"])
    parser.add_argument("--lr", type=float, default=cfg["lr"])
    parser.add_argument("--batch-size", type=int, default=cfg["batch_size"])
    parser.add_argument("--weight-decay", type=float, default=cfg["weight_decay"])
    parser.add_argument("--smoothing", type=float, default=cfg["label_smoothing"])
    parser.add_argument("--patience", type=int, default=cfg["patience"], help="0: no early stopping")
    parser.add_argument("--seed", type=int, default=cfg["seed"])
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0: no limit)")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    classes = cfg["classes"]
    model = timm.create_model(args.model, pretrained=True, num_classes=len(classes))
    for name, param in model.named_parameters():  # what tlreg's mode leaves untrained
        if any(name.startswith(f) if f.endswith(".") else name == f for f in cfg["frozen"]):
            param.requires_grad_(False)
    model.to(device)
    transform = timm.data.create_transform(**timm.data.resolve_model_data_config(model), is_training=False)
    class_map = str(args.data_dir / "class_map.txt")
    datasets = {
        split: timm.data.create_dataset(
            "", root=str(args.data_dir), split=split, class_map=class_map, transform=transform
        )
        for split in ("train", "validation")
    }
    train_loader = torch.utils.data.DataLoader(
        datasets["train"], batch_size=args.batch_size, shuffle=True, num_workers=args.workers
    )
    val_loader = torch.utils.data.DataLoader(
        datasets["validation"], batch_size=args.batch_size, num_workers=args.workers
    )
    optimizer = timm.optim.create_optimizer_v2(model, opt="adamw", lr=args.lr, weight_decay=args.weight_decay)
    scheduler, _ = timm.scheduler.create_scheduler_v2(
        optimizer,
        sched="cosine",
        num_epochs=args.epochs,
        warmup_epochs=1 if args.epochs > 1 else 0,
        warmup_lr=args.lr * 0.01,
        step_on_epochs=False,
        updates_per_epoch=len(train_loader),
    )
    loss_fn = nn.CrossEntropyLoss(label_smoothing=args.smoothing)
    amp = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    best, bad, step = -1.0, 0, 0
    for epoch in range(args.epochs):
        start = time.perf_counter()
        model.train()
        for images, targets in train_loader:
            images, targets = images.to(device), targets.to(device)
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast("cuda", dtype=torch.float16, enabled=amp):
                loss = loss_fn(model(images).float(), targets)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            step += 1
            scheduler.step_update(num_updates=step)
            if args.max_steps and step >= args.max_steps:
                break
        scheduler.step(epoch + 1)
        model.eval()
        correct = total = 0
        with torch.no_grad():
            for images, targets in val_loader:
                predictions = model(images.to(device)).argmax(-1).cpu()
                correct += int((predictions == targets).sum())
                total += len(targets)
        val_acc = correct / max(1, total)
        print(
            f"epoch {epoch + 1}/{args.epochs}  loss {loss.item():.4f}  val acc {val_acc:.3f}  "
            f"{time.perf_counter() - start:.1f}s",
            flush=True,
        )
        if val_acc > best:
            best, bad = val_acc, 0
            timm.models.save_for_hf(
                model, str(args.out), safe_serialization=True, model_config={"label_names": classes}
            )
        else:
            bad += 1
        if (args.patience and bad >= args.patience) or (args.max_steps and step >= args.max_steps):
            break
    print(f"best validation accuracy {best:.3f}; reload with timm.create_model('local-dir:{args.out}')")


if __name__ == "__main__":
    main()
