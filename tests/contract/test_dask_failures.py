"""Dask failures, proven on a real cluster: a worker killed in each phase, the command killed.

The cluster is three OS processes on 127.0.0.1: ``dask scheduler`` and two ``dask worker
--nthreads 1`` (each with its nanny, which restarts a killed worker). Each worker serves on a
port picked at random but fixed for its life, so a restarted worker comes back at the same
address with an empty disk: the engine must tell the new worker from the one that held the
spills. The workers preload tests/dask_slow_jobs.py, which slows one kind of the tool's items
while a test asks (only their timing: nothing they compute), so that a test can SIGKILL a
worker while that kind of item runs. The test watches the scheduler's ``processing()`` (which
task keys each worker runs: ``predict-``, ``recount-``, ``select-``, ``fill-``...) and the
run's ``--progress json`` events, and kills when both say the phase it wants has come.

Every run is the CLI in a subprocess, bounded by a timeout (a hang fails the test), and every
output (classes, probabilities, confidence; report medians and counts) must equal the local
engine's, pixel for pixel and bit for bit, and the in-memory reference (tests/reference.py).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import distributed  # the test extra installs dask[distributed]
import numpy as np
import pytest
import rasterio
from checks import assert_run_matches, assert_same_medians
from helpers import Case, build_case, load_report, package_root, write_yaml
from reference import Reference, reference_from_config

from windowed_classify.outputs.writer import partial_path
from windowed_classify.passes import pass1
from windowed_classify.passes.journal import journal_path

pytestmark = pytest.mark.slow

TESTS = Path(__file__).resolve().parent.parent
SIDE = 1536  # 6 x 6 windows of one output tile (256 x 256) each, with memory_mb 1
TILE_PX = 256 * 256
WINDOWS = (SIDE // 256) ** 2
GUIDE = max(pass1.MIN_GUIDE, -(-pass1.SAMPLE_PIXELS // TILE_PX))  # pass 2's first windows
RASTERS = ("classes.tif", "proba.tif", "conf.tif")
RUN_TIMEOUT = 180.0  # seconds a run may take before the test fails (and kills it)
WATCH_TIMEOUT = 120.0  # seconds to wait for the phase a test kills in
START_TIMEOUT = 60.0

assert WINDOWS > GUIDE + 8, "the stack must have windows after pass 2's guide"


# --------------------------------------------------------------------------- the cluster


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process's group (a worker and its nanny), SIGKILL if it lingers."""
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        if proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=wait)


@dataclass
class Killed:
    """The worker a test killed, and what the run was doing then."""

    address: str
    pid: int
    key: str  # a task the worker was running
    stages: list[tuple[str, int, int]]  # the run's progress events so far: stage, done, total

    @property
    def stage(self) -> str | None:
        return self.stages[-1][0] if self.stages else None

    @property
    def done(self) -> int:
        return self.stages[-1][1] if self.stages else 0

    def finished(self, stage: str) -> bool:
        """Whether ``stage`` had ended (its last event: every pixel done) at the kill."""
        return any(s == stage and done == total for s, done, total in self.stages)


