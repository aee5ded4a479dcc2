"""Remote layers end to end, over a server each test starts on 127.0.0.1 (tests/httpserver.py):
faults retried and counted with the local run's result, one clear error when a server never
answers, resuming after it answers again, a changed remote file noticed, STAC items as layers;
the next window read ahead (the one read next, or dropped; its failure raised by its read; its
retries counted; the local run's map).
"""

from __future__ import annotations

import copy
import dataclasses
import http.client
import json
import logging
import random
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import rasterio
import rasterio.shutil
from checks import assert_codes_equal, assert_run_matches
from helpers import (
    Case,
    build_case,
    read_output,
    run_main,
    write_raster,
    write_yaml,
)
from httpserver import RangeServer
from reference import reference_from_config

import windowed_classify
from windowed_classify.commands.check import check
from windowed_classify.config import COG_MEDIA_TYPE, ProcessingConfig, load_config
from windowed_classify.errors import OutputError, RemoteReadError
from windowed_classify.inputs import retrycounts, urls
from windowed_classify.inputs.reader import StackReader
from windowed_classify.inputs.windows import plan_windows
from windowed_classify.outputs.writer import partial_path
from windowed_classify.passes import pass1
from windowed_classify.passes.band import Band
from windowed_classify.prepare import prepare

pytestmark = pytest.mark.network

GDAL_3_10 = tuple(int(p) for p in rasterio.__gdal_version__.split(".")[:2]) >= (3, 10)


@pytest.fixture(autouse=True)
def _quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """GDAL's retries and the tool's start at 10 ms (the user's setting wins over the tool's),
    and no host is remembered as down from an earlier test."""
    monkeypatch.setenv("GDAL_HTTP_RETRY_DELAY", "0.01")
    monkeypatch.delenv("GDAL_HTTP_MAX_RETRY", raising=False)
    monkeypatch.setattr(urls, "_DOWN", {})


def make_case(tmp_path: Path, **kw: Any) -> Case:
    """Three float32 layers of 300 x 330 pixels in 32 x 32 tiles: a run reads them in four
    windows with some 80 requests."""
    case = build_case(tmp_path, height=300, width=330, seed=6, layout=("tiled", 32), **kw)
    case.config["processing"] = {"memory_mb": 1, "stats_cache": False}
    return case


def over_http(
    case: Case, server: RangeServer, name: str, host: str = "", **processing: Any
) -> dict[str, Any]:
    """The case's config reading its layers from ``server``, writing to out_<name>/."""
    config = copy.deepcopy(case.config)
    base = server.url.replace("127.0.0.1", host) if host else server.url
    config["rasters"] = {
        "files": {s.name: f"/vsicurl/{base}/{s.relpath}" for s in case.stack.layers}
    }
    config["output"]["path"] = str(case.root / f"out_{name}" / "prediction.tif")
    config["processing"] = {**config["processing"], **processing}
    return config


