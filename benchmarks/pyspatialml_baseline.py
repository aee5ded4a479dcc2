"""pyspatialml's ``Raster.predict`` on a benchmark stack; runs in the pyspatialml venv.

pyspatialml 0.22 pins numpy < 2, so it lives in its own venv
(``scripts/install-pyspatialml.sh /tmp/pysp-venv``), where the benchmark's numpy-2 pickle
cannot be loaded. Two steps, both driven by run_benchmarks.py:

  python benchmarks/pyspatialml_baseline.py train DIR
      DIR is what ``pyspatialml_trainset.py`` (main venv) wrote: ``train.npz`` holds the
      exact rows ``datagen`` trained ``model.pkl`` on, with y = the label's index in the
      sorted classes (0 = bare ... 5 = water, the codes the tool writes); pyspatialml needs
      integer labels. Fits ``RandomForestClassifier(n_estimators=50, max_depth=12,
      random_state=0)`` on them, sets ``n_jobs = None`` as datagen does (predict on one
      core), checks that every tree equals model.pkl's (``fingerprint.json``) and writes
      ``DIR/model.pkl``. Not measured.

  python benchmarks/pyspatialml_baseline.py predict --layer-dir D --model M --output O \\
      [--result R.json] [--n-jobs N]
      The measured run: load the model, ``Raster([the layer files in the model's feature
      order])`` (pyspatialml passes a bare array to ``predict``: columns go by position),
      then ``Raster.predict(model, file_path=O, dtype="uint8", nodata=255,
      compress="lzw")`` with pyspatialml's defaults otherwise (256 x 256 windows, GDAL's
      default block cache, one process).

pyspatialml's nodata handling (``_prediction.predict_output``): every window is read as a
masked array (each file's nodata value, and NaN/inf, are masked), masked values are filled
with 0, every pixel is predicted, and the pixels where any layer is masked are then set to
the output nodata. That is the tool's ``threshold: 0`` (any nodata layer masks the pixel),
so with the same model the classified rasters can be compared pixel by pixel.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HYPER = {"n_estimators": 50, "max_depth": 12, "random_state": 0}


def tree_fingerprint(model: Any) -> str:
    """Same as pyspatialml_trainset.tree_fingerprint (the two venvs share no module)."""
    h = hashlib.sha256()
    for est in model.estimators_:
        t = est.tree_
        for arr in (t.children_left, t.children_right, t.feature, t.threshold, t.value):
            h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def train(folder: Path) -> int:
    from sklearn.ensemble import RandomForestClassifier

    stamp = json.loads((folder / "fingerprint.json").read_text())
    model_path = folder / "model.pkl"
    meta_path = folder / "model.json"
    if model_path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("fingerprint") == stamp["fingerprint"]:
            print(model_path)
            return 0
    data = np.load(folder / "train.npz")
    x, y = data["X"], data["y"]
    if stamp["hyper_parameters"] != HYPER:
        raise SystemExit(f"hyper-parameters differ: {stamp['hyper_parameters']} vs {HYPER}")
    t0 = time.perf_counter()
    model = RandomForestClassifier(**HYPER, n_jobs=-1).fit(x, y)
    model.n_jobs = None  # as datagen: predict on one core
    got = tree_fingerprint(model)
    if got != stamp["fingerprint"]:
        raise SystemExit(
            f"the forest trained here ({got[:12]}) differs from model.pkl's "
            f"({stamp['fingerprint'][:12]}): the two scikit-learn versions build different trees"
        )
    tmp = model_path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        pickle.dump(model, fh, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(model_path)
    meta_path.write_text(
        json.dumps(
            {
                "fingerprint": got,
                "hyper_parameters": HYPER,
                "classes": [int(c) for c in model.classes_],
                "labels": stamp["classes"],
                "feature_order": [str(f) for f in data["feature_order"]],
                "train_rows": int(x.shape[0]),
                "train_seconds": round(time.perf_counter() - t0, 2),
            },
            indent=1,
        )
    )
    print(f"trained; every tree equals model.pkl's ({got[:12]})", file=sys.stderr)
    print(model_path)
    return 0


def predict(
    layer_dir: Path, model_path: Path, output: Path, n_jobs: int | None = None
) -> dict[str, Any]:
    t0 = time.perf_counter()
    from pyspatialml import Raster

    t_import = time.perf_counter()
    with open(model_path, "rb") as fh:
        model = pickle.load(fh)
    if n_jobs is not None:  # not in the benchmark runner: a side run (scikit-learn's threads)
        model.n_jobs = n_jobs
    features = json.loads((model_path.parent / "model.json").read_text())["feature_order"]
    t_model = time.perf_counter()
    stack = Raster([str(layer_dir / f"{name}.tif") for name in features])
    result = stack.predict(model, file_path=str(output), dtype="uint8", nodata=255, compress="lzw")
    t_predict = time.perf_counter()
    result.close()
    stack.close()
    import pyspatialml
    import rasterio
    import sklearn

    return {
        "timed_seconds": round(t_predict - t_model, 3),  # Raster() + Raster.predict
        "timing": {
            "import_pyspatialml": round(t_import - t0, 3),
            "load_model": round(t_model - t_import, 3),
            "raster_and_predict": round(t_predict - t_model, 3),
        },
        "block_shape": list(stack.block_shape),
        "model_n_jobs": model.n_jobs,
        "layers": len(features),
        "versions": {
            "pyspatialml": pyspatialml.__version__
            if hasattr(pyspatialml, "__version__")
            else _dist_version("pyspatialml"),
            "numpy": np.__version__,
            "scikit-learn": sklearn.__version__,
            "rasterio": rasterio.__version__,
            "gdal": rasterio.__gdal_version__,
        },
    }


def _dist_version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="fit the integer-label twin of model.pkl")
    t.add_argument("folder", type=Path)
    p = sub.add_parser("predict", help="Raster(...).predict(...), the measured run")
    p.add_argument("--layer-dir", type=Path, required=True)
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--output", type=Path, required=True)
    p.add_argument("--result", type=Path)
    p.add_argument(
        "--n-jobs",
        type=int,
        default=None,
        help="set the forest's n_jobs (default: as trained, None = one core)",
    )
    args = ap.parse_args(argv)
    if args.command == "train":
        return train(args.folder)
    res = predict(args.layer_dir, args.model, args.output, args.n_jobs)
    text = json.dumps(res, indent=1)
    if args.result:
        args.result.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
