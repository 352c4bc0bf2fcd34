"""Fine-tune a pretrained model on your data with plain PyTorch (and timm or transformers).

Written by ``tlreg finetune --export script``: the settings below are the ones tlreg chose; the
script needs no tlreg at run time. It trains a new linear head on the model's penultimate features
(and, by the mode, the last blocks or the whole model) with AdamW, linear warm-up then cosine decay,
optional label smoothing, mixed precision on CUDA and early stopping on validation accuracy, and
saves the best epoch. Run ``python train.py --help``; ``--max-steps 1`` is a smoke test.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import random
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

DEFAULTS: dict[str, Any] = {}  # replaced by tlreg finetune --export

HERE = Path(__file__).resolve().parent


def read_split(path: Path, column: str, classes: list[str]) -> tuple[list[str], list[int]]:
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return [r[column] for r in rows], [classes.index(r["label"]) for r in rows]


class Net(nn.Module):
    """The backbone and a classifier on its penultimate features: ``forward(batch) -> logits``."""

    def __init__(self, cfg: dict[str, Any], folder: Path, n_classes: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.head: nn.Module | None = None
        if cfg["library"] == "timm":
            import timm

            self.backbone = timm.create_model(f"local-dir:{folder}", pretrained=True, num_classes=n_classes)
            data_cfg = timm.data.resolve_model_data_config(self.backbone)
            self.transform = timm.data.create_transform(**data_cfg, is_training=False)
        elif cfg["modality"] == "image":
            import transformers as tf

            self.processor = tf.AutoImageProcessor.from_pretrained(folder)
            # Hub kernels are code from the Hub (transformers >= 5.25 fetches them by default): off.
            if cfg["hf_head"]:
                self.backbone = tf.AutoModelForImageClassification.from_pretrained(
                    folder, num_labels=n_classes, ignore_mismatched_sizes=True, use_kernels=False
                )
            else:
                self.backbone = tf.AutoModel.from_pretrained(folder, use_kernels=False)
                self.head = nn.Linear(cfg["feature_dim"], n_classes)
        else:
            import transformers as tf

            self.tokenizer = tf.AutoTokenizer.from_pretrained(folder)
            self.backbone = tf.AutoModel.from_pretrained(folder, use_kernels=False)
            self.head = nn.Linear(cfg["feature_dim"], n_classes)

    def head_parameters(self) -> list[nn.Parameter]:
        """The new classifier's parameters (it learns at ``head_lr_scale`` times the backbone's lr)."""
        if self.head is not None:
            return list(self.head.parameters())
        if self.cfg["library"] == "timm":
            return list(self.backbone.get_classifier().parameters())
        return list(self.backbone.classifier.parameters())

    def prepare(self, items: list[str]) -> Any:
        """A batch of model inputs from image paths or texts."""
        if self.cfg["modality"] == "text":
            return dict(
                self.tokenizer(
                    items,
                    padding=True,
                    truncation=True,
                    max_length=self.cfg["max_length"],
                    return_tensors="pt",
                )
            )
        from PIL import Image

        images = []
        for path in items:
            with Image.open(path) as img:
                images.append(img.convert("RGB"))
        if self.cfg["library"] == "timm":
            return torch.stack([self.transform(img) for img in images])
        return self.processor(images=images, return_tensors="pt")["pixel_values"]

    def forward(self, batch: Any) -> torch.Tensor:
        cfg = self.cfg
        if cfg["library"] == "timm":
            return self.backbone(batch)
        if cfg["modality"] == "image":
            if cfg["hf_head"]:
                return self.backbone(pixel_values=batch).logits
            hidden = self.backbone(pixel_values=batch).last_hidden_state
            return self.head(hidden[:, 0] if hidden.dim() == 3 else hidden.flatten(2).mean(-1))
        hidden = self.backbone(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        if cfg["pooling"] == "cls":
            feats = hidden[:, 0]
        elif cfg["pooling"] == "max":
            feats = hidden.masked_fill(mask == 0, float("-inf")).amax(1)
        else:
            feats = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        if cfg["normalize"]:
            feats = nn.functional.normalize(feats, dim=-1)
        return self.head(feats)


def freeze(backbone: nn.Module, frozen: list[str]) -> None:
    """Freeze the parameters tlreg's mode leaves untrained (``name.``: a whole module)."""
    for name, param in backbone.named_parameters():
        if any(name.startswith(f) if f.endswith(".") else name == f for f in frozen):
            param.requires_grad_(False)