def run(config: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return windowed_classify.run(config, quiet=True, **kw)


def codes(config: dict[str, Any]) -> np.ndarray:
    return read_output(Path(config["output"]["path"]))[0]


def journal_of(config: dict[str, Any]) -> Path:
    out = Path(config["output"]["path"])
    found = list(out.parent.glob("*.journal.json"))
    assert len(found) == 1, found
    return found[0]


# --------------------------------------------------------------------------- the test server


def test_the_server_serves_ranges_keeps_connections_and_identifies_files(tmp_path: Path) -> None:
    (tmp_path / "a.bin").write_bytes(bytes(range(100)))
    with RangeServer(tmp_path) as server:
        own = server.url.removeprefix(f"http://{server.host}")  # the server's own path
        assert own.startswith("/s") and len(own) > 2
        conn = http.client.HTTPConnection(server.host, timeout=10)
        conn.request("GET", f"{own}/a.bin", headers={"Range": "bytes=10-19"})
        one = conn.getresponse()
        assert one.status == 206 and one.read() == bytes(range(10, 20))
        assert one.headers["Content-Range"] == "bytes 10-19/100"
        sock = conn.sock
        conn.request("GET", "/a.bin", headers={"Range": "bytes=0-1,-2"})
        two = conn.getresponse()
        body = two.read()
        assert conn.sock is sock  # the same connection: HTTP/1.1 keep-alive
        assert two.status == 206 and "multipart/byteranges" in two.headers["Content-Type"]
        assert b"bytes 0-1/100\r\n\r\n\x00\x01" in body and b"bytes 98-99/100\r\n\r\nbc" in body
        conn.request("HEAD", "/a.bin")
        head = conn.getresponse()
        head.read()
        assert head.headers["Content-Length"] == "100" and head.headers["ETag"]
        assert head.headers["Last-Modified"]
        server.set(down=True)
        with pytest.raises(urllib.error.HTTPError, match="503"):
            urllib.request.urlopen(f"{server.url}/a.bin", timeout=10)
        assert server.stats["ranges"] == 2 and server.stats["multiranges"] == 1
        assert server.stats["failed"] == 1


# --------------------------------------------------------------------------- faults


def test_transient_faults_change_nothing_and_the_retries_are_counted(tmp_path: Path) -> None:
    """A share of 503s and two reset connections: the same map and statistics as the local
    files (two threads reading), and GDAL's retries counted."""
    case = make_case(tmp_path)
    ref = reference_from_config(case.config)
    local = run({**case.config, "processing": {**case.config["processing"], "workers": 2}})
    seed = 2
    draws = random.Random(seed)
    assert sum(draws.random() < 0.05 for _ in range(40)) == 3  # faults early in the run
    with RangeServer(case.folder, fail_share=0.05, seed=seed, reset_on=(6, 30)) as server:
        config = over_http(case, server, "faults", workers=2, engine="threads")
        before = retrycounts.totals()
        report = run(config)
        counted = retrycounts.totals().total - before.total
        served = server.stats
    assert_run_matches(report, ref, Path(config["output"]["path"]))
    assert_codes_equal(codes(config), read_output(case.output)[0])
    for name, layer in local["layers"].items():
        for key in ("median", "min", "max", "valid_count", "nodata_count"):
            assert report["layers"][name][key] == layer[key], (name, key)
    assert served["resets"] == 2 and served["failed"] >= 2
    # every retry counted was caused by a failed request (a 503, or a reset GDAL retried)
    assert 1 <= counted <= served["failed"] + served["resets"]


@pytest.mark.skipif(
    not GDAL_3_10,
    reason="GDAL < 3.10 reports the failed ranges of a parallel read below rasterio's log "
    "level: those retries cannot be counted",
)
def test_every_failed_request_is_counted_once(tmp_path: Path) -> None:
    """Each distinct request fails 5 times: GDAL (4 retries) gives up on every one, the tool
    retries the open or the read, and each failure is counted exactly once: as GDAL's retry,
    or as the tool's."""
    case = make_case(tmp_path)
    prep = prepare(load_config(case.config))
    windows = plan_windows(prep.grid, [la.block_shape for la in prep.layers], 64 * 64)
    with StackReader(prep.layers) as reader:
        local = [reader.read(w) for w in windows]
    with RangeServer(case.folder, fail_first=5) as server:
        layers = [
            dataclasses.replace(la, path=f"/vsicurl/{server.url}/{Path(la.path).name}")
            for la in prep.layers
        ]
        with StackReader(layers) as reader:
            for window, (values, invalid) in zip(windows, local, strict=True):
                got = reader.read(window)
                np.testing.assert_array_equal(got[0], values)
                np.testing.assert_array_equal(got[1], invalid)
            counts = reader.counts
        failed = server.stats["failed"]
    assert counts.open_retries >= 1 and counts.read_retries >= 1 and counts.gdal_retries >= 1
    assert counts.total == failed


ENGINES = {
    "serial": {"workers": 1},
    "threads": {"workers": 2, "engine": "threads"},
    "processes": {"workers": 2, "engine": "processes"},
    "dask": {"workers": 2, "engine": "dask"},
}


@pytest.mark.skipif(
    not GDAL_3_10,
    reason="GDAL < 3.10 reports the failed ranges of a parallel read below rasterio's log "
    "level: those retries cannot be counted",
)
@pytest.mark.parametrize("engine", list(ENGINES))
def test_the_report_counts_the_retries_of_every_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: str
) -> None:
    """Every request fails once: the identity HEADs, the opens, the guide's windows, pass 1
    counted apart, the medians the band missed read again, pass 2. The report's
    remote_retries is the number of failed requests, whichever engine read them."""
    if engine == "dask":
        pytest.importorskip("distributed")
    monkeypatch.setattr(pass1, "MAX_DEFERRED", -1.0)  # counted apart, after the guide
    monkeypatch.setattr(pass1, "band_of", lambda high: Band(0, 1))  # every median missed
    case = make_case(tmp_path)
    case.config["nodata"]["threshold"] = 1
    ref = reference_from_config(case.config)
    with RangeServer(case.folder, fail_first=1) as server:
        report = run(over_http(case, server, engine, **ENGINES[engine]))
        failed = server.stats["failed"]
    assert report["pass1"] == "separate"
    assert sorted(report["median_second_reads"]) == ["elev", "ndvi", "slope"]
    assert_run_matches(report, ref, Path(report["outputs"]["classes"]))
    assert failed > 0 and report["remote_retries"] == failed


