"""``sirt train``: cohort table + labels → study folder (results, plots, HTML) and exported best models."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from functools import partial
from pathlib import Path

from SIRTDosimetryLib.errors import SIRTInputError
from SIRTDosimetryLib.io.writers import check_output_dir, check_outputs
from SIRTDosimetryLib.parallel import check_scheduler_reachable

from ..best_of_many import DEFAULT_PERMUTATIONS, DEFAULT_STOP_AFTER
from ..model_card import MODEL_FILES
from .common import add_cohort_arguments, comma_list, file_stem, int_list, load_cohort_from_args

TOP_N_PLOTTED = 5
TOP_N_DELONG = 10


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="responder model study: strategies × selectors × classifiers, nested CV",
        description="Search strategies × feature selectors × classifiers with nested cross-validation, "
        "write results, plots and an HTML summary, and export the best model(s). Rerun with the same "
        "arguments to resume an interrupted study.",
    )
    add_cohort_arguments(p)
    p.add_argument("--output", required=True, type=Path, help="study folder (created; reused to resume)")
    s = p.add_argument_group("search")
    s.add_argument("--strategies", help="comma-separated strategy names or patterns, e.g. 'y90_dvh_*,maa_radiomics_ct' (default all)")
    s.add_argument("--strategy-rules", type=Path, help="JSON file replacing the column rules (groups, strategies)")
    s.add_argument("--selectors", help="comma-separated: anova, kruskal, mrmr, relieff, rfe (default all)")
    s.add_argument("--classifiers", help="comma-separated: dt, glmboost, lr, mlp, nb, rf, svm, xgb (default all)")
    s.add_argument("--n-features", default="5", help="features kept by the selector; several (e.g. 3,5,10) are searched in the inner CV (default 5)")
    s.add_argument("--outer-folds", type=int, default=3)
    s.add_argument("--inner-folds", type=int, default=3)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--redundancy-threshold", type=float, default=0.90, help="|Spearman rho| above which one of two features is dropped (default 0.90)")
    s.add_argument("--no-smote", action="store_true", help="do not oversample the minority class")
    s.add_argument("--smote-k", type=int, default=5, help="SMOTE neighbours (lowered in small folds; default 5)")
    r = p.add_argument_group("results")
    r.add_argument("--bootstrap", type=int, default=1000, help="bootstrap samples for the CIs (default 1000)")
    r.add_argument("--permutations", type=int, default=20, help="label permutations of the best model, refitted (0: none; default 20)")
    r.add_argument("--study-permutations", type=int, default=DEFAULT_PERMUTATIONS,
                   help=f"at most this many reruns of the whole search on permuted labels for the study-level p-value of the best "
                   f"model; each costs about as much as the study (0: none; default {DEFAULT_PERMUTATIONS})")
    r.add_argument("--study-stop-after", type=int, default=DEFAULT_STOP_AFTER,
                   help=f"stop the reruns once this many permuted bests reach the observed best (default {DEFAULT_STOP_AFTER})")
    r.add_argument("--export-top", type=int, default=1, help="export the N best models into OUTPUT/exported (default 1)")
    r.add_argument("--export-model", action="append", default=[], metavar="MODEL_ID", help="also export this model (a model_id of results.csv) into OUTPUT/exported (repeatable)")
    r.add_argument("--export-best", type=Path, metavar="DIR", help="also export the best model to this folder")
    r.add_argument("--extraction-settings", type=Path, help="JSON with the feature extraction settings, copied into the model card")
    x = p.add_argument_group("execution")
    x.add_argument("--jobs", type=int, default=1, help="local worker processes (default 1; -1: all cores)")
    x.add_argument("--dask", metavar="ADDRESS", help="run on this Dask scheduler (e.g. tcp://host:8786) instead of locally")
    x.add_argument("--overwrite", action="store_true", help="replace a study with other settings in OUTPUT, and the model files in an existing --export-best folder")
    p.set_defaults(run=run)


def config_from_args(args: argparse.Namespace):
    from ..features import SELECTORS
    from ..models import CLASSIFIERS
    from ..study import StudyConfig

    return StudyConfig(
        selectors=tuple(comma_list(args.selectors) or SELECTORS),
        classifiers=tuple(comma_list(args.classifiers) or CLASSIFIERS),
        n_features=int_list(args.n_features),
        outer_folds=args.outer_folds,
        inner_folds=args.inner_folds,
        seed=args.seed,
        redundancy_threshold=args.redundancy_threshold,
        smote=not args.no_smote,
        smote_k=args.smote_k,
        n_bootstrap=args.bootstrap,
    )


def _read_json(path: Path | None) -> dict | None:
    if path is None:
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise SIRTInputError(f"cannot read {path}: {exc}") from None


def _extraction_settings(args) -> dict:
    """``--extraction-settings`` plus the pyradiomics build recorded beside the feature table (None when
    the table has no record), which the model card keeps so that a prediction can compare engines."""
    from SIRTDosiomicsLib.radiomics_engine import ENGINE_KEY, table_engine

    settings = _read_json(args.extraction_settings) or {}
    settings.setdefault(ENGINE_KEY, table_engine(args.features))
    return settings


class _ProgressBars:
    """tqdm bars (with ETA) on stderr for the models of the study and for the study-level null."""

    def __init__(self, max_permutations: int):
        self.max_permutations = max_permutations
        self.bars: dict = {}

    def _bar(self, name: str, total: int, desc: str, unit: str):
        from tqdm import tqdm

        if name not in self.bars:
            self.bars[name] = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True)
        return self.bars[name]

    def models(self, outcome, done: int, total: int) -> None:
        bar = self._bar("models", total, "models", "model")
        if outcome is None:  # the study starts
            return
        bar.update(1)
        if outcome.status != "ok":
            bar.write(f"{outcome.id}: FAILED ({outcome.error})", file=sys.stderr)
        if done >= total:  # closed before the null's bar opens: one bar at a time, also in logs
            bar.close()

    def null(self, done: int, best_auc: float | None) -> None:
        bar = self._bar("null", self.max_permutations, "study-level null (whole search on permuted labels; stops early)", "rerun")
        if done:
            bar.set_postfix(last_best_auc=f"{best_auc:.3f}", refresh=False)
            bar.update(1)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def run(args: argparse.Namespace) -> int:
    from ..strategies import load_rules

    if args.dask:  # before anything is read or made
        check_scheduler_reachable(args.dask)
    cohort = load_cohort_from_args(args)
    rules = load_rules(args.strategy_rules)
    config = config_from_args(args)
    if args.export_top < 0 or args.permutations < 0 or args.study_permutations < 0 or args.study_stop_after < 1:
        raise SIRTInputError("--export-top, --permutations and --study-permutations must be >= 0, --study-stop-after >= 1")
    inputs = [p for p in (args.features, args.labels, args.strategy_rules, args.extraction_settings) if p is not None]
    if args.export_best is not None:  # only the model's two files are ever replaced there
        check_outputs(args.export_best, MODEL_FILES, inputs, args.overwrite)
    check_output_dir(args.output, "study folder")
    bars = _ProgressBars(args.study_permutations)
    summary = run_train(
        cohort,
        rules,
        rules.select(comma_list(args.strategies)),
        config,
        args.output,
        inputs=inputs,
        permutations=args.permutations,
        study_permutations=args.study_permutations,
        stop_after=args.study_stop_after,
        export_top=args.export_top,
        export_models=args.export_model,
        export_best=args.export_best,
        extraction_settings=_extraction_settings(args),
        n_jobs=args.jobs,
        dask_address=args.dask,
        overwrite=args.overwrite,
        progress=bars.models,
        null_progress=bars.null,
        announce=lambda line: print(line, file=sys.stderr, flush=True),
    )
    bars.close()
    best = summary["best_model"]
    print(f"{summary['n_models']} models ({summary['n_computed']} computed, {summary['n_reused']} reused, {summary['n_failed']} failed)")
    print(f"best: {best['id']}  AUC {best['auc']:.3f} [{best['auc_ci_low']:.3f}, {best['auc_ci_high']:.3f}]  accuracy {best['accuracy']:.3f}")
    if summary.get("study_level"):
        study = summary["study_level"]
        print(
            f"best of {study['n_models']} models under permuted labels ({study['n_permutations']} permutations, {study['null_seconds']:.0f} s): mean {study['null_best_auc_mean']:.3f}, "
            f"95th percentile {study['null_best_auc_q95']:.3f}; study-level p = {study['p_value']:.4g}"
        )
        print(f"selection-aware AUC of the chosen model (BBC-CV): {study['selection_aware_auc']:.3f} [{study['selection_aware_ci_low']:.3f}, {study['selection_aware_ci_high']:.3f}]")
    if summary.get("permutation"):
        perm = summary["permutation"]
        print(f"permuted labels: mean AUC {perm['null_mean']:.3f} (95% of runs in [{perm['null_low']:.3f}, {perm['null_high']:.3f}]), p = {perm['p_value']:.3f}")
    print(f"wrote {args.output}")
    return 0


def run_train(
    cohort,
    rules,
    strategies: list[str],
    config,
    output: Path,
    *,
    inputs: list[Path] = (),
    permutations: int = 20,
    study_permutations: int = DEFAULT_PERMUTATIONS,
    stop_after: int = DEFAULT_STOP_AFTER,
    export_top: int = 1,
    export_models: list[str] = (),
    export_best: Path | None = None,
    extraction_settings: dict | None = None,
    n_jobs: int = 1,
    dask_address: str | None = None,
    overwrite: bool = False,
    progress=None,
    null_progress=None,
    announce=None,
) -> dict:
    """Run or resume the study in ``output`` and write everything; returns the summary written.

    ``announce(line)`` is given the study-level null's time estimate before the null starts."""
    import numpy as np
    from SIRTDosimetryLib.io.writers import commit_outputs, write_json
    from SIRTDosimetryLib.provenance import provenance

    from .. import report
    from ..best_of_many import format_null_estimate, null_cost_estimate, selection_aware_auc, study_level_summary
    from ..metrics import METRICS
    from ..model_io import export_study_model
    from ..study import delong_matrix, permutation_check, rerun_seconds_estimate, run_study, study_null

    output = Path(output)
    result = run_study(cohort, rules, strategies, config, output, n_jobs=n_jobs, dask_address=dask_address, overwrite=overwrite, progress=progress)
    table = result.table
    unknown = [m for m in export_models if m not in result.outcomes or result.outcomes[m].status != "ok"]
    if unknown:
        raise SIRTInputError(f"cannot export {unknown}: not a fitted model of this study (see results.csv)")
    best = result.best()
    ok = table[table["status"] == "ok"]
    top_ids = list(ok["model_id"][:TOP_N_PLOTTED])
    y = cohort.y
    writers = {
        "results.csv": lambda p: table.to_csv(p, index=False),
        "strategies.json": partial(write_json, {"columns": result.columns, "skipped": result.skipped, "unused": result.unused, "rules": rules.to_dict()}),
        "delong_top.csv": lambda p: delong_matrix(result.outcomes, y, list(ok["model_id"][:TOP_N_DELONG])).to_csv(p),
        "roc_best.png": partial(report.plot_rocs, {i: (y, result.outcomes[i].scores, float(ok.set_index("model_id").loc[i, "auc"])) for i in top_ids}, title="Best models (pooled out-of-fold)"),
        "confusion_best.png": partial(report.plot_confusions, {i: (y, result.outcomes[i].scores) for i in top_ids[:3]}),
    }
    for metric in METRICS:
        writers[f"heatmap_{metric}.png"] = partial(report.plot_heatmap, table, metric)
    if study_permutations:
        scores = np.array([result.outcomes[i].scores for i in ok["model_id"]])
        groups = cohort.groups if cohort.grouped else None
        estimate = null_cost_estimate(rerun_seconds_estimate(result, n_jobs, dask_address), study_permutations, stop_after)
        if announce is not None:
            announce(format_null_estimate(estimate))
        null = study_null(cohort, result, output, max_permutations=study_permutations, stop_after=stop_after, n_jobs=n_jobs, dask_address=dask_address, progress=null_progress)
        interval = selection_aware_auc(scores, y, groups, config.n_bootstrap, config.ci_level, config.seed)
        result.study_level = {**study_level_summary(null, interval), "null_cost_estimate": estimate}
        writers["study_null.json"] = partial(write_json, {**result.study_level, "null_best_aucs": null.null_best_aucs.tolist()})
        writers["study_null.png"] = partial(
            report.plot_permutation, null.null_best_aucs, null.observed_best_auc, title=f"Best AUC of {null.n_models} models under permuted labels", label="best of all models, permuted labels"
        )
    permutation = None
    if permutations:
        observed = float(ok.iloc[0]["auc"])
        check = permutation_check(best, cohort, result.columns[best.strategy], config, observed, permutations, n_jobs=n_jobs, dask_address=dask_address)
        low, high = check.null_interval
        permutation = {"model_id": check.model_id, "observed_auc": observed, "null_aucs": check.null_aucs, "null_mean": check.null_mean, "null_low": low, "null_high": high, "p_value": check.p_value}
        writers["permutation.json"] = partial(write_json, permutation)
        writers["permutation.png"] = partial(report.plot_permutation, check.null_aucs, observed, title=f"Label permutations: {check.model_id}")
    best_row = ok.iloc[0]
    summary = {
        "provenance": provenance({f"input_{i}": p for i, p in enumerate(inputs)}, {"study": config, "strategies": strategies}),
        "cohort": cohort.summary(),
        "n_models": len(table),
        "n_computed": result.n_computed,
        "n_reused": result.n_reused,
        "n_failed": int((table["status"] != "ok").sum()),
        "seconds": result.seconds,
        "seconds_per_model_mean": float(table["seconds"].mean()),
        "skipped_strategies": result.skipped,
        "best_model": {"id": best.id, **{k: float(best_row[k]) for k in report.metric_columns()}},
        "study_level": result.study_level,
        "permutation": permutation,
        "exported": [],
    }
    exported = []
    for model_id in dict.fromkeys([*ok["model_id"][:export_top], *export_models]):
        folder = output / "exported" / file_stem(model_id)
        export_study_model(folder, result, model_id, cohort, extraction_settings, overwrite=True)
        exported.append(str(folder))
    if export_best is not None:
        source = output / "exported" / file_stem(best.id)
        if not source.exists():
            export_study_model(source, result, best.id, cohort, extraction_settings, overwrite=True)
        # Only model.skops and model_card.json are written (or, with overwrite, replaced) in export_best:
        # anything else in that folder is the user's and stays.
        copy = {name: partial(shutil.copyfile, source / name) for name in MODEL_FILES}
        commit_outputs(export_best, copy, inputs=inputs, overwrite=overwrite)
        exported.append(str(export_best))
    summary["exported"] = exported
    writers["summary.json"] = partial(write_json, summary)
    writers["report.html"] = lambda p: p.write_text(_study_html(result, cohort, summary, permutation is not None), encoding="utf-8")
    commit_outputs(output, writers, inputs=inputs, overwrite=True)
    return summary


