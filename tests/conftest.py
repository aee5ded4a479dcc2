"""Shared fixtures. Builders live in helpers.py, the oracle in reference.py."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import Case, build_case
from hypothesis import HealthCheck, Phase, settings

# Keep the worker processes the tool may start from oversubscribing the 2 cores.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

settings.register_profile(
    "default",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile(
    "ci",
    parent=settings.get_profile("default"),
    derandomize=True,
)
# no shrinking: report the first failing example found (quicker on expensive examples)
settings.register_profile(
    "noshrink",
    parent=settings.get_profile("default"),
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(autouse=True, scope="session")
def _isolated_user_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep anything the tool caches per user (e.g. pass-1 statistics) out of the real home;
    CLI subprocesses inherit the variable."""
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg_cache"))


@pytest.fixture(autouse=True)
def _read_ahead_from_each_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run or check sets its process's read-ahead in the environment (for its workers): each
    test starts without it and leaves none behind."""
    from windowed_classify.inputs.readahead import READ_AHEAD_VARIABLE

    monkeypatch.delenv(READ_AHEAD_VARIABLE, raising=False)


@pytest.fixture
def interrupt(monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, Any], int], None]:
    """``interrupt(config, n)``: a serial run stopped as Ctrl-C would stop it after ``n``
    windows of pass 2 (Interrupted raised, the journal kept)."""
    import windowed_classify.api as api
    from windowed_classify import run
    from windowed_classify.engines.local import SerialExecutor
    from windowed_classify.errors import Interrupted
    from windowed_classify.passes.window import PredictJob

    class StopAfter(SerialExecutor):
        def __init__(self, model: Any, n: int):
            super().__init__(model)
            self.n = n

        def run(self, job: Any, items: Any, pin: Any = None) -> Any:
            for i, pair in enumerate(super().run(job, items, pin)):
                if isinstance(job, PredictJob) and i == self.n:
                    raise KeyboardInterrupt
                yield pair

    def stop(cfg: dict[str, Any], n: int) -> None:
        real = api.make_executor
        monkeypatch.setattr(api, "make_executor", lambda path, w, e, model, *a: StopAfter(model, n))
        with pytest.raises(Interrupted):
            run(cfg, workers=1)
        monkeypatch.setattr(api, "make_executor", real)

    return stop


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """A Dask client of one LocalCluster (two single-threaded worker processes, loopback) per
    module that asks for it; runs reach it as an existing scheduler, by its address."""
    import distributed  # the test extra installs dask[distributed]

    from windowed_classify.engines.dask_engine import local_cluster

    with local_cluster(distributed, 2) as local, distributed.Client(local) as client:
        yield client


@pytest.fixture(scope="module")
def real_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The public Landsat and Meuse stacks (tests/realdata.py), copied once per module."""
    from realdata import real_stacks

    return real_stacks(tmp_path_factory.mktemp("real"))


@pytest.fixture
def case(tmp_path: Path) -> Case:
    """Three float32 layers (elev, slope, ndvi), a DecisionTree on string labels."""
    return build_case(tmp_path)


@pytest.fixture
def small_guide(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pass 2's guide is two windows, not about a million pixels: a small test stack then has
    windows counted against the guide's band too, as a large stack does."""
    from windowed_classify.passes import pass1

    monkeypatch.setattr(pass1, "SAMPLE_PIXELS", 1)
    monkeypatch.setattr(pass1, "MIN_GUIDE", 2)