def to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, dict):
        return {k: v.to(device) for k, v in batch.items()}
    return batch.to(device)


def evaluate(net: Net, items: list[str], labels: list[int], args: argparse.Namespace, device: torch.device):
    net.eval()
    loss, correct = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(items), args.batch_size):
            x = to_device(net.prepare(items[start : start + args.batch_size]), device)
            y = torch.tensor(labels[start : start + args.batch_size], device=device)
            logits = net(x).float()
            loss += float(nn.functional.cross_entropy(logits, y, reduction="sum"))
            correct += int((logits.argmax(-1) == y).sum())
    return loss / max(1, len(items)), correct / max(1, len(items))


def main() -> None:
    cfg = DEFAULTS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, default=HERE / cfg["train_csv"], help="CSV: item, label")
    parser.add_argument("--val", type=Path, default=HERE / cfg["val_csv"])
    parser.add_argument("--backbone", type=Path, default=HERE / cfg["backbone"])
    parser.add_argument("--out", type=Path, default=HERE / "output")
    parser.add_argument("--epochs", type=int, default=cfg["epochs"])
    parser.add_argument("--lr", type=float, default=cfg["lr"])
    parser.add_argument("--batch-size", type=int, default=cfg["batch_size"])
    parser.add_argument("--weight-decay", type=float, default=cfg["weight_decay"])
    parser.add_argument("--label-smoothing", type=float, default=cfg["label_smoothing"])
    parser.add_argument("--patience", type=int, default=cfg["patience"], help="0: no early stopping")
    parser.add_argument("--seed", type=int, default=cfg["seed"])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0: no limit)")
    args = parser.parse_args()

    random.seed(args.seed)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    classes = cfg["classes"]
    train_items, train_labels = read_split(args.train, cfg["column"], classes)
    val_items, val_labels = read_split(args.val, cfg["column"], classes)
    net = Net(cfg, args.backbone, len(classes)).to(device)
    freeze(net.backbone, cfg["frozen"])
    head_ids = {id(p) for p in net.head_parameters()}
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for param in net.parameters():
        if param.requires_grad:
            groups.setdefault((id(param) in head_ids, param.ndim > 1), []).append(param)
    optimizer = torch.optim.AdamW(
        [
            {
                "params": ps,
                "lr": args.lr * (cfg["head_lr_scale"] if is_head else 1.0),
                "weight_decay": args.weight_decay if decays else 0.0,
            }
            for (is_head, decays), ps in groups.items()
        ]
    )
    steps_per_epoch = math.ceil(len(train_items) / args.batch_size)
    total = args.epochs * steps_per_epoch
    warmup = max(1, round(cfg["warmup"] * total))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    amp = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    criterion = nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)
    best, bad, step = -1.0, 0, 0
    args.out.mkdir(parents=True, exist_ok=True)
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        net.train()
        order = torch.randperm(len(train_items)).tolist()
        seen, loss_sum, correct = 0, 0.0, 0
        for first in range(0, len(order), args.batch_size):
            idx = order[first : first + args.batch_size]
            x = to_device(net.prepare([train_items[i] for i in idx]), device)
            y = torch.tensor([train_labels[i] for i in idx], device=device)
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast("cuda", dtype=torch.float16, enabled=amp):
                logits = net(x)
            loss = criterion(logits.float(), y)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            step += 1
            seen += len(idx)
            loss_sum += loss.item() * len(idx)
            correct += int((logits.argmax(-1) == y).sum())
            if args.max_steps and step >= args.max_steps:
                break
        val_loss, val_acc = evaluate(net, val_items, val_labels, args, device)
        print(
            f"epoch {epoch}/{args.epochs}  train loss {loss_sum / seen:.4f} acc {correct / seen:.3f}  "
            f"val loss {val_loss:.4f} acc {val_acc:.3f}  {time.perf_counter() - start:.1f}s",
            flush=True,
        )
        if val_acc > best:
            best, bad = val_acc, 0
            torch.save(net.state_dict(), args.out / "best.pt")
            (args.out / "best.json").write_text(
                json.dumps({"epoch": epoch, "val_acc": val_acc, "classes": classes})
            )
        else:
            bad += 1
        if (args.patience and bad >= args.patience) or (args.max_steps and step >= args.max_steps):
            break
    print(f"best validation accuracy {best:.3f}; weights in {args.out / 'best.pt'}")


if __name__ == "__main__":
    main()
