"""Everything known before a pixel is read, decided in one place for ``run``, ``check`` and
``sample``: the config's sections, the outputs' files, the layers, the model, its task,
features and classes, the outputs it can give, the reference grid, the area of
applicability's training rows and the memory budget.

``gather`` walks these steps once. A run gives it a ``Problems`` that raises the first user
error (``prepare``); ``check`` gives it one that collects every problem and goes on wherever
a later step does not depend on the one that failed, then renders the ``Plan``. So ``check``
cannot disagree with a run about anything known before the first window.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from .aoa import AoaModel, build_aoa
from .config import Config, OutputConfig
from .errors import ConfigError, InputError, ModelError, OutputError, UserError
from .inputs import readahead
from .inputs.discover import discover
from .inputs.grid import Grid, same_grid
from .inputs.layers import (
    Band,
    Layer,
    Reference,
    Unreadable,
    check_grid,
    duplicates,
    fits,
    layers_on,
    list_bands,
    reference_grid,
)
from .models.legend import Legend, check_codes_fit, model_classes, resolve_legend
from .models.load import load_model
from .models.schema import Schema, resolve_schema, trust_warning
from .models.task import Abilities, feature_importances, looks_like_regressor, resolve_task
from .outputs.kinds import KINDS, OutputKind, RasterSpec, asked, work_bytes
from .outputs.preview import PREVIEW_HINT
from .outputs.writer import check_writable, temporary_paths
from .passes.prepared import Prepared

log = logging.getLogger(__name__)

T = TypeVar("T")

REGRESSION_LEGEND = Legend((), "a regression (no classes)")


class Problems:
    """Where the user errors of the preparation go: raised at once (a run), or collected with
    the warnings (``check``)."""

    def __init__(self, collect: bool = False):
        self.collect = collect
        self.errors: list[UserError] = []
        self.warnings: list[str] = []

    def attempt(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        """``fn(...)``; a user error is raised, or collected (then None)."""
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            self.add(exc)
            return None

    def add(self, error: UserError) -> None:
        if not self.collect:
            raise error
        self.errors.append(error)

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        if not self.collect:
            log.warning(message)


@dataclass
class Found:
    """Every layer of the inputs, in discovery order, the files that cannot be opened, and the
    rasters this tool wrote (never layers)."""

    bands: list[Band]
    unreadable: list[Unreadable]
    ours: list[Path | str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        """Layer names; an unreadable file stands for one layer named by its stem."""
        return [b.name for b in self.bands] + [u.name for u in self.unreadable]


@dataclass
class OutputPlan:
    """One raster the config asks for: its spec, and why the model cannot give it (None: it
    can, or it is not known yet)."""

    kind: OutputKind
    spec: RasterSpec
    reason: str | None = None


@dataclass
class Plan:
    """What the preparation found, as far as it got (``check`` renders it; a run needs it
    complete: ``prepared``)."""

    config: Config  # with the output's dtype and nodata resolved for the task, when known
    problems: list[UserError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    found: Found = field(default_factory=lambda: Found([], []))
    model: Any = None
    task: str = "classification"
    task_source: str = ""  # how the task was decided
    schema: Schema | None = None
    legend: Legend | None = None
    outputs: list[OutputPlan] = field(default_factory=list)
    wanted: list[Band] = field(default_factory=list)  # the model's bands (or all, no model)
    missing: list[str] = field(default_factory=list)  # features without a layer
    reference: Reference | None = None
    layers: list[Layer] = field(default_factory=list)  # the wanted layers readable on the grid
    ignored: dict[str, str] = field(default_factory=dict)  # unused layer -> why not usable
    aoa: AoaModel | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def grid(self) -> Grid | None:
        return self.reference.grid if self.reference is not None else None

    def prepared(self) -> Prepared:
        """The complete preparation of a run (a plan without problems)."""
        assert self.ok and self.schema is not None and self.legend is not None
        assert self.reference is not None
        return Prepared(
            self.config,
            self.reference.grid,
            self.layers,
            list(self.ignored),
            self.schema,
            self.legend,
            self.model,
            self.task,
            self.aoa,
        )


def prepare(cfg: Config, created: list[Path] | None = None) -> Prepared:
    """The preparation of a run: the first user error is raised.

    ``created`` collects the output folders made here (a failed run removes them if empty).
    """
    return gather(cfg, Problems(), created).prepared()


def gather(cfg: Config, problems: Problems, created: list[Path] | None = None) -> Plan:
    """Every step of the preparation, in the order a run takes them (see the module doc)."""
    plan = Plan(cfg, problems.errors, problems.warnings)
    readahead.configure(cfg.processing.read_ahead)  # this process's, and its workers'
    if cfg.model is None:
        problems.add(
            ConfigError(
                "the config has no 'model' section: it is a sampling config (sample and check "
                "need only 'rasters'); a run needs 'model' with its key 'model.path'"
            )
        )
    if cfg.output is None:
        problems.add(
            ConfigError(
                "the config has no 'output' section: a run needs 'output' with its key "
                "'output.path'"
            )
        )
    if cfg.output is not None:
        problems.attempt(check_writable, cfg.output, created, create=not problems.collect)
        problems.attempt(check_preview_extra, cfg.output)
    plan.found = problems.attempt(find_layers, cfg) or Found([], [])
    _model(plan, problems)
    _outputs(plan, problems)
    _layers(plan, problems)
    if cfg.model is not None and cfg.output is not None and plan.schema is not None:
        plan.aoa = problems.attempt(applicability, plan, problems)
    return plan


def _model(plan: Plan, problems: Problems) -> None:
    """The model, its task (and the output's dtype and nodata for it), features and classes."""
    mc = plan.config.model
    if mc is None:
        return
    plan.model = problems.attempt(load_model, mc.path)
    if plan.model is not None:
        plan.task = resolve_task(plan.model, mc)
        how = "a regressor" if looks_like_regressor(plan.model) else "not a regressor"
        plan.task_source = f"auto: {type(plan.model).__name__} is {how}"
    else:
        plan.task = mc.task.replace("auto", "classification")
        plan.task_source = "auto: the model could not be loaded"
    if mc.task != "auto":
        plan.task_source = "model.task"
    out = plan.config.output
    if out is not None:
        resolved = problems.attempt(out.for_task, plan.task)
        if resolved is not None:
            plan.config = replace(plan.config, output=resolved)
    if plan.model is not None or mc.scoring_file or mc.features:
        plan.schema = problems.attempt(resolve_schema, plan.model, mc)
        if plan.schema is not None and plan.schema.trusted:
            problems.warn(trust_warning(plan.schema))
    unlisted = plan.model is not None and model_classes(plan.model) is None
    if plan.task != "regression" and mc.classes and unlisted:
        problems.warn(
            f"the model ({type(plan.model).__name__}) does not list its classes: "
            "model.classes cannot be checked before the run; a predicted label outside it "
            "stops the run"
        )
    if plan.task == "regression":
        plan.legend = REGRESSION_LEGEND
    elif plan.model is not None or mc.classes:
        codes = plan.config.output.codes if plan.config.output is not None else "index"
        plan.legend = problems.attempt(resolve_legend, plan.model, mc, codes)
    out = plan.config.output
    if (
        plan.task != "regression"
        and plan.legend is not None
        and out is not None
        and out.dtype is not None  # None: not resolved for the task (an error above)
        and out.nodata is not None
    ):
        problems.attempt(check_codes_fit, plan.legend, out.dtype, int(out.nodata))


def _outputs(plan: Plan, problems: Problems) -> None:
    """Every raster asked for, and whether the model can give it."""
    out = plan.config.output
    if out is None or out.dtype is None or out.nodata is None:  # not resolved for the task
        return
    legend = plan.legend or Legend((), "")
    abilities = Abilities.of(plan.model, plan.task) if plan.model is not None else None
    for kind in asked(out, plan.task):
        reason = kind.unsupported(abilities) if abilities is not None else None
        plan.outputs.append(OutputPlan(kind, kind.spec(out, legend, None), reason))
    refused = [o for o in plan.outputs if o.reason is not None]
    if refused and not problems.collect:  # a run stops at once, naming every one
        others = ", ".join(f"output.{o.kind.key}" for o in refused[1:])
        first = refused[0]
        problems.add(
            ModelError(
                f"config key 'output.{first.kind.key}': {first.reason}"
                + (f" (also: {others})" if others else "")
            )
        )
    for o in refused:
        problems.add(ModelError(f"config key 'output.{o.kind.key}': {o.reason}"))


def _layers(plan: Plan, problems: Problems) -> None:
    """The model's layers (every layer without a model), the reference grid, and the layers
    readable on it; the layers the model does not use, and why."""
    cfg, found, schema = plan.config, plan.found, plan.schema
    if found.ours:
        problems.warn(
            f"not layers: {len(found.ours)} raster(s) this tool wrote: "
            + shortlist([str(p) for p in found.ours])
        )
    wanted = found.bands
    if schema is not None and (found.bands or found.unreadable):
        used = set(schema.features)
        problems.attempt(check_names, [b for b in found.bands if b.name in used], cfg, True)
        check_names([b for b in found.bands if b.name not in used], cfg, False, problems.warn)
        plan.missing = missing_features(found, schema)
        problems.attempt(require_features, found, schema, cfg)
        by_name = {b.name: b for b in reversed(found.bands)}  # a repeated name: its first
        wanted = [by_name[f] for f in schema.features if f in by_name]
    elif cfg.model is not None and schema is None:
        wanted = []  # the model's features are unknown: no layer is known to be wanted
    else:
        problems.attempt(check_names, wanted, cfg, True)
    plan.wanted = wanted
    if not wanted:
        return
    if schema is not None and cfg.nodata.threshold >= len(wanted):
        problems.warn(
            f"nodata.threshold {cfg.nodata.threshold} is not below the {len(wanted)} model "
            "layer(s): no pixel will be masked, and every nodata value will be filled with its "
            "layer's median (a pixel is masked when MORE than threshold layers are nodata)"
        )
    whose = "model layers" if schema is not None else "layers"
    plan.reference = problems.attempt(reference_grid, wanted, cfg.rasters, whose)
    if plan.reference is None:
        return
    ref = plan.reference
    problems.attempt(check_grid, ref, wanted, cfg.rasters)
    if cfg.rasters.align and not ref.shared:
        problems.warn(
            f"rasters.align: the reference grid is {ref.what}; the other layers are warped "
            "onto it. To choose another grid, set rasters.reference to a raster on it"
        )
    readable = [b for b in wanted if fits(ref, b, cfg.rasters.align)]
    if readable:
        plan.layers = problems.attempt(layers_on, ref, readable, cfg.nodata, cfg.rasters) or []
    if schema is not None:
        plan.ignored = unused_layers(found, schema, ref.grid)
        if plan.ignored:
            problems.warn(
                f"ignoring {len(plan.ignored)} layer(s) the model does not use: "
                + shortlist([f"{n} ({why})" if why else n for n, why in plan.ignored.items()])
            )


def shortlist(items: list[str], at_most: int = 10) -> str:
    """Items for a message line: the first ``at_most``, then how many more."""
    shown = ", ".join(items[:at_most])
    return shown + (f", and {len(items) - at_most} more" if len(items) > at_most else "")


def check_names(
    bands: list[Band],
    cfg: Config,
    used: bool,
    warn: Callable[[str], None] | None = None,
) -> None:
    """Two layers with one name: an error among the layers a run reads (``used``), else a
    warning (``warn``), naming both and the key that tells them apart."""
    pairs = duplicates(bands)
    if not pairs:
        return
    first, other = pairs[0]
    multi = first.count > 1 or other.count > 1
    fix = (
        "set rasters.band_names: stem to name a multi-band file's bands <stem>_<description>"
        if multi and cfg.rasters.band_names != "stem"
        else "rename one of them"
        + (" (the keys of rasters.files name the layers)" if cfg.rasters.files else "")
    )
    more = f" (and {len(pairs) - 1} more such name(s))" if len(pairs) > 1 else ""
    message = (
        f"two layers have the feature name '{first.name}': {first.label} and {other.label}"
        f"{more}; {fix}"
    )
    if used:
        raise InputError(message)
    if warn is not None:
        warn(f"{message} (the model uses neither: they are ignored)")


def applicability(plan: Plan, problems: Problems) -> AoaModel | None:
    """The AOA model from the training rows, when an output needs it."""
    cfg = plan.config
    assert cfg.output is not None and plan.schema is not None
    if not any(o.kind.needs == "aoa" for o in plan.outputs):
        if cfg.aoa is not None:
            keys = " or ".join(f"output.{k.key}" for k in KINDS if k.needs == "aoa")
            problems.warn(f"the aoa section is used only with {keys}: ignored")
        return None
    assert cfg.aoa is not None  # the config's own check
    features = plan.schema.features
    return build_aoa(
        cfg.aoa.training,
        features,
        weights=cfg.aoa.weights,
        importances=feature_importances(plan.model, len(features)) if plan.model else None,
        folds=cfg.aoa.folds,
        seed=cfg.aoa.seed,
    )


def find_layers(cfg: Config) -> Found:
    """Every layer ``rasters`` names (every band of every file), never this run's own outputs
    (or their temporary names)."""
    written = cfg.output.rasters if cfg.output is not None else []
    ours = [p for path in written for p in (path, *temporary_paths(path))]
    listing = list_bands(discover(cfg.rasters, exclude=ours), cfg.rasters.band_names)
    return Found(listing.bands, listing.unreadable, listing.ours)


def missing_features(found: Found, schema: Schema) -> list[str]:
    names = set(found.names)
    return [f for f in schema.features if f not in names]


def require_features(found: Found, schema: Schema, cfg: Config) -> None:
    """Every feature the model expects has a layer; else an error naming all the missing.
    A feature whose file cannot be opened is that file's error."""
    missing = missing_features(found, schema)
    if missing:
        hint = ""
        pairs = duplicates(found.bands)
        if pairs and cfg.rasters.band_names != "stem":  # files of dates with the same bands
            first, other = pairs[0]
            hint = (
                f"; layers share names (e.g. '{first.name}': {first.label} and {other.label}): "
                "rasters.band_names: stem names a multi-band file's bands <stem>_<description>"
            )
        raise InputError(
            f"{len(missing)} feature(s) the model expects ({schema.source}) have no raster "
            + f"{cfg.rasters.where}: "
            + shortlist(missing)
            + hint
        )
    for bad in found.unreadable:
        if bad.name in schema.features:
            raise InputError(bad.reason)


def model_bands(found: Found, schema: Schema, cfg: Config) -> list[Band]:
    """The bands of the model's features, in the model's order."""
    require_features(found, schema, cfg)
    by_name = {b.name: b for b in found.bands}
    return [by_name[f] for f in schema.features]


def unused_layers(found: Found, schema: Schema, grid: Grid) -> dict[str, str]:
    """Layers the model does not use -> why they could not have been used ("" if they could)."""
    used = set(schema.features)
    out = {}
    for band in found.bands:
        if band.name not in used:
            out[band.name] = "" if same_grid(grid, band.grid) else "not on the model's grid"
    for bad in found.unreadable:
        if bad.name not in used:
            out[bad.name] = f"cannot be opened: {bad.source.path}"
    return out


def check_preview_extra(out: OutputConfig) -> None:
    if out.preview is not None and importlib.util.find_spec("matplotlib") is None:
        raise OutputError(f"config key 'output.preview': {PREVIEW_HINT}")


def budget(
    cfg: Config, n_layers: int, n_classes: int, workers: int, task: str = "classification"
) -> tuple[int, int]:
    """(max pixels per window, GDAL cache MB per process) from processing.memory_mb.

    A window costs per pixel: the float32 stack, its nodata mask, the filled copy and the
    model's frame (about 14 bytes a layer), plus what each output asked for holds (each
    output kind's work bytes, outputs/kinds). 60% of the budget goes to windows (shared by
    the workers), 20% to GDAL's block caches.
    """
    total = cfg.processing.memory_mb * 2**20
    per_pixel = 14 * n_layers + 48 + work_bytes(cfg.output, task, n_classes, n_layers)
    max_pixels = int(0.6 * total / max(workers, 1) / per_pixel)
    cache_mb = max(8, int(0.2 * cfg.processing.memory_mb / (workers + 1)))
    return max_pixels, cache_mb
