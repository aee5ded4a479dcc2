"""The Dask engine gives exactly the local engine's result: outputs, medians, report.

One LocalCluster of two single-threaded worker processes on loopback serves the module (the
runs reach it as an existing scheduler, by address); one test lets the tool start its own.
"""

from __future__ import annotations

import copy
import os
import signal
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from checks import assert_codes_equal, assert_run_matches, assert_same_medians
from helpers import Case, Unlisted, build_case, read_output, save_model
from httpserver import RangeServer
from reference import reference_from_config

import windowed_classify
from windowed_classify.commands.check import check
from windowed_classify.config import load_config
from windowed_classify.errors import ConfigError, InputError


def run(config: dict[str, Any], recompute: bool = True) -> dict[str, Any]:
    """Pass 1 runs on the engine under test unless ``recompute`` is False (cache allowed)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return windowed_classify.run(config, quiet=True, recompute_stats=recompute)


def with_engine(case: Case, name: str, **processing: Any) -> dict[str, Any]:
    """The case's config, writing to out_<name>/ and run with the given processing keys."""
    config = copy.deepcopy(case.config)
    for key in ("path", "probabilities", "confidence"):
        if config["output"].get(key):
            old = Path(config["output"][key])
            config["output"][key] = str(case.root / f"out_{name}" / old.name)
    config["processing"] = {**config.get("processing", {}), **processing}
    return config


def assert_dask_report(report: dict[str, Any], windows: int, pixels: int) -> None:
    assert report["engine"] == "dask"
    per_worker = report["dask_workers"]
    assert per_worker and all(a.startswith("tcp://") for a in per_worker)
    assert sum(w["windows"] for w in per_worker.values()) == windows == report["windows"]
    assert sum(w["pixels"] for w in per_worker.values()) == pixels
    for row in per_worker.values():
        if row["windows"]:
            assert row["busy_seconds"] >= 0 and row["megapixels_per_second"] is not None


# --------------------------------------------------------------------------- equivalence


def _case(tmp_path: Path, kind: str) -> Case:
    if kind == "small":
        return build_case(tmp_path)
    if kind == "striped_forest_probabilities":
        case = build_case(
            tmp_path,
            kind="forest",
            layout=("striped", 3),
            height=300,
            width=260,
            nodata_fraction=0.3,
            seed=3,
        )
        case.config["processing"] = {"memory_mb": 1}
        case.config["output"]["probabilities"] = str(case.root / "out" / "proba.tif")
        case.config["output"]["confidence"] = str(case.root / "out" / "confidence.tif")
        return case
    case = build_case(
        tmp_path,
        names=("elev", "slope", "ndvi", "twi", "clay"),
        model_features_=("twi", "elev", "clay", "ndvi"),  # slope ignored; another order
        layout=("tiled", 32),
        height=520,
        width=300,
        seed=5,
        nodata_fraction=0.2,
    )
    case.config["nodata"]["threshold"] = 1
    case.config["processing"] = {"memory_mb": 1}
    return case


@pytest.mark.parametrize("kind", ["small", "striped_forest_probabilities", "tiled_threshold"])
def test_dask_output_equals_local_engine_and_reference(
    cluster: Any, tmp_path: Path, kind: str
) -> None:
    case = _case(tmp_path, kind)
    address = cluster.scheduler.address
    local = with_engine(case, "local", engine="local", workers=2)
    dask = with_engine(case, "dask", engine="dask", scheduler=address)
    report_local, report_dask = run(local), run(dask)

    ref = reference_from_config(dask)
    assert_run_matches(report_dask, ref, Path(dask["output"]["path"]))
    assert_same_medians(report_dask, report_local)
    for key in ("path", "probabilities", "confidence"):
        if local["output"].get(key):
            with rasterio.open(local["output"][key]) as a, rasterio.open(dask["output"][key]) as b:
                assert a.profile == b.profile, key
                np.testing.assert_array_equal(a.read(), b.read(), err_msg=key)
    assert report_dask["pixel_counts"] == report_local["pixel_counts"]
    assert report_local["engine"] == "threads"
    assert_dask_report(report_dask, report_local["windows"], ref.width * ref.height)
    assert report_dask["scheduler"] == address and report_dask["workers"] == 2


