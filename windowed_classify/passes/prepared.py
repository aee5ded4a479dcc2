"""What the passes start from: everything the preparation (``prepare``) decided before a
pixel is read. Defined here, below ``prepare``, because the passes consume it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..aoa import AoaModel
from ..config import Config, ModelConfig, OutputConfig
from ..inputs.grid import Grid
from ..inputs.layers import Layer
from ..models.legend import Legend
from ..models.schema import Schema


@dataclass
class Prepared:
    """Everything known before any pixel is read: the run can start."""

    config: Config
    grid: Grid
    layers: list[Layer]  # the model's layers, in the model's order
    ignored: list[str]
    schema: Schema
    legend: Legend  # empty for a regression
    model: Any
    task: str = "classification"  # or "regression"
    aoa: AoaModel | None = None  # when an output needs the area of applicability

    @property
    def model_config(self) -> ModelConfig:
        """The config's model section: optional in a config (``sample`` and ``check`` need
        none), always there once a run is prepared (``prepare`` refuses a config without)."""
        if self.config.model is None:
            raise TypeError("a prepared run's config has a model section")
        return self.config.model

    @property
    def output_config(self) -> OutputConfig:
        """The config's output section: always there once a run is prepared, as above."""
        if self.config.output is None:
            raise TypeError("a prepared run's config has an output section")
        return self.config.output
