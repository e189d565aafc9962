"""The screen's templates and static files ship in the wheel: the package-data
globs of pyproject.toml cover every file the pages need."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from helpers import ROOT


def test_the_wheel_carries_every_template_and_static_file(tmp_path: Path) -> None:
    # Built from a copy, so that the build leaves nothing in the checkout.
    source = tmp_path / "source"
    for folder in ("daemon", "channels", "plugins", "templates"):
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path / "dist"), str(source)], check=True, capture_output=True,
                   timeout=300)
    [wheel] = (tmp_path / "dist").glob("relances-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    web = ROOT / "daemon" / "web"
    needed = [p for folder in ("templates", "static") for p in (web / folder).rglob("*") if p.is_file()]
    assert len(needed) >= 8
    missing = [str(p.relative_to(ROOT)) for p in needed
               if f"relances/daemon/web/{p.relative_to(web).as_posix()}" not in names]
    assert not missing, f"not in the wheel: {missing}"
