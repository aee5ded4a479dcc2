"""Command line: ``python -m windowed_classify CONFIG.yaml`` and ``... demo [DIR]``.

User errors print one ``error: ...`` line and exit 2, without a traceback (``--debug`` shows
one). Ctrl-C exits 130 and leaves nothing under the output's name.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._version import __version__
from .errors import Interrupted, UserError

COMMANDS = ("run", "demo", "check", "sample", "design", "assess", "example-config")
EXIT_USER_ERROR = 2  # also check's: the run would not start
EXIT_INTERRUPTED = 130

log = logging.getLogger("windowed_classify")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars, warnings only")
    p.add_argument("--debug", action="store_true", help="debug logging; tracebacks on errors")


def _progress(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--progress",
        choices=("bar", "json", "none"),
        help="how progress is shown: bar (default; none with --quiet), or json: one JSON "
        "object per line on stderr, for programs (see progress.py)",
    )


def _points_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--layer",
        metavar="NAME",
        help="the layer of a multi-layer vector file (GeoPackage, FileGDB, ...); required "
        "when it has several",
    )
    p.add_argument(
        "--points-crs",
        metavar="CRS",
        help="the CRS of points that have none (a CSV, a shapefile without .prj), e.g. "
        "EPSG:4326; they are reprojected to the rasters' CRS (default: they are in it)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m windowed_classify",
        description="Apply a trained classifier to a stack of covariate rasters, window by "
        "window, and write one classified GeoTIFF.",
        epilog="Shortcut: 'python -m windowed_classify CONFIG.yaml' is 'run CONFIG.yaml'.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="classify the stack described by a YAML config")
    run.add_argument(
        "config",
        type=Path,
        help="the YAML config ('python -m windowed_classify example-config' prints every key)",
    )
    run.add_argument(
        "--workers",
        type=int,
        help="workers: threads or processes as processing.engine says (default: all cores)",
    )
    run.add_argument(
        "--recompute-stats", action="store_true", help="ignore the pass-1 statistics cache"
    )
    run.add_argument(
        "--overwrite", action="store_true", help="replace an existing output (output.overwrite)"
    )
    run.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run from its last checkpoint (same config, model and "
        "inputs); starts from the beginning when there is nothing to resume",
    )
    _common(run)
    _progress(run)

    demo = sub.add_parser("demo", help="make a synthetic stack and model, then classify it")
    demo.add_argument(
        "dir",
        nargs="?",
        type=Path,
        default=Path("windowed_classify_demo"),
        help="folder for the demo (default: ./windowed_classify_demo)",
    )
    demo.add_argument("--size", type=int, default=1500, help="raster width and height")
    demo.add_argument("--workers", type=int, help="workers (default: all cores)")
    demo.add_argument(
        "--overwrite", action="store_true", help="replace the demo's files if DIR holds them"
    )
    _common(demo)

    check = sub.add_parser(
        "check",
        help="report what a run would do and every reason it would not start, without running "
        "the model (exit 0: it would start, 2: it would not)",
    )
    check.add_argument("config", type=Path, help="the YAML config")
    check.add_argument("--workers", type=int, help="workers the run would use (for the estimate)")
    check.add_argument(
        "--overwrite",
        action="store_true",
        help="check as a run with --overwrite would run (an existing output is no problem)",
    )
    check.add_argument(
        "--json",
        action="store_true",
        help="print the findings as one JSON document (schema: docs/check.md) instead of text",
    )
    _common(check)

    sample = sub.add_parser(
        "sample", help="write the layers' values under points (training data) to a CSV"
    )
    sample.add_argument(
        "config", type=Path, help="the YAML config (rasters; nodata and model if given)"
    )
    sample.add_argument(
        "points",
        type=Path,
        help="CSV with x/y, lon/lat, longitude/latitude or easting/northing columns, or a "
        "vector layer of points, multipoints or polygons (with the 'vector' extra)",
    )
    sample.add_argument("-o", "--output", type=Path, required=True, help="the CSV to write")
    sample.add_argument(
        "--prefix",
        default="",
        help="text put before every layer column (for points whose attributes are named like "
        "layers)",
    )
    _points_options(sample)
    sample.add_argument(
        "--polygons",
        choices=("pixels", "centroid"),
        default="pixels",
        help="polygons give a row per pixel whose centre is inside (pixels, the default) or "
        "one row per polygon at its representative point (centroid); both with polygon_id",
    )
    sample.add_argument("--overwrite", action="store_true", help="replace an existing output")
    _common(sample)
    _progress(sample)

    example = sub.add_parser(
        "example-config", help="print a config with every key, its default and its help"
    )
    _common(example)

    design = sub.add_parser(
        "design",
        help="draw a stratified random sample of a class map for assessing its accuracy "
        "(Olofsson et al. 2014): points to label, and the design",
    )
    design.add_argument("map", type=Path, help="the class map (integer codes)")
    design.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        help="the points to write: .gpkg (with the 'vector' extra) or .csv; the design goes "
        "beside them as <name>.design.json",
    )
    size = design.add_mutually_exclusive_group()
    size.add_argument(
        "--n", type=int, help="the number of sample units (not needed with sizes in --allocation)"
    )
    size.add_argument(
        "--target-se",
        type=float,
        metavar="S",
        help="choose n so that the overall accuracy's standard error is S (e.g. 0.01), "
        "Olofsson et al. (2014) eq. 13, from --expected-ua",
    )
    design.add_argument(
        "--expected-ua",
        metavar="U",
        help="with --target-se: the user's accuracy expected of each stratum: one value, one "
        "per stratum in code order, or name=value pairs (default 0.8)",
    )
    design.add_argument(
        "--strata",
        type=Path,
        metavar="RASTER",
        help="stratify by this raster's codes (on the map's grid) instead of the map's classes",
    )
    design.add_argument(
        "--allocation",
        default="olofsson",
        metavar="HOW",
        help="olofsson (default: at least --minimum units per stratum, the rest in proportion "
        "to area), proportional, equal, or sizes N1,N2,... per stratum in code order",
    )
    design.add_argument(
        "--minimum",
        type=int,
        help="the fewest units per stratum under --allocation olofsson (default 50)",
    )
    design.add_argument("--seed", type=int, help="the random seed (default: a fresh one, recorded)")
    design.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    _common(design)
    _progress(design)

    assess = sub.add_parser(
        "assess",
        help="accuracy and area of a class map, with confidence intervals, from reference "
        "labels at sample points (Olofsson et al. 2014; Stehman 2014)",
    )
    assess.add_argument("map", type=Path, help="the class map (integer codes)")
    assess.add_argument(
        "points",
        type=Path,
        help="the sample points with their reference labels (GeoPackage, shapefile or CSV)",
    )
    assess.add_argument(
        "--reference",
        required=True,
        metavar="COLUMN",
        help="the column of the reference labels (the map's class names, or its codes)",
    )
    assess.add_argument(
        "--strata",
        type=Path,
        metavar="RASTER",
        help="the raster the sample was stratified by, when not the map's classes (default: "
        "the design's, from <points>.design.json)",
    )
    assess.add_argument(
        "-o",
        "--output",
        type=Path,
        help="the report (default <points>.accuracy.json); a .md and a .csv table go beside it",
    )
    _points_options(assess)
    assess.add_argument(
        "--design", type=Path, help="the design file (default: <points>.design.json, if any)"
    )
    assess.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    _common(assess)
    _progress(assess)
    return parser


def setup_logging(quiet: bool, debug: bool) -> None:
    level = logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False


def _stop_on_signals() -> None:
    """SIGTERM stops like Ctrl-C: nothing under the output's name; an interrupted pass 2
    keeps its partial output and journal for --resume. Neither may arrive blocked."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    with contextlib.suppress(ValueError):  # not the main thread (embedded): leave signals be
        signal.signal(signal.SIGTERM, handler)
        # a mask is inherited across exec: a parent that blocked them would make the run
        # deaf to Ctrl-C and SIGTERM (an ignored SIGINT, as under nohup, stays ignored)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})