@pytest.mark.parametrize("engine", list(ENGINES))
def test_read_ahead_reads_a_windows_files_at_once_with_the_local_result(
    tmp_path: Path, engine: str
) -> None:
    """Six files served with 10 ms per request, nodata threshold 1 (rows that need a fill
    deferred): the files of a window are read at once (the server answers requests for all
    six files at once; without read-ahead, for one file per worker), and the map, every
    output and every median are the local run's, bit for bit, with read-ahead and without it,
    on every engine."""
    if engine == "dask":
        pytest.importorskip("distributed")
    names = ("elev", "slope", "ndvi", "twi", "clay", "sand")
    case = make_case(tmp_path, names=names)
    case.config["nodata"]["threshold"] = 1
    case.config["output"]["probabilities"] = str(case.root / "p.tif")
    case.config["processing"] |= ENGINES[engine]
    ref = reference_from_config(case.config)
    local = run(case.config)
    busy = {}
    with RangeServer(case.folder, latency=0.01) as server:
        reports = {}
        for read_ahead in (16, 0):
            name = f"{engine}_{read_ahead}"
            config = over_http(case, server, name, read_ahead=read_ahead)
            config["output"]["probabilities"] = str(case.root / f"out_{name}" / "p.tif")
            server.reset_peak()
            reports[read_ahead] = run(config)
            busy[read_ahead] = server.stats["most_files"]
            assert_run_matches(reports[read_ahead], ref, Path(config["output"]["path"]))
            assert_codes_equal(codes(config), read_output(case.output)[0])
            for key in ("classes", "probabilities"):
                mine = reports[read_ahead]["outputs"][key]
                with rasterio.open(local["outputs"][key]) as a, rasterio.open(mine) as b:
                    assert np.array_equal(a.read(), b.read(), equal_nan=True), key
            assert medians_bits(reports[read_ahead]) == medians_bits(local)
    assert reports[16]["pass1"] == local["pass1"] == "deferred"
    assert busy[16] == len(names)
    assert busy[0] <= ENGINES[engine]["workers"]


def medians_bits(report: dict[str, Any]) -> dict[str, int]:
    return {n: int(np.float32(v["median"]).view(np.uint32)) for n, v in report["layers"].items()}


def test_a_server_that_never_answers_is_one_line_naming_the_url_and_status(
    tmp_path: Path,
) -> None:
    case = make_case(tmp_path)
    with RangeServer(case.folder) as server:
        server.set(down=True)
        config = over_http(case, server, "dead")
        proc = run_main(case.write_config("dead.yaml", config), "--quiet")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    url = f"/vsicurl/{server.url}/elev.tif"
    assert errors == [
        f"error: cannot open raster {url} (HTTP 503 Service Unavailable after 5 tries)"
    ], proc.stderr
    assert "not recognized" not in proc.stderr and "Traceback" not in proc.stderr
    assert not Path(config["output"]["path"]).exists()


