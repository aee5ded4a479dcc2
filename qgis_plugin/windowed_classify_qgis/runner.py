"""Running the tool: the subprocess with its cancel path, and its ``--progress json`` lines
turned into one progress bar, status texts and log lines. Plain Python, tested without QGIS
against tests/qgis/fake_tool.py."""

from __future__ import annotations

import contextlib
import json
import math
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .client import ClientError, neutral_cwd

PASS1_SHARE = 30.0  # share of the bar for pass 1 (statistics) when it runs


# ------------------------------------------------------------------------------ progress


def parse_event(line: str) -> dict[str, Any] | None:
    """A ``--progress json`` line (a JSON object with an "event"), else None."""
    text = line.strip()
    if not text.startswith("{"):
        return None
    try:
        obj = json.loads(text)
    except ValueError:
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("event"), str):
        return None
    return obj


STAGE_NAMES = {"pass1": "pass 1 of 2: statistics", "pass2": "pass 2 of 2: classify"}


def _fraction(event: Mapping[str, Any]) -> float | None:
    try:
        done, total = float(event.get("done", 0)), float(event.get("total", 0))
    except (TypeError, ValueError):
        return None
    return 1.0 if total <= 0 else min(max(done / total, 0.0), 1.0)


class OverallProgress:
    """Maps the tool's per-stage progress to one 0-100 bar: pass 1 takes 0-30 %, pass 2
    30-100 %; when pass 1 does not run (statistics cached, resumed, or fused into pass 2)
    pass 2 spans 0-100 %. The bar never moves backwards."""

    def __init__(self, pass1_share: float = PASS1_SHARE) -> None:
        self.pass1_share = pass1_share
        self.seen_pass1 = False
        self.percent = 0.0

    def update(self, event: Mapping[str, Any]) -> float:
        if event.get("event") == "finished":
            self.percent = 100.0
        frac = _fraction(event) if event.get("event") == "progress" else None
        if frac is None:
            return self.percent
        if event.get("stage") == "pass1":
            self.seen_pass1 = True
            value = frac * self.pass1_share
        elif event.get("stage") == "pass2":
            start = self.pass1_share if self.seen_pass1 else 0.0
            value = start + frac * (100.0 - start)
        else:
            return self.percent
        self.percent = max(self.percent, value)
        return self.percent


def _si(value: float) -> str:
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.1f} {prefix}"
    return f"{value:.0f} "


def _rate(event: Mapping[str, Any]) -> str | None:
    rate = event.get("rate")
    if isinstance(rate, int | float) and not isinstance(rate, bool) and rate > 0:
        return f"{_si(float(rate))}{event.get('unit', 'px')}/s"
    return None


def progress_text(event: Mapping[str, Any]) -> str:
    """A short status line for the progress bar: stage, percentage and rate."""
    stage = STAGE_NAMES.get(str(event.get("stage")), str(event.get("stage")))
    frac = _fraction(event)
    text = f"{stage}: {100.0 * frac:.0f} %" if frac is not None else stage
    rate = _rate(event)
    return f"{text}, {rate}" if rate else text


def stage_summary(event: Mapping[str, Any]) -> str:
    """One log line when a stage completes."""
    stage = STAGE_NAMES.get(str(event.get("stage")), str(event.get("stage")))
    parts = [f"{stage}: {int(event.get('total', 0)):,} {event.get('unit', 'px')}"]
    elapsed = event.get("elapsed")
    if isinstance(elapsed, int | float) and not isinstance(elapsed, bool):
        parts.append(f"in {float(elapsed):.1f} s")
    rate = _rate(event)
    if rate:
        parts.append(f"({rate})")
    return " ".join(parts)


def line_kind(line: str) -> str:
    """What a stderr line of the tool is: error, interrupted, warning, info or other."""
    if line.startswith(("error: ", "ERROR: ", "CRITICAL: ")):
        return "error"
    if line.startswith("interrupted: "):
        return "interrupted"
    if line.startswith("WARNING: "):
        return "warning"
    if line.startswith(("INFO: ", "DEBUG: ")):
        return "info"
    return "other"


class ProgressText:
    """Throttles the status text: on a new stage, then at most every ``every`` seconds
    (qgis_process prints each one as a line)."""

    def __init__(self, every: float = 2.0, clock: Callable[[], float] = time.monotonic):
        self.every = every
        self.clock = clock
        self.stage: str | None = None
        self.last = -math.inf

    def __call__(self, event: Mapping[str, Any]) -> str | None:
        if event.get("event") != "progress":
            return None
        now = self.clock()
        stage = str(event.get("stage"))
        if stage == self.stage and now - self.last < self.every:
            return None
        self.stage, self.last = stage, now
        return progress_text(event)


