"""``check`` lists every output a config asks for and whether the model can give it (#14)."""

from __future__ import annotations

from pathlib import Path

from helpers import (
    STACK_NAMES,
    build_case,
    make_config,
    run_main,
    save_model,
    simple_stack,
    training_rows,
    write_yaml,
)
from sklearn.ensemble import RandomForestRegressor

from windowed_classify.commands.check import check


def test_a_regression_lists_its_outputs_and_what_it_cannot_give(tmp_path: Path) -> None:
    stack = simple_stack(tmp_path / "cov", names=STACK_NAMES)
    stack.write()
    x, y = training_rows(stack)
    model = RandomForestRegressor(n_estimators=3, random_state=0).fit(x, y)
    x.to_csv(tmp_path / "train.csv", index=False)
    cfg = make_config(
        stack.folder,
        save_model(model, tmp_path / "m.pkl"),
        tmp_path / "p.tif",
        output={
            "spread": str(tmp_path / "s.tif"),
            "di": str(tmp_path / "di.tif"),
            "quantiles": str(tmp_path / "q.tif"),
            "margin": str(tmp_path / "m.tif"),
        },
    )
    cfg["aoa"] = {"training": str(tmp_path / "train.csv"), "folds": {"random": 3}}
    result = check(cfg)
    assert result.task == "regression (auto: RandomForestRegressor is a regressor)"
    status = {line.key: line.status for line in result.outputs}
    assert list(status) == ["path", "margin", "spread", "quantiles", "di"]
    assert status["path"] == status["spread"] == status["di"] == "ok"
    assert status["margin"].startswith("NOT SUPPORTED: a regression gives no class")
    assert "not a quantile forest" in status["quantiles"]
    assert "AOA training table: 400 usable training row(s); folds random: 3" in result.render()
    assert not result.ok and len(result.problems) == 2
    assert result.estimate is not None  # sizes are estimated for what was asked, refused or not
    pixels = stack.layers[0].data.size
    assert result.estimate.outputs_mb[str(tmp_path / "q.tif")] == 3 * 4 * pixels / 2**20

    proc = run_main("check", write_yaml(tmp_path / "c.yaml", cfg))
    assert proc.returncode == 2
    assert "task: regression" in proc.stdout and "NOT SUPPORTED (see below)" in proc.stdout
    assert "config key 'output.quantiles': the model (RandomForestRegressor)" in proc.stdout


def test_a_classifier_lists_probabilities_and_its_classes(tmp_path: Path) -> None:
    case = build_case(tmp_path, kind="forest")
    out = case.output.parent
    case.config["output"].update(
        probabilities=str(out / "p.tif"), entropy=str(out / "e.tif"), spread=str(out / "s.tif")
    )
    result = check(case.config)
    assert result.task == "classification (auto: RandomForestClassifier is not a regressor)"
    status = {line.key: line.status for line in result.outputs}
    assert status["probabilities"] == status["entropy"] == "ok"
    assert status["spread"].startswith("NOT SUPPORTED: spread is for regressions")
    bands = {line.key: line.bands for line in result.outputs}
    assert bands["probabilities"] == 3
    assert result.legend is not None and len(result.legend.labels) == 3
