"""The streamed tool equals the in-memory notebook (tests/reference.py), pixel for pixel."""

from __future__ import annotations

import itertools
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from checks import assert_codes_equal, assert_run_matches
from helpers import (
    AZURE_NODATA,
    DEFAULT_CRS,
    DEFAULT_TRANSFORM,
    LayerSpec,
    Stack,
    build_case,
    load_report,
    make_config,
    native,
    read_output,
    run_main,
    save_model,
    threshold_model,
    train_model,
    valid_pool,
    write_raster,
    write_yaml,
)
from hypothesis import event, given, settings
from hypothesis import strategies as st
from reference import nodata_mask, reference_from_config

import windowed_classify
import windowed_classify.commands.check
from windowed_classify.errors import InputError, UserError

NAMES = ["elev", "slope", "ndvi", "twi", "clay", "rain", "aspect"]
SUBDIRS = ["", "", "dem", "dem/derived", "Climate"]
EXTS = [".tif", ".tiff", ".TIF", ".Tiff", ".TIFF"]
STR_LABELS = ["forest", "water", "urban", "bare", "crop"]
INT_LABELS = [3, 7, 11, 42, 0]
FLOAT_LABELS = [2.0, -1.0, 7.0, 10.0, 3.0]  # whole: sklearn takes them as classes
CONFIG_NODATA_CHOICES = [AZURE_NODATA, -1.0, 0.1]
FILE_TAGS = {
    "float32": [None, -9999.0, float("nan"), AZURE_NODATA, 0.1],
    "int16": [None, -9999, -32768],
    "uint8": [None, 0, 255],
}
SAFE_VALID = 5  # never a nodata value in any scenario


@dataclass
class Scenario:
    stack: Stack
    features: list[str]  # model order
    extra: list[str]
    nodata_values: list[float]
    use_file_nodata: bool
    threshold: int
    labels: list[Any]
    label_dtype: str
    model_kind: str
    classes_mode: str
    workers: int
    memory_mb: int
    out_dtype: tuple[str, int] | None
    compress: str | None
    use_yaml: bool
    seed: int


def _layer_values(rng: np.random.Generator, dtype: str, mode: str, shape: tuple[int, int]):
    if dtype == "int16":
        return rng.integers(-300, 300, shape).astype(np.int16)
    if dtype == "uint8":
        return rng.integers(1, 254, shape).astype(np.uint8)
    if mode == "ties":
        return rng.integers(-3, 4, shape).astype(np.float32)
    if mode == "wide":
        pool = np.array([-1e38, -1e10, -1.0, -0.0, 0.0, 1e-40, 1e-30, 1.0, 1e10, 3e38], np.float32)
        return rng.choice(pool, shape)
    return rng.normal(50.0, 20.0, shape).astype(np.float32)