def main(argv: Sequence[str] | None = None) -> int:
    _stop_on_signals()
    args_in = list(sys.argv[1:] if argv is None else argv)
    first = next((a for a in args_in if not a.startswith("-")), None)
    if first is not None and first not in COMMANDS:
        args_in.insert(args_in.index(first), "run")
    args = build_parser().parse_args(args_in)
    setup_logging(args.quiet, args.debug)
    if getattr(args, "workers", None) is not None and args.workers < 1:
        print("error: --workers must be 1 or more", file=sys.stderr)
        return EXIT_USER_ERROR
    try:
        if args.command == "example-config":
            from .commands.example_config import example_yaml

            print(example_yaml(), end="")
        elif args.command == "demo":
            from .commands.demo import run_demo

            run_demo(
                args.dir,
                size=args.size,
                workers=args.workers,
                quiet=args.quiet,
                overwrite=args.overwrite,
            )
        elif args.command == "check":
            from .commands.check import check

            result = check(
                args.config, workers=args.workers, overwrite=True if args.overwrite else None
            )
            if args.json:
                import json

                print(json.dumps(result.document(), indent=2, allow_nan=False))
            else:
                print(result.render())
            return 0 if result.ok else EXIT_USER_ERROR
        elif args.command == "sample":
            from .commands.sample import sample

            done = sample(
                args.config,
                args.points,
                args.output,
                overwrite=args.overwrite,
                prefix=args.prefix,
                points_crs=args.points_crs,
                layer=args.layer,
                polygons=args.polygons,
            )
            _finished(args, {"table": done.output})
            if not args.quiet:
                print(f"sampled {done.points} row(s) x {len(done.columns)} layer(s): {done.output}")
        elif args.command == "design":
            from .commands.design import design, summary

            drawn = design(
                args.map,
                args.output,
                n=args.n,
                target_se=args.target_se,
                expected_ua=args.expected_ua,
                strata=args.strata,
                allocation=args.allocation,
                **({} if args.minimum is None else {"minimum": args.minimum}),
                seed=args.seed,
                overwrite=args.overwrite,
            )
            _finished(args, {"points": drawn.output, "design": drawn.sidecar})
            if not args.quiet:
                print(summary(drawn))
        elif args.command == "assess":
            from .commands.assess import assess

            assessed = assess(
                args.map,
                args.points,
                args.output,
                reference=args.reference,
                strata=args.strata,
                layer=args.layer,
                points_crs=args.points_crs,
                design=args.design,
                overwrite=args.overwrite,
            )
            outputs = {"report": assessed.output, "markdown": assessed.markdown}
            _finished(args, outputs | {"table": assessed.table})
            if not args.quiet:
                print(assessed.summary())
        else:
            from .api import run

            report = run(
                args.config,
                quiet=args.quiet,
                workers=args.workers,
                recompute_stats=args.recompute_stats,
                overwrite=True if args.overwrite else None,
                resume=args.resume,
                progress=args.progress,
            )
            from .report import sibling_report
            from .report import summary as run_summary

            _finished(
                args,
                report["outputs"],
                main=report["output"],  # the classes, or a regression's values
                report=sibling_report(report["output"]),
            )
            if not args.quiet:
                print(run_summary(report))
    except UserError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt as exc:
        if args.debug:
            raise
        message = "interrupted: nothing was written under the output's name"
        if isinstance(exc, Interrupted):
            message += "; to continue from the last checkpoint, run the same command with --resume"
        print(message, file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


def _finished(args: argparse.Namespace, outputs: dict[str, Any], **paths: Any) -> None:
    """The ``finished`` progress event (``--progress json``): every output's path, by kind."""
    if args.progress == "json":
        from .progress import emit

        text = {kind: str(path) for kind, path in outputs.items()}
        emit({"event": "finished"} | {k: str(v) for k, v in paths.items()} | {"outputs": text})
