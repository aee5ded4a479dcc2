"""Rebuild the training rows of a benchmark model, for the pyspatialml venv (numpy < 2).

  python benchmarks/pyspatialml_trainset.py --data benchmarks/data --size 4000 --layers 20

The benchmark's ``model.pkl`` (numpy 2) cannot be unpickled where numpy < 2 is installed
(``No module named 'numpy._core.numeric'``), and pyspatialml pins numpy < 2. So the
identical model is trained again there, from the identical rows. This script (run with the
main venv) rebuilds exactly what ``datagen._train_model`` was given:

* the sampled pixels: ``np.unique(default_rng(99).integers(0, n, 3 * 60_000))``;
* the fully valid ones (no layer is nodata or NaN there: ``datagen``'s ``sample_valid``),
  the first 60,000 of them, their values read back from the stack's files;
* the labels: argmax of the same latent-field scores (``default_rng(5)``), with the
  latents recomputed from their seeds;
* the columns in the model's feature order (``model.json``).

It then proves the rows are the same by fitting ``RandomForestClassifier(n_estimators=50,
max_depth=12, random_state=0)`` on them here and checking that every tree equals the
pickled model's (``tree_fingerprint``). It writes ``train.npz`` (X float32 in feature
order, y = the label's index in the sorted classes, i.e. the tool's output code) and
``fingerprint.json`` into ``<data>/<size>x<layers>/pyspatialml/``, and prints that folder.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np

# run from benchmarks/ (as run_benchmarks.py does) or from the repository root
sys.path.insert(0, str(Path(__file__).resolve().parent))
import datagen  # noqa: E402

HYPER = {"n_estimators": 50, "max_depth": 12, "random_state": 0}


def tree_fingerprint(model: Any) -> str:
    """sha256 over every tree's structure, split features, thresholds and leaf values;
    equal fingerprints mean the forests predict identically. (Copied verbatim into
    pyspatialml_baseline.py, which runs in the other venv.)"""
    h = hashlib.sha256()
    for est in model.estimators_:
        t = est.tree_
        for arr in (t.children_left, t.children_right, t.feature, t.threshold, t.value):
            h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def rebuild(root: Path, size: int, layers: int, layer_dir: Path) -> dict[str, Any]:
    names = datagen.feature_names(layers)
    meta = json.loads((root / "model.json").read_text())
    order = list(np.random.default_rng(11).permutation(len(names)))
    feature_order = [names[i] for i in order]
    if feature_order != meta["feature_order"]:
        raise SystemExit("model.json's feature order is not datagen's: regenerate the data")

    import rasterio

    n = size * size
    sample_idx = np.unique(
        np.random.default_rng(99).integers(0, n, size=min(n, datagen.TRAIN_SAMPLES * 3))
    )
    samples = np.empty((layers, sample_idx.size), dtype=np.float32)
    valid = np.ones(sample_idx.size, dtype=bool)
    nodata = np.float32(datagen.NODATA_VALUE)
    for i, name in enumerate(names):
        with rasterio.open(layer_dir / f"{name}.tif") as src:
            values = src.read(1).reshape(-1)[sample_idx]
        samples[i] = values
        valid &= ~np.isnan(values) & (values != nodata)
    idx = sample_idx[valid][: datagen.TRAIN_SAMPLES]
    x = samples[:, valid][:, : datagen.TRAIN_SAMPLES]

    smooth = datagen._Smooth(size)
    latents = [smooth.field(np.random.default_rng(100 + j)) for j in range(datagen.N_LATENTS)]
    for lat in latents:  # exactly as datagen._generate standardises them
        lat -= np.float32(lat.mean())
        lat /= np.float32(lat.std() + 1e-6)
    lat = np.stack([latent.reshape(-1)[idx] for latent in latents], axis=1)
    rng = np.random.default_rng(5)
    weights = rng.normal(0, 1, (datagen.N_LATENTS, len(datagen.CLASS_LABELS)))
    scores = lat @ weights + rng.normal(0, 0.3, (lat.shape[0], len(datagen.CLASS_LABELS)))
    labels = np.asarray(datagen.CLASS_LABELS, dtype=object)[np.argmax(scores, axis=1)]

    classes = sorted(datagen.CLASS_LABELS)  # sklearn's classes_ order = the tool's codes
    y = np.searchsorted(np.asarray(classes), labels.astype(str)).astype(np.int64)
    return {
        "X": np.ascontiguousarray(np.stack([x[i] for i in order], axis=1)),
        "y": y,
        "labels": labels,
        "feature_order": feature_order,
        "classes": classes,
    }


def verify(rows: dict[str, Any], model_path: Path) -> str:
    """Refit with string labels, as datagen did; the forest must equal model.pkl's."""
    import pandas as pd
    from sklearn.ensemble import RandomForestClassifier

    with open(model_path, "rb") as fh:
        original = pickle.load(fh)
    frame = pd.DataFrame(rows["X"], columns=rows["feature_order"])
    refit = RandomForestClassifier(**HYPER, n_jobs=-1).fit(frame, rows["labels"])
    want, got = tree_fingerprint(original), tree_fingerprint(refit)
    if want != got or list(original.classes_) != rows["classes"]:
        raise SystemExit(
            f"the rebuilt training rows do not reproduce {model_path} "
            f"(fingerprint {got[:12]} != {want[:12]}): datagen changed?"
        )
    return want


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("--layers", type=int, default=20)
    args = ap.parse_args(argv)
    root = args.data / f"{args.size}x{args.layers}"
    out = root / "pyspatialml"
    stamp = out / "fingerprint.json"
    model_mtime = (root / "model.pkl").stat().st_mtime
    if stamp.exists() and json.loads(stamp.read_text()).get("model_mtime") == model_mtime:
        print(out)
        return 0
    layer_dir = next(
        root / f"layers_{lay}"
        for lay in datagen.LAYOUTS
        if datagen._read_manifest(root / f"manifest_{lay}.json") is not None
    )
    rows = rebuild(root, args.size, args.layers, layer_dir)
    fingerprint = verify(rows, root / "model.pkl")
    out.mkdir(exist_ok=True)
    np.savez(
        out / "train.npz",
        X=rows["X"],
        y=rows["y"],
        feature_order=np.asarray(rows["feature_order"]),
        classes=np.asarray(rows["classes"]),
    )
    stamp.write_text(
        json.dumps(
            {
                "fingerprint": fingerprint,
                "hyper_parameters": HYPER,
                "train_rows": int(rows["X"].shape[0]),
                "classes": rows["classes"],
                "feature_order": rows["feature_order"],
                "model_mtime": model_mtime,
            },
            indent=1,
        )
    )
    print(
        f"training rows rebuilt and verified against model.pkl ({fingerprint[:12]})",
        file=sys.stderr,
    )
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
