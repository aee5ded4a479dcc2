"""An AutoML-structured ensemble for the seed-scale stack, and its predict floor.

Runs in the Azure AutoML venv (``bash scripts/install-azureml.sh /work/venvs/azureml``):
the model is built from the runtime's own classes, exactly as tests/automl does it, so
that what the tool loads is what AutoML hands a user.

  VENV/bin/python benchmarks/seed_automl.py build --root /work/benchdata/seed/4472x100
      Trains on the rows seedgen.py sampled (``train.npz``: 60,000 pixels valid in every
      layer, string labels) and writes ``<root>/automl/``: ``model.pkl`` (joblib),
      ``scoring_file_v_1_0_0.py`` and ``_v_2_0_0.py`` (written by the runtime) and
      ``model.json``. Not measured; cached (rebuilt when train.npz is newer).

      The model: ``PipelineWithYTransformations(Pipeline([("datatransformer",
      DataTransformer), ("prefittedsoftvotingclassifier", PreFittedSoftVotingClassifier)]),
      "LabelEncoder", ...)``; the DataTransformer from
      ``_suggest_featurizers_and_create_datatransformer``; the soft-voting members are what
      AutoML's ensembles are commonly made of: MaxAbsScaler + LightGBM (100 rounds, 31
      leaves, AutoML's first LightGBM), MaxAbsScaler + RandomForest and StandardScaler +
      ExtraTrees (25 trees each, AutoML-style leaf sizes of 1 % of the rows) and
      StandardScaler + LogisticRegression. XGBoost, another usual member, is not in the
      runtime venv (nor a dependency of the runtime), so it is left out. Every member
      predicts on one core (``n_jobs=1``): parallelism is the tool's business, as for the
      RandomForest (AutoML itself often sets ``n_jobs=-1``).

  VENV/bin/python benchmarks/seed_automl.py floor CONFIG --processes 2 --valid-rows N \\
      --result R.json
      The floor: "the model's own predict on the same rows already in memory, split over
      the same cores". Reads a sample of ``--sample-rows`` unmasked pixels (an equal share
      from each of ``--tiles`` 256 x 256 tiles at random places; the config's nodata rules
      and threshold, remaining nodata filled with the sample's medians: the fill value does
      not change the cost of a row),
      as a float32 DataFrame in the model's feature order (what the tool passes), then
      forks ``--processes`` processes, each predicting its share in chunks of
      ``--chunk-rows``; the timed section is from a barrier that releases them all to the
      last one done. Rows per second over that section, times ``--valid-rows`` (the grid's
      unmasked pixels), is ``extrapolated_seconds``: what predicting the whole grid would
      take at that rate, with every row already in memory.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from notebook_baseline import discover, load_config, nodata_values  # noqa: E402

WEIGHTS = (0.4, 0.2, 0.2, 0.2)  # LightGBM, RandomForest, ExtraTrees, LogisticRegression
TILE = 256


def allow_py311() -> None:
    """The runtime's 3.11 bug (see windowed_classify/models/load.py): without raising this
    constant, importing data_transformation and unpickling a DataTransformer fail with
    NameError 'Scope'."""
    from azureml.automl.core.onnx_convert.onnx_convert_constants import (
        OnnxConvertConstants,
    )

    if tuple(OnnxConvertConstants.OnnxIncompatiblePythonVersion) <= sys.version_info[:2]:
        OnnxConvertConstants.OnnxIncompatiblePythonVersion = (
            sys.version_info[0],
            sys.version_info[1] + 1,
        )


# --------------------------------------------------------------------------- build


def build_model(x: Any, y: np.ndarray) -> Any:
    """DataTransformer + PreFittedSoftVotingClassifier, wrapped as AutoML wraps them."""
    allow_py311()
    from azureml.automl.runtime import data_transformation
    from azureml.automl.runtime.shared.model_wrappers import LightGBMClassifier
    from azureml.training.tabular.models.pipeline_with_ytransformations import (
        PipelineWithYTransformations,
    )
    from azureml.training.tabular.models.voting_ensemble import PreFittedSoftVotingClassifier
    from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import LabelEncoder, MaxAbsScaler, StandardScaler

    label_encoder = LabelEncoder().fit(y)
    y_codes = label_encoder.transform(y)
    transformer = data_transformation._suggest_featurizers_and_create_datatransformer(
        "classification", x, y_codes
    )
    transformer.fit(x, y_codes)
    xt = transformer.transform(x)
    leaf = {"min_samples_leaf": 0.01, "min_samples_split": 0.01}
    members = [
        Pipeline(
            [
                ("maxabsscaler", MaxAbsScaler()),
                (
                    "lightgbmclassifier",
                    LightGBMClassifier(
                        random_state=0,
                        n_jobs=1,
                        n_estimators=100,
                        num_leaves=31,
                        min_data_in_leaf=20,
                        verbose=-1,
                    ),
                ),
            ]
        ),
        Pipeline(
            [
                ("maxabsscaler", MaxAbsScaler()),
                (
                    "randomforestclassifier",
                    RandomForestClassifier(
                        n_estimators=25,
                        max_features=0.3,
                        criterion="entropy",
                        n_jobs=1,
                        random_state=0,
                        **leaf,
                    ),
                ),
            ]
        ),
        Pipeline(
            [
                ("standardscalerwrapper", StandardScaler(with_mean=False)),
                (
                    "extratreesclassifier",
                    ExtraTreesClassifier(
                        n_estimators=25,
                        max_features=0.5,
                        criterion="gini",
                        n_jobs=1,
                        random_state=0,
                        **leaf,
                    ),
                ),
            ]
        ),
        Pipeline(
            [
                ("standardscalerwrapper", StandardScaler(with_mean=False)),
                ("logisticregression", LogisticRegression(max_iter=1000)),
            ]
        ),
    ]
    for member in members:
        member.fit(xt, y_codes)
    ensemble = PreFittedSoftVotingClassifier(
        estimators=[(str(i), m) for i, m in enumerate(members)],
        weights=np.array(WEIGHTS),
        classification_labels=np.arange(len(label_encoder.classes_)),
    )
    pipeline = Pipeline(
        [("datatransformer", transformer), ("prefittedsoftvotingclassifier", ensemble)]
    )
    return PipelineWithYTransformations(pipeline, "LabelEncoder", label_encoder)


def write_scoring_files(model: Any, x: Any, y: np.ndarray, out: Path) -> list[str]:
    """As AutoML's featurization and fit_pipeline do (tests/automl: write_scoring_files)."""
    from azureml.automl.core.inference import inference
    from azureml.automl.runtime import data_transformation

    transformer = model.steps[0][1]
    input_sample = data_transformation._get_data_snapshot(
        data=x,
        column_names_and_types=transformer._columns_types_mapping,
        column_purposes=transformer.stats_and_column_purposes,
    )
    output_sample = data_transformation._get_output_snapshot(np.asarray(y))
    texts = inference._get_scoring_file(
        is_pandas_data_frame=True, input_sample_str=input_sample, output_sample_str=output_sample
    )
    names = ["scoring_file_v_1_0_0.py", "scoring_file_v_2_0_0.py"]
    for name, text in zip(names, texts, strict=True):
        (out / name).write_text(text, encoding="utf-8")
    return names