def test_check_and_the_run_name_the_dask_engine_with_one_worker(
    cluster: Any, tmp_path: Path
) -> None:
    """``workers: 1`` on an existing cluster still runs on Dask: ``check`` says so, with its
    spill on the workers' disks, and the report agrees."""
    case = _case(tmp_path, "tiled_threshold")
    config = with_engine(
        case, "dask_one", engine="dask", scheduler=cluster.scheduler.address, workers=1
    )
    found = check(load_config(config))
    assert found.ok and found.estimate is not None and found.estimate.spill is not None
    assert found.estimate.engine == "dask"
    assert found.estimate.spill.where == "on the Dask workers' own disks"
    assert run(config)["engine"] == "dask"
    serial = with_engine(case, "serial", engine="threads", workers=1)
    found = check(load_config(serial))
    assert found.estimate is not None and found.estimate.spill is not None
    assert found.estimate.engine == run(serial)["engine"] == "serial"
    assert found.estimate.spill.where == "beside the output"


def test_scheduler_local_starts_a_cluster_of_the_configured_workers(tmp_path: Path) -> None:
    case = build_case(tmp_path, height=300, width=300, seed=2)
    config = with_engine(case, "own", engine="dask", scheduler="local", workers=2, memory_mb=1)
    report = run(config)
    assert_run_matches(report, reference_from_config(config), Path(config["output"]["path"]))
    assert report["scheduler"] == "local" and report["workers"] == 2
    assert len(report["dask_workers"]) == 2
    assert_dask_report(report, report["windows"], 300 * 300)


# --------------------------------------------------------------------------- failures


class SlowModel:
    """A fitted model whose predict takes a while: a worker can be killed mid-window."""

    def __init__(self, model: Any, seconds: float):
        self.model, self.seconds = model, seconds
        self.classes_ = model.classes_
        self.feature_names_in_ = model.feature_names_in_

    def predict(self, frame: Any) -> Any:
        time.sleep(self.seconds)
        return self.model.predict(frame)


def test_a_worker_killed_mid_run_changes_nothing(cluster: Any, tmp_path: Path) -> None:
    case = build_case(tmp_path, height=1024, width=1024, seed=4)
    save_model(SlowModel(case.model, 0.25), case.model_path)
    address = cluster.scheduler.address
    config = with_engine(case, "dask", engine="dask", scheduler=address, memory_mb=1)
    before = cluster.run(os.getpid)
    killed: list[int] = []

    def kill_when_classifying() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for worker, keys in cluster.processing().items():
                if any(str(k).startswith("predict") for k in keys) and worker in before:
                    os.kill(before[worker], signal.SIGKILL)
                    killed.append(before[worker])
                    return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_when_classifying, daemon=True)
    killer.start()
    report = run(config)
    killer.join()
    assert killed, "no worker was killed during pass 2"
    cluster.wait_for_workers(2, timeout=60)
    assert killed[0] not in cluster.run(os.getpid).values()
    assert report["windows"] == 16
    ref = reference_from_config(config)
    assert_run_matches(report, ref, Path(config["output"]["path"]))


# --------------------------------------------------------------------------- inputs by URL


@pytest.fixture
def http_folder(tmp_path: Path) -> Iterator[tuple[Case, RangeServer]]:
    case = build_case(tmp_path, height=200, width=330, seed=6, layout=("tiled", 32))
    with RangeServer(case.folder) as server:
        yield case, server


@pytest.mark.network
def test_inputs_read_over_http_give_the_same_output(
    cluster: Any, http_folder: tuple[Case, RangeServer]
) -> None:
    case, server = http_folder
    url = server.url
    ref = reference_from_config(case.config)  # from the folder
    files = {spec.name: f"/vsicurl/{url}/{spec.relpath}" for spec in case.stack.layers}
    outputs = {}
    for engine, extra in (("dask", {"scheduler": cluster.scheduler.address}), ("local", {})):
        config = with_engine(case, engine, engine=engine, memory_mb=1, **extra)
        config["rasters"] = {"files": files}
        report = run(config, recompute=False)  # a URL with an ETag is cached: computed once
        assert report["stats_cache"] == ("computed" if engine == "dask" else "used")
        assert_run_matches(report, ref, Path(config["output"]["path"]))
        assert [report["layers"][n]["path"] for n in ref.features] == [
            files[n] for n in ref.features
        ]
        outputs[engine] = read_output(Path(config["output"]["path"]))[0]
    assert_codes_equal(outputs["dask"], outputs["local"])
    assert server.stats["ranges"] > 0, "GDAL did not read the inputs by HTTP range requests"


