"""Synthetic covariate stacks and a trained model for the benchmarks.

A stack of ``size x size`` pixels and ``layers`` single-band float32 GeoTIFFs (LZW) is
written once per layout (``tiled``: 256 x 256 tiles; ``striped``: GDAL's default strips,
one row per strip at these widths) and cached under ``benchmarks/data/<size>x<layers>/``.
Both layouts hold identical pixel values, so their outputs can be compared.

Structure, so the model does real work and the nodata logic is exercised:

* a few latent smooth fields (sums of Gaussian bumps on a coarse lattice, several octaves,
  defined in normalised coordinates so the landscape is the same at every size);
* each layer = its own mix of the latents + a layer-specific smooth field + pixel noise,
  scaled to a plausible range;
* an irregular nodata region (a thresholded smooth field, about 15 % of the grid) where
  every layer is nodata, plus per-layer scattered pixels and small discs of nodata
  (about 25 % of pixels have at least one nodata layer overall);
* most layers tag nodata with -3.4e38 (the ESRI float minimum), a few with NaN;
* class labels (strings) come from the argmax of linear scores over the latents; the
  RandomForest (50 trees, max_depth 12) is trained on pixels sampled from the stack, with
  its feature columns in an order that differs from the files' sorted order.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

GENERATOR_VERSION = 1
NODATA_VALUE = -3.3999999521443642e38
CLASS_LABELS = ("water", "forest", "grassland", "cropland", "urban", "bare")
N_LATENTS = 4
TILE = 256
TRAIN_SAMPLES = 60_000
LAYOUTS = ("tiled", "striped")

BASE_NAMES = (
    "elevation",
    "slope",
    "aspect_cos",
    "twi",
    "ndvi_mean",
    "ndvi_sd",
    "rain_annual",
    "temp_mean",
    "temp_range",
    "clay",
    "sand",
    "soc",
    "ph",
    "landsat_b2",
    "landsat_b3",
    "landsat_b4",
    "landsat_b5",
    "landsat_b6",
    "landsat_b7",
    "night_lights",
)


@dataclass(frozen=True)
class Dataset:
    """Paths of one cached stack (one layout) and its model."""

    size: int
    layers: int
    layout: str
    root: Path
    layer_dir: Path
    model_path: Path
    manifest: dict

    @property
    def key(self) -> str:
        return f"{self.size}x{self.layers}_{self.layout}"

    @property
    def pixels(self) -> int:
        return self.size * self.size


def feature_names(layers: int) -> list[str]:
    names = []
    for i in range(layers):
        base = BASE_NAMES[i % len(BASE_NAMES)]
        suffix = "" if i < len(BASE_NAMES) else f"_{i // len(BASE_NAMES)}"
        names.append(f"{i + 1:02d}_{base}{suffix}")
    return names


def _basis(n: int, k: int) -> np.ndarray:
    """(n, k) Gaussian bumps centred on a k-point lattice over [0, 1] (pixel centres)."""
    coords = (np.arange(n, dtype=np.float64) + 0.5) / n
    centres = np.linspace(-0.5 / k, 1 + 0.5 / k, k)
    width = 1.2 / k
    return np.exp(-(((coords[:, None] - centres[None, :]) / width) ** 2)).astype(np.float32)


class _Smooth:
    """Smooth random fields f(x, y) on [0, 1]^2 evaluated as By @ W @ Bx.T per octave."""

    def __init__(self, size: int, octaves: Iterable[int] = (4, 9, 20)) -> None:
        self.size = size
        self.octaves = tuple(octaves)
        self._bases = {k: _basis(size, k) for k in self.octaves}

    def field(
        self, rng: np.random.Generator, amplitudes: Iterable[float] = (1.0, 0.5, 0.25)
    ) -> np.ndarray:
        out = np.zeros((self.size, self.size), dtype=np.float32)
        for k, amp in zip(self.octaves, amplitudes, strict=True):
            w = rng.standard_normal((k, k)).astype(np.float32) * np.float32(amp)
            b = self._bases[k]
            out += (b @ w) @ b.T
        return out


def _region_threshold(seed: int, quantile: float) -> float:
    """Threshold giving the nodata region a size-independent share of the grid."""
    probe = _Smooth(400).field(np.random.default_rng(seed))
    return float(np.quantile(probe, quantile))


def _layer_params(layers: int) -> dict[str, Any]:
    rng = np.random.default_rng(1234)
    return {
        "mix": rng.normal(0, 1, (layers, N_LATENTS)),
        "own": rng.uniform(0.2, 0.6, layers),
        "noise": rng.uniform(0.05, 0.3, layers),
        "scale": rng.uniform(0.5, 500, layers),
        "offset": rng.uniform(-100, 1000, layers),
        "nan_nodata": [i % 7 == 3 for i in range(layers)],
    }


def _manifest_path(root: Path, layout: str) -> Path:
    return root / f"manifest_{layout}.json"


def _read_manifest(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if data.get("generator_version") == GENERATOR_VERSION else None


def _profile(size: int, layout: str, nan_nodata: bool) -> dict:
    from rasterio.crs import CRS
    from rasterio.transform import from_origin

    profile = {
        "driver": "GTiff",
        "width": size,
        "height": size,
        "count": 1,
        "dtype": "float32",
        "crs": CRS.from_epsg(32633),
        "transform": from_origin(400_000.0, 6_000_000.0, 80.0, 80.0),
        "nodata": float("nan") if nan_nodata else NODATA_VALUE,
        "compress": "lzw",
    }
    if layout == "tiled":
        profile.update(tiled=True, blockxsize=TILE, blockysize=TILE)
    return profile


Log = Callable[[str], None]


def ensure_datasets(
    data_dir: Path, size: int, layers: int, layouts: Iterable[str], log: Log = print
) -> dict[str, Dataset]:
    """Return the cached datasets for ``layouts``, generating whatever is missing."""
    layouts = list(layouts)
    for layout in layouts:
        if layout not in LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}; choose from {LAYOUTS}")
    root = data_dir / f"{size}x{layers}"
    root.mkdir(parents=True, exist_ok=True)
    model_path = root / "model.pkl"
    model_meta_path = root / "model.json"
    missing = [lay for lay in layouts if _read_manifest(_manifest_path(root, lay)) is None]
    need_model = _read_manifest(model_meta_path) is None or not model_path.exists()
    if missing or need_model:
        _generate(root, size, layers, missing, need_model, log)
    result = {}
    for layout in layouts:
        manifest = _read_manifest(_manifest_path(root, layout))
        assert manifest is not None
        result[layout] = Dataset(
            size, layers, layout, root, root / f"layers_{layout}", model_path, manifest
        )
    return result


def _generate(
    root: Path, size: int, layers: int, layouts: list[str], need_model: bool, log: Log
) -> None:
    import rasterio

    t0 = time.perf_counter()
    log(
        f"generating {size}x{size}x{layers} stack "
        f"(layouts: {', '.join(layouts) or 'none'}; model: {'yes' if need_model else 'cached'})"
    )
    names = feature_names(layers)
    params = _layer_params(layers)
    smooth = _Smooth(size)
    n = size * size

    latents = [smooth.field(np.random.default_rng(100 + j)) for j in range(N_LATENTS)]
    for lat in latents:  # standardise (mean/std barely depend on the size: smooth fields)
        lat -= np.float32(lat.mean())
        lat /= np.float32(lat.std() + 1e-6)

    region_seed = 7
    region = smooth.field(np.random.default_rng(region_seed)) > _region_threshold(region_seed, 0.85)

    sample_rng = np.random.default_rng(99)
    sample_idx = np.unique(sample_rng.integers(0, n, size=min(n, TRAIN_SAMPLES * 3)))
    samples = np.empty((layers, sample_idx.size), dtype=np.float32)
    sample_valid = ~region.ravel()[sample_idx]

    tmp_dirs = {lay: root / f"layers_{lay}.tmp" for lay in layouts}
    for d in tmp_dirs.values():
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)

    nodata_pixels = np.zeros(n, dtype=np.uint8)  # layers that are nodata, per pixel
    for i, name in enumerate(names):
        rng = np.random.default_rng(10_000 + i * 7919 + size)
        arr = smooth.field(np.random.default_rng(500 + i)) * np.float32(params["own"][i])
        for j in range(N_LATENTS):
            arr += latents[j] * np.float32(params["mix"][i, j])
        arr += rng.standard_normal((size, size), dtype=np.float32) * np.float32(params["noise"][i])
        arr *= np.float32(params["scale"][i])
        arr += np.float32(params["offset"][i])

        bad = region.copy()
        flat_bad = bad.reshape(-1)
        flat_bad[rng.integers(0, n, size=int(n * 0.004))] = True
        for _ in range(3):  # small discs
            cy, cx = rng.uniform(0, 1, 2) * size
            r = rng.uniform(0.005, 0.02) * size
            y0, y1 = int(max(cy - r, 0)), int(min(cy + r + 1, size))
            x0, x1 = int(max(cx - r, 0)), int(min(cx + r + 1, size))
            ys = np.arange(y0, y1)[:, None] + 0.5
            xs = np.arange(x0, x1)[None, :] + 0.5
            bad[y0:y1, x0:x1] |= (ys - cy) ** 2 + (xs - cx) ** 2 <= r * r
        nan_nodata = params["nan_nodata"][i]
        arr[bad] = np.float32(np.nan) if nan_nodata else np.float32(NODATA_VALUE)

        samples[i] = arr.reshape(-1)[sample_idx]
        sample_valid &= ~flat_bad[sample_idx]
        nodata_pixels += flat_bad
        for layout, d in tmp_dirs.items():
            with rasterio.open(d / f"{name}.tif", "w", **_profile(size, layout, nan_nodata)) as dst:
                dst.write(arr, 1)
        del arr, bad
        log(f"  layer {i + 1}/{layers} {name} ({time.perf_counter() - t0:.0f} s)")

    masked_fraction = float(np.count_nonzero(nodata_pixels)) / n
    del nodata_pixels
    if need_model:
        _train_model(root, names, latents, sample_idx, samples, sample_valid, log)
    del latents

    for layout, d in tmp_dirs.items():
        final = root / f"layers_{layout}"
        shutil.rmtree(final, ignore_errors=True)
        os.replace(d, final)
        with rasterio.open(final / f"{names[0]}.tif") as src:
            block = src.block_shapes[0]
        manifest = {
            "generator_version": GENERATOR_VERSION,
            "size": size,
            "layers": layers,
            "layout": layout,
            "block_shape": list(block),
            "features": names,
            "nodata_value": NODATA_VALUE,
            "masked_fraction_threshold0": masked_fraction,
            "bytes_on_disk": sum(p.stat().st_size for p in final.iterdir()),
            "generated_seconds": round(time.perf_counter() - t0, 1),
        }
        _manifest_path(root, layout).write_text(json.dumps(manifest, indent=1))
    log(f"generated in {time.perf_counter() - t0:.0f} s")


def _train_model(
    root: Path,
    names: list[str],
    latents: list[np.ndarray],
    sample_idx: np.ndarray,
    samples: np.ndarray,
    sample_valid: np.ndarray,
    log: Log,
) -> None:
    import pandas as pd
    from sklearn.ensemble import RandomForestClassifier

    idx = sample_idx[sample_valid][:TRAIN_SAMPLES]
    x = samples[:, sample_valid][:, :TRAIN_SAMPLES]
    lat = np.stack([latent.reshape(-1)[idx] for latent in latents], axis=1)
    rng = np.random.default_rng(5)
    weights = rng.normal(0, 1, (N_LATENTS, len(CLASS_LABELS)))
    scores = lat @ weights + rng.normal(0, 0.3, (lat.shape[0], len(CLASS_LABELS)))
    labels = np.asarray(CLASS_LABELS, dtype=object)[np.argmax(scores, axis=1)]

    order = list(np.random.default_rng(11).permutation(len(names)))
    frame = pd.DataFrame({names[i]: x[i] for i in order})
    t0 = time.perf_counter()
    model = RandomForestClassifier(n_estimators=50, max_depth=12, random_state=0, n_jobs=-1)
    model.fit(frame, labels)
    model.n_jobs = None  # predict single-threaded; parallelism is the tool's business
    tmp = root / "model.pkl.tmp"
    with open(tmp, "wb") as fh:
        pickle.dump(model, fh, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, root / "model.pkl")
    counts = dict(zip(*np.unique(labels, return_counts=True), strict=True))
    meta = {
        "generator_version": GENERATOR_VERSION,
        "estimator": "RandomForestClassifier(n_estimators=50, max_depth=12)",
        "train_rows": int(frame.shape[0]),
        "feature_order": list(frame.columns),
        "classes": [str(c) for c in model.classes_],
        "label_counts": {str(k): int(v) for k, v in counts.items()},
        "train_seconds": round(time.perf_counter() - t0, 2),
    }
    (root / "model.json").write_text(json.dumps(meta, indent=1))
    log(f"  trained model on {frame.shape[0]} pixels in {meta['train_seconds']} s")


def main(argv: list[str] | None = None) -> int:
    """CLI used by run_benchmarks.py (so the harness itself stays small): generate what is
    missing, then print the datasets as one JSON line on stdout (progress goes to stderr)."""
    import argparse
    import sys

    ap = argparse.ArgumentParser(description="generate (or reuse) cached benchmark stacks")
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("--layers", type=int, default=20)
    ap.add_argument("--layouts", nargs="+", choices=LAYOUTS, default=list(LAYOUTS))
    args = ap.parse_args(argv)
    datasets = ensure_datasets(
        args.data,
        args.size,
        args.layers,
        args.layouts,
        log=lambda msg: print(msg, file=sys.stderr, flush=True),
    )
    print(
        json.dumps(
            {
                layout: {
                    "size": ds.size,
                    "layers": ds.layers,
                    "layout": ds.layout,
                    "root": str(ds.root),
                    "layer_dir": str(ds.layer_dir),
                    "model_path": str(ds.model_path),
                    "manifest": ds.manifest,
                }
                for layout, ds in datasets.items()
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
