"""The wheel ships exactly the five top-level packages (tests/ never), and the script."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.mark.slow
def test_wheel_top_level_is_exactly_the_five_packages(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "-q", "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("clew-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names}
    dist_info = {t for t in top if t.endswith(".dist-info")}
    assert len(dist_info) == 1 and next(iter(dist_info)).startswith("clew-")
    assert top - dist_info == {"harness", "checkers", "nemeses", "clusters", "reports"}
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "clew = harness.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