# --------------------------------------------------------------------------- config


def _raw(tmp_path: Path, rasters: dict[str, Any], **processing: Any) -> dict[str, Any]:
    return {
        "rasters": rasters,
        "model": {"path": str(tmp_path / "model.pkl")},
        "output": {"path": str(tmp_path / "out.tif")},
        "processing": processing,
    }


def test_config_engine_scheduler_and_files(tmp_path: Path) -> None:
    cfg = load_config(_raw(tmp_path, {"folder": "."}))
    assert cfg.processing.engine == "auto" and cfg.processing.scheduler == "local"
    assert load_config(_raw(tmp_path, {"folder": "."}, engine="local")).processing.engine == (
        "threads"
    )
    cfg = load_config(
        _raw(tmp_path, {"folder": "."}, engine="dask", scheduler="tcp://10.0.0.5:8786")
    )
    assert (cfg.processing.engine, cfg.processing.scheduler) == ("dask", "tcp://10.0.0.5:8786")
    files = {"a": "covs/a.tif", "b": "/vsis3/bucket/b.tif", "c": "https://host/x//c.tif"}
    cfg = load_config(_raw(tmp_path, {"files": files}), base_dir=tmp_path)
    assert cfg.rasters.folder is None
    assert {name: path for name, path, _band in cfg.rasters.files} == {
        "a": tmp_path / "covs" / "a.tif",
        "b": "/vsis3/bucket/b.tif",
        "c": "https://host/x//c.tif",  # a URL is kept as written, never a Path
    }


@pytest.mark.parametrize(
    ("rasters", "processing", "message"),
    [
        ({}, {}, "exactly one of 'rasters.folder'.*'rasters.files'"),
        ({"folder": ".", "files": {"a": "a.tif"}}, {}, "exactly one.*not both"),
        ({"files": ["a.tif"]}, {}, "rasters.files"),
        ({"files": {"a": 3}}, {}, "rasters.files.a"),
        ({"folder": "."}, {"engine": "spark"}, "processing.engine"),
        ({"folder": "."}, {"scheduler": "somewhere"}, "processing.scheduler"),
    ],
)
def test_config_errors_name_the_key(
    tmp_path: Path, rasters: dict[str, Any], processing: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(_raw(tmp_path, rasters, **processing))


def test_a_listed_file_that_does_not_exist_is_named(case: Case) -> None:
    case.config["rasters"] = {
        "files": {"elev": str(case.folder / "elev.tif"), "slope": str(case.folder / "nope.tif")}
    }
    with pytest.raises(InputError, match=r"rasters\.files\.slope.*nope\.tif"):
        run(case.config)


def test_missing_dask_is_one_clear_error(case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "distributed", None)
    case.config["processing"] = {"engine": "dask"}
    with pytest.raises(ConfigError, match=r"windowed_classify\[dask\]"):
        run(case.config)
    assert not case.output.exists()


def test_an_unreachable_scheduler_is_one_clear_error(
    case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    from windowed_classify.engines import dask_engine

    monkeypatch.setattr(dask_engine, "CONNECT_TIMEOUT", "1s")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    case.config["processing"] = {"engine": "dask", "scheduler": f"tcp://127.0.0.1:{port}"}
    with pytest.raises(ConfigError, match=rf"processing.scheduler.*127\.0\.0\.1:{port}"):
        run(case.config)
    assert not case.output.exists()


def test_a_user_error_on_a_worker_reaches_the_user(cluster: Any, tmp_path: Path) -> None:
    """A label outside model.classes is found while a worker predicts (a model that does not
    list its classes): the same one clear error as with the local engines, and nothing under
    the output's name."""
    from windowed_classify.errors import ModelError

    case = build_case(tmp_path, labels=("forest", "water", "urban"))
    save_model(Unlisted(case.model), case.model_path)
    case.config["model"]["classes"] = ["forest", "water"]
    config = with_engine(case, "dask", engine="dask", scheduler=cluster.scheduler.address)
    with pytest.raises(ModelError, match="urban"):
        run(config)
    assert not Path(config["output"]["path"]).exists()
