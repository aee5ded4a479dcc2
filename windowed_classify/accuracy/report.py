"""The assessment as a document (OUT.json), a Markdown and a CSV table for a paper, and a
short summary for the terminal. Pure: dicts and text, no I/O."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from .estimators import Z95, Accuracy, Estimate

NAMES = {
    "olofsson2014": "Olofsson et al. (2014) stratified estimator (strata = map classes)",
    "stehman2014": "Stehman (2014) estimators (strata other than the map classes)",
}


def _estimate(e: Estimate) -> dict[str, Any]:
    ci = e.ci95()
    return {"estimate": e.estimate, "se": e.se, "ci95": None if ci is None else list(ci)}


def document(
    acc: Accuracy,
    classes: Sequence[str],
    mapped_pixels: Sequence[int],
    mapped_ha: Sequence[float | None],
    total_ha: float | None,
    design: dict[str, Any],
    excluded: dict[str, Any],
    about: dict[str, Any],
) -> dict[str, Any]:
    """OUT.json: every estimate by class name (the map's names, or its codes as text)."""
    area = {}
    for k, name in enumerate(classes):
        p = acc.area[k]
        est_ha = se_ha = None
        ci_ha: list[float] | None = None
        if total_ha is not None and p.estimate is not None and p.se is not None:
            est_ha, se_ha = p.estimate * total_ha, p.se * total_ha
            ci_ha = [est_ha - Z95 * se_ha, est_ha + Z95 * se_ha]
        area[name] = {
            "mapped_pixels": int(mapped_pixels[k]),
            "mapped_ha": mapped_ha[k],
            "proportion": p.estimate,
            "proportion_se": p.se,
            "estimate_ha": est_ha,
            "se_ha": se_ha,
            "ci95_ha": ci_ha,
        }
    return {
        **about,
        "estimator": acc.estimator,
        "classes": list(classes),
        "overall_accuracy": _estimate(acc.overall),
        "users_accuracy": {c: _estimate(acc.users[k]) for k, c in enumerate(classes)},
        "producers_accuracy": {c: _estimate(acc.producers[k]) for k, c in enumerate(classes)},
        "area": area,
        "error_matrix": {
            "counts": {
                m: {r: int(acc.counts[i, j]) for j, r in enumerate(classes)}
                for i, m in enumerate(classes)
            },
            "proportions": {
                m: {r: float(acc.matrix[i, j]) for j, r in enumerate(classes)}
                for i, m in enumerate(classes)
            },
        },
        "design": {**design, "estimator": acc.estimator, "z": Z95},
        "excluded": excluded,
    }


def _num(value: float | None, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _ha(value: float | None) -> str:
    return "" if value is None else f"{value:,.0f}"


def _pm(e: dict[str, Any], digits: int = 3) -> str:
    if e["estimate"] is None:
        return "n/a"
    if e["se"] is None:
        return _num(e["estimate"], digits)
    return f"{e['estimate']:.{digits}f} ± {Z95 * e['se']:.{digits}f}"


def markdown(doc: dict[str, Any]) -> str:
    classes = doc["classes"]
    units = sum(sum(row.values()) for row in doc["error_matrix"]["counts"].values())
    has_ha = any(a["estimate_ha"] is not None for a in doc["area"].values())
    lines = [
        f"# Accuracy and area of {doc.get('map', 'the map')}",
        "",
        f"{NAMES.get(doc['estimator'], doc['estimator'])}; {units} sample units; "
        f"95% confidence intervals: estimate ± {Z95} SE.",
        "",
        f"**Overall accuracy**: {_pm(doc['overall_accuracy'])}",
        "",
    ]
    head = ["Class", "User's accuracy", "Producer's accuracy", "Mapped"]
    head += ["Estimated area (ha)", "95% CI (ha)"] if has_ha else ["Estimated proportion"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in classes:
        a = doc["area"][c]
        row = [c, _pm(doc["users_accuracy"][c]), _pm(doc["producers_accuracy"][c])]
        if has_ha:
            half = None if a["se_ha"] is None else Z95 * a["se_ha"]
            row += [f"{_ha(a['mapped_ha'])} ha", _ha(a["estimate_ha"]), f"± {_ha(half)}"]
        else:
            row += [
                f"{a['mapped_pixels']:,} px",
                _pm({"estimate": a["proportion"], "se": a["proportion_se"]}, 4),
            ]
        lines.append("| " + " | ".join(row) + " |")
    lines += [
        "",
        "## Error matrix in proportions of area (rows: map, columns: reference)",
        "",
        "| map \\ reference | " + " | ".join(classes) + " | total |",
        "|" + "---|" * (len(classes) + 2),
    ]
    props = doc["error_matrix"]["proportions"]
    for m in classes:
        cells = [props[m][r] for r in classes]
        lines.append(
            f"| {m} | " + " | ".join(_num(v, 4) for v in cells) + f" | {_num(sum(cells), 4)} |"
        )
    totals = [sum(props[m][r] for m in classes) for r in classes]
    lines.append(
        "| total | " + " | ".join(_num(v, 4) for v in totals) + f" | {_num(sum(totals), 4)} |"
    )
    lines += [
        "",
        "## Sample counts (rows: map, columns: reference)",
        "",
        "| map \\ reference | " + " | ".join(classes) + " | total |",
        "|" + "---|" * (len(classes) + 2),
    ]
    counts = doc["error_matrix"]["counts"]
    for m in classes:
        cells = [counts[m][r] for r in classes]
        lines.append(f"| {m} | " + " | ".join(map(str, cells)) + f" | {sum(cells)} |")
    excluded = doc["excluded"]
    if excluded["count"]:
        reasons = ", ".join(f"{n} {why}" for why, n in excluded["reasons"].items())
        lines += ["", f"Excluded sample units: {excluded['count']} ({reasons})."]
    return "\n".join(lines) + "\n"


CSV_COLUMNS = [
    "class",
    "mapped_pixels",
    "mapped_ha",
    "proportion",
    "proportion_se",
    "estimate_ha",
    "se_ha",
    "ci95_lo_ha",
    "ci95_hi_ha",
    "users_accuracy",
    "users_accuracy_se",
    "users_accuracy_ci95_lo",
    "users_accuracy_ci95_hi",
    "producers_accuracy",
    "producers_accuracy_se",
    "producers_accuracy_ci95_lo",
    "producers_accuracy_ci95_hi",
]


def table_csv(doc: dict[str, Any]) -> str:
    """One row per class, then a row ``overall``: the map's totals and, in the last four
    columns (empty on the class rows), the overall accuracy."""

    def acc(e: dict[str, Any]) -> list[Any]:
        ci = e["ci95"] or [None, None]
        return [e["estimate"], e["se"], *ci]

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        [
            *CSV_COLUMNS,
            "overall_accuracy",
            "overall_accuracy_se",
            "overall_accuracy_ci95_lo",
            "overall_accuracy_ci95_hi",
        ]
    )
    for c in doc["classes"]:
        a = doc["area"][c]
        ci = a["ci95_ha"] or [None, None]
        row = [
            c,
            a["mapped_pixels"],
            a["mapped_ha"],
            a["proportion"],
            a["proportion_se"],
            a["estimate_ha"],
            a["se_ha"],
            *ci,
            *acc(doc["users_accuracy"][c]),
            *acc(doc["producers_accuracy"][c]),
        ]
        writer.writerow(["" if v is None else v for v in row] + [""] * 4)
    total_px = sum(a["mapped_pixels"] for a in doc["area"].values())
    has_ha = all(a["mapped_ha"] is not None for a in doc["area"].values())
    total_ha = sum(a["mapped_ha"] for a in doc["area"].values()) if has_ha else ""
    overall = ["overall", total_px, total_ha] + [""] * (len(CSV_COLUMNS) - 3)
    writer.writerow(overall + ["" if v is None else v for v in acc(doc["overall_accuracy"])])
    return buffer.getvalue()


def summary(doc: dict[str, Any], written: Sequence[str]) -> str:
    """A few lines for the terminal."""
    classes = doc["classes"]
    units = sum(sum(row.values()) for row in doc["error_matrix"]["counts"].values())
    width = max(12, *(len(c) for c in classes))
    has_ha = any(a["estimate_ha"] is not None for a in doc["area"].values())
    lines = [
        f"accuracy from {units} sample units ({doc['estimator']}): overall "
        f"{_pm(doc['overall_accuracy'])} (95% CI)",
        f"  {'class':<{width}}  {'user':>13}  {'producer':>13}  "
        + ("estimated area (ha)" if has_ha else "estimated proportion"),
    ]
    for c in classes:
        a = doc["area"][c]
        if has_ha:
            half = None if a["se_ha"] is None else Z95 * a["se_ha"]
            area = f"{_ha(a['estimate_ha'])} ± {_ha(half)}"
        else:
            area = _pm({"estimate": a["proportion"], "se": a["proportion_se"]}, 4)
        lines.append(
            f"  {c:<{width}}  {_pm(doc['users_accuracy'][c]):>13}  "
            f"{_pm(doc['producers_accuracy'][c]):>13}  {area}"
        )
    if doc["excluded"]["count"]:
        lines.append(f"  excluded: {doc['excluded']['count']} point(s) (see the report)")
    lines.append("written: " + ", ".join(written))
    return "\n".join(lines)