def build(root: Path) -> int:
    import joblib
    import pandas as pd

    out = root / "automl"
    meta_path = out / "model.json"
    train = root / "train.npz"
    if meta_path.exists() and (out / "model.pkl").exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("train_npz_mtime") == train.stat().st_mtime:
            print(out / "model.pkl")
            return 0
    out.mkdir(exist_ok=True)
    data = np.load(train)
    features = [str(f) for f in data["features"]]
    order = [str(f) for f in data["rf_feature_order"]]  # not the files' order: tests mapping
    # float64 columns, as a training table read from CSV gives AutoML
    x = pd.DataFrame(data["X"].astype(np.float64), columns=features)[order]
    y = np.asarray(data["y"]).astype(object)  # string labels
    t0 = time.perf_counter()
    model = build_model(x, y)
    train_seconds = time.perf_counter() - t0
    tmp = out / "model.pkl.tmp"
    joblib.dump(model, tmp)
    os.replace(tmp, out / "model.pkl")
    scoring = write_scoring_files(model, x, y, out)
    sample = x.head(20_000).astype(np.float32)  # what the tool passes: float32 columns
    t1 = time.perf_counter()
    predicted = model.predict(sample)
    rate = len(sample) / (time.perf_counter() - t1)
    ensemble = model.steps[-1][1]
    meta = {
        "type": type(model).__name__,
        "steps": [type(step).__name__ for _, step in model.steps],
        "members": [
            " + ".join(type(s).__name__ for _, s in est.steps) for _, est in ensemble.estimators
        ],
        "weights": list(WEIGHTS),
        "classes": [str(c) for c in model.classes_],
        "feature_order": order,
        "train_rows": len(x),
        "train_seconds": round(train_seconds, 1),
        "train_accuracy_sample": round(float((predicted == y[: len(sample)]).mean()), 3),
        "predict_rows_per_second_1core": round(rate),
        "scoring_files": scoring,
        "train_npz_mtime": train.stat().st_mtime,
        "versions": _versions(),
    }
    meta_path.write_text(json.dumps(meta, indent=1))
    print(
        f"built {meta['type']} of {meta['members']} in {meta['train_seconds']} s; "
        f"predict {rate:,.0f} rows/s on one core",
        file=sys.stderr,
    )
    print(out / "model.pkl")
    return 0


