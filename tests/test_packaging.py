"""The fixed layout installs as tlreg.registry / tlreg.advisor / tlreg.cli / tlreg.data."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib.resources import files
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_python_package_folder_is_listed_in_pyproject() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapped = set(config["package-dir"].values())
    on_disk = {
        p.parent.relative_to(ROOT).as_posix()
        for top in ("registry", "advisor", "cli", "data")
        for p in (ROOT / top).rglob("__init__.py")
    }
    assert on_disk <= mapped, f"add to pyproject packages/package-dir: {sorted(on_disk - mapped)}"
    assert set(config["packages"]) == set(config["package-dir"])


def test_import_from_any_directory(tmp_path: Path) -> None:
    code = "import tlreg.advisor, tlreg.registry, tlreg.cli.main; print(tlreg.registry.__file__)"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def test_package_data_is_found() -> None:
    assert files("tlreg.data").joinpath("catalog.json").is_file()