@dataclass
class Cluster:
    address: str
    client: Any
    slow_dir: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def ready(self) -> dict[str, int]:
        """Both workers up (a killed one restarted by its nanny); their pids by address."""
        self.client.wait_for_workers(2, timeout=START_TIMEOUT)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            pids = self.client.run(os.getpid)
            if len(pids) == 2:
                return pids
            assert time.monotonic() < deadline, f"workers: {pids}"
            time.sleep(0.2)

    @contextlib.contextmanager
    def slowed(self, **seconds: float) -> Iterator[None]:
        """Items of these jobs (class names) sleep that long first, on every worker."""
        for job, s in seconds.items():
            (self.slow_dir / job).write_text(str(s))
        try:
            yield
        finally:
            for job in seconds:
                (self.slow_dir / job).unlink(missing_ok=True)

    def kill_when(self, run: Cli, prefix: str, when: Callable[[], bool] = lambda: True) -> Killed:
        """SIGKILL the first worker seen running a task whose key starts with ``prefix``
        once ``when()`` holds."""
        pids = self.ready()
        deadline = time.monotonic() + WATCH_TIMEOUT
        while time.monotonic() < deadline:
            assert run.proc.poll() is None, f"the run ended before the kill:\n{run.stderr}"
            if when():
                for worker, keys in self.client.processing().items():
                    hits = [str(k) for k in keys if str(k).startswith(prefix)]
                    if hits and worker in pids:
                        stages = run.stages()
                        os.kill(pids[worker], signal.SIGKILL)
                        return Killed(worker, pids[worker], hits[0], stages)
            time.sleep(0.02)
        raise AssertionError(f"no {prefix} task was seen in time:\n{run.stderr}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """``dask scheduler`` and two ``dask worker --nthreads 1`` as OS processes; stopped in
    the teardown, whatever the tests did."""
    root = tmp_path_factory.mktemp("cluster")
    slow_dir = root / "slow"
    slow_dir.mkdir()
    env = dict(os.environ, WC_TEST_SLOW_DIR=str(slow_dir))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(package_root()), env.get("PYTHONPATH")]))
    scheduler_file = root / "scheduler.json"
    procs: list[subprocess.Popen[bytes]] = []
    client = None

    def start(args: list[str], log: str) -> None:
        with open(root / log, "wb") as out:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "dask", *args],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                )
            )

    try:
        start(
            [
                "scheduler",
                *("--host", "127.0.0.1", "--port", "0", "--no-dashboard"),
                *("--scheduler-file", str(scheduler_file), "--idle-timeout", "900"),
            ],
            "scheduler.log",
        )
        deadline = time.monotonic() + START_TIMEOUT
        while not scheduler_file.exists():
            assert procs[0].poll() is None, (root / "scheduler.log").read_text()
            assert time.monotonic() < deadline, "the scheduler did not start"
            time.sleep(0.1)
        time.sleep(0.2)  # the file is written whole, but give it a moment
        address = json.loads(scheduler_file.read_text())["address"]
        for i in range(2):
            start(
                [
                    *("worker", address, "--nthreads", "1", "--nworkers", "1"),
                    *("--host", "127.0.0.1", "--worker-port", str(_free_port())),
                    *("--no-dashboard", "--local-directory", str(root / f"worker{i}")),
                    *("--preload", str(TESTS / "dask_slow_jobs.py"), "--death-timeout", "60"),
                ],
                f"worker{i}.log",
            )
        client = distributed.Client(address, timeout=START_TIMEOUT)
        cluster = Cluster(address, client, slow_dir, procs)
        cluster.ready()
        yield cluster
    finally:
        if client is not None:
            client.close()
        for proc in reversed(procs):
            _stop(proc)


# --------------------------------------------------------------------------- the runs


class Cli:
    """``python -m windowed_classify run CONFIG --quiet --progress json`` in a subprocess;
    its stderr (progress events, warnings) read as it comes."""

    def __init__(self, config: Path, *extra: str):
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(package_root()), env.get("PYTHONPATH")])
        )
        cmd = [sys.executable, "-m", "windowed_classify", "run", str(config), "--quiet"]
        self.proc = subprocess.Popen(
            [*cmd, "--progress", "json", *extra],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._lock:
                self.lines.append(line)
                if line.startswith("{"):
                    with contextlib.suppress(ValueError):
                        self.events.append(json.loads(line))

    @property
    def stderr(self) -> str:
        with self._lock:
            return "".join(self.lines)[-6000:]

    def last(self) -> dict[str, Any] | None:
        with self._lock:
            progress = [e for e in self.events if e.get("event") == "progress"]
        return progress[-1] if progress else None

    def done(self, stage: str) -> int:
        """Pixels done in ``stage`` by the last event, 0 before it."""
        event = self.last()
        return int(event["done"]) if event and event["stage"] == stage else 0

    def stages(self) -> list[tuple[str, int, int]]:
        with self._lock:
            return [
                (e["stage"], e["done"], e["total"])
                for e in self.events
                if e.get("event") == "progress"
            ]

    def wait(self, timeout: float = RUN_TIMEOUT) -> int:
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"the run took over {timeout} s:\n{self.stderr}") from None
        self._reader.join(timeout=10)
        return code

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)


# --------------------------------------------------------------------------- the stacks


@dataclass
class Scenario:
    """A stack and a nodata threshold (``name``: the pass-1 mode the report names), with
    what the local engine and the reference give."""

    name: str
    case: Case
    threshold: int
    local: Path  # the local engine's output folder
    ref: Reference

    def config(self, out: Path, **processing: Any) -> Path:
        """The run's config file, writing to ``out``, with these processing keys."""
        settings = self.settings_of(self.case, self.threshold, out, **processing)
        return write_yaml(out / "config.yaml", settings)

    @staticmethod
    def settings_of(case: Case, threshold: int, out: Path, **processing: Any) -> dict[str, Any]:
        cfg = json.loads(json.dumps(case.config))
        cfg["nodata"]["threshold"] = threshold
        cfg["output"] = {
            "path": str(out / "classes.tif"),
            "probabilities": str(out / "proba.tif"),
            "confidence": str(out / "conf.tif"),
        }
        cfg["processing"] = {
            "memory_mb": 1,  # windows of one output tile: many windows
            "stats_cache": False,  # every run counts pass 1
            "checkpoint_seconds": 0,  # the journal follows every window
            **processing,
        }
        return dict(cfg)


def _gappy(case: Case, share: float) -> Case:
    """One layer nodata at ``share`` of its pixels: at threshold 1 most pixels need a fill."""
    spec = case.stack.layers[0]
    rng = np.random.default_rng(11)
    spec.data = spec.data.copy()
    spec.data[rng.random(spec.data.shape) < share] = spec.file_nodata
    case.stack.write()
    return case


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Scenario]:
    """``fused`` (threshold 0), ``deferred`` (threshold 1, few fills) and ``separate``
    (threshold 1, most pixels need a fill), each with its local engine's run, made once."""
    made: dict[str, Scenario] = {}
    cases: dict[str, Case] = {}
    plan = {"fused": ("plain", 0), "deferred": ("plain", 1), "separate": ("gappy", 1)}

    def get(name: str) -> Scenario:
        if name in made:
            return made[name]
        kind, threshold = plan[name]
        if kind not in cases:
            root = tmp_path_factory.mktemp(kind)
            case = build_case(root, height=SIDE, width=SIDE, seed=8, layout=("tiled", 256))
            cases[kind] = _gappy(case, 0.7) if kind == "gappy" else case
        case = cases[kind]
        out = case.root / f"local_{name}"
        settings = Scenario.settings_of(case, threshold, out, engine="local", workers=2)
        run = Cli(write_yaml(out / "config.yaml", settings))
        assert run.wait() == 0, run.stderr
        report = load_report(out / "classes.tif")
        assert report["pass1"] == name, f"the {name} stack runs in mode {report['pass1']}"
        ref = reference_from_config(settings)
        assert_run_matches(report, ref, out / "classes.tif")
        made[name] = Scenario(name, case, threshold, out, ref)
        return made[name]

    return get