def test_check_times_each_host_and_foresees_the_runs_requests(tmp_path: Path) -> None:
    """check's remote section: per host, the time of a header request, the requests the run
    will make (the run then makes as many) and the time it will wait for them, one file after
    another and with read-ahead; text and JSON agree."""
    case = make_case(tmp_path, names=("elev", "slope", "ndvi", "twi"))
    with RangeServer(case.folder, latency=0.01) as server:
        # another name for the same server: the run's requests are not answered from what
        # GDAL kept of check's
        checked = over_http(case, server, "checked", host="localhost", workers=2)
        found = check(load_config(checked))
        config = over_http(case, server, "run", workers=2)
        before = server.stats["requests"]
        run(config)
        made = server.stats["requests"] - before
        off = check(
            load_config({**checked, "processing": {**checked["processing"], "read_ahead": 0}})
        )
    doc = found.document()["remote"]
    assert doc["read_ahead"] == ProcessingConfig.read_ahead
    [host] = doc["hosts"]
    assert host["host"] == server.host.replace("127.0.0.1", "localhost")
    assert host["files"] == 4 and host["status"] == 200 and host["latency_ms"] > 0
    assert host["requests"] == pytest.approx(made, rel=0.1)
    assert 0 < host["read_ahead_seconds"] < host["read_seconds"]
    [slow] = off.document()["remote"]["hosts"]
    assert slow["read_ahead_seconds"] == slow["read_seconds"]
    rows = [
        line.split() for line in found.render().splitlines() if line.startswith(f"  {host['host']}")
    ]
    assert len(rows) == 1 and rows[0][1] == "4" and rows[0][4] == f"{host['requests']:,}"


def test_check_names_each_unreachable_file_with_its_servers_answer(tmp_path: Path) -> None:
    case = make_case(tmp_path)
    gone = RangeServer(case.folder).start()
    dead, dead_host = gone.url, gone.host
    gone.stop()  # nothing listens on its port now
    with RangeServer(case.folder) as server:
        config = over_http(case, server, "checked")
        config["rasters"]["files"]["slope"] = f"/vsicurl/{server.url}/missing.tif"
        config["rasters"]["files"]["ndvi"] = f"/vsicurl/{dead}/ndvi.tif"
        found = check(load_config(config))
    assert not found.ok
    text = found.render()
    assert f"  cannot open /vsicurl/{server.url}/missing.tif: HTTP 404 Not Found" in text
    assert f"  cannot open /vsicurl/{dead}/ndvi.tif: no answer from the server: " in text
    hosts = {h["host"]: h for h in found.document()["remote"]["hosts"]}
    live, down = hosts[server.host], hosts[dead_host]
    assert live["unreachable"] == [
        {
            "path": f"/vsicurl/{server.url}/missing.tif",
            "status": 404,
            "reason": "HTTP 404 Not Found",
        }
    ]
    assert live["files"] == 1 and live["status"] == 200
    assert down["latency_ms"] is None and down["status"] is None and down["error"]
    [why] = down["unreachable"]
    assert why["status"] is None and why["reason"].startswith("no answer from the server: ")


def stop_midway(
    case: Case,
    name: str,
    monkeypatch: pytest.MonkeyPatch,
    *,
    validators: bool = True,
    **processing: Any,
) -> tuple[RangeServer, dict[str, Any]]:
    """A run whose server answers 503 to its last requests (reads of pass 2's last windows):
    it stops with one error and keeps its journal. Returns the server (still failing) and
    the config.

    Which requests are the last, a complete run of the same config against another server
    tells (a new port: nothing of it in GDAL's memory). GDAL keeps what a file handle read
    after it is closed, and the windows of this small stack would come from that memory
    instead of the server: ``CPL_VSIL_CURL_NON_CACHED`` makes each handle read for itself."""
    monkeypatch.setenv("CPL_VSIL_CURL_NON_CACHED", "/vsicurl/http")
    processing = {"workers": 1, "checkpoint_seconds": 0, **processing}
    with RangeServer(case.folder, validators=validators) as probe:
        run(over_http(case, probe, f"{name}_probe", **processing))
        requests = probe.stats["requests"]
    server = RangeServer(case.folder, fail_after=requests - 10, validators=validators).start()
    config = over_http(case, server, name, **processing)
    with pytest.raises(RemoteReadError) as err:
        run(config)
    message = str(err.value)
    assert message.startswith(f"cannot read /vsicurl/{server.url}/"), message
    assert "(HTTP 503 Service Unavailable after 5 tries): layer '" in message
    assert message.endswith("; run again with --resume to continue")
    assert journal_of(config).is_file()  # what is written is kept, and vouched for
    assert partial_path(Path(config["output"]["path"])).is_file()
    assert not Path(config["output"]["path"]).exists()
    return server, config


