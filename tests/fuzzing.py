"""Hypothesis strategies for configs: random YAML values and edits of a valid config."""

from __future__ import annotations

import copy
import string
from typing import Any

from hypothesis import strategies as st

from windowed_classify.config import SCHEMA

# Text without path separators or "~": every path a value makes stays under the test's folder.
SAFE = string.ascii_letters + string.digits + " ._-:,\x00éß" + "\u2603"
texts = st.text(alphabet=SAFE, max_size=12)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | texts
    | st.sampled_from(
        [
            "nearest",
            "bilinear",
            ".tif",
            "uint8",
            "lzw",
            "threads",
            "a.tif",
            "",
            "a\x00.tif",
            "x\x00",
        ]
    )
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=6,
)
keys = st.sampled_from([(s, k) for s, spec in SCHEMA.items() for k in spec])


# Values a user could well write for some keys (the stacks of helpers.build_case: layers elev,
# slope, ndvi; classes forest, water, urban): they get past the loader, into the preparation.
PLAUSIBLE: dict[tuple[str, str], list[Any]] = {
    ("output", "dtype"): ["uint8", "uint16", "int16", "float32"],
    ("output", "nodata"): [0, 1, 2, 3, 255, -1, 65535, "nan"],
    ("output", "codes"): ["index", "label"],
    ("output", "probabilities"): ["p.tif", "path.tif"],
    ("output", "spread"): ["s.tif"],
    ("output", "di"): ["di.tif"],
    ("output", "preview"): ["p.png"],
    ("nodata", "threshold"): [0, 1, 2, 3, 4],
    ("nodata", "values"): [[], [-9999], [0]],
    ("nodata", "use_file_nodata"): [True, False],
    ("model", "classes"): [
        ["forest", "water", "urban"],
        ["urban", "forest"],
        ["forest", "water", "urban", "wetland"],
        [1, 2, 3],
    ],
    ("model", "task"): ["auto", "classification", "regression"],
    ("model", "features"): [["elev", "slope", "ndvi"], ["ndvi", "elev", "slope"], ["elev"]],
    ("model", "scoring_file"): ["scoring_file_v_1_0_0.py"],
    ("rasters", "align"): [True, False],
    ("rasters", "reference"): ["covariates/elev.tif", "nothing.tif"],
    ("rasters", "band_names"): ["auto", "stem"],
    ("rasters", "extensions"): [[".tif"], [".vrt"], [".tif", ".tiff"]],
}


@st.composite
def mutations(draw: st.DrawFn) -> list[tuple[str, Any]]:
    """A few edits of a valid config: set a key to a plausible value (half the time) or a
    random one, set an unknown key, drop one, replace a section."""
    edits = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(
            st.sampled_from(["plausible"] * 6 + ["set", "set", "unknown", "drop", "section"])
        )
        if kind == "plausible":
            section, key = draw(st.sampled_from(sorted(PLAUSIBLE)))
            edits.append(("set", (section, key, draw(st.sampled_from(PLAUSIBLE[section, key])))))
            continue
        section, key = draw(keys)
        if kind == "unknown":
            key = draw(texts)
        edits.append((kind, (section, key, draw(values))))
    return edits


def mutate(config: dict[str, Any], edits: list) -> dict[str, Any]:
    cfg = copy.deepcopy(config)
    for kind, (section, key, value) in edits:
        if kind == "section":
            cfg[section] = value
            continue
        part = cfg.get(section)
        if not isinstance(part, dict):
            part = cfg[section] = {}
        if kind == "drop":
            part.pop(key, None)
        else:
            part[key] = value
    return cfg
