"""``sirt stats``: univariate tests, single-metric ROC, tumour control, mixed model and survival analyses."""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path

from SIRTDosimetryLib.errors import SIRTInputError

from .common import add_cohort_arguments, file_stem, load_cohort_from_args


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "stats",
        help="univariate, ROC, tumour-control, mixed-model and survival analyses of a cohort",
        description="Mann-Whitney U per feature with Benjamini-Hochberg FDR and box plots; ROC of single "
        "metrics with Youden / best-accuracy / target-specificity thresholds; logistic tumour control and "
        "(per-lesion data) a mixed model of log dose by response category; Kaplan-Meier, log-rank and Cox "
        "by dose metrics split at the median.",
    )
    add_cohort_arguments(p)
    p.add_argument("--output", required=True, type=Path, help="output folder")
    p.add_argument("--q", type=float, default=0.05, help="FDR level (default 0.05)")
    p.add_argument("--boxplots", type=int, default=8, help="box plots of the N features with the smallest p (default 8)")
    p.add_argument("--roc-metric", action="append", default=[], metavar="COLUMN", help="ROC analysis of this feature (repeatable)")
    p.add_argument("--direction", choices=("higher", "lower"), default="higher", help="responders have higher (default) or lower values")
    p.add_argument("--target-specificity", type=float, default=0.90, help="specificity for the second threshold (default 0.90)")
    p.add_argument("--dose-metric", action="append", default=[], metavar="COLUMN", help="dose metric for tumour control, mixed model and survival (repeatable)")
    p.add_argument("--survival", type=Path, help="per-patient table with survival times and events, joined on the id column")
    p.add_argument("--endpoint", action="append", default=[], metavar="NAME=TIME,EVENT", help="survival endpoint, e.g. OS=os_months,os_event (repeatable)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs in the output folder")
    p.set_defaults(run=run)


def _endpoints(items: list[str]) -> list[tuple[str, str, str]]:
    endpoints = []
    for item in items:
        name, sep, columns = item.partition("=")
        parts = columns.split(",")
        if not sep or len(parts) != 2 or not name or not all(parts):
            raise SIRTInputError(f"--endpoint must look like NAME=TIME_COLUMN,EVENT_COLUMN, got {item!r}")
        endpoints.append((name, parts[0].strip(), parts[1].strip()))
    return endpoints


def _flat(record: dict) -> dict:
    """Table row of a result: (low, high) pairs become ``<name>_low`` / ``<name>_high`` columns."""
    row = {}
    for key, value in record.items():
        if isinstance(value, (list, tuple)) and len(value) == 2 and key.endswith("_ci"):
            row |= {f"{key}_low": value[0], f"{key}_high": value[1]}
        else:
            row[key] = value
    return row