def _versions() -> dict[str, str | None]:
    from importlib import metadata

    out: dict[str, str | None] = {}
    for dist in ("azureml-automl-runtime", "lightgbm", "scikit-learn", "numpy", "pandas"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


# --------------------------------------------------------------------------- floor


def load_model(path: str) -> Any:
    import joblib

    allow_py311()
    return joblib.load(path)


def model_features(model: Any, cfg: dict[str, Any]) -> list[str]:
    configured = (cfg.get("model") or {}).get("features")
    if configured:
        return list(configured)
    return list(model.steps[0][1]._raw_feature_names)  # the DataTransformer's training order


def read_sample(
    cfg: dict[str, Any], features: list[str], rows: int, tiles: int, seed: int
) -> tuple[np.ndarray, int]:
    """About ``rows`` unmasked pixels (rows x features, float32): an equal share drawn at
    random from each of ``tiles`` whole 256 x 256 tiles at random places (more tiles when
    they cannot hold that many), with the config's nodata rules; returns them and the
    number of tiles read."""
    import rasterio
    from rasterio.windows import Window

    layers = discover(cfg)
    nod = cfg.get("nodata") or {}
    threshold = int(nod.get("threshold", 0))
    values = nodata_values(cfg)
    with rasterio.open(layers[features[0]]) as src:
        width, height = src.width, src.height
    grid = [(r, c) for r in range(0, height, TILE) for c in range(0, width, TILE)]
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(grid))
    per_tile = math.ceil(rows / min(tiles, len(grid)))
    parts: list[np.ndarray] = []
    got = used = 0
    with rasterio.Env(GDAL_CACHEMAX=64 * 1024 * 1024):
        datasets = {name: rasterio.open(layers[name]) for name in features}
        try:
            for k in order:
                if got >= rows:
                    break
                r, c = grid[k]
                win = Window(c, r, min(TILE, width - c), min(TILE, height - r))
                block = np.empty((len(features), win.height * win.width), dtype=np.float32)
                bad = np.zeros(block.shape, dtype=bool)
                for j, name in enumerate(features):
                    src = datasets[name]
                    block[j] = src.read(1, window=win).astype(np.float32).reshape(-1)
                    mask = ~np.isfinite(block[j])
                    file_nodata = [src.nodata] if nod.get("use_file_nodata", True) else []
                    for v in [*values, *file_nodata]:
                        if v is not None and not math.isnan(v):
                            mask |= block[j] == np.float32(v)
                    bad[j] = mask
                keep = np.flatnonzero(bad.sum(axis=0) <= threshold)
                if keep.size > per_tile:
                    keep = np.sort(rng.choice(keep, per_tile, replace=False))
                x = block[:, keep].T.copy()
                x[bad[:, keep].T] = np.nan  # filled below, with the sample's medians
                parts.append(x)
                got += x.shape[0]
                used += 1
        finally:
            for ds in datasets.values():
                ds.close()
    x = np.concatenate(parts)[:rows]
    if np.isnan(x).any():
        medians = np.nanmedian(x, axis=0).astype(np.float32)
        np.copyto(x, np.broadcast_to(medians, x.shape), where=np.isnan(x))
    return np.ascontiguousarray(x), used