def test_a_run_stopped_by_a_failing_server_resumes_once_it_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = make_case(tmp_path)
    ref = reference_from_config(case.config)
    server, config = stop_midway(case, "stopped", monkeypatch)
    try:
        server.set(fail_after=0)  # the server is back
        report = run(config, resume=True)
    finally:
        server.stop()
    assert report["resumed"] is True
    assert_run_matches(report, ref, Path(config["output"]["path"]))


# --------------------------------------------------------------------------- identity


def rewrite(case: Case, name: str) -> None:
    """Replace one layer's file with other values (a new ETag on the server)."""
    spec = next(s for s in case.stack.layers if s.name == name)
    valid = np.isfinite(spec.data) & (spec.data != spec.file_nodata)
    spec.data = np.where(valid, spec.data * 2 + 1, spec.data).astype(spec.data.dtype)
    write_raster(
        case.folder / spec.relpath,
        spec.data,
        dtype=spec.dtype,
        nodata=spec.file_nodata,
        layout=spec.layout,
    )


def test_a_changed_remote_file_is_noticed_by_the_statistics_cache(tmp_path: Path) -> None:
    case = make_case(tmp_path)
    cache = {"stats_cache": True, "cache_dir": str(tmp_path / "cache")}
    with RangeServer(case.folder) as server:
        first = run(over_http(case, server, "first", **cache))
        again = run(over_http(case, server, "again", **cache))
        rewrite(case, "slope")
        config = over_http(case, server, "changed", **cache)
        changed = run(config)
    assert (first["stats_cache"], again["stats_cache"]) == ("computed", "used")
    assert changed["stats_cache"] == "partly used"  # slope again, elev and ndvi from the cache
    # this process read slope before: what GDAL kept of it is forgotten, the new one is read
    ref = reference_from_config(case.config)
    assert_run_matches(changed, ref, Path(config["output"]["path"]))
    assert changed["layers"]["slope"]["median"] != first["layers"]["slope"]["median"]


def test_a_changed_remote_file_is_noticed_by_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = make_case(tmp_path)
    server, config = stop_midway(case, "stopped", monkeypatch)
    try:
        rewrite(case, "elev")
        server.set(fail_after=0)
        with pytest.raises(OutputError) as err:
            run(config, resume=True)
    finally:
        server.stop()
    assert str(err.value) == (
        "cannot resume: since the interrupted run, the covariate elev "
        f"(/vsicurl/{server.url}/elev.tif) changed. Run again without --resume to start over"
    )


def test_a_server_that_does_not_identify_its_files_is_neither_cached_nor_resumed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = make_case(tmp_path)
    cache = {"stats_cache": True, "cache_dir": str(tmp_path / "cache")}
    with RangeServer(case.folder, validators=False) as server:
        url = f"/vsicurl/{server.url}/elev.tif"
        with caplog.at_level(logging.WARNING, logger="windowed_classify"):
            reports = [run(over_http(case, server, n, **cache)) for n in ("one", "two")]
    assert [r["stats_cache"] for r in reports] == ["computed", "computed"]
    assert (
        f"no identity for {url} (the server sends neither ETag nor Last-Modified): its "
        "statistics are not cached, and a run over it cannot be resumed" in caplog.text
    )
    assert not any((tmp_path / "cache").glob("*.json"))
    server, config = stop_midway(case, "stopped", monkeypatch, validators=False)
    try:
        server.set(fail_after=0)
        with pytest.raises(OutputError, match="cannot resume: the server does not identify"):
            run(config, resume=True)
    finally:
        server.stop()


