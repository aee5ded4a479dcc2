"""The spread of a forest or bagging regressor: the standard deviation (ddof 0) of its
members' predictions, ``np.std([t.predict(X) for t in model.estimators_], axis=0)`` where X
is what the ensemble itself gives its members (float32 for a forest, its features for
bagging). Rows go in blocks to bound the (members x rows) array."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from rasterio.enums import Resampling

from ...config import FLOAT_NODATA, OutputConfig
from ...errors import ModelError
from ...models.legend import Legend
from ...models.task import SPREAD_HINT, Abilities, tree_ensemble
from .base import RasterSpec, Rows
from .floats import FloatRaster

if TYPE_CHECKING:
    from ...aoa import AoaModel

BLOCK_BYTES = 32 * 2**20  # members x rows float64 predictions held at once


def _member_inputs(ensemble: Any, x: Any) -> Any:
    """What the ensemble gives its members: the forest's own validated float32 array."""
    validate = getattr(ensemble, "_validate_X_predict", None)
    if callable(validate):  # forests: float32, C order, feature names checked
        return validate(x)
    return np.asarray(x)  # bagging: the values as they are (dtype=None in its check)


def tree_spread(model: Any, frame: Any) -> np.ndarray:
    """Standard deviation (ddof 0) of the ensemble members' predictions, per row, float64."""
    found = tree_ensemble(model)
    if found is None:
        raise ModelError(f"the model ({type(model).__name__}) is not a tree ensemble")
    before, ensemble = found
    x = before.transform(frame) if before is not None else frame
    x = _member_inputs(ensemble, x)
    members = list(ensemble.estimators_)
    features = getattr(ensemble, "estimators_features_", None)  # bagging: each member's columns
    rows = x.shape[0]
    step = max(256, BLOCK_BYTES // (8 * max(len(members), 1)))
    out = np.empty(rows, dtype=np.float64)
    for start in range(0, rows, step):
        part = x[start : start + step]
        predictions = np.empty((len(members), part.shape[0]), dtype=np.float64)
        for i, member in enumerate(members):
            given = part if features is None else part[:, features[i]]
            predictions[i] = np.asarray(member.predict(given), dtype=np.float64).reshape(-1)
        out[start : start + step] = np.std(predictions, axis=0)
    return out


class Spread(FloatRaster):
    key = "spread"
    what = "standard deviation of the forest's members"
    task = "regression"
    needs = "ensemble"

    def spec(self, out: OutputConfig, legend: Legend, aoa: AoaModel | None) -> RasterSpec:
        assert out.spread is not None
        return RasterSpec(
            self,
            out.spread,
            1,
            "float32",
            FLOAT_NODATA,
            Resampling.average,
            (self.key,),
            tags={"meaning": "standard deviation of the members' predictions"},
        )

    def work_bytes(self, out: OutputConfig, classes: int, layers: int) -> int:
        return 12

    def compute(self, rows: Rows) -> np.ndarray:
        return tree_spread(rows.model, rows.frame).astype(np.float32)

    def unsupported(self, abilities: Abilities) -> str | None:
        reason = super().unsupported(abilities)
        if reason is None and abilities.ensemble is None:
            name = abilities.name
            return f"the model ({name}) is not a tree ensemble: supported are {SPREAD_HINT}"
        return reason


KIND = Spread()
