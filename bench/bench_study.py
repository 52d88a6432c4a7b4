"""Benchmark of the response study (``SIRTResponseLib.study.run_study``). Not a test.

    python bench/bench_study.py --jobs 2 --patients 36 --features 1300             # the full 1440-model design
    python bench/bench_study.py --strategies 'y90_*' --reference                  # a subset, old vs new interleaved
    python bench/bench_study.py --strategies 'y90_dvh_*' --dask-workers 1,2,4     # speed-up on local Dask workers
    python bench/bench_study.py --strategies 'y90_dvh_*' --null-reruns 2          # the study-level null's cost
    python bench/bench_study.py --jobs 2 --patients 36 --features 1300 --folder NEW --same-as OLD  # vs an older commit's run

Cohort: ``SIRTResponseLib.synthetic.synthetic_cohort`` — ``--patients`` (half responders) ×
``--features`` spread over the default strategy groups (radiomics of CT/SPECT and dosiomics of
dose/BED for MAA and 90Y, dose-volume metrics, 5 clinical), correlated within each image group,
with a planted signal (1.5 SD) in two 90Y dose columns. Every strategy of the published design has
columns, so the full study is 36 x 5 x 8 = 1440 models, each a 3 x 3 nested cross-validation
with the default grids (:mod:`SIRTResponseLib.models`), SMOTE, 5 selected features.

Measured, in one run: wall time of ``run_study`` (all models, local processes, ``--jobs``; a
progress bar with ETA on stderr), the compute time of each model (its own ``perf_counter`` inside
the worker: its classifier's grid search and refits plus its share of the steps shared by the
classifiers of its strategy and selector), summarised per classifier and per selector, and the
time of the results table (1000 bootstrap samples per model plus the DeLong tests). The AUCs of
strategies with and without the planted columns show how far the best of many noise-only models
gets.

``--reference`` also runs every measured model the way the study did before the shared work
(``GridSearchCV`` over the whole pipeline per model: ``SIRTResponseLib.testing.reference_cv``),
interleaved with the new code group by group in the same process, so both see the same machine
load; the out-of-fold predictions, hyper-parameters and selected features are compared exactly.
``--dask-workers`` reruns the measured study on local Dask clusters of that many single-threaded
worker processes (a fresh folder each, so nothing is reused). ``--null-reruns N`` times N reruns
of the whole search on permuted labels: the cost of one step of the study-level null.
``--same-as OLD`` compares every model's outcome (out-of-fold probabilities, folds, chosen
hyper-parameters and features, warnings, errors) exactly with those in the study folder ``OLD``,
e.g. one written by an older commit with ``--folder``: how a speed change is shown not to change
the results table.

The machine's load average before and after is recorded: other work on a shared machine slows
every model. Each model also records its worker's CPU seconds (``process_time``);
``quiet_wall_estimate_s`` = their sum / ``--jobs`` estimates the time on an idle machine. When only a subset of strategies is run, the full-study time is extrapolated per
(selector, classifier) pair: the mean time of a pair over the measured strategies, weighted by the
number of input features (time ∝ a + b·features is fitted per pair by least squares when the subset
has strategies of at least two sizes; otherwise the plain mean is used), summed over the 36
strategies, divided by the worker count. The JSON says which was done.

Results go to ``bench/results/study.json``; a markdown table is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from SIRTResponseLib.best_of_many import DEFAULT_PERMUTATIONS, DEFAULT_STOP_AFTER, null_cost_estimate  # noqa: E402
from SIRTResponseLib.labels import build_cohort  # noqa: E402
from SIRTResponseLib.strategies import StrategyRules  # noqa: E402
from SIRTResponseLib.study import StudyConfig, rerun_seconds_estimate, results_table, run_model_group, run_study, study_null  # noqa: E402
from SIRTResponseLib.synthetic import SIGNAL_COLUMNS, synthetic_cohort  # noqa: E402
from SIRTResponseLib.testing.reference_cv import reference_nested_cv  # noqa: E402
from tqdm import tqdm  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "study.json"


def _extrapolate(per_model: pd.DataFrame, all_columns: dict[str, int], jobs: int, column: str = "seconds") -> dict:
    """Full-study compute and wall time from the measured models (see the module docstring)."""
    total = 0.0
    method = "mean per (selector, classifier)"
    for (_, _), group in per_model.groupby(["selector", "classifier"]):
        sizes = group["n_inputs"].to_numpy(dtype=float)
        seconds = group[column].to_numpy(dtype=float)
        if len(np.unique(sizes)) >= 2:
            slope, intercept = np.polyfit(sizes, seconds, 1)
            predicted = [max(intercept + slope * n, seconds.min()) for n in all_columns.values()]
            method = "linear in input features per (selector, classifier)"
        else:
            predicted = [seconds.mean()] * len(all_columns)
        total += float(np.sum(predicted))
    return {"method": method, "compute_s": total, "wall_s_estimate": total / jobs, "models": len(all_columns) * per_model.groupby(["selector", "classifier"]).ngroups}


def _progress_bar(desc: str):
    state: dict = {}

    def update(outcome, done: int, total: int) -> None:
        if "bar" not in state:
            state["bar"] = tqdm(total=total, desc=desc, unit="model", file=sys.stderr, dynamic_ncols=True)
        if outcome is None:  # the study starts
            return
        state["bar"].update(1)
        if done == total:
            state["bar"].close()

    return update


def _reference(cohort, columns: dict[str, list[str]], config: StudyConfig) -> dict:
    """New (shared work) and old (GridSearchCV per model) code on the same models, interleaved per group."""
    new_s = old_s = 0.0
    differences = []
    groups = [(s, sel) for s in columns for sel in config.selectors]
    for strategy, selector in tqdm(groups, desc="new vs reference", unit="group", file=sys.stderr):
        X = cohort.features[columns[strategy]].to_numpy(dtype=float)
        start = time.perf_counter()
        outcomes = run_model_group(strategy, selector, config.classifiers, X, cohort.y, None, columns[strategy], config)
        new_s += time.perf_counter() - start
        for outcome in outcomes:
            start = time.perf_counter()
            scores, params, selected = reference_nested_cv(selector, outcome.classifier, X, cohort.y, None, columns[strategy], config)
            old_s += time.perf_counter() - start
            if outcome.scores != scores.tolist() or outcome.best_params != params or outcome.selected_features != selected:
                differences.append(outcome.id)
    models = len(groups) * len(config.classifiers)
    return {"models": models, "new_s": new_s, "reference_s": old_s, "speed_up": old_s / new_s, "models_differing": differences}


def _dask_scaling(cohort, rules, chosen, config, workers: list[int]) -> dict:
    from distributed import LocalCluster

    out = {}
    for n in workers:
        with tempfile.TemporaryDirectory(prefix="bench-dask-") as scratch, LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
            start = time.perf_counter()
            run_study(cohort, rules, chosen, config, Path(scratch), dask_address=cluster.scheduler_address, progress=_progress_bar(f"dask x{n}"))
            out[str(n)] = {"wall_s": time.perf_counter() - start, "load_average_after": os.getloadavg()}
    base = out[str(workers[0])]["wall_s"]
    for n in workers:
        out[str(n)]["speed_up_vs_first"] = base / out[str(n)]["wall_s"]
    return out


_OUTCOME_FIELDS = ("status", "scores", "folds", "best_params", "selected_features", "n_warnings", "error")


def _same_as(previous: Path, folder: Path) -> dict:
    """Per-model comparison of this study's outcomes with those of an earlier study folder (e.g. made by an
    older commit): out-of-fold probabilities, chosen hyper-parameters and features, exactly."""
    ours = {p.name: p for p in (folder / "models").glob("*.json")}
    theirs = {p.name: p for p in (previous / "models").glob("*.json")}
    differing: dict[str, list[str]] = {}
    for name in sorted(ours.keys() & theirs.keys()):
        a = json.loads(ours[name].read_text())["result"]
        b = json.loads(theirs[name].read_text())["result"]
        for key in _OUTCOME_FIELDS:
            if a.get(key) != b.get(key):
                differing.setdefault(key, []).append(name.removesuffix(".json"))
    compared = len(ours.keys() & theirs.keys())
    return {"folder": str(previous), "models_compared": compared, "only_here": len(ours.keys() - theirs.keys()),
            "only_there": len(theirs.keys() - ours.keys()), "fields": list(_OUTCOME_FIELDS),
            "identical": compared - len({m for names in differing.values() for m in names}), "differing": differing}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=20)
    parser.add_argument("--features", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--strategies", help="comma-separated shell patterns: run a measured subset and extrapolate")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--folder", type=Path, help="study folder (default: a temporary one; give one to resume)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--selectors", help="comma-separated subset of the selectors")
    parser.add_argument("--classifiers", help="comma-separated subset of the classifiers")
    parser.add_argument("--reference", action="store_true", help="also run the measured models with the pre-sharing code, interleaved, and compare")
    parser.add_argument("--dask-workers", help="comma-separated worker counts: rerun the measured study on local Dask clusters")
    parser.add_argument("--null-reruns", type=int, default=0, help="time this many reruns of the whole search on permuted labels")
    parser.add_argument("--same-as", type=Path, help="an earlier study folder of the same design (e.g. by an older commit, with --folder): compare every model's outcome exactly")
    args = parser.parse_args()

    features, labels = synthetic_cohort(n_patients=args.patients, n_features=args.features, effect=1.5, seed=0)
    cohort = build_cohort(features, labels)
    rules = StrategyRules()
    all_columns, skipped = rules.resolve(list(rules.strategies), list(cohort.features.columns))
    chosen = rules.select(args.strategies.split(",")) if args.strategies else list(rules.strategies)
    defaults = StudyConfig()
    config = StudyConfig(
        selectors=tuple(args.selectors.split(",")) if args.selectors else defaults.selectors,
        classifiers=tuple(args.classifiers.split(",")) if args.classifiers else defaults.classifiers,
        n_bootstrap=args.bootstrap,
    )
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-study-") as scratch:
        folder = args.folder or Path(scratch) / "study"
        start = time.perf_counter()
        result = run_study(cohort, rules, chosen, config, folder, n_jobs=args.jobs, progress=_progress_bar("study"))
        wall = time.perf_counter() - start
        null = None
        if args.null_reruns:
            bar = tqdm(total=args.null_reruns, desc="null reruns", unit="rerun", file=sys.stderr)
            null = study_null(cohort, result, folder, max_permutations=args.null_reruns, stop_after=args.null_reruns + 1, n_jobs=args.jobs, progress=lambda d, b: bar.update(1 if d else 0))
            bar.close()
        same_as = _same_as(args.same_as, folder) if args.same_as else None
    load_after = os.getloadavg()
    table_start = time.perf_counter()
    results_table(result.outcomes, cohort, config)
    table_seconds = time.perf_counter() - table_start

    per_model = pd.DataFrame(
        [{"model_id": o.id, "strategy": o.strategy, "selector": o.selector, "classifier": o.classifier, "n_inputs": o.n_inputs, "seconds": o.seconds, "cpu_seconds": o.cpu_seconds, "status": o.status} for o in result.outcomes.values()]
    )
    by_classifier = per_model.groupby("classifier")[["seconds", "cpu_seconds"]].agg(["mean", "sum"]).round(3)
    by_selector = per_model.groupby("selector")[["seconds", "cpu_seconds"]].agg(["mean", "sum"]).round(3)
    best = result.table.iloc[0]
    ok = result.table[result.table["status"] == "ok"]
    planted = ok["strategy"].map(lambda s: any(c in result.columns[s] for c in SIGNAL_COLUMNS))
    auc_by_kind = {
        kind: {"models": int(len(part)), "mean": float(part.mean()), "max": float(part.max())}
        for kind, part in (("with planted columns", ok.loc[planted, "auc"]), ("noise only", ok.loc[~planted, "auc"]))
        if len(part)
    }
    report = {
        "cohort": {"patients": args.patients, "features": int(cohort.features.shape[1]), "responders": int(cohort.y.sum())},
        "machine": {"cpus": os.cpu_count(), "jobs": args.jobs, "python": platform.python_version(), "platform": platform.platform(), "load_average_before": load_before, "load_average_after": load_after},
        "strategies_run": list(result.columns),
        "strategies_skipped": skipped,
        "models_run": len(per_model),
        "models_failed": int((per_model["status"] != "ok").sum()),
        "wall_s": wall,
        "compute_s": float(per_model["seconds"].sum()),
        "compute_cpu_s": float(per_model["cpu_seconds"].sum()),
        "quiet_wall_estimate_s": float(per_model["cpu_seconds"].sum()) / args.jobs,
        "quiet_wall_estimate_method": "sum of the models' CPU seconds (process_time in the worker) / jobs: what the study takes when its workers have a core each; the CPU time still counts cache and memory-bandwidth contention, so it is an upper bound of the idle-machine time",
        "per_model_s": {"mean": float(per_model["seconds"].mean()), "median": float(per_model["seconds"].median()), "max": float(per_model["seconds"].max())},
        "wall_s_per_model": wall / max(1, len(per_model)),
        "results_table_s": table_seconds,
        "by_classifier": {k: {f"{a}_{b}": v for (a, b), v in row.items()} for k, row in by_classifier.to_dict(orient="index").items()},
        "by_selector": {k: {f"{a}_{b}": v for (a, b), v in row.items()} for k, row in by_selector.to_dict(orient="index").items()},
        "best_model": {"id": best["model_id"], "auc": float(best["auc"]), "auc_ci": [float(best["auc_ci_low"]), float(best["auc_ci_high"])]},
        "auc_by_strategy_kind": auc_by_kind,
    }
    if null is not None:
        estimate = null_cost_estimate(rerun_seconds_estimate(result, args.jobs), DEFAULT_PERMUTATIONS, DEFAULT_STOP_AFTER)
        report["study_null"] = {
            "reruns": null.n_permutations,
            "seconds": null.seconds,
            "seconds_per_rerun": null.seconds / null.n_permutations,
            "study_wall_s": wall,
            "default_design": f"{DEFAULT_STOP_AFTER} to {DEFAULT_PERMUTATIONS} reruns (sequential stop)",
            "default_seconds_min": DEFAULT_STOP_AFTER * null.seconds / null.n_permutations,
            "default_seconds_max": DEFAULT_PERMUTATIONS * null.seconds / null.n_permutations,
            "estimate_said_before": estimate,
        }
    if same_as is not None:
        report["same_as"] = same_as
    if len(result.columns) < len(all_columns):
        sizes = {s: len(c) for s, c in all_columns.items()}
        report["extrapolated_full_study"] = _extrapolate(per_model, sizes, args.jobs)
        report["extrapolated_full_study_cpu"] = _extrapolate(per_model, sizes, args.jobs, "cpu_seconds")
    args.output.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:  # after each part, so that a long run interrupted later keeps what it measured
        args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")

    save()
    if args.reference:
        report["reference"] = _reference(cohort, result.columns, config)
        report["reference"]["load_average_after"] = os.getloadavg()
        save()
    if args.dask_workers:
        report["dask"] = _dask_scaling(cohort, rules, chosen, config, [int(n) for n in args.dask_workers.split(",")])
        save()

    print("| models | wall (s) | compute (s) | mean s/model | median s/model | wall s/model | results table (s) |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {len(per_model)} | {wall:.0f} | {report['compute_s']:.0f} ({report['compute_cpu_s']:.0f} CPU) | {report['per_model_s']['mean']:.2f} | {report['per_model_s']['median']:.2f} | {report['wall_s_per_model']:.2f} | {table_seconds:.1f} |")
    print()
    print(by_classifier.to_string())
    print(by_selector.to_string())
    if "extrapolated_full_study" in report:
        e = report["extrapolated_full_study"]
        c = report["extrapolated_full_study_cpu"]
        print(f"extrapolated full study ({e['models']} models, {e['method']}): {e['compute_s']:.0f} s compute, ~{e['wall_s_estimate']:.0f} s wall on {args.jobs} workers; "
              f"{c['compute_s']:.0f} CPU s, ~{c['wall_s_estimate']:.0f} s on {args.jobs} idle cores")
    if same_as is not None:
        print(f"same as {same_as['folder']}: {same_as['identical']} of {same_as['models_compared']} models identical "
              f"({', '.join(same_as['fields'])}); differing: {same_as['differing'] or 'none'}")
    print(f"quiet 2-core estimate: {report['quiet_wall_estimate_s']:.0f} s (CPU seconds / jobs)")
    print(f"best: {report['best_model']['id']} AUC {report['best_model']['auc']:.3f}; load average {load_before[0]:.1f} -> {load_after[0]:.1f}")
    for kind, summary in auc_by_kind.items():
        print(f"AUC of {summary['models']} models {kind}: mean {summary['mean']:.3f}, max {summary['max']:.3f}")
    if "study_null" in report:
        n = report["study_null"]
        print(f"study-level null: {n['seconds_per_rerun']:.0f} s per rerun of the whole search (study: {wall:.0f} s); default {n['default_design']}: {n['default_seconds_min']:.0f} to {n['default_seconds_max']:.0f} s")
    if "reference" in report:
        r = report["reference"]
        print(f"new vs reference on {r['models']} models, interleaved: {r['new_s']:.0f} s vs {r['reference_s']:.0f} s (x{r['speed_up']:.2f}); differing models: {r['models_differing'] or 'none'}")
    for n, d in report.get("dask", {}).items():
        print(f"dask, {n} worker(s): {d['wall_s']:.0f} s wall, speed-up x{d['speed_up_vs_first']:.2f}")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