def _column(cohort, name: str):
    if name not in cohort.features.columns:
        raise SIRTInputError(f"the feature table has no numeric column {name!r}")
    return cohort.features[name].to_numpy(dtype=float)


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from SIRTDosimetryLib.io.writers import commit_outputs, write_json
    from SIRTDosimetryLib.provenance import provenance, to_jsonable

    from .. import report
    from ..labels import read_table
    from ..roc import single_metric_roc
    from ..survival import mixed_model_log_dose, survival_by_median, tumour_control
    from ..univariate import mann_whitney_table

    cohort = load_cohort_from_args(args)
    endpoints = _endpoints(args.endpoint)
    if endpoints and (args.survival is None or not args.dose_metric):
        raise SIRTInputError("survival analysis needs --survival TABLE and at least one --dose-metric")
    y = cohort.y
    univariate = mann_whitney_table(cohort.features, y, args.q)
    top = [f for f in univariate["feature"][univariate["p_value"].notna()][: args.boxplots]]
    writers = {"univariate.csv": lambda p: univariate.to_csv(p, index=False)}
    if top:
        writers["boxplots.png"] = partial(report.plot_boxplots, cohort.features, y, top)
    sections = [("Mann–Whitney U with Benjamini–Hochberg FDR", report.format_table(univariate.head(30)) + (report.image("boxplots.png") if top else ""))]
    summary: dict = {"cohort": cohort.summary(), "n_significant": int(univariate["significant"].sum()), "q": args.q}

    rocs = {}
    for name in args.roc_metric:
        result = single_metric_roc(_column(cohort, name), y, name=name, direction=args.direction, target_specificity=args.target_specificity)
        rocs[name] = result
        writers[f"roc_{file_stem(name)}.json"] = partial(write_json, to_jsonable(result))
        writers[f"roc_{file_stem(name)}.png"] = partial(report.plot_single_roc, result)
    if rocs:
        rows = [
            {"metric": n, "auc": r.auc.value, "auc_ci_low": r.auc.ci_low, "auc_ci_high": r.auc.ci_high, "rule": rule, **to_jsonable(point), "youden_j": point.youden}
            for n, r in rocs.items()
            for rule, point in (("youden", r.youden), ("best_accuracy", r.best_accuracy), (f"specificity>={r.target:g}", r.target_specificity))
            if point is not None
        ]
        roc_table = pd.DataFrame(rows)
        writers["roc_thresholds.csv"] = lambda p: roc_table.to_csv(p, index=False)
        sections.append(("ROC of single metrics", report.format_table(roc_table) + "".join(report.image(f"roc_{file_stem(n)}.png") for n in rocs)))

    groups = cohort.groups if cohort.grouped else None
    if args.dose_metric:
        control = pd.DataFrame([_flat(to_jsonable(tumour_control(y, _column(cohort, m), metric_name=m, groups=groups))) for m in args.dose_metric])
        writers["tumour_control.csv"] = lambda p: control.to_csv(p, index=False)
        sections.append(("Logistic tumour control", report.format_table(control)))
    if args.dose_metric and cohort.grouped:
        frames = []
        for m in args.dose_metric:
            mixed = mixed_model_log_dose(_column(cohort, m), cohort.categories, cohort.groups)
            frames.append(mixed.fixed_effects.assign(metric=m, patient_variance=mixed.patient_variance, residual_variance=mixed.residual_variance, converged=mixed.converged))
        mixed_table = pd.concat(frames, ignore_index=True)
        writers["mixed_model.csv"] = lambda p: mixed_table.to_csv(p, index=False)
        sections.append(("Mixed model: log dose ~ response category + (1 | patient)", report.format_table(mixed_table)))

    if endpoints:
        if cohort.grouped:
            raise SIRTInputError("survival analysis needs a per-patient cohort (leave out --lesion-column)")
        survival = read_table(args.survival).astype({args.id_column: str}).set_index(args.id_column)
        rows = []
        for endpoint, time_column, event_column in endpoints:
            for column in (time_column, event_column):
                if column not in survival.columns:
                    raise SIRTInputError(f"the survival table has no column {column!r}")
            joined = survival.reindex(cohort.groups)
            for m in args.dose_metric:
                result = survival_by_median(joined[time_column], joined[event_column], _column(cohort, m), metric_name=m, endpoint=endpoint)
                rows.append(_flat({k: v for k, v in to_jsonable(result).items() if k not in ("high", "low")}) | {"median_high": result.high.median_survival, "median_low": result.low.median_survival, "n_high": result.high.n, "n_low": result.low.n})
                writers[f"km_{file_stem(endpoint)}_{file_stem(m)}.png"] = partial(report.plot_km, result)
        survival_table = pd.DataFrame(rows)
        writers["survival.csv"] = lambda p: survival_table.to_csv(p, index=False)
        images = "".join(report.image(name) for name in writers if name.startswith("km_"))
        sections.append(("Survival by dose metric (split at the median)", report.format_table(survival_table) + images))

    inputs = [p for p in (args.features, args.labels, args.survival) if p is not None]
    summary["provenance"] = provenance({f"input_{i}": p for i, p in enumerate(inputs)}, vars(args) | {"run": None})
    writers["summary.json"] = partial(write_json, to_jsonable(summary))
    writers["report.html"] = lambda p: p.write_text(report.html_page("SIRT response statistics", sections), encoding="utf-8")
    commit_outputs(args.output, writers, inputs=inputs, overwrite=args.overwrite)
    print(f"{summary['n_significant']} of {len(univariate)} features significant at q = {args.q}")
    for name, r in rocs.items():
        print(f"{name}: AUC {r.auc.value:.3f} [{r.auc.ci_low:.3f}, {r.auc.ci_high:.3f}]; Youden threshold {r.youden.threshold:.4g} (sensitivity {r.youden.sensitivity:.2f}, specificity {r.youden.specificity:.2f})")
    print(f"wrote {args.output}")
    return 0