def _read(path: Path) -> tuple[dict[str, Any], np.ndarray]:
    with rasterio.open(path) as ds:
        return dict(ds.profile), ds.read()


def assert_same_as_local(scenario: Scenario, out: Path) -> dict[str, Any]:
    """Every raster equal to the local engine's; the report's medians and counts too; the
    classes and the report equal to the reference."""
    report = load_report(out / "classes.tif")
    assert_run_matches(report, scenario.ref, out / "classes.tif")
    local = load_report(scenario.local / "classes.tif")
    assert_same_medians(report, local)
    assert report["pixel_counts"] == local["pixel_counts"]
    for name in RASTERS:
        (profile, got), (expected_profile, expected) = (
            _read(out / name),
            _read(scenario.local / name),
        )
        assert profile == expected_profile, name
        np.testing.assert_array_equal(got, expected, err_msg=name)
    leftovers = [p.name for p in out.iterdir() if p.name.startswith(".")]
    assert leftovers == [], leftovers
    return report


def _journal(out: Path) -> dict[str, Any] | None:
    try:
        return dict(json.loads(journal_path(partial_path(out / "classes.tif")).read_text()))
    except (OSError, ValueError):
        return None


def _stats_known(out: Path) -> bool:
    journal = _journal(out)
    return journal is not None and journal.get("stats") is not None


