"""The seed's scale: 100 float32 LZW layers of 4,472 x 4,472 (20 M pixels), streamed to disk.

  nice -n 10 python benchmarks/seedgen.py --data /work/benchdata/seed
  python benchmarks/seedgen.py --data /tmp/seed-smoke --size 600 --layers 10   # a small one

Writes ``<data>/<size>x<layers>/``: ``layers/NN_name.tif`` (float32, LZW, 256 x 256 tiles,
EPSG:32633, 80 m pixels), ``manifest.json``, the RandomForest of the size suite trained on
sampled pixels (``model.pkl``, ``model.json``) and its training rows (``train.npz``, for the
AutoML ensemble that seed_automl.py builds in the AutoML venv). Generated once: a stack
whose manifest has this GENERATOR_VERSION is reused.

Flat memory: the grid is produced one band of tile rows at a time, every layer's band
written to its open file before the next band is made, so no layer is ever whole in memory:
one band of each field, GDAL's 64 MB write cache, a 1-byte-per-pixel nodata counter (20 MB
at full size) and the training sample (72 MB). Measured peak RSS: 593 MB at 4,472^2 x 100,
446 MB at 1,000^2 x 100 (training the RandomForest included). The landscape is datagen.py's
(smooth latent fields mixed per layer, a layer-specific smooth field, pixel noise),
evaluated by rows.

Nodata, chosen so that ``nodata.threshold`` 0 and 1 differ:

* a shared irregular region (a thresholded smooth field, about 15 % of the grid) where
  every layer is nodata;
* per layer, 0.1 % scattered pixels and two small discs: with 100 layers about 13 % of the
  remaining pixels have one nodata layer (masked at threshold 0, median-filled at
  threshold 1) and about 1 % two or more (masked at both);
* every seventh layer tags nodata as NaN, the others as -3.4e38 (in the file's tag too).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run from anywhere
import datagen  # noqa: E402  (the suite's landscape: basis, layer parameters, names)

GENERATOR_VERSION = 1
SEED_SIZE = 4472  # 4,472^2 = 20.0 M pixels, the seed's 'about 20 million'
SEED_LAYERS = 100
TILE = 256
BAND_ROWS = TILE  # one row of tiles: every write covers whole tiles, which GDAL can flush
SCATTER = 0.001  # per layer, share of pixels that are scattered nodata
DISCS = 2  # per layer, small discs of nodata
DISC_RADIUS = (0.004, 0.012)  # share of the side length
REGION_QUANTILE = 0.85  # the shared nodata region: the top 15 % of a smooth field
TRAIN_SAMPLES = datagen.TRAIN_SAMPLES  # 60,000 fully valid pixels, as the suite's model
GDAL_WRITE_CACHE_MB = 64

Log = Callable[[str], None]


class RowField:
    """A smooth random field on [0, 1]^2, evaluated a band of rows at a time.

    datagen._Smooth's construction (Gaussian bumps on a k x k lattice, several octaves, the
    weights drawn in the same order), as ``B[rows] @ (W @ B.T)`` so that no full grid is
    ever made."""

    def __init__(
        self,
        size: int,
        rng: np.random.Generator,
        octaves: tuple[int, ...] = (4, 9, 20),
        amplitudes: tuple[float, ...] = (1.0, 0.5, 0.25),
    ) -> None:
        self.size = size
        self.terms = []
        for k, amp in zip(octaves, amplitudes, strict=True):
            basis = datagen._basis(size, k)
            w = rng.standard_normal((k, k)).astype(np.float32) * np.float32(amp)
            self.terms.append((basis, w @ basis.T))

    def rows(self, r0: int, r1: int) -> np.ndarray:
        out = np.zeros((r1 - r0, self.size), dtype=np.float32)
        for basis, right in self.terms:
            out += basis[r0:r1] @ right
        return out

    def moments(self) -> tuple[float, float]:
        """Mean and standard deviation over the whole grid, band by band."""
        total = total_sq = 0.0
        for r0 in range(0, self.size, BAND_ROWS):
            band = self.rows(r0, min(r0 + BAND_ROWS, self.size)).astype(np.float64)
            total += float(band.sum())
            total_sq += float(np.square(band).sum())
        n = self.size * self.size
        mean = total / n
        return mean, max(total_sq / n - mean * mean, 0.0) ** 0.5


def stack_root(data: Path, size: int, layers: int) -> Path:
    return data / f"{size}x{layers}"


def read_manifest(root: Path) -> dict[str, Any] | None:
    try:
        manifest = json.loads((root / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("generator_version") != GENERATOR_VERSION:
        return None
    if not (root / "model.pkl").exists() or not (root / "train.npz").exists():
        return None
    return manifest


def _discs(size: int, layer: int) -> list[tuple[float, float, float]]:
    rng = np.random.default_rng([31, layer])
    return [
        (*(rng.uniform(0, 1, 2) * size), rng.uniform(*DISC_RADIUS) * size) for _ in range(DISCS)
    ]


def _disc_mask(bad: np.ndarray, r0: int, discs: list[tuple[float, float, float]]) -> None:
    """Mark the discs' pixels in the band starting at row ``r0``."""
    rows, size = bad.shape
    for cy, cx, r in discs:
        y0, y1 = int(max(cy - r, r0)), int(min(cy + r + 1, r0 + rows))
        if y0 >= y1:
            continue
        x0, x1 = int(max(cx - r, 0)), int(min(cx + r + 1, size))
        ys = np.arange(y0, y1)[:, None] + 0.5
        xs = np.arange(x0, x1)[None, :] + 0.5
        bad[y0 - r0 : y1 - r0, x0:x1] |= (ys - cy) ** 2 + (xs - cx) ** 2 <= r * r


