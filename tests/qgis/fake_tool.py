"""A stand-in for ``python -m windowed_classify``, so the plugin's driver is tested without the
real tool and without QGIS. ``fake_tool.py MODE [ARGS...]`` speaks the progress protocol
(one JSON object per stderr line):

- ``ok OUT``: pass 1 and pass 2 progress, log lines, ``finished`` with OUT, exit 0
- ``pass2only OUT``: only pass 2 (statistics cached), exit 0
- ``error``: a log line, then the one-line user error, exit 2
- ``slow JOURNAL``: pass 1, then pass 2 until SIGTERM, which (like the tool) writes the journal
  and exits 130 saying how to resume
- ``deaf``: ignores SIGTERM (the driver must kill it after its grace period)

Called as an interpreter would be (``fake_tool.py -m windowed_classify --version``, through
a wrapper script standing for ``venv/bin/python``), it prints the version line of a tool
whose version is $FAKE_TOOL_VERSION.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path


def emit(**event: object) -> None:
    print(json.dumps(event), file=sys.stderr, flush=True)


def log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def progress(stage: str, done: int, total: int) -> None:
    emit(event="progress", stage=stage, done=done, total=total, unit="px", rate=1.5e6, elapsed=0.2)


def main(argv: list[str]) -> int:
    mode = argv[0]
    if argv[:3] == ["-m", "windowed_classify", "--version"]:
        print(f"python -m windowed_classify {os.environ['FAKE_TOOL_VERSION']}", flush=True)
        return 0
    if mode == "error":
        log("INFO: reading the config")
        log("error: config key 'nodata.threshold': expected an integer >= 0, got -1")
        return 2
    if mode == "deaf":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        progress("pass2", 0, 100)
        time.sleep(60)
        return 0
    if mode in ("ok", "pass2only"):
        out = argv[1]
        if mode == "ok":
            for done in (0, 500, 1000):
                progress("pass1", done, 1000)
            log("INFO: layer a: median 1.0")
        log("WARNING: layers the model does not use: z")
        for done in (0, 40, 100):
            progress("pass2", done, 100)
        print(f"classified: {out}", flush=True)
        outputs = {"classes": out, "qml": out + ".qml"}
        emit(event="finished", outputs=outputs, report=out + ".report.json")
        return 0
    if mode == "slow":
        journal = Path(argv[1])

        def stop(signum: int, frame: object) -> None:
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, stop)
        progress("pass1", 10, 10)
        try:
            for i in range(6000):
                if i == 0:
                    journal.write_text("{}", encoding="utf-8")  # resumable from the start
                progress("pass2", i, 6000)
                time.sleep(0.01)
        except KeyboardInterrupt:
            log(
                "interrupted: nothing was written under the output's name; to continue from "
                "the last checkpoint, run the same command with --resume"
            )
            return 130
        return 0
    raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