def test_object_store_paths_are_identified_by_gdal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/vsis3/ against the loopback server (unsigned): GDAL reads it and names its ETag, so
    its statistics are cached like a local file's."""
    case = make_case(tmp_path)
    ref = reference_from_config(case.config)
    with RangeServer(case.root) as server:  # bucket "covariates"
        for key, value in {
            "AWS_S3_ENDPOINT": server.host,
            "AWS_HTTPS": "NO",
            "AWS_VIRTUAL_HOSTING": "FALSE",
            "AWS_NO_SIGN_REQUEST": "YES",
        }.items():
            monkeypatch.setenv(key, value)
        reports = []
        for name in ("s3_first", "s3_again"):
            config = copy.deepcopy(case.config)
            config["rasters"] = {
                "files": {s.name: f"/vsis3/covariates/{s.relpath}" for s in case.stack.layers}
            }
            config["output"]["path"] = str(case.root / f"out_{name}" / "prediction.tif")
            config["processing"] = {"stats_cache": True, "cache_dir": str(tmp_path / "cache")}
            reports.append(run(config))
            assert_run_matches(reports[-1], ref, Path(config["output"]["path"]))
    assert [r["stats_cache"] for r in reports] == ["computed", "used"]


# --------------------------------------------------------------------------- STAC


def stac_case(tmp_path: Path) -> tuple[Case, Path]:
    """Layers named <item>_<asset>, written as COGs under served/cogs/, an ItemCollection
    served/items.json whose asset hrefs are relative, and a thumbnail asset (not a layer)."""
    case = build_case(
        tmp_path,
        names=("s2_red", "s2_nir", "dem_elev"),
        height=130,
        width=170,
        seed=8,
        layout=("tiled", 32),
    )
    case.config["processing"] = {"stats_cache": False}
    served = tmp_path / "served"
    (served / "cogs").mkdir(parents=True)
    for spec in case.stack.layers:
        target = served / "cogs" / f"{spec.name}.tif"
        rasterio.shutil.copy(case.folder / spec.relpath, target, driver="COG")
    (served / "cogs" / "thumb.png").write_bytes(b"\x89PNG")

    def item(item_id: str, assets: dict[str, str]) -> dict[str, Any]:
        return {
            "type": "Feature",
            "stac_version": "1.0.0",
            "id": item_id,
            "geometry": None,
            "properties": {"datetime": "2024-05-01T00:00:00Z"},
            "links": [],
            "assets": {
                **{k: {"href": f"cogs/{f}.tif", "type": COG_MEDIA_TYPE} for k, f in assets.items()},
                "thumbnail": {"href": "cogs/thumb.png", "type": "image/png"},
            },
        }

    items = [item("s2", {"red": "s2_red", "nir": "s2_nir"}), item("dem", {"elev": "dem_elev"})]
    collection = {"type": "FeatureCollection", "features": items}
    (served / "items.json").write_text(json.dumps(collection), encoding="utf-8")
    for one in items:
        (served / f"{one['id']}.json").write_text(json.dumps(one), encoding="utf-8")
    return case, served


def test_stac_items_served_over_http_give_the_local_result(tmp_path: Path) -> None:
    case, served = stac_case(tmp_path)
    ref = reference_from_config(case.config)
    with RangeServer(served) as server:
        config = copy.deepcopy(case.config)
        config["rasters"] = {"stac": f"{server.url}/items.json"}
        config["output"]["path"] = str(tmp_path / "out_stac" / "prediction.tif")
        report = run(config)
        listed = copy.deepcopy(config)  # the same items as Item files, one local, one URL
        listed["rasters"] = {"stac": [str(served / "s2.json"), f"{server.url}/dem.json"]}
        listed["output"]["path"] = str(tmp_path / "out_items" / "prediction.tif")
        report_items = run(listed)
    assert_run_matches(report, ref, Path(config["output"]["path"]))
    assert_run_matches(report_items, ref, Path(listed["output"]["path"]))
    assert report["layers"]["s2_red"]["path"] == f"/vsicurl/{server.url}/cogs/s2_red.tif"
    assert report_items["layers"]["s2_red"]["path"] == str(served / "cogs" / "s2_red.tif")
    assert report_items["layers"]["dem_elev"]["path"] == f"/vsicurl/{server.url}/cogs/dem_elev.tif"