def generate(data: Path, size: int, layers: int, log: Log) -> dict[str, Any]:
    """Write the stack, its model and training rows; return the manifest."""
    import rasterio
    from rasterio.windows import Window

    t0 = time.perf_counter()
    root = stack_root(data, size, layers)
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / "layers.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    names = datagen.feature_names(layers)
    params = datagen._layer_params(layers)
    n = size * size
    log(f"generating {size}x{size}x{layers} into {root} (bands of {BAND_ROWS} rows)")

    latents = [RowField(size, np.random.default_rng(100 + j)) for j in range(datagen.N_LATENTS)]
    moments = [lat.moments() for lat in latents]  # standardised, as datagen does
    own = [RowField(size, np.random.default_rng(500 + i)) for i in range(layers)]
    region = RowField(size, np.random.default_rng(7))
    region_cut = datagen._region_threshold(7, REGION_QUANTILE)
    discs = [_discs(size, i) for i in range(layers)]

    sample_idx = np.unique(np.random.default_rng(99).integers(0, n, size=min(n, TRAIN_SAMPLES * 3)))
    samples = np.empty((layers, sample_idx.size), dtype=np.float32)
    sample_latents = np.empty((datagen.N_LATENTS, sample_idx.size), dtype=np.float32)
    sample_valid = np.ones(sample_idx.size, dtype=bool)
    nodata_layers = np.zeros(n, dtype=np.uint8)  # per pixel: how many layers are nodata
    nodata = [np.float32(np.nan if nan else datagen.NODATA_VALUE) for nan in params["nan_nodata"]]

    profiles = [datagen._profile(size, "tiled", params["nan_nodata"][i]) for i in range(layers)]
    with rasterio.Env(GDAL_CACHEMAX=GDAL_WRITE_CACHE_MB * 1024 * 1024):
        files = [
            rasterio.open(tmp / f"{name}.tif", "w", **profile)
            for name, profile in zip(names, profiles, strict=True)
        ]
        try:
            for band, r0 in enumerate(range(0, size, BAND_ROWS)):
                r1 = min(r0 + BAND_ROWS, size)
                lat = [
                    (field.rows(r0, r1) - np.float32(m)) / np.float32(s + 1e-6)
                    for field, (m, s) in zip(latents, moments, strict=True)
                ]
                shared = region.rows(r0, r1) > region_cut
                lo, hi = np.searchsorted(sample_idx, [r0 * size, r1 * size])
                local = sample_idx[lo:hi] - r0 * size
                for j, values in enumerate(lat):
                    sample_latents[j, lo:hi] = values.reshape(-1)[local]
                counts = nodata_layers[r0 * size : r1 * size].reshape(r1 - r0, size)
                for i in range(layers):
                    arr = _layer_band(i, band, r0, r1, lat, own[i], params)
                    bad = shared.copy()
                    rng = np.random.default_rng([20_000, i, band])
                    hits = rng.binomial(bad.size, SCATTER)
                    bad.reshape(-1)[rng.integers(0, bad.size, hits)] = True
                    _disc_mask(bad, r0, discs[i])
                    arr[bad] = nodata[i]
                    counts += bad
                    samples[i, lo:hi] = arr.reshape(-1)[local]
                    sample_valid[lo:hi] &= ~bad.reshape(-1)[local]
                    files[i].write(arr, 1, window=Window(0, r0, size, r1 - r0))
                log(f"  rows {r1}/{size} ({time.perf_counter() - t0:.0f} s)")
        finally:
            for f in files:
                f.close()

    stream_peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before training
    histogram = np.bincount(nodata_layers, minlength=layers + 1)
    del nodata_layers
    final = root / "layers"
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    gen_seconds = time.perf_counter() - t0
    model_meta = _train(root, names, samples, sample_latents, sample_valid, log)
    manifest = {
        "generator_version": GENERATOR_VERSION,
        "size": size,
        "layers": layers,
        "pixels": n,
        "layout": "tiled",
        "block_shape": [TILE, TILE],
        "dtype": "float32",
        "compress": "lzw",
        "features": names,
        "nodata_value": datagen.NODATA_VALUE,
        "nan_nodata_layers": [names[i] for i in range(layers) if params["nan_nodata"][i]],
        "scatter_per_layer": SCATTER,
        "discs_per_layer": DISCS,
        "region_share": round(1 - REGION_QUANTILE, 3),
        # pixels masked with nodata.threshold 0 / 1 (more than that many nodata layers)
        "masked_pixels": {
            "0": int(histogram[1:].sum()),
            "1": int(histogram[2:].sum()),
        },
        "nodata_layers_histogram": {
            str(k): int(v) for k, v in enumerate(histogram) if v and (k <= 5 or k == layers)
        },
        "bytes_on_disk": sum(p.stat().st_size for p in final.iterdir()),
        "raw_float32_bytes": n * layers * 4,
        "generated_seconds": round(gen_seconds, 1),
        "train_seconds": model_meta["train_seconds"],
        "generator_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "generator_peak_rss_before_training_mb": round(stream_peak_mb),
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1))
    log(
        f"generated in {gen_seconds:.0f} s (+ {model_meta['train_seconds']} s training), "
        f"{manifest['bytes_on_disk'] / 1e9:.2f} GB, peak RSS "
        f"{manifest['generator_peak_rss_mb']} MB"
    )
    return manifest


