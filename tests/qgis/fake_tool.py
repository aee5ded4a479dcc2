"""A stand-in for ``python -m windowed_classify run CONFIG --progress json``, speaking the
progress protocol (one JSON object per stderr line) so the plugin's driver is tested without
the real tool and without QGIS. ``fake_tool.py MODE [ARGS...]``:

- ``ok OUT``: pass 1 and pass 2 progress, log lines, ``finished`` with OUT, exit 0
- ``pass2only OUT``: only pass 2 (statistics cached), exit 0
- ``error``: a log line, then the one-line user error, exit 2
- ``slow JOURNAL``: pass 1, then pass 2 until SIGTERM, which (like the tool) writes the journal
  and exits 130 saying how to resume
- ``deaf``: ignores SIGTERM (the driver must kill it after its grace period)
- ``old``: an older tool that rejects --progress as argparse does, exit 2
- ``bars``: tqdm-style bars instead of JSON, exit 0
"""

from __future__ import annotations

import json
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
    if mode == "old":
        log("usage: python -m windowed_classify [-h] [--version]")
        log("                                   {run,demo,check,sample} ...")
        log("python -m windowed_classify: error: unrecognized arguments: --progress json")
        return 2
    if mode == "error":
        log("INFO: reading the config")
        log("error: config key 'nodata.threshold': expected an integer >= 0, got -1")
        return 2
    if mode == "bars":
        for pct in (0, 50, 100):
            bar = "#" * (pct // 10)
            log(f"pass 2: classify: {pct:3d}%|{bar:<10}| {pct}k/100k [00:00<00:00, 1.0Mpx/s]")
        print("classified: /data/out.tif", flush=True)
        return 0
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
        emit(event="finished", outputs={"classes": out}, report=out + ".report.json")
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