# ------------------------------------------------------------------------------ running


@dataclass
class RunResult:
    returncode: int
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)  # log lines, without progress lines
    events: list[dict[str, Any]] = field(default_factory=list)
    canceled: bool = False
    killed: bool = False  # did not stop after SIGTERM within the grace period

    @property
    def outputs(self) -> dict[str, str]:
        """What the tool says it wrote (its ``finished`` event), the main output first."""
        for event in reversed(self.events):
            if event.get("event") == "finished" and isinstance(event.get("outputs"), Mapping):
                return {str(k): str(v) for k, v in event["outputs"].items() if v}
        return {}

    @property
    def report(self) -> str | None:
        for event in reversed(self.events):
            if event.get("event") == "finished" and event.get("report"):
                return str(event["report"])
        return None

    @property
    def interrupted(self) -> bool:
        """Stopped by Cancel (or by a signal the tool reported)."""
        return self.canceled or any(line.startswith("interrupted: ") for line in self.stderr)


Log = Callable[[str, str], None]  # (kind, line): stdout, info, warning, error, other, ...


def _pump(stream: Any, name: str, sink: queue.Queue) -> None:
    try:
        for line in stream:  # text mode, universal newlines
            sink.put((name, line.rstrip("\r\n")))
    finally:
        sink.put((name, None))


def run_tool(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    is_canceled: Callable[[], bool] = lambda: False,
    on_progress: Callable[[float, dict[str, Any]], None] | None = None,
    on_log: Log | None = None,
    poll_seconds: float = 0.1,
    grace_seconds: float = 120.0,
) -> RunResult:
    """Runs the tool, forwarding progress and log lines as they come, and stops it on cancel.

    Cancel sends SIGTERM, which the tool treats as Ctrl-C: it finishes the window at hand,
    keeps the partial output and its journal, and says how to resume. A tool still running
    ``grace_seconds`` later is killed (its last checkpoint stays resumable). On Windows there
    is no SIGTERM: terminate() ends it at once, also after the last checkpoint."""
    try:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env) if env is not None else None,
            cwd=neutral_cwd(argv[0]),
            text=True,
            encoding="utf-8",
            errors="replace",
            creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),  # no console on Windows
        )
    except OSError as exc:
        raise ClientError(f"cannot start {argv[0]}: {exc.strerror or exc}") from None
    lines: queue.Queue = queue.Queue()
    readers = [
        threading.Thread(target=_pump, args=(proc.stdout, "stdout", lines), daemon=True),
        threading.Thread(target=_pump, args=(proc.stderr, "stderr", lines), daemon=True),
    ]
    for reader in readers:
        reader.start()
    result = RunResult(returncode=-1)
    overall = OverallProgress()
    completed_stages: set[str] = set()
    open_streams = 2
    signalled_at: float | None = None

    def log(kind: str, line: str) -> None:
        if on_log is not None:
            on_log(kind, line)

    while open_streams or proc.poll() is None:
        if signalled_at is None and is_canceled():
            result.canceled = True
            signalled_at = time.monotonic()
            with contextlib.suppress(OSError):
                if sys.platform == "win32":
                    proc.terminate()
                else:
                    proc.send_signal(signal.SIGTERM)
        late = signalled_at is not None and time.monotonic() - signalled_at > grace_seconds
        if late and not result.killed:
            result.killed = True
            with contextlib.suppress(OSError):
                proc.kill()
        try:
            stream, line = lines.get(timeout=poll_seconds)
        except queue.Empty:
            continue
        if line is None:
            open_streams -= 1
            continue
        if stream == "stdout":
            result.stdout.append(line)
            log("stdout", line)
            continue
        event = parse_event(line)
        if event is None:
            result.stderr.append(line)
            log(line_kind(line), line)
            continue
        if event.get("event") != "progress":  # finished (and any later kinds): kept whole
            result.events.append(event)
        percent = overall.update(event)
        if on_progress is not None:
            on_progress(percent, event)
        if event.get("event") == "progress":
            stage = str(event.get("stage"))
            complete = _fraction(event) == 1.0 and float(event.get("total") or 0) > 0
            if complete and stage not in completed_stages:
                completed_stages.add(stage)
                log("info", stage_summary(event))
        elif event.get("event") != "finished":
            log("other", line)
    result.returncode = proc.wait()
    for reader in readers:
        reader.join(timeout=1)
    for stream in (proc.stdout, proc.stderr):
        with contextlib.suppress(OSError):
            stream.close()
    return result