def _layer_band(
    i: int,
    band: int,
    r0: int,
    r1: int,
    lat: list[np.ndarray],
    own: RowField,
    params: dict[str, Any],
) -> np.ndarray:
    """Layer ``i``'s values on rows r0..r1: its mix of the latents, its own smooth field and
    pixel noise, scaled to its range (datagen's recipe)."""
    arr = own.rows(r0, r1) * np.float32(params["own"][i])
    for j, values in enumerate(lat):
        arr += values * np.float32(params["mix"][i, j])
    noise = np.random.default_rng([10_000, i, band]).standard_normal(arr.shape, np.float32)
    arr += noise * np.float32(params["noise"][i])
    arr *= np.float32(params["scale"][i])
    arr += np.float32(params["offset"][i])
    return arr


def _train(
    root: Path,
    names: list[str],
    samples: np.ndarray,
    sample_latents: np.ndarray,
    sample_valid: np.ndarray,
    log: Log,
) -> dict[str, Any]:
    """The size suite's RandomForest (datagen._train_model's recipe) on the first 60,000
    sampled pixels valid in every layer; their rows also go to train.npz."""
    import pandas as pd
    from sklearn.ensemble import RandomForestClassifier

    x = samples[:, sample_valid][:, :TRAIN_SAMPLES]
    lat = sample_latents[:, sample_valid][:, :TRAIN_SAMPLES].T
    classes = datagen.CLASS_LABELS
    rng = np.random.default_rng(5)
    weights = rng.normal(0, 1, (datagen.N_LATENTS, len(classes)))
    scores = lat @ weights + rng.normal(0, 0.3, (lat.shape[0], len(classes)))
    labels = np.asarray(classes)[np.argmax(scores, axis=1)]

    order = list(np.random.default_rng(11).permutation(len(names)))
    frame = pd.DataFrame({names[i]: x[i] for i in order})
    t0 = time.perf_counter()
    model = RandomForestClassifier(n_estimators=50, max_depth=12, random_state=0, n_jobs=-1)
    model.fit(frame, labels.astype(object))
    model.n_jobs = None  # predict single-threaded; parallelism is the tool's business
    tmp = root / "model.pkl.tmp"
    with open(tmp, "wb") as fh:
        pickle.dump(model, fh, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, root / "model.pkl")
    np.savez(  # plain arrays (no pickles): the AutoML venv's numpy 1.23 reads them
        root / "train.npz",
        X=np.ascontiguousarray(x.T),
        y=labels.astype("U16"),
        features=np.asarray(names),
        rf_feature_order=np.asarray(list(frame.columns)),
    )
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
    log(f"  trained the RandomForest on {frame.shape[0]} pixels in {meta['train_seconds']} s")
    return meta


def ensure(data: Path, size: int, layers: int, log: Log) -> dict[str, Any]:
    """The stack's description, generating it first when missing or outdated."""
    root = stack_root(data, size, layers)
    manifest = read_manifest(root)
    if manifest is None:
        manifest = generate(data, size, layers, log)
    return {
        "root": str(root),
        "layer_dir": str(root / "layers"),
        "model_path": str(root / "model.pkl"),
        "manifest": manifest,
    }


def main(argv: list[str] | None = None) -> int:
    """Generate what is missing, then print the stack as one JSON line on stdout (progress
    goes to stderr), for bench_seed.py."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="e.g. /work/benchdata/seed")
    ap.add_argument("--size", type=int, default=SEED_SIZE, help=f"side, pixels ({SEED_SIZE})")
    ap.add_argument("--layers", type=int, default=SEED_LAYERS, help=f"({SEED_LAYERS})")
    args = ap.parse_args(argv)
    found = ensure(
        args.data.resolve(),
        args.size,
        args.layers,
        log=lambda msg: print(msg, file=sys.stderr, flush=True),
    )
    print(json.dumps(found))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