def _nodata_tokens(dtype: str, file_tag: float | None, specials: list[str]) -> list[float]:
    tokens: list[float] = []
    if file_tag is not None:
        tokens.append(file_tag)
    if dtype == "float32":
        table = {
            "nan": np.nan,
            "inf": np.inf,
            "-inf": -np.inf,
            "big": AZURE_NODATA,
            "minus1": -1.0,
            "tenth": 0.1,
        }
        tokens += [table[s] for s in specials]
    elif dtype == "int16" and "minus1" in specials:
        tokens.append(-1)
    return tokens


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    height = draw(st.one_of(st.just(1), st.integers(1, 70)))
    width = draw(st.integers(1, 70))
    n_model = draw(st.integers(1, 4))
    n_extra = draw(st.integers(0, 2))
    names = draw(st.permutations(NAMES))[: n_model + n_extra]
    model_kind = draw(st.sampled_from(["tree", "forest", "pipeline"]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)

    nodata_values = draw(st.lists(st.sampled_from(CONFIG_NODATA_CHOICES), unique=True, max_size=3))
    use_file_nodata = draw(st.booleans())

    stack = Stack(Path("."))  # folder set when written
    for i, name in enumerate(names):
        dtype = draw(st.sampled_from(["float32", "float32", "int16", "uint8"]))
        kind = draw(st.sampled_from(["tiled", "striped"]))
        block = (
            draw(st.sampled_from([16, 32]))
            if kind == "tiled"
            else draw(st.integers(1, max(1, height)))
        )
        file_tag = draw(st.sampled_from(FILE_TAGS[dtype]))
        modes = ["normal", "ties"] + ([] if model_kind == "pipeline" else ["wide"])
        mode = draw(st.sampled_from(modes))
        specials = draw(
            st.lists(
                st.sampled_from(["nan", "inf", "-inf", "big", "minus1", "tenth"]),
                unique=True,
                max_size=3,
            )
        )
        fraction = draw(st.sampled_from([0.0, 0.05, 0.3, 0.9, 1.0]))
        data = _layer_values(rng, dtype, mode, (height, width))
        tokens = _nodata_tokens(dtype, file_tag, specials)
        if tokens and fraction:
            holes = rng.random((height, width)) < fraction
            picks = rng.integers(0, len(tokens), (height, width))
            for t, token in enumerate(tokens):
                data[holes & (picks == t)] = token
        spec = LayerSpec(
            name,
            data,
            dtype,
            file_tag,
            (kind, block),
            draw(st.sampled_from(SUBDIRS)),
            draw(st.sampled_from(EXTS)),
        )
        if i < n_model:  # a model layer needs a valid pixel; extra layers may have none
            mask = nodata_mask(data.astype(np.float32), file_tag, nodata_values, use_file_nodata)
            if mask.all():
                data[rng.integers(0, height), rng.integers(0, width)] = SAFE_VALID
        stack.layers.append(spec)

    label_pool = draw(st.sampled_from([STR_LABELS, INT_LABELS, FLOAT_LABELS]))
    labels = label_pool[: draw(st.integers(2, 4))]
    label_dtype = draw(st.sampled_from(["auto", "object"]))
    return Scenario(
        stack=stack,
        features=list(names[:n_model]),
        extra=list(names[n_model:]),
        nodata_values=nodata_values,
        use_file_nodata=use_file_nodata,
        threshold=draw(st.integers(0, n_model)),
        labels=labels,
        label_dtype=label_dtype,
        model_kind=model_kind,
        classes_mode=draw(st.sampled_from(["model", "permuted", "extra"])),
        workers=draw(st.sampled_from([1, 2])),
        memory_mb=draw(st.sampled_from([1, 512])),
        out_dtype=draw(st.sampled_from([None, ("uint16", 65535), ("int16", -1), ("uint8", 200)])),
        compress=draw(st.sampled_from([None, "deflate"])),
        use_yaml=draw(st.booleans()),
        seed=seed,
    )


_counter = itertools.count()


def _materialise(sc: Scenario, root: Path) -> tuple[dict[str, Any] | Path, dict[str, Any], Path]:
    """Write the scenario; return (what to pass to run, the config dict, output path)."""
    sc.stack.folder = root / "covariates"
    sc.stack.write()
    (sc.stack.folder / "notes.txt").write_text("not a raster")
    by_name = {s.name: s for s in sc.stack.layers}
    pools = {n: valid_pool(by_name[n], sc.nodata_values, sc.use_file_nodata) for n in sc.features}
    model = train_model(
        sc.features, pools, sc.labels, kind=sc.model_kind, seed=sc.seed, label_dtype=sc.label_dtype
    )
    model_path = save_model(model, root / "models" / "model.pkl")

    model_opts: dict[str, Any] = {}
    model_classes = [native(c) for c in model.classes_]
    if sc.classes_mode != "model":
        classes = list(reversed(model_classes))
        if sc.classes_mode == "extra":
            extra = {str: "unused_label", int: 99, float: 99.5}[type(classes[0])]
            classes.insert(len(classes) // 2, extra)
        model_opts["classes"] = classes
    output_opts: dict[str, Any] = {}
    if sc.out_dtype is not None:
        output_opts = {"dtype": sc.out_dtype[0], "nodata": sc.out_dtype[1]}
    if sc.compress is not None:
        output_opts["compress"] = sc.compress
    output = root / "out" / "prediction.tif"
    output.parent.mkdir()

    config = make_config(
        sc.stack.folder,
        model_path,
        output,
        nodata={
            "values": sc.nodata_values,
            "use_file_nodata": sc.use_file_nodata,
            "threshold": sc.threshold,
        },
        model=model_opts,
        output=output_opts,
        processing={"workers": sc.workers, "memory_mb": sc.memory_mb},
    )
    if not sc.use_yaml:
        return config, config, output
    rel = {
        **config,
        "rasters": {"folder": "../covariates"},
        "model": {**config["model"], "path": "../models/model.pkl"},
        "output": {**config["output"], "path": "../out/prediction.tif"},
    }
    return write_yaml(root / "cfg" / "run.yaml", rel), config, output


@settings(max_examples=35, deadline=None)
@given(sc=scenarios())
def test_matches_reference(sc: Scenario, tmp_path_factory: pytest.TempPathFactory) -> None:
    root = tmp_path_factory.mktemp(f"eq{next(_counter)}")
    target, config, output = _materialise(sc, root)
    ref = reference_from_config(config)
    n_masked = int(ref.masked.sum())
    event("masked: " + ("none" if not n_masked else "all" if ref.masked.all() else "some"))
    event(f"median fills: {bool(ref.n_filled)}")
    event(f"ignored layers: {bool(sc.extra)}")
    event(f"distinct codes: {min(len(np.unique(ref.codes)), 3)}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = windowed_classify.run(target, quiet=True)
    dtype = sc.out_dtype[0] if sc.out_dtype else "uint8"
    assert_run_matches(report, ref, output, dtype=dtype, compress=sc.compress or "lzw")
    assert sorted(report["ignored_layers"]) == sorted(sc.extra)
    assert 1 <= report["workers"] <= sc.workers


# --------------------------------------------------------------------------- fixed cases


def _run(config: dict[str, Any] | Path, **kwargs: Any) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return windowed_classify.run(config, quiet=True, **kwargs)


@pytest.mark.parametrize(
    "layouts",
    [
        [("tiled", 16), ("tiled", 16), ("tiled", 16)],
        [("tiled", 32), ("striped", 1), ("striped", 7)],
        [("striped", 3), ("striped", 64), ("tiled", 16)],
    ],
    ids=["tiled", "mixed", "striped"],
)
@pytest.mark.parametrize("workers", [1, 2])
def test_layouts_and_workers(tmp_path: Path, layouts: list, workers: int) -> None:
    case = build_case(tmp_path, height=53, width=67, seed=3)
    for spec, layout in zip(case.stack.layers, layouts, strict=True):
        spec.layout = layout
    case.stack.write()
    case.config["processing"] = {"workers": workers, "memory_mb": 1}
    ref = reference_from_config(case.config)
    report = _run(case.config)
    assert_run_matches(report, ref, case.output)
    assert ref.masked.any() and not ref.masked.all()


def test_single_row_and_single_pixel(tmp_path: Path) -> None:
    for h, w in [(1, 70), (1, 1), (70, 1)]:
        case = build_case(
            tmp_path / f"{h}x{w}",
            height=h,
            width=w,
            seed=h + w,
            layout=("striped", 1),
            nodata_fraction=0.0 if h * w == 1 else 0.1,
        )
        ref = reference_from_config(case.config)
        assert_run_matches(_run(case.config), ref, case.output)


def test_yaml_relative_paths_resolve_against_yaml_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = build_case(tmp_path / "project")
    rel = {
        "rasters": {"folder": "../covariates"},
        "nodata": case.config["nodata"],
        "model": {"path": "../model.pkl"},
        "output": {"path": "../out/prediction.tif"},
    }
    cfg_path = write_yaml(tmp_path / "project" / "configs" / "run.yaml", rel)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    report = _run(cfg_path)
    ref = reference_from_config(case.config)
    assert_run_matches(report, ref, case.output)
    assert list(elsewhere.iterdir()) == []


def test_dict_relative_paths_resolve_against_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = build_case(tmp_path)
    monkeypatch.chdir(tmp_path)
    rel = make_config("covariates", "model.pkl", "out/prediction.tif", nodata=case.config["nodata"])
    report = _run(rel)
    assert_run_matches(report, reference_from_config(case.config), case.output)


def test_cli_run_succeeds_and_matches(tmp_path: Path) -> None:
    case = build_case(tmp_path, seed=11)
    cfg = case.write_config()
    proc = run_main(cfg, "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    ref = reference_from_config(case.config)
    assert_run_matches(load_report(case.output), ref, case.output)
    # the `run` sub-command form and --overwrite
    proc = run_main("run", cfg, "--quiet", "--overwrite", "--workers", "2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert_run_matches(load_report(case.output), ref, case.output)


def test_extra_layers_ignored_with_warning(tmp_path: Path) -> None:
    case = build_case(tmp_path, names=("elev", "slope", "ndvi"), model_features_=("slope", "elev"))
    # ignored layers: entirely nodata, another dtype, nested, upper-case extension
    h, w = case.stack.layers[0].data.shape
    write_raster(
        case.folder / "extra" / "junk_layer.TIF",
        np.full((h, w), -9999, np.int16),
        nodata=-9999,
        layout=("striped", 2),
    )
    ref = reference_from_config(case.config)
    assert sorted(ref.ignored) == ["junk_layer", "ndvi"]
    cfg = case.write_config()
    proc = run_main(cfg, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    said = proc.stderr + proc.stdout
    assert "junk_layer" in said and "ndvi" in said, f"no warning naming ignored layers: {said!r}"
    report = load_report(case.output)
    assert_run_matches(report, ref, case.output)
    assert "ndvi" not in report["layers"] and "junk_layer" not in report["layers"]


def test_nested_folders_and_extensions(tmp_path: Path) -> None:
    case = build_case(tmp_path, names=("elev", "slope", "ndvi"))
    # move layers into nested folders with odd-case extensions; add non-matching files
    moves = {"elev": "a/b/elev.TIFF", "slope": "Z/slope.Tif", "ndvi": "ndvi.tiff"}
    for name, rel in moves.items():
        src = case.folder / f"{name}.tif"
        dst = case.folder / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        src.rename(dst)
    (case.folder / "a" / "b" / "elev.TIFF.aux.xml").write_text("<PAMDataset/>")
    (case.folder / "readme.txt").write_text("hello")
    ref = reference_from_config(case.config)
    assert_run_matches(_run(case.config), ref, case.output)


def test_custom_extensions(tmp_path: Path) -> None:
    case = build_case(tmp_path)
    for spec, ext in zip(case.stack.layers, [".GTIFF", ".gtiff", ".GTiff"], strict=True):
        (case.folder / f"{spec.name}.tif").rename(case.folder / f"{spec.name}{ext}")
    write_raster(case.folder / "decoy.tif", np.zeros((2, 2), np.float32))  # not matched now
    case.config["rasters"]["extensions"] = [".GTiff"]
    ref = reference_from_config(case.config)
    report = _run(case.config)
    assert_run_matches(report, ref, case.output)
    assert "decoy" not in report["ignored_layers"] + report["features"]


@pytest.mark.parametrize("labels", [["water", "forest", "urban"], [42, 7, 3]], ids=["str", "int"])
def test_config_classes_order_defines_codes(tmp_path: Path, labels: list[Any]) -> None:
    case = build_case(tmp_path, labels=labels, seed=5)
    model_classes = [native(c) for c in case.model.classes_]
    config_classes = [model_classes[2], model_classes[0], model_classes[1]]
    case.config["model"]["classes"] = config_classes
    ref = reference_from_config(case.config)
    report = _run(case.config)
    assert_run_matches(report, ref, case.output)
    assert report["legend"] == {str(i): str(c) for i, c in enumerate(config_classes)}
    # the same model without config classes uses classes_ order: codes are a permutation
    out2 = tmp_path / "out" / "model_order.tif"
    case.config["model"].pop("classes")
    case.config["output"]["path"] = str(out2)
    ref2 = reference_from_config(case.config)
    assert_run_matches(_run(case.config), ref2, out2)
    perm = {config_classes.index(c): i for i, c in enumerate(model_classes)}
    got2 = read_output(out2)[0]
    got1 = read_output(case.output)[0]
    mapped = np.vectorize(lambda v: perm.get(int(v), int(v)))(got1)
    assert_codes_equal(got2, mapped.astype(got2.dtype))


def test_a_model_class_missing_from_config_classes_is_refused_before_any_work(
    tmp_path: Path,
) -> None:
    """A class the model lists but model.classes omits is refused at once, even one the
    model would never predict here: a run must not stop mid-way on it."""
    case = build_case(tmp_path, names=("elev", "slope"))
    model = threshold_model(
        "elev", ["elev", "slope"], [(100.0, "low"), (1e5, "high"), (np.inf, "never")]
    )
    save_model(model, case.model_path)
    case.config["model"]["classes"] = ["high", "low"]
    with pytest.raises(UserError, match="lacks the model's class\\(es\\) 'never'"):
        _run(case.config)
    assert not case.output.exists()


@pytest.mark.parametrize("threshold", [0, 1, 2, 3])
def test_thresholds(tmp_path: Path, threshold: int) -> None:
    case = build_case(tmp_path, seed=7)
    # heavy nodata so every count 0..3 occurs
    rng = np.random.default_rng(1)
    for spec in case.stack.layers:
        spec.data[rng.random(spec.data.shape) < 0.5] = -9999.0
    case.stack.write()
    case.config["nodata"]["threshold"] = threshold
    ref = reference_from_config(case.config)
    report = _run(case.config)
    assert_run_matches(report, ref, case.output)
    if threshold == 3:
        assert report["masked_pixels"] == 0


def test_use_file_nodata_off_treats_tag_as_value(tmp_path: Path) -> None:
    case = build_case(tmp_path, seed=2)
    case.config["nodata"]["use_file_nodata"] = False
    ref = reference_from_config(case.config)
    assert any(float(s.min) == -9999.0 for s in ref.layers.values())
    assert_run_matches(_run(case.config), ref, case.output)


def test_all_pixels_masked(tmp_path: Path) -> None:
    h, w = 20, 21
    a = np.full((h, w), -9999.0, np.float32)
    b = np.full((h, w), 3.0, np.float32)
    a[0, 0] = 1.5  # the only valid pixel of `a` ...
    b[0, 0] = -9999.0  # ... is nodata in `b`
    folder = tmp_path / "covariates"
    write_raster(folder / "a.tif", a, nodata=-9999.0)
    write_raster(folder / "b.tif", b, nodata=-9999.0, layout=("striped", 4))
    model = train_model(
        ["a", "b"], {"a": np.array([1.0, 2.0]), "b": np.array([3.0, 4.0])}, ["x", "y"], seed=1
    )
    model_path = save_model(model, tmp_path / "model.pkl")
    out = tmp_path / "out" / "p.tif"
    out.parent.mkdir()
    config = make_config(folder, model_path, out, nodata={"values": []})
    ref = reference_from_config(config)
    assert ref.masked.all()
    report = _run(config)
    assert_run_matches(report, ref, out)
    assert report["pixel_counts"].get("255") == h * w
    assert report["layers"]["a"]["median"] == 1.5


def test_stats_cache_and_invalidation(tmp_path: Path) -> None:
    case = build_case(tmp_path, seed=4)
    ref = reference_from_config(case.config)
    first = _run(case.config)
    assert first["stats_cache"] == "computed"
    assert_run_matches(first, ref, case.output)

    second = _run(case.config, overwrite=True)
    assert second["stats_cache"] == "used"
    assert_run_matches(second, ref, case.output)

    forced = _run(case.config, overwrite=True, recompute_stats=True)
    assert forced["stats_cache"] == "computed"

    # change one layer's values: the cache must not be reused
    spec = case.stack.layers[0]
    spec.data = spec.data + np.float32(1000.0)
    path = case.folder / f"{spec.name}.tif"
    old = path.stat().st_mtime
    case.stack.write()
    os.utime(path, (old + 10, old + 10))
    ref2 = reference_from_config(case.config)
    third = _run(case.config, overwrite=True)
    assert third["stats_cache"] == "computed"
    assert_run_matches(third, ref2, case.output)

    # another nodata rule gives other statistics: the cache must not answer for it
    case.config["nodata"]["use_file_nodata"] = False
    ref3 = reference_from_config(case.config)
    assert_run_matches(_run(case.config, overwrite=True), ref3, case.output)
    case.config["nodata"].update(use_file_nodata=True, values=[float(spec.data[5, 5])])
    ref4 = reference_from_config(case.config)
    assert_run_matches(_run(case.config, overwrite=True), ref4, case.output)


def test_overwrite_true_replaces_existing_output(tmp_path: Path) -> None:
    case = build_case(tmp_path)
    case.output.write_bytes(b"old junk")
    case.config["output"]["overwrite"] = True
    ref = reference_from_config(case.config)
    assert_run_matches(_run(case.config), ref, case.output)


def test_workers_keyword_overrides_config(tmp_path: Path) -> None:
    case = build_case(tmp_path, height=64, width=48, seed=9, kind="forest")
    case.config["processing"] = {"workers": 1, "memory_mb": 1}
    ref = reference_from_config(case.config)
    report = _run(case.config, workers=2)
    assert_run_matches(report, ref, case.output)
    assert report["workers"] in (1, 2)


def test_model_features_from_config_when_model_has_no_names(tmp_path: Path) -> None:
    case = build_case(
        tmp_path,
        names=("elev", "slope", "ndvi"),
        with_names=False,
        model_features_=("ndvi", "elev"),
    )
    assert not hasattr(case.model, "feature_names_in_")
    case.config["model"]["features"] = ["ndvi", "elev"]
    ref = reference_from_config(case.config)
    assert ref.features == ["ndvi", "elev"]
    report = _run(case.config)
    assert_run_matches(report, ref, case.output)
    assert report["ignored_layers"] == ["slope"]


@pytest.mark.parametrize(("dtype", "nodata"), [("uint16", 65535), ("int16", -1), ("uint8", 2)])
def test_output_dtype_and_nodata(tmp_path: Path, dtype: str, nodata: int) -> None:
    case = build_case(tmp_path, labels=["forest", "water"])
    case.config["output"].update(dtype=dtype, nodata=nodata, compress="deflate")
    ref = reference_from_config(case.config)
    assert ref.masked.any()
    assert_run_matches(_run(case.config), ref, case.output, dtype=dtype, compress="deflate")


def test_wide_integer_and_float64_layers_cast_to_float32(tmp_path: Path) -> None:
    """int32 and float64 bands are cast to float32 before any comparison."""
    h, w = 33, 40
    rng = np.random.default_rng(5)
    folder = tmp_path / "covariates"
    big = rng.integers(16_777_200, 16_777_240, (h, w)).astype(np.int32)
    big[0, :5] = 16_777_217  # float32(16777217) == 16777216: nodata below
    write_raster(folder / "big.tif", big, layout=("striped", 4))
    f64 = rng.normal(0, 1, (h, w))
    f64[1, :4] = 1e39  # beyond float32: +inf after the cast -> nodata
    f64[2, :4] = 0.1  # float64 0.1 -> float32(0.1): nodata via config 0.1
    f64[3, :4] = -1e300  # the file tag; -inf as float32
    write_raster(folder / "f64.tif", f64, dtype="float64", nodata=-1e300, layout=("tiled", 16))
    pools = {"big": big.ravel().astype(np.float32), "f64": f64.ravel()[200:].astype(np.float32)}
    model = train_model(["big", "f64"], pools, ["p", "q", "r"], seed=2)
    model_path = save_model(model, tmp_path / "model.pkl")
    out = tmp_path / "out" / "p.tif"
    out.parent.mkdir()
    config = make_config(
        folder, model_path, out, nodata={"values": [16_777_216, 0.1], "threshold": 1}
    )
    ref = reference_from_config(config)
    assert ref.layers["big"].nodata_count >= 5
    assert ref.layers["f64"].nodata_count >= 12
    assert_run_matches(_run(config), ref, out)


def test_output_in_missing_folder_is_created_or_refused_cleanly(tmp_path: Path) -> None:
    case = build_case(tmp_path)
    out = tmp_path / "new" / "deeper" / "prediction.tif"
    case.config["output"]["path"] = str(out)
    proc = run_main(case.write_config(), "--quiet", cwd=tmp_path)
    assert "Traceback" not in proc.stderr, proc.stderr
    if proc.returncode == 0:
        assert_run_matches(load_report(out), reference_from_config(case.config), out)
    else:
        assert proc.returncode == 2, proc.stderr
        assert "new" in proc.stderr and not out.exists()


def test_report_names_config_and_output(tmp_path: Path) -> None:
    case = build_case(tmp_path)
    cfg = case.write_config()
    report = _run(cfg)
    assert report["tool"] == "windowed_classify"
    assert report["version"] == windowed_classify.__version__
    assert Path(report["output"]).resolve() == case.output.resolve()
    assert report["config"] is not None and Path(report["config"]).resolve() == cfg.resolve()
    assert isinstance(report["grid"]["crs"], str) and "32633" in report["grid"]["crs"]
    from_dict = _run(case.config, overwrite=True)
    assert from_dict["config"] is None


def test_default_nodata_values(tmp_path: Path) -> None:
    """Without a nodata section: the ArcGIS float32 nodata, NaN/inf and file tags."""
    case = build_case(tmp_path, seed=8)
    spec = case.stack.layers[0]
    spec.data[:3, :] = np.float32(AZURE_NODATA)
    spec.data[3, :3] = np.inf
    case.stack.write()
    del case.config["nodata"]
    ref = reference_from_config(case.config)
    assert ref.layers[spec.name].nodata_count >= 3 * spec.data.shape[1] + 3
    assert_run_matches(_run(case.config), ref, case.output)


def test_multiband_raster_gives_a_layer_per_band(tmp_path: Path) -> None:
    """Every band of a file is a layer. A 3-band slope.tif holds slope_1, slope_2 and
    slope_3, not 'slope' (the full multi-band contract: test_inputs.py)."""
    case = build_case(tmp_path, seed=12)
    spec = case.stack.layers[1]
    path = case.folder / f"{spec.name}.tif"
    h, w = spec.data.shape
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=w,
        height=h,
        count=3,
        dtype="float32",
        crs=DEFAULT_CRS,
        transform=DEFAULT_TRANSFORM,
        nodata=-9999.0,
    ) as dst:
        dst.write(spec.data, 1)
        dst.write(np.full((h, w), 1e6, np.float32), 2)
        dst.write(np.full((h, w), -9999.0, np.float32), 3)
    with pytest.raises(InputError, match=r"have no raster under .*: slope$"):
        _run(case.config)
    check = windowed_classify.commands.check.check(case.config)
    assert [la.name for la in check.layers if la.path == path] == ["slope_1", "slope_2", "slope_3"]


@pytest.mark.parametrize("kind", ["str", "object", "int"])
def test_many_classes(tmp_path: Path, kind: str) -> None:
    """300 classes (uint16 codes): the label -> code mapping over a long legend."""
    n = 300
    labels: list[Any] = (
        [f"class_{i:03d}" for i in range(n)] if kind != "int" else list(range(-150, 3 * n - 150, 3))
    )
    case = build_case(tmp_path, names=("elev", "slope"), seed=6)
    elev = case.stack.layers[0].data
    lo, hi = float(np.nanmin(elev[elev > -9999])), float(np.nanmax(elev))
    cuts = [(lo + (hi - lo) * (i + 1) / n, lab) for i, lab in enumerate(labels)]
    cuts[-1] = (np.inf, labels[-1])
    model = threshold_model(
        "elev", ["elev", "slope"], cuts, label_dtype="object" if kind == "object" else "auto"
    )
    save_model(model, case.model_path)
    rng = np.random.default_rng(0)
    config_classes = [native(c) for c in rng.permutation(np.array(labels, dtype=object))]
    case.config["model"]["classes"] = config_classes
    case.config["output"].update(dtype="uint16", nodata=65535)
    ref = reference_from_config(case.config)
    assert len(np.unique(ref.codes)) > 50
    assert_run_matches(_run(case.config), ref, case.output, dtype="uint16")