def _count(n: int, stem: str, one: str = "", many: str = "s") -> str:
    return f"{n} {stem}{one if n == 1 else many}"


def _cohort_sentence(cohort: dict) -> str:
    """"30 patients, 15 responders / 15 non-responders (mRECIST: CR 7, PR 8, SD 8, PD 7), 60 features";
    per-lesion data: "84 lesions (30 patients), ..."."""
    rows = _count(cohort["n_rows"], cohort["unit"])
    if cohort["unit"] != "patient":
        rows += f" ({_count(cohort['n_patients'], 'patient')})"
    categories = ", ".join(f"{k} {v}" for k, v in cohort["categories"].items())
    return (f"{rows}, {cohort['n_responders']} responders / {cohort['n_non_responders']} non-responders "
            f"({cohort['criterion']}: {categories}), {cohort['n_features']} features.")


def _study_html(result, cohort, summary: dict, with_permutation: bool) -> str:
    from .. import report

    table = result.table
    shown = ["model_id", *report.metric_columns(), "delong_p_vs_best", "n_inputs", "seconds"]
    sections = [
        ("Cohort", f"<p>{_cohort_sentence(cohort.summary())}</p>"),
        (
            "Study",
            f"<p>{summary['n_models']} models: {_count(len(result.columns), 'strateg', 'y', 'ies')} × "
            f"{_count(len(result.config.selectors), 'selector')} × {_count(len(result.config.classifiers), 'classifier')}; "
            f"{result.config.outer_folds}-fold nested cross-validation "
            f"({result.config.inner_folds}-fold inner grid search), pooled out-of-fold predictions, "
            f"{result.config.n_bootstrap} bootstrap samples for the {result.config.ci_level:.0%} intervals. "
            f"{summary['n_failed']} model(s) failed (see results.csv).</p>"
            + (f"<p>Strategies left out: {', '.join(f'{k} ({v})' for k, v in result.skipped.items())}</p>" if result.skipped else ""),
        ),
        ("Best models", report.format_table(report.intervals_table(table[shown].head(20), result.config.ci_level)) + report.image("roc_best.png") + report.image("confusion_best.png")),
    ]
    if summary.get("study_level"):
        study = summary["study_level"]
        sections.append(
            (
                f"Best of {study['n_models']} models: what chance gives",
                f"<p>The best model's cross-validated AUC is {study['observed_best_auc']:.3f}. With the labels permuted "
                f"{study['n_permutations']} times and the whole search of all {study['n_models']} models rerun on each, the best "
                f"AUC reached a mean of {study['null_best_auc_mean']:.3f} (95th percentile {study['null_best_auc_q95']:.3f}, 99th "
                f"{study['null_best_auc_q99']:.3f}): <b>study-level p = {study['p_value']:.4g}</b>. Selection-aware AUC of the chosen "
                f"model (bootstrap bias-corrected cross-validation, {study['selection_aware_bootstrap_used']} bootstrap samples): "
                f"<b>{study['selection_aware_auc']:.3f}</b>, {study['selection_aware_ci_level']:.0%} interval "
                f"[{study['selection_aware_ci_low']:.3f}, {study['selection_aware_ci_high']:.3f}]. Read these, not the best row alone.</p>"
                + report.image("study_null.png")
            )
        )
    if with_permutation:
        perm = summary["permutation"]
        sections.append(
            (
                "The chosen model under permuted labels",
                f"<p>The best model's whole pipeline rerun on {len(perm['null_aucs'])} label permutations: mean AUC "
                f"{perm['null_mean']:.3f}, 95% of runs in [{perm['null_low']:.3f}, {perm['null_high']:.3f}]; permutation p = "
                f"{perm['p_value']:.3f}. This p-value does not account for picking the best of {summary['n_models']} models; "
                "the best of many models on noise alone can reach far above 0.5.</p>" + report.image("permutation.png"),
            )
        )
    sections.append(("Columns", _columns_html(result)))
    sections.append(("Heat maps", "".join(report.image(f"heatmap_{m}.png") for m in ("auc", "accuracy", "sensitivity", "specificity"))))
    sections.append(("Exported models", "<ul>" + "".join(f"<li>{p}</li>" for p in summary["exported"]) + "</ul>"))
    return report.html_page("SIRT response model study", sections)


def _columns_html(result) -> str:
    """Which strategy uses how many columns, and every column no strategy uses, with the reason."""
    import html

    used = "".join(f"<li>{html.escape(k)}: {len(v)} columns</li>" for k, v in result.columns.items())
    by_reason: dict[str, list[str]] = {}
    for column, reason in result.unused.items():
        by_reason.setdefault(reason, []).append(column)
    unused = "".join(
        f"<li>{len(columns)} column(s): {html.escape(reason)}<details><summary>list</summary>{html.escape(', '.join(columns))}</details></li>"
        for reason, columns in by_reason.items()
    )
    return f"<p>Strategies run:</p><ul>{used}</ul><p>Columns no strategy of this study uses (also in strategies.json):</p><ul>{unused or '<li>none</li>'}</ul>"