def _done_tiles(out: Path) -> int:
    journal = _journal(out)
    if journal is None:
        return 0
    bits = np.unpackbits(np.frombuffer(base64.b64decode(journal["done_tiles"]), np.uint8))
    return int(bits.sum())


def run_and_kill_a_worker(
    cluster: Cluster,
    scenario: Scenario,
    out: Path,
    prefix: str,
    when: Callable[[Cli], bool],
    **slow: float,
) -> tuple[dict[str, Any], Killed, Cli]:
    """The scenario on the cluster with one worker killed as asked; the run must finish with
    exactly the local engine's output."""
    config = scenario.config(out, engine="dask", scheduler=cluster.address)
    cluster.ready()
    run = Cli(config)
    try:
        with cluster.slowed(**slow):  # until the kill only
            killed = cluster.kill_when(run, prefix, lambda: when(run))
        code = run.wait()
    finally:
        if run.proc.poll() is None:
            run.kill()
    assert code == 0, run.stderr
    report = assert_same_as_local(scenario, out)
    assert report["pass1"] == scenario.name
    assert report["engine"] == "dask"
    pids = cluster.ready()
    assert killed.pid not in pids.values(), "the killed worker is still there"
    return report, killed, run


def lost(run: Cli, killed: Killed) -> list[str]:
    """The run's warnings that it redid the part of the killed worker."""
    return [line for line in run.stderr.splitlines() if killed.address in line and "gone" in line]


# --------------------------------------------------------------------------- (a) statistics


def test_worker_killed_while_pass_2_counts_the_statistics(
    cluster: Cluster, scenarios: Callable[[str], Scenario], tmp_path: Path
) -> None:
    """Threshold 0 (fused): the statistics are counted in pass 2's reads and finished after its
    last window. The kill comes after the guide windows (the progress events say more pixels
    than the guide's are done) while pass 2 items run (``predict-``), so the killed worker
    holds kept keys of windows already accepted: they must be counted again elsewhere."""
    scenario = scenarios("fused")
    report, killed, run = run_and_kill_a_worker(
        cluster,
        scenario,
        tmp_path / "dask",
        "predict-",
        lambda r: r.done("pass2") >= (GUIDE + 2) * TILE_PX,
        PredictJob=0.25,
    )
    assert killed.stage == "pass2" and killed.done >= (GUIDE + 2) * TILE_PX
    assert killed.done < WINDOWS * TILE_PX
    assert lost(run, killed), run.stderr  # its accepted counts were counted again


def test_worker_killed_while_the_medians_are_selected(
    cluster: Cluster, scenarios: Callable[[str], Scenario], tmp_path: Path
) -> None:
    """Threshold 0: the kill comes in ``Statistics.end()``, while a worker selects a median's
    bin among the keys it kept (``select-`` items, slowed to 1.5 s each, pinned to the worker
    that holds the keys). Its keys are gone with it: its windows are counted again and the
    selection redone."""
    scenario = scenarios("fused")
    _, killed, run = run_and_kill_a_worker(
        cluster, scenario, tmp_path / "dask", "select-", lambda r: True, SelectJob=1.5
    )
    assert killed.key.startswith("select-")  # only Statistics.end() selects
    assert killed.stage == "pass2" and not killed.finished("pass1")
    assert lost(run, killed), run.stderr


def test_worker_killed_while_pass_1_counts_apart(
    cluster: Cluster, scenarios: Callable[[str], Scenario], tmp_path: Path
) -> None:
    """Threshold 1 with most pixels needing a fill (mode ``separate``): after pass 2's guide,
    pass 1 counts the other windows on its own (``recount-`` items, progress stage
    ``pass1``), before the medians are final. The kill comes there."""
    scenario = scenarios("separate")
    _, killed, run = run_and_kill_a_worker(
        cluster,
        scenario,
        tmp_path / "dask",
        "recount-",
        lambda r: r.done("pass1") > 0,
        RecountJob=0.25,
    )
    assert killed.stage == "pass1" and killed.done > 0 and not killed.finished("pass1")
    assert lost(run, killed), run.stderr


