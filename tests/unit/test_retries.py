"""Remote reads without a network: GDAL settings, retries and their counts, the server's answer
in the error, URLs, identities."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest
import rasterio
import rasterio.env
from rasterio.errors import RasterioIOError

from windowed_classify.config import COG_MEDIA_TYPE, load_config
from windowed_classify.errors import ConfigError, RemoteReadError
from windowed_classify.inputs import remote, retrycounts, urls
from windowed_classify.inputs.gdal_env import REMOTE_OPTIONS, remote_env, retry_policy
from windowed_classify.inputs.identity import identity_of, remote_identity
from windowed_classify.inputs.remote import RetryCounts, attempt, failure_text, transient
from windowed_classify.inputs.urls import gdal_path, host_of, http_url

URL = "/vsicurl/http://127.0.0.1:9/x.tif"  # port 9 (discard): never served


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The backoff waits of ``attempt``, recorded instead of slept."""
    slept: list[float] = []
    monkeypatch.setattr(remote.time, "sleep", slept.append)
    monkeypatch.setenv("GDAL_HTTP_MAX_RETRY", "4")
    monkeypatch.setenv("GDAL_HTTP_RETRY_DELAY", "0.5")
    return slept


@pytest.fixture(autouse=True)
def _no_host_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no host known to be down."""
    monkeypatch.setattr(urls, "_DOWN", {})


def failing(messages: list[str], then: object = None) -> tuple[list[int], object]:
    """An action that raises one RasterioIOError per message, then returns ``then``."""
    calls: list[int] = []

    def action(retry: bool) -> object:
        calls.append(int(retry))
        if len(calls) <= len(messages):
            raise RasterioIOError(messages[len(calls) - 1])
        return then

    return calls, action


# ----------------------------------------------------------------------------- settings


def test_remote_settings_apply_to_remote_paths_only_and_yield_to_the_user(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("GDAL_HTTP_MAX_RETRY", raising=False)
    monkeypatch.setenv("GDAL_HTTP_RETRY_DELAY", "2")  # the user's: left alone
    with remote_env(Path("local.tif")):
        assert "GDAL_DISABLE_READDIR_ON_OPEN" not in (
            rasterio.env.getenv() if rasterio.env.hasenv() else {}
        )
    with remote_env(URL):
        options = rasterio.env.getenv()
        assert options["GDAL_DISABLE_READDIR_ON_OPEN"] == "EMPTY_DIR"
        assert options["GDAL_HTTP_MAX_RETRY"] == REMOTE_OPTIONS["GDAL_HTTP_MAX_RETRY"]
        assert "GDAL_HTTP_RETRY_DELAY" not in options  # the environment's value stands
    policy = retry_policy()
    assert policy.tries == int(REMOTE_OPTIONS["GDAL_HTTP_MAX_RETRY"]) + 1
    assert policy.delay == 2.0
    with rasterio.Env(GDAL_HTTP_MAX_RETRY="0"):  # an enclosing rasterio.Env wins too
        assert retry_policy().tries == 1
        with remote_env(URL):
            assert rasterio.env.getenv()["GDAL_HTTP_MAX_RETRY"] == "0"


# ----------------------------------------------------------------------------- retries


def test_a_transient_failure_is_retried_with_backoff_and_counted(waits: list[float]) -> None:
    counts = RetryCounts()
    before = retrycounts.totals()
    calls, action = failing(["HTTP response code: 503", "HTTP response code: 429"], "pixels")
    assert attempt(action, URL, counts, "read", lambda why: why) == "pixels"
    assert calls == [0, 1, 1]  # the first try, then two retries
    assert counts == RetryCounts(read_retries=2)
    assert len(waits) == 2
    assert 0.5 <= waits[0] <= 0.5 * 1.25 and 1.0 <= waits[1] <= 1.0 * 1.25  # doubled, jittered
    after = retrycounts.totals()
    assert after.read_retries - before.read_retries == 2  # the process-wide sum sees them


def test_a_failure_that_never_passes_is_one_line_naming_the_status(waits: list[float]) -> None:
    counts = RetryCounts()
    calls, action = failing(["HTTP response code: 503"] * 10)
    with pytest.raises(RemoteReadError) as err:
        attempt(action, URL, counts, "open", lambda why: f"cannot open raster {URL} ({why})")
    assert str(err.value) == (
        f"cannot open raster {URL} (HTTP 503 Service Unavailable after 5 tries)"
    )
    assert len(calls) == 5 and counts.open_retries == 4 and len(waits) == 4
    assert urls.is_down(URL)  # the next file of this host is asked once, without retries
    calls, action = failing(["HTTP response code: 503"] * 10)
    with pytest.raises(RemoteReadError, match="^HTTP 503 Service Unavailable$"):
        attempt(action, "/vsicurl/http://127.0.0.1:9/y.tif", counts, "open", lambda why: why)
    assert len(calls) == 1
    calls, action = failing([], "ok")  # the host answers again: back to full retries
    attempt(action, "/vsicurl/http://127.0.0.1:9/z.tif", counts, "open", lambda why: why)
    assert not urls.is_down(URL)


def test_a_permanent_answer_is_not_retried(waits: list[float]) -> None:
    calls, action = failing(["HTTP response code on http://h/x.tif: 404"])
    with pytest.raises(RemoteReadError, match=r"^HTTP 404 Not Found$"):
        attempt(action, URL, RetryCounts(), "open", lambda why: why)
    assert len(calls) == 1 and waits == []


def test_without_a_status_in_gdal_s_words_a_head_finds_it(
    waits: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    """GDAL's "not recognized as being in a supported file format" hides a server's answer:
    the status comes from a HEAD of the URL (no status at all: GDAL's words stand)."""
    asked: list[str] = []

    def head(url: str, timeout: float = 0) -> urls.HeadAnswer:
        asked.append(url)
        return urls.HeadAnswer(503)

    monkeypatch.setattr(remote, "head", head)
    words = f"'{URL}' not recognized as being in a supported file format."
    calls, action = failing([words] * 10)
    with pytest.raises(RemoteReadError) as err:
        attempt(action, URL, RetryCounts(), "open", lambda why: why)
    assert str(err.value) == "HTTP 503 Service Unavailable after 5 tries"
    assert asked == ["http://127.0.0.1:9/x.tif"] * 5
    monkeypatch.setattr(remote, "head", lambda url, timeout=0: urls.HeadAnswer(200))
    calls, action = failing([words] * 10)
    with pytest.raises(RemoteReadError) as err:  # (another host: the first is now down)
        attempt(action, "/vsicurl/http://127.0.0.2:9/x.tif", RetryCounts(), "open", str)
    assert str(err.value) == f"{words} after 5 tries"


@pytest.mark.parametrize(
    ("status", "retried"),
    [(None, True), (408, True), (429, True), (500, True), (503, True), (504, True)]
    + [(400, False), (401, False), (403, False), (404, False), (416, False), (501, False)],
)
def test_which_answers_are_worth_another_try(status: int | None, retried: bool) -> None:
    assert transient(status) is retried


def test_failure_texts() -> None:
    assert failure_text(503, "x", 5) == "HTTP 503 Service Unavailable after 5 tries"
    assert failure_text(404, "x", 1) == "HTTP 404 Not Found"
    assert failure_text(599, "x", 2) == "HTTP 599 after 2 tries"
    assert failure_text(None, "Connection reset by peer", 3) == (
        "Connection reset by peer after 3 tries"
    )


# ----------------------------------------------------------------------------- GDAL's retries

GDAL_WORDS = [  # how GDAL 3.x words a retry (rasterio 1.3 prefixes "CPLE_AppDefined in ")
    ("CPLE_AppDefined:HTTP error code: 503 - http://h/a.tif. Retrying again in 0.5 secs", 503),
    ("CPLE_AppDefined in HTTP error code: 429 - http://h/a.tif. Retrying again in 1.0 secs", 429),
    ("HTTP error code for http://h/a.tif range 0-16383: 502. Retrying again in 2.0 secs", 502),
    ("CPLE_AppDefined:Request for 69034-74641 failed with response_code=503", 503),
    ("Request for http://h/a.tif range 5-9 failed with response_code=504", 504),
]


def test_gdal_s_retry_messages_are_counted_per_thread_and_kept_off_the_console(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gdal_log = logging.getLogger("rasterio._err")
    counts = {name: RetryCounts() for name in ("a", "b")}
    start = threading.Barrier(2)

    def work(name: str, n: int) -> None:
        def action(retry: bool) -> None:
            start.wait()
            for i in range(n):
                gdal_log.warning(GDAL_WORDS[i % len(GDAL_WORDS)][0])

        attempt(action, URL, counts[name], "read", lambda why: why)

    with caplog.at_level(logging.WARNING, logger="rasterio._err"):
        threads = [threading.Thread(target=work, args=a) for a in (("a", 7), ("b", 3))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        gdal_log.warning("CPLE_AppDefined:TIFFReadDirectory: some other warning")
    assert counts["a"].gdal_retries == 7 and counts["b"].gdal_retries == 3
    assert [r.getMessage() for r in caplog.records] == [
        "CPLE_AppDefined:TIFFReadDirectory: some other warning"
    ]


@pytest.mark.parametrize(("words", "status"), GDAL_WORDS)
def test_gdal_s_last_reported_status_names_the_failure(
    words: str, status: int, waits: list[float]
) -> None:
    def action(retry: bool) -> None:
        logging.getLogger("rasterio._env").warning(words)
        raise RasterioIOError("Read or write failed. IReadBlock failed at X offset 0")

    with pytest.raises(RemoteReadError, match=f"^HTTP {status} "):
        attempt(action, "/vsis3/bucket/a.tif", RetryCounts(), "read", lambda why: why)


# ----------------------------------------------------------------------------- URLs


def test_the_url_behind_a_gdal_path() -> None:
    assert http_url("/vsicurl/https://h.org/a.tif") == "https://h.org/a.tif"
    assert http_url("https://h.org/a.tif") == "https://h.org/a.tif"
    assert http_url("/vsicurl?max_retry=3&url=https%3A%2F%2Fh.org%2Fa.tif") == (
        "https://h.org/a.tif"
    )
    assert http_url("/vsis3/bucket/a.tif") is None
    assert http_url(Path("/data/a.tif")) is None
    assert gdal_path("https://h.org/a.tif") == "/vsicurl/https://h.org/a.tif"
    assert gdal_path("s3://bucket/key/a.tif") == "/vsis3/bucket/key/a.tif"
    assert gdal_path("/vsis3/bucket/a.tif") == "/vsis3/bucket/a.tif"
    assert host_of("/vsicurl/https://H.org:8080/a.tif") == "h.org:8080"
    assert host_of("/vsis3/bucket/key/a.tif") == "/vsis3/bucket"


def test_a_remote_identity_read_at_discovery_is_reused() -> None:
    known = (("path", URL), ("etag", '"abc"'), ("last_modified", None), ("size", 10))
    assert identity_of(URL, known) == dict(known)
    assert identity_of(URL, ()) is None  # the server said too little: unknown
    assert remote_identity(Path("local.tif")) is None  # local files: read when needed


# ----------------------------------------------------------------------------- config


def test_rasters_stac_is_a_third_source(tmp_path: Path) -> None:
    cfg = load_config({"rasters": {"stac": "items.json"}}, base_dir=tmp_path)
    assert cfg.rasters.stac == (tmp_path / "items.json",)
    assert cfg.rasters.media_types == ("image/tiff;application=geotiff;profile=cloud-optimized",)
    assert COG_MEDIA_TYPE == "image/tiff; application=geotiff; profile=cloud-optimized"
    cfg = load_config(
        {
            "rasters": {
                "stac": ["a.json", "https://h.org/b.json"],
                "media_types": ["Image/TIFF; application=geotiff"],
            }
        },
        base_dir=tmp_path,
    )
    assert cfg.rasters.stac == (tmp_path / "a.json", "https://h.org/b.json")
    assert cfg.rasters.media_types == ("image/tiff;application=geotiff",)
    with pytest.raises(ConfigError, match="exactly one of .*'rasters.stac'.*not both"):
        load_config({"rasters": {"stac": "a.json", "folder": "."}}, base_dir=tmp_path)
    with pytest.raises(ConfigError, match="rasters.media_types.*media type"):
        load_config({"rasters": {"stac": "a.json", "media_types": ["tiff"]}}, base_dir=tmp_path)


def test_the_gdal_called_through_ctypes_is_rasterio_s(monkeypatch: pytest.MonkeyPatch) -> None:
    """pyogrio's wheel brings a GDAL of its own: clearing the other one's cache, or asking it
    for headers with other settings, would do nothing for rasterio's reads."""
    import pyogrio  # noqa: F401 - loads its GDAL into the process

    from windowed_classify.inputs import gdal_vsi

    monkeypatch.setattr(gdal_vsi, "_LIB", [])
    lib = gdal_vsi._library()
    assert lib is not None
    with rasterio.Env(WINDOWED_CLASSIFY_TEST="seen"):
        assert lib.CPLGetConfigOption(b"WINDOWED_CLASSIFY_TEST", None) == b"seen"
