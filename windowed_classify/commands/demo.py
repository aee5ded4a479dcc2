"""``demo``: a synthetic covariate stack and a small model, then a real run over them.

The stack looks like soil-mapping covariates: smooth climate, terrain and radiometric fields,
an irregular nodata region (a "sea") in every layer, and scattered nodata in several layers
with three different encodings (the ArcGIS float32 value, a file nodata tag, and NaN).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

from ..config import ARCGIS_FLOAT32_NODATA
from ..errors import OutputError

log = logging.getLogger(__name__)

# name -> (offset, scale, how the nodata of scattered pixels is written)
LAYERS = {
    "Clim_etaaann": (600.0, 250.0, "arcgis"),
    "Clim_rainann": (800.0, 400.0, "arcgis"),
    "Clim_tmaxann": (24.0, 4.0, "none"),
    "Elev_dem": (300.0, 220.0, "tag"),
    "Elev_slope": (4.0, 3.0, "tag"),
    "Geol_gravity": (0.0, 30.0, "none"),
    "Rad_k": (1.2, 0.6, "nan"),
    "Rad_th": (10.0, 4.0, "arcgis"),
    "Veg_ndvi": (0.45, 0.15, "none"),
}
CLASSES = ("Kandosol", "Sodosol", "Tenosol", "Vertosol", "Ferrosol")
FILE_NODATA = -9999.0


def smooth_field(rng: np.random.Generator, size: int, scales: tuple[int, ...] = (6, 24, 96)):
    """Sum of upsampled random grids: smooth at several scales, values about N(0, 1)."""
    out = np.zeros((size, size), dtype=np.float64)
    for cells in scales:
        coarse = rng.normal(size=(cells + 1, cells + 1))
        idx = np.linspace(0, cells, size)
        i0 = np.floor(idx).astype(int).clip(0, cells - 1)
        f = idx - i0
        rows = coarse[i0] * (1 - f)[:, None] + coarse[i0 + 1] * f[:, None]
        out += (rows[:, i0] * (1 - f)[None, :] + rows[:, i0 + 1] * f[None, :]) / np.sqrt(cells)
    return (out - out.mean()) / out.std()


def make_stack(folder: Path, size: int, seed: int = 7) -> Path:
    rng = np.random.default_rng(seed)
    cov = folder / "covariates"
    cov.mkdir(parents=True, exist_ok=True)
    sea = smooth_field(rng, size, (3, 9)) + np.linspace(-1.5, 1.0, size)[None, :] > 1.1
    latent = [smooth_field(rng, size) for _ in range(3)]
    transform = from_origin(140.0, -20.0, 0.0008, 0.0008)
    for i, (name, (offset, scale, encoding)) in enumerate(LAYERS.items()):
        mix = latent[i % 3] * 0.8 + smooth_field(rng, size, (12, 48)) * 0.6
        values = (offset + scale * mix).astype(np.float32)
        scattered = rng.random((size, size)) < 0.004
        profile = {
            "driver": "GTiff",
            "width": size,
            "height": size,
            "count": 1,
            "dtype": "float32",
            "crs": "EPSG:4326",
            "transform": transform,
            "compress": "lzw",
            "tiled": True,
            "blockxsize": 256,
            "blockysize": 256,
        }
        values[sea] = ARCGIS_FLOAT32_NODATA
        if encoding == "arcgis":
            values[scattered] = ARCGIS_FLOAT32_NODATA
        elif encoding == "tag":
            values[scattered] = FILE_NODATA
            profile["nodata"] = FILE_NODATA
        elif encoding == "nan":
            values[scattered] = np.nan
        with rasterio.open(cov / f"{name}.tif", "w", **profile) as ds:
            ds.write(values, 1)
    return cov


def train_model(folder: Path, cov: Path, n_samples: int = 20000, seed: int = 7) -> Path:
    """A small RandomForest on pixels sampled from the stack, with string labels."""
    import joblib
    import pandas as pd
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(seed)
    columns = {}
    with rasterio.open(cov / "Elev_dem.tif") as ds:
        size = ds.width
    rows = rng.integers(0, size, n_samples * 2)
    cols = rng.integers(0, size, n_samples * 2)
    for name in LAYERS:
        with rasterio.open(cov / f"{name}.tif") as ds:
            columns[name] = ds.read(1)[rows, cols]
    frame = pd.DataFrame(columns)
    ok = np.isfinite(frame.to_numpy()).all(axis=1) & (frame.to_numpy() > -1e30).all(axis=1)
    ok &= (frame["Elev_dem"] != FILE_NODATA).to_numpy() & (frame["Elev_slope"] != FILE_NODATA)
    frame = frame[ok].head(n_samples).reset_index(drop=True)
    z = lambda c: (frame[c] - frame[c].mean()) / frame[c].std()  # noqa: E731
    score = np.stack(
        [
            z("Clim_rainann") - z("Elev_dem"),
            z("Rad_k") + 0.5 * z("Clim_tmaxann"),
            -z("Veg_ndvi") - z("Clim_rainann"),
            z("Geol_gravity") - z("Elev_slope"),
            z("Rad_th") + z("Veg_ndvi") - 0.5 * z("Clim_etaaann"),
        ],
        axis=1,
    ) + rng.normal(scale=0.6, size=(len(frame), len(CLASSES)))
    labels = np.array(CLASSES)[score.argmax(axis=1)]
    model = RandomForestClassifier(n_estimators=30, max_depth=10, random_state=seed, n_jobs=1)
    model.fit(frame, labels)
    path = folder / "model.pkl"
    joblib.dump(model, path)
    return path


CONFIG_TEXT = """\
# windowed_classify demo config; every key: python -m windowed_classify example-config
rasters:
  folder: covariates
  extensions: [.tif, .tiff]