def test_worker_killed_in_pass_2_before_the_deferred_fills(
    cluster: Cluster, scenarios: Callable[[str], Scenario], tmp_path: Path
) -> None:
    """Threshold 1, few pixels to fill (mode ``deferred``): pass 2 counts the statistics and
    keeps the rows that need a fill on the worker that read them. The kill comes after the
    guide, before the medians are final: the killed worker's keys are counted again, and the
    windows whose rows it kept are predicted again once the medians are known."""
    scenario = scenarios("deferred")
    _, killed, run = run_and_kill_a_worker(
        cluster,
        scenario,
        tmp_path / "dask",
        "predict-",
        lambda r: r.done("pass2") >= (GUIDE + 2) * TILE_PX,
        PredictJob=0.25,
    )
    assert killed.stage == "pass2" and (GUIDE + 2) * TILE_PX <= killed.done < WINDOWS * TILE_PX
    assert len(lost(run, killed)) >= 2, run.stderr  # its keys, and its rows to fill


# --------------------------------------------------------------------------- (b) pass 2


def test_worker_killed_in_pass_2_after_the_medians(
    cluster: Cluster, scenarios: Callable[[str], Scenario], tmp_path: Path
) -> None:
    """Mode ``separate``: once the medians are final (the journal holds them), pass 2
    predicts the windows left (``predict-`` items); the kill comes there. Dask runs the
    killed worker's items again; the rows of the guide windows it kept for a fill are
    predicted again whole."""
    scenario = scenarios("separate")
    out = tmp_path / "dask"
    _, killed, run = run_and_kill_a_worker(
        cluster, scenario, out, "predict-", lambda r: _stats_known(out), PredictJob=0.25
    )
    assert killed.finished("pass1")  # and the journal held the medians (``when``)


def test_worker_killed_while_the_deferred_rows_are_filled(
    cluster: Cluster, scenarios: Callable[[str], Scenario], tmp_path: Path
) -> None:
    """Mode ``deferred``: after the medians are final, each worker fills and predicts the rows
    it kept (``fill-`` items, pinned to it, slowed to 1 s each). The kill comes there: the
    windows whose rows it kept are predicted again whole."""
    scenario = scenarios("deferred")
    _, killed, run = run_and_kill_a_worker(
        cluster, scenario, tmp_path / "dask", "fill-", lambda r: True, FillJob=1.0
    )
    assert killed.key.startswith("fill-")  # only after the medians are final
    assert lost(run, killed), run.stderr


# --------------------------------------------------------------------------- (c) the command


@pytest.mark.parametrize("name", ["fused", "deferred", "separate"])
def test_command_killed_in_pass_2_then_resumed(
    cluster: Cluster, scenarios: Callable[[str], Scenario], tmp_path: Path, name: str
) -> None:
    """The process running the command is SIGKILLed in pass 2, past half its pixels (the
    progress events say), once the journal holds complete tiles (``deferred``: a tile is
    complete only once its deferred rows are written, so there may be none yet; ``separate``:
    the journal holds the medians too); ``--resume`` on the same cluster then finishes with
    exactly the local engine's output. Fused and deferred runs were killed before their
    medians were final: the resumed run counts them apart."""
    scenario = scenarios(name)
    out = tmp_path / "dask"
    config = scenario.config(out, engine="dask", scheduler=cluster.address)
    half = WINDOWS * TILE_PX // 2
    with cluster.slowed(PredictJob=0.2):
        cluster.ready()
        run = Cli(config)
        try:
            deadline = time.monotonic() + WATCH_TIMEOUT
            tiles = 0 if name == "deferred" else 1
            while not (run.done("pass2") >= half and _journal(out) and _done_tiles(out) >= tiles):
                assert run.proc.poll() is None, f"the run ended before the kill:\n{run.stderr}"
                assert time.monotonic() < deadline, run.stderr
                time.sleep(0.02)
            stats_known = _stats_known(out)
            run.kill()
        finally:
            if run.proc.poll() is None:
                run.kill()
    assert run.proc.returncode == -signal.SIGKILL
    assert not (out / "classes.tif").exists()
    assert stats_known == (name == "separate")
    resumed = Cli(config, "--resume")
    assert resumed.wait() == 0, resumed.stderr
    report = load_report(out / "classes.tif")
    assert report["resumed"] is True
    assert report["pass1"] == ("journal" if name == "separate" else "separate")
    assert_same_as_local(scenario, out)  # nothing the killed run left stays beside it
