"""Fine-tune a pretrained model on your data with the Hugging Face ``Trainer``.

Written by ``tlreg finetune --export hf``. Texts train an ``AutoModelForSequenceClassification``,
images an ``AutoModelForImageClassification`` (timm models through transformers' timm wrapper), each
with a new classifier; the settings (AdamW, cosine schedule with warm-up, label smoothing, early
stopping on validation accuracy, fp16 on CUDA) are tlreg's. Needs ``transformers`` and
``accelerate``. ``--max-steps 1`` is a smoke test.
"""

from __future__ import annotations

import argparse
import csv
import inspect
from pathlib import Path
from typing import Any

import numpy as np
import torch
import transformers as tf

DEFAULTS: dict[str, Any] = {}  # replaced by tlreg finetune --export

HERE = Path(__file__).resolve().parent


class Rows(torch.utils.data.Dataset):
    """One CSV split (item, label) as the dicts the Trainer feeds its model."""

    def __init__(self, path: Path, cfg: dict[str, Any], preprocess: Any) -> None:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        self.items = [r[cfg["column"]] for r in rows]
        self.labels = [cfg["classes"].index(r["label"]) for r in rows]
        self.cfg, self.preprocess = cfg, preprocess

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        if self.cfg["modality"] == "text":
            encoded = self.preprocess(self.items[i], truncation=True, max_length=self.cfg["max_length"])
            return {**encoded, "labels": self.labels[i]}
        from PIL import Image

        with Image.open(self.items[i]) as img:
            pixels = self.preprocess(images=img.convert("RGB"), return_tensors="pt")["pixel_values"][0]
        return {"pixel_values": pixels, "labels": self.labels[i]}


def accuracy(prediction: Any) -> dict[str, float]:
    logits = (
        prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
    )
    return {"accuracy": float((np.argmax(logits, -1) == prediction.label_ids).mean())}


def main() -> None:
    cfg = DEFAULTS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, default=HERE / cfg["train_csv"])
    parser.add_argument("--val", type=Path, default=HERE / cfg["val_csv"])
    parser.add_argument("--backbone", type=Path, default=HERE / cfg["backbone"])
    parser.add_argument("--out", type=Path, default=HERE / "output")
    parser.add_argument("--epochs", type=int, default=cfg["epochs"])
    parser.add_argument("--lr", type=float, default=cfg["lr"])
    parser.add_argument("--batch-size", type=int, default=cfg["batch_size"])
    parser.add_argument("--patience", type=int, default=cfg["patience"], help="0: no early stopping")
    parser.add_argument("--seed", type=int, default=cfg["seed"])
    parser.add_argument("--cpu", action="store_true", help="train on the CPU even if a GPU is present")
    parser.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0: no limit)")
    args = parser.parse_args()

    classes = cfg["classes"]
    labels = {
        "num_labels": len(classes),
        "id2label": dict(enumerate(classes)),
        "label2id": {c: i for i, c in enumerate(classes)},
    }
    config = tf.AutoConfig.from_pretrained(args.backbone, **labels)
    if isinstance(
        getattr(config, "model_args", None), dict
    ):  # timm wrapper: the head size comes from num_labels
        config.model_args.pop("num_classes", None)
    if cfg["modality"] == "text":
        preprocess = tf.AutoTokenizer.from_pretrained(args.backbone)
        auto = tf.AutoModelForSequenceClassification
        collator = tf.DataCollatorWithPadding(preprocess)
    else:
        preprocess = tf.AutoImageProcessor.from_pretrained(args.backbone)
        auto = tf.AutoModelForImageClassification
        collator = None
    # Hub kernels are code from the Hub (transformers >= 5.25 fetches them by default): off.
    model = auto.from_pretrained(
        args.backbone, config=config, ignore_mismatched_sizes=True, use_kernels=False
    )
    base = f"{model.base_model_prefix}." if model.base_model_prefix else ""
    for name, param in model.named_parameters():  # what tlreg's mode leaves untrained
        names = {name, name.removeprefix(base)} if base else {name}
        if any(n.startswith(f) if f.endswith(".") else n == f for f in cfg["frozen"] for n in names):
            param.requires_grad_(False)
    params = inspect.signature(tf.TrainingArguments).parameters
    warmup = {"warmup_ratio": cfg["warmup"]} if "warmup_ratio" in params else {"warmup_steps": cfg["warmup"]}
    training = tf.TrainingArguments(
        output_dir=str(args.out),
        num_train_epochs=args.epochs,
        max_steps=args.max_steps or -1,
        learning_rate=args.lr,
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=args.batch_size,
        weight_decay=cfg["weight_decay"],
        lr_scheduler_type="cosine",
        label_smoothing_factor=cfg["label_smoothing"],
        eval_strategy="epoch",
        save_strategy="epoch",
        save_total_limit=1,
        load_best_model_at_end=True,
        metric_for_best_model="accuracy",
        seed=args.seed,
        fp16=torch.cuda.is_available() and not args.cpu,
        use_cpu=args.cpu,
        remove_unused_columns=False,
        report_to=[],
        **warmup,
    )
    callbacks = [tf.EarlyStoppingCallback(early_stopping_patience=args.patience)] if args.patience else []
    trainer = tf.Trainer(
        model=model,
        args=training,
        train_dataset=Rows(args.train, cfg, preprocess),
        eval_dataset=Rows(args.val, cfg, preprocess),
        data_collator=collator,
        compute_metrics=accuracy,
        callbacks=callbacks,
    )
    trainer.train()
    print(trainer.evaluate())
    trainer.save_model(str(args.out / "best"))
    preprocess.save_pretrained(str(args.out / "best"))
    print(f"best model in {args.out / 'best'}")


if __name__ == "__main__":
    main()
