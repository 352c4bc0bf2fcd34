"""The facts ``tlreg doctor`` shows: versions, device, offline state, storage locations and sizes."""

from __future__ import annotations

import platform
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from . import config, hub
from .store import Registry

PACKAGES = (
    "tlreg",
    "torch",
    "torchvision",
    "timm",
    "transformers",
    "huggingface_hub",
    "faiss-cpu",
    "sqlmodel",
    "alembic",
    "scikit-learn",
    "numpy",
)


def _version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def folder_size(path: Path) -> int:
    if not path.exists():
        return 0
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def best_device() -> str:
    """CUDA, then Apple's MPS, then the CPU."""
    import torch  # here, not at import: `tlreg --help` loads this module and must not load torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def diagnose(db: str | None = None) -> dict[str, Any]:
    import torch

    url = db or config.db_url()
    report: dict[str, Any] = {"python": sys.version.split()[0], "platform": platform.platform()}
    report.update({f"version {p}": _version(p) for p in PACKAGES})
    report["device"] = best_device()
    if torch.cuda.is_available():
        report["cuda devices"] = ", ".join(
            torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())
        )
    report["torch threads"] = torch.get_num_threads()
    report["hub"] = "online" if hub.online() else f"offline ({hub.offline_reason()})"
    parsed = make_url(url)
    report["database"] = parsed.render_as_string(hide_password=True)
    try:
        report["registered models"] = len(Registry(url).list())
    except Exception as exc:  # doctor must report, not fail: show what is wrong with the database
        report["registered models"] = f"error: {exc}"
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        db_file = Path(parsed.database)
        report["database size (bytes)"] = sum(
            p.stat().st_size for p in db_file.parent.glob(db_file.name + "*") if p.is_file()
        )
    report["feature cache"] = str(config.cache_dir())
    report["feature cache size (bytes)"] = folder_size(config.cache_dir())
    report["hf cache"] = str(config.hf_cache_dir())
    report["hf cache size (bytes)"] = folder_size(config.hf_cache_dir())
    return report