def _predict_share(model: Any, frames: list[Any], barrier: Any, conn: Any) -> None:
    """A forked child: wait for the others, predict its frames, send back the seconds."""
    barrier.wait()
    t0 = time.perf_counter()
    n = sum(len(model.predict(frame)) for frame in frames)
    conn.send({"rows": n, "seconds": time.perf_counter() - t0})
    conn.close()


def floor(args: argparse.Namespace) -> dict[str, Any]:
    import pandas as pd

    t_load = time.perf_counter()
    cfg = load_config(args.config)
    model = load_model(cfg["model"]["path"])
    features = model_features(model, cfg)
    x, tiles = read_sample(cfg, features, args.sample_rows, args.tiles, args.seed)
    shares = np.array_split(np.arange(len(x)), args.processes)
    frames = [
        [  # float32 columns in the model's order, built before the clock starts
            pd.DataFrame(x[idx[i : i + args.chunk_rows]], columns=features, copy=False)
            for i in range(0, len(idx), args.chunk_rows)
        ]
        for idx in shares
    ]
    load_seconds = time.perf_counter() - t_load
    ctx = mp.get_context("fork")  # the children share the model and rows, as loaded
    barrier = ctx.Barrier(args.processes + 1)
    procs, conns = [], []
    for share in frames:
        recv, send = ctx.Pipe(duplex=False)
        p = ctx.Process(target=_predict_share, args=(model, share, barrier, send))
        p.start()
        procs.append(p)
        conns.append(recv)
    barrier.wait()
    t0 = time.perf_counter()
    results = [c.recv() for c in conns]
    elapsed = time.perf_counter() - t0
    for p in procs:
        p.join()
    rows = sum(r["rows"] for r in results)
    rate = rows / elapsed
    return {
        "timed_seconds": round(elapsed, 3),
        "processes": args.processes,
        "sample_rows": rows,
        "sample_tiles": tiles,
        "chunk_rows": args.chunk_rows,
        "per_process_seconds": [round(r["seconds"], 3) for r in results],
        "rows_per_second": round(rate),
        "valid_rows": args.valid_rows,
        "extrapolated_seconds": round(args.valid_rows / rate, 2) if args.valid_rows else None,
        "load_seconds": round(load_seconds, 3),
        "features": len(features),
        "threshold": int((cfg.get("nodata") or {}).get("threshold", 0)),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="train the ensemble on <root>/train.npz (cached)")
    b.add_argument("--root", type=Path, required=True, help="the stack's folder (seedgen.py)")
    f = sub.add_parser("floor", help="time the model's own predict on rows in memory")
    f.add_argument("config", type=Path, help="the tool's config of the run to compare with")
    f.add_argument("--processes", type=int, default=2)
    f.add_argument("--sample-rows", type=int, default=1_000_000)
    f.add_argument("--chunk-rows", type=int, default=250_000, help="rows per predict call")
    f.add_argument("--valid-rows", type=int, default=None, help="unmasked pixels of the grid")
    f.add_argument("--tiles", type=int, default=64, help="tiles the sample is spread over")
    f.add_argument("--seed", type=int, default=0, help="which tiles and pixels are sampled")
    f.add_argument("--result", type=Path)
    args = ap.parse_args(argv)
    if args.command == "build":
        return build(args.root)
    result = floor(args)
    text = json.dumps(result, indent=1)
    if args.result:
        args.result.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
