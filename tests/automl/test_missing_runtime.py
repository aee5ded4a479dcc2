"""A model that needs the Azure AutoML runtime, where the runtime is missing: a clear error.

Runs in every venv (no azureml needed): the pickles are written by hand, opcode by opcode,
so that unpickling them imports an ``azureml.*`` module, as a real AutoML ``model.pkl``
does first thing. Without azureml installed that raises ModuleNotFoundError
(``name == 'azureml'``); with it installed, the made-up module is missing just the same.
"""

from __future__ import annotations

import importlib.util
import pickle
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: helpers, reference

from helpers import REPO_ROOT, make_config, run_cli, simple_stack, write_yaml  # noqa: E402

import windowed_classify  # noqa: E402
from windowed_classify.errors import ModelError  # noqa: E402

HINT = "needs the Azure AutoML runtime"

# What AutoML's model.pkl starts with: the class of the outer object. The second one names
# a module that exists in no azureml release, so it is missing in the azureml venv too.
REAL_CLASS = (
    "azureml.training.tabular.models.pipeline_with_ytransformations",
    "PipelineWithYTransformations",
)
MADE_UP_CLASS = ("azureml.training.tabular.models.x", "Y")


def importable(module: str) -> bool:
    """Whether ``module`` can be found (no import of the module itself).

    Not ``find_spec("azureml")``: a folder named ``azureml`` on sys.path would pass for it.
    """
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # a parent package is missing
        return False


REAL_CLASS_INSTALLED = importable(REAL_CLASS[0])
RUNTIME_INSTALLED = importable("azureml.automl.runtime")
OTHER_RELEASE = "installed Azure AutoML runtime does not have"
AZUREML_CLASSES = [
    pytest.param(
        *REAL_CLASS,
        id="real_class",
        marks=pytest.mark.skipif(
            REAL_CLASS_INSTALLED, reason="the Azure AutoML runtime is installed here"
        ),
    ),
    pytest.param(*MADE_UP_CLASS, id="made_up_class"),
]


def automl_like_pickle(path: Path, module: str, name: str, protocol: int) -> Path:
    """A pickle whose first opcode makes the unpickler import ``module.name``.

    protocol 2: PROTO 2, GLOBAL "module\\nname\\n", EMPTY_TUPLE, NEWOBJ, STOP.
    protocol 4 (what joblib writes today): STACK_GLOBAL with the names as unicode strings.
    """
    if protocol == 2:
        body = b"c" + module.encode() + b"\n" + name.encode() + b"\n" + b")\x81."
        data = b"\x80\x02" + body
    else:
        data = (
            b"\x80\x04"
            + b"\x8c"
            + bytes([len(module)])
            + module.encode()
            + b"\x8c"
            + bytes([len(name)])
            + name.encode()
            + b"\x93)\x81."
        )
    path.write_bytes(data)
    # the bytes are a valid pickle that fails only at the import
    with pytest.raises(ModuleNotFoundError) as info:
        pickle.loads(data)
    assert (info.value.name or "").split(".")[0] == "azureml"
    return path


@pytest.fixture
def azureml_case(tmp_path: Path) -> tuple[Path, dict]:
    stack = simple_stack(tmp_path / "covariates", height=20, width=24)
    stack.write()
    model_path = tmp_path / "model.pkl"
    output = tmp_path / "out" / "prediction.tif"
    config = make_config(
        stack.folder, model_path, output, model={"features": ["elev", "slope", "ndvi"]}
    )
    return model_path, config


@pytest.mark.parametrize("module,name", AZUREML_CLASSES)
@pytest.mark.parametrize("protocol", [2, 4])
def test_cli_says_the_runtime_is_needed(
    azureml_case: tuple[Path, dict], tmp_path: Path, module: str, name: str, protocol: int
) -> None:
    model_path, config = azureml_case
    automl_like_pickle(model_path, module, name, protocol)
    cfg = write_yaml(tmp_path / "config.yaml", config)

    proc = run_cli(cfg, cwd=tmp_path)

    err = proc.stderr
    assert proc.returncode == 2, f"exit {proc.returncode}; stderr: {err!r}"
    assert "Traceback" not in err, err
    assert str(model_path) in err, err
    if RUNTIME_INSTALLED:  # the runtime is here but lacks the module: say so, name it
        assert OTHER_RELEASE in err and module in err, err
    else:  # the hint names the install script, and that script exists
        assert HINT in err, err
        assert "scripts/install-azureml.sh" in err, err
        assert (REPO_ROOT / "scripts" / "install-azureml.sh").is_file()
    error_lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1, err
    assert not Path(config["output"]["path"]).exists()
    assert not list(Path(config["output"]["path"]).parent.glob("*.tif"))


def test_api_raises_model_error(azureml_case: tuple[Path, dict]) -> None:
    model_path, config = azureml_case
    automl_like_pickle(model_path, *MADE_UP_CLASS, protocol=4)
    with pytest.raises(ModelError, match=OTHER_RELEASE if RUNTIME_INSTALLED else HINT) as info:
        windowed_classify.run(config)
    # raised "from None": the ModuleNotFoundError is not chained into what the user sees
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_other_missing_module_is_named(azureml_case: tuple[Path, dict], tmp_path: Path) -> None:
    """A model needing another missing package names that package, not azureml."""
    model_path, config = azureml_case
    model_path.write_bytes(b"\x80\x02cno_such_package_wc.models\nThing\n)\x81.")
    cfg = write_yaml(tmp_path / "config.yaml", config)
    proc = run_cli(cfg, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "no_such_package_wc" in proc.stderr, proc.stderr
    assert HINT not in proc.stderr, proc.stderr