nodata:
  values: [-3.3999999521443642e+38]   # ArcGIS float32 nodata; NaN and inf always count
  use_file_nodata: true               # Elev_dem and Elev_slope carry a -9999 nodata tag
  threshold: 0                        # mask a pixel when more than 0 layers are nodata
model:
  path: model.pkl
output:
  path: prediction.tif
  dtype: uint8
  nodata: 255
  compress: lzw
  overwrite: true
  confidence: confidence.tif          # the highest class probability, percent (255 masked)
  # probabilities: probabilities.tif  # one band per class
  # cog: true                         # Cloud Optimized GeoTIFFs
  # preview: preview.png              # needs: pip install 'windowed_classify[preview]'
processing:
  memory_mb: 256
"""


DEMO_OUTPUTS = (
    "prediction.tif",
    "prediction.report.json",
    "prediction.qml",
    "prediction.legend.csv",
    "prediction.tif.aux.xml",
    "confidence.tif",
)


def demo_files(folder: Path) -> list[Path]:
    """Every file the demo writes (covariates, model, config, run outputs)."""
    names = [f"covariates/{name}.tif" for name in LAYERS]
    return [folder / n for n in ("config.yaml", "model.pkl", *names, *DEMO_OUTPUTS)]


def run_demo(
    folder: Path,
    size: int = 1500,
    workers: int | None = None,
    quiet: bool = False,
    overwrite: bool = False,
) -> dict:
    """Write the demo stack, model and config under ``folder`` and classify it. Files there
    (an edited config.yaml, say) are never replaced unless ``overwrite``."""
    from ..api import run
    from ..report import summary

    folder = Path(folder)
    existing = [p for p in demo_files(folder) if p.exists()]
    if existing and not overwrite:
        more = f" and {len(existing) - 1} other demo file(s)" if len(existing) > 1 else ""
        raise OutputError(
            f"the demo would replace {existing[0]}{more}; pass --overwrite to replace them, or "
            "give another folder"
        )
    folder.mkdir(parents=True, exist_ok=True)
    log.info("demo: writing a %d x %d x %d stack under %s", size, size, len(LAYERS), folder)
    cov = make_stack(folder, size)
    log.info("demo: training a RandomForest on sampled pixels")
    train_model(folder, cov)
    config = folder / "config.yaml"
    config.write_text(CONFIG_TEXT, encoding="utf-8")
    report = run(config, quiet=quiet, workers=workers)
    counts = ", ".join(
        f"{report['legend'].get(code, 'masked')}: {n}" for code, n in report["pixel_counts"].items()
    )
    print(f"demo config: {config}")
    print(summary(report))
    print(f"pixel counts: {counts}")
    return report