def test_one_stac_item_names_layers_by_asset_and_check_and_sample_take_it(
    tmp_path: Path,
) -> None:
    case, served = stac_case(tmp_path)
    one = {"stac": str(served / "s2.json")}
    cfg = copy.deepcopy(case.config)
    cfg["rasters"] = one
    del cfg["model"], cfg["output"]
    proc = run_main("check", write_yaml(tmp_path / "one.yaml", cfg))
    assert proc.returncode == 2  # a sampling config: a run would need a model
    assert "layers: 2 found in rasters.stac" in proc.stdout
    found = check(load_config(cfg, base_dir=tmp_path))
    assert [la.name for la in found.layers] == ["red", "nir"]  # one item: the asset keys alone
    assert [p.split(":")[0] for p in found.problems] == [
        "the config has no 'model' section",
        "the config has no 'output' section",
    ]
    # sample reads the same values through STAC as through the folder
    with rasterio.open(case.folder / "s2_red.tif") as ds:
        rows = np.random.default_rng(0).integers(0, ds.height, 40)
        cols = np.random.default_rng(1).integers(0, ds.width, 40)
        xs, ys = rasterio.transform.xy(ds.transform, rows, cols)
    points = tmp_path / "points.csv"
    pd.DataFrame({"x": xs, "y": ys}).to_csv(points, index=False)
    cfg["rasters"] = {"stac": str(served / "items.json")}
    through_stac = run_main(
        "sample", write_yaml(tmp_path / "stac.yaml", cfg), points, "-o", tmp_path / "a.csv"
    )
    cfg["rasters"] = {"folder": str(case.folder)}
    through_folder = run_main(
        "sample", write_yaml(tmp_path / "folder.yaml", cfg), points, "-o", tmp_path / "b.csv"
    )
    assert through_stac.returncode == 0 and through_folder.returncode == 0, through_stac.stderr
    a, b = (pd.read_csv(tmp_path / n, dtype=str) for n in ("a.csv", "b.csv"))
    assert list(a.columns) == ["x", "y", "s2_red", "s2_nir", "dem_elev"]
    pd.testing.assert_frame_equal(a, b[a.columns])


def test_stac_problems_are_one_line_each(tmp_path: Path) -> None:
    case, served = stac_case(tmp_path)
    cfg = copy.deepcopy(case.config)

    def error(stac: Any, **rasters: Any) -> str:
        cfg["rasters"] = {"stac": stac, **rasters}
        proc = run_main(write_yaml(tmp_path / "c.yaml", cfg), "--quiet")
        assert proc.returncode == 2
        return proc.stderr.strip().splitlines()[-1]

    assert error(str(served / "items.json"), media_types=["image/jp2"]) == (
        "error: rasters.stac: no asset of media type image/jp2 in 2 item(s) (their assets' "
        f"types: image/png, {COG_MEDIA_TYPE}); set rasters.media_types to choose others"
    )
    (served / "cogs" / "dem_elev.tif").unlink()
    assert error(str(served / "items.json")) == (
        "error: rasters.stac item 'dem' asset 'elev': file not found: "
        f"{served / 'cogs' / 'dem_elev.tif'}"
    )
    catalog = served / "catalog.json"
    catalog.write_text(json.dumps({"type": "Catalog", "id": "c"}), encoding="utf-8")
    assert error(str(catalog)) == (
        f"error: rasters.stac: {catalog} is a Catalog, not a STAC ItemCollection or Item (for "
        "a Collection or Catalog, list its items' files)"
    )
