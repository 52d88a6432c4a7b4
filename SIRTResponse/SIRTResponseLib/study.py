"""The study: strategies × selectors × classifiers, each evaluated by nested cross-validation.

For one model (strategy, selector, classifier), :func:`run_model`:

1. splits the rows into ``outer_folds`` (3) stratified folds — ``StratifiedGroupKFold`` by patient
   when rows are lesions — shuffled with ``seed``;
2. on each outer training part, searches the classifier's grid (:mod:`.models`) with an inner
   stratified ``inner_folds``-fold split (3, lowered to the training minority count when that is
   smaller; by patient for lesions), scoring ROC AUC, and refits the best pipeline on the whole
   training part — every preprocessing step, feature selection and SMOTE included, is fitted here
   and nowhere else;
3. predicts the outer test part; the out-of-fold probabilities of all parts are pooled.

The models of one (strategy, selector) run together (:func:`run_model_group`): the steps before the
classifier are fitted once per split and shared by every classifier and grid point
(:mod:`.nested_cv`), and memoised in ``<folder>/cache``.

:func:`run_study` runs every model of the study in parallel — local processes or a Dask cluster,
through the shared engine of ``SIRTDosimetryLib.parallel`` — and saves each model's out-of-fold
predictions to ``<folder>/models/<model id>.json`` (its result store) as soon as it finishes.
Rerunning the same study in the same folder reuses the saved models, so an interrupted study
resumes where it stopped; a folder that holds a study with other settings or another cohort is
refused. Metrics with bootstrap intervals and DeLong tests are computed afterwards from the saved
predictions (:func:`results_table`).
"""

from __future__ import annotations

import json
import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Memory
from sklearn.model_selection import GridSearchCV
from threadpoolctl import threadpool_limits

from SIRTDosimetryLib.errors import SIRTInputError
from SIRTDosimetryLib.parallel import ResultStore, map_unordered, task_key, worker_count, write_json_atomic
from SIRTDosimetryLib.provenance import to_jsonable

from .best_of_many import DEFAULT_PERMUTATIONS, DEFAULT_STOP_AFTER, StudyNull, permuted_labels, sequential_done
from .features import SELECTORS
from .labels import Cohort
from .metrics import METRICS, auc_score, bootstrap_metrics, delong_test
from .models import CLASSIFIERS, build_pipeline, param_grid
from .nested_cv import inner_splits, nested_cv_group
from .strategies import StrategyRules

STUDY_FILE = "study.json"
MODELS_DIR = "models"
CACHE_DIR = "cache"
NULL_DIR = "null"
NULL_SEED_OFFSET = 7919  # the study-level null's permutations are drawn from their own stream
MODEL_SCHEMA = "slicer-sirt/response-model/1"
NULL_SCHEMA = "slicer-sirt/response-null/1"


@dataclass(frozen=True)
class StudyConfig:
    """What is searched and how. Only the fields in :meth:`settings` change a model's predictions."""

    selectors: tuple[str, ...] = SELECTORS
    classifiers: tuple[str, ...] = CLASSIFIERS
    n_features: tuple[int, ...] = (5,)
    outer_folds: int = 3
    inner_folds: int = 3
    seed: int = 0
    redundancy_threshold: float = 0.90
    smote: bool = True
    smote_k: int = 5
    n_bootstrap: int = 1000
    ci_level: float = 0.95

    def __post_init__(self) -> None:
        unknown = [s for s in self.selectors if s not in SELECTORS] + [c for c in self.classifiers if c not in CLASSIFIERS]
        if unknown:
            raise SIRTInputError(f"unknown selector/classifier {unknown}; selectors: {', '.join(SELECTORS)}; classifiers: {', '.join(CLASSIFIERS)}")
        if not self.selectors or not self.classifiers or not self.n_features or min(self.n_features) < 1:
            raise SIRTInputError("a study needs at least one selector, one classifier and a number of features >= 1")
        if self.outer_folds < 2 or self.inner_folds < 2:
            raise SIRTInputError("outer and inner cross-validation need at least 2 folds")
        if not 0 < self.redundancy_threshold <= 1:
            raise SIRTInputError("the redundancy threshold is a |Spearman rho| in (0, 1]")
        if self.n_bootstrap < 1 or not 0 < self.ci_level < 1:
            raise SIRTInputError("n_bootstrap must be >= 1 and the CI level in (0, 1)")

    def settings(self) -> dict:
        keys = ("n_features", "outer_folds", "inner_folds", "seed", "redundancy_threshold", "smote", "smote_k")
        return {k: to_jsonable(getattr(self, k)) for k in keys}


@dataclass(frozen=True)
class ModelSpec:
    strategy: str
    selector: str
    classifier: str

    @property
    def id(self) -> str:
        return f"{self.strategy}__{self.selector}__{self.classifier}"


@dataclass
class ModelOutcome:
    """Out-of-fold predictions of one model and what each outer fold chose."""

    strategy: str
    selector: str
    classifier: str
    status: str  # "ok" or "failed"
    scores: list[float] = field(default_factory=list)  # probability of response, in cohort row order
    folds: list[int] = field(default_factory=list)
    best_params: list[dict] = field(default_factory=list)
    selected_features: list[list[str]] = field(default_factory=list)
    n_inputs: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # CPU time of the worker process: seconds on an otherwise idle core
    n_warnings: int = 0
    error: str = ""
    fingerprint: str = ""

    @property
    def spec(self) -> ModelSpec:
        return ModelSpec(self.strategy, self.selector, self.classifier)

    @property
    def id(self) -> str:
        return self.spec.id


# --- one model ---------------------------------------------------------------------------------


def fit_model(selector: str, classifier: str, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None, config: StudyConfig, seed: int):
    """Grid-search one pipeline with an inner CV on these rows and refit the best; returns (pipeline, params)."""
    pipeline = build_pipeline(
        selector,
        classifier,
        n_features=config.n_features[0],
        redundancy_threshold=config.redundancy_threshold,
        smote=config.smote,
        smote_k=config.smote_k,
        seed=config.seed,
    )
    grid = param_grid(selector, classifier, config.n_features)
    if not grid:
        return pipeline.fit(X, y), {}
    search = GridSearchCV(pipeline, grid, cv=inner_splits(config, y, groups, seed), scoring="roc_auc", refit=True, n_jobs=1, error_score="raise")
    search.fit(X, y)
    return search.best_estimator_, to_jsonable(search.best_params_)


def run_model_group(
    strategy: str,
    selector: str,
    classifiers: tuple[str, ...],
    X: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray | None,
    feature_names: list[str],
    config: StudyConfig,
    cache_dir: str | Path | None = None,
) -> list[ModelOutcome]:
    """Nested cross-validation of one strategy and selector with every classifier; never raises
    for a failing model (status "failed"). The shared steps' time is spread over the models."""
    memory = Memory(str(cache_dir), verbose=0) if cache_dir is not None else None
    results, shared_seconds, shared_cpu_seconds = nested_cv_group(selector, tuple(classifiers), X, y, groups, config, memory)
    outcomes = []
    for classifier, result in results.items():
        outcome = ModelOutcome(strategy, selector, classifier, status="ok", n_inputs=X.shape[1])
        outcome.seconds = result.seconds + shared_seconds / len(results)
        outcome.cpu_seconds = result.cpu_seconds + shared_cpu_seconds / len(results)
        outcome.n_warnings = result.n_warnings
        if not result.error and not np.all(np.isfinite(result.scores)):
            result.error = "ValueError: the model predicted non-finite probabilities"
        if result.error:
            outcome.status, outcome.error = "failed", result.error
        else:
            outcome.scores = [float(v) for v in result.scores]
            outcome.folds = [int(f) for f in result.folds]
            outcome.best_params = [to_jsonable(p) for p in result.best_params]
            outcome.selected_features = [[feature_names[i] for i in columns] for columns in result.selected_columns]
        outcomes.append(outcome)
    return outcomes


def run_model(spec: ModelSpec, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None, feature_names: list[str], config: StudyConfig) -> ModelOutcome:
    """Nested cross-validation of one model; never raises for a failing model (status "failed")."""
    return run_model_group(spec.strategy, spec.selector, (spec.classifier,), X, y, groups, feature_names, config)[0]


# --- the study ---------------------------------------------------------------------------------


def check_cohort(cohort: Cohort, config: StudyConfig) -> None:
    """Each class needs at least ``outer_folds`` members (patients, for per-lesion data) and 3 in all."""
    for label, name in ((1, "responders"), (0, "non-responders")):
        members = cohort.y == label
        count = len(np.unique(cohort.groups[members])) if cohort.grouped else int(members.sum())
        if count < max(config.outer_folds, 3):
            raise SIRTInputError(f"the cohort has {count} {name}; {config.outer_folds}-fold nested cross-validation needs at least {max(config.outer_folds, 3)}")


def task_fingerprint(spec: ModelSpec, cohort: Cohort, columns: list[str], config: StudyConfig) -> str:
    """SHA-256 of everything that determines one model's predictions."""
    return task_key(
        {"spec": asdict(spec), "settings": config.settings(), "columns": columns, "rows": cohort.row_ids},
        np.ascontiguousarray(cohort.features[columns].to_numpy(dtype=float)).tobytes(),
        cohort.y.astype(np.int64).tobytes(),
        "\0".join(map(str, cohort.groups)).encode(),
    )


def _saved_outcome(store: ResultStore, spec: ModelSpec, fingerprint: str) -> ModelOutcome | None:
    saved = store.load(spec.id, fingerprint)
    try:
        return ModelOutcome(**saved) if isinstance(saved, dict) else None
    except TypeError:
        return None


def _prepare_folder(folder: Path, cohort: Cohort, config: StudyConfig, overwrite: bool) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    header = {"settings": config.settings(), "rows": cohort.row_ids, "labels": cohort.y.tolist()}
    study_file = folder / STUDY_FILE
    if study_file.exists():
        try:
            existing = json.loads(study_file.read_text(encoding="utf-8"))
        except ValueError:
            existing = None
        if existing != header:
            if not overwrite:
                raise SIRTInputError(f"{folder} holds a study with other settings or another cohort; choose another folder or pass --overwrite")
            shutil.rmtree(folder / MODELS_DIR, ignore_errors=True)
            shutil.rmtree(folder / CACHE_DIR, ignore_errors=True)
            shutil.rmtree(folder / NULL_DIR, ignore_errors=True)
    (folder / MODELS_DIR).mkdir(exist_ok=True)
    write_json_atomic(study_file, header)


@dataclass
class StudyResult:
    config: StudyConfig
    columns: dict[str, list[str]]  # strategy → input columns
    skipped: dict[str, str]  # strategy → why it was left out
    unused: dict[str, str]  # column of the table that no strategy of the study uses → why
    outcomes: dict[str, ModelOutcome]
    table: pd.DataFrame
    n_computed: int
    n_reused: int
    seconds: float
    study_level: dict | None = None  # best-of-many statistics (:mod:`.best_of_many`), set by the caller

    def best(self) -> ModelOutcome:
        ok = self.table[self.table["status"] == "ok"]
        if ok.empty:
            raise SIRTInputError("no model of the study could be fitted; see the error column of the results")
        return self.outcomes[ok.iloc[0]["model_id"]]


def run_study(
    cohort: Cohort,
    rules: StrategyRules,
    strategies: list[str],
    config: StudyConfig,
    folder: str | Path,
    *,
    n_jobs: int = 1,
    dask_address: str | None = None,
    overwrite: bool = False,
    progress: Callable[[ModelOutcome | None, int, int], None] | None = None,
) -> StudyResult:
    """Run (or resume) every model of the study and tabulate the results.

    ``progress(outcome, models done, models to compute)`` is called once before the first model
    (``outcome`` None, 0 done) and after each model."""
    start = time.perf_counter()
    folder = Path(folder)
    check_cohort(cohort, config)
    columns, skipped = rules.resolve(strategies, list(cohort.features.columns))
    if not columns:
        raise SIRTInputError("no strategy has columns in the feature table: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()))
    _prepare_folder(folder, cohort, config, overwrite)
    groups = cohort.groups if cohort.grouped else None
    specs = [ModelSpec(s, sel, clf) for s in columns for sel in config.selectors for clf in config.classifiers]
    outcomes: dict[str, ModelOutcome] = {}
    fingerprints = {spec.id: task_fingerprint(spec, cohort, columns[spec.strategy], config) for spec in specs}
    store = ResultStore(folder / MODELS_DIR, MODEL_SCHEMA)
    for spec in specs:
        saved = _saved_outcome(store, spec, fingerprints[spec.id])
        if saved is not None:
            outcomes[spec.id] = saved
    todo = [spec for spec in specs if spec.id not in outcomes]
    n_reused = len(outcomes)
    matrices = {s: cohort.features[c].to_numpy(dtype=float) for s, c in columns.items()}
    tasks: dict[tuple[str, str], list[str]] = {}
    for spec in todo:
        tasks.setdefault((spec.strategy, spec.selector), []).append(spec.classifier)
    cache = folder / CACHE_DIR
    calls = [
        (strategy, selector, tuple(classifiers), matrices[strategy], cohort.y, groups, columns[strategy], config, cache)
        for (strategy, selector), classifiers in tasks.items()
    ]
    done = 0
    if progress is not None:
        progress(None, 0, len(todo))
    for group in map_unordered(run_model_group, calls, n_jobs, dask_address):
        for outcome in group:
            done += 1
            outcome.fingerprint = fingerprints[outcome.id]
            store.save(outcome.id, outcome.fingerprint, outcome)
            outcomes[outcome.id] = outcome
            if progress is not None:
                progress(outcome, done, len(todo))
    ordered = {spec.id: outcomes[spec.id] for spec in specs}
    table = results_table(ordered, cohort, config)
    available = [*cohort.features.columns, *cohort.bookkeeping]
    return StudyResult(config, columns, skipped, rules.unused(available, columns), ordered, table, len(todo), n_reused, time.perf_counter() - start)


# --- results -----------------------------------------------------------------------------------


def results_table(outcomes: dict[str, ModelOutcome], cohort: Cohort, config: StudyConfig) -> pd.DataFrame:
    """One row per model: metrics of the pooled out-of-fold predictions with bootstrap CIs.

    Columns: ``model_id, strategy, selector, classifier, status, n_inputs``, then for each of
    ``auc, accuracy, sensitivity, specificity`` the value and ``<metric>_ci_low/_ci_high``,
    ``delong_p_vs_best`` (DeLong test against the best model), ``seconds, n_warnings, error``.
    Sorted by AUC, then accuracy (failed models last). Every model is bootstrapped with the same
    draws (same seed), so intervals are comparable.
    """
    groups = cohort.groups if cohort.grouped else None
    rows = []
    for outcome in outcomes.values():
        row = {
            "model_id": outcome.id,
            "strategy": outcome.strategy,
            "selector": outcome.selector,
            "classifier": outcome.classifier,
            "status": outcome.status,
            "n_inputs": outcome.n_inputs,
        }
        if outcome.status == "ok":
            estimates = bootstrap_metrics(cohort.y, outcome.scores, config.n_bootstrap, config.seed, config.ci_level, groups=groups)
            for name in METRICS:
                row |= {name: estimates[name].value, f"{name}_ci_low": estimates[name].ci_low, f"{name}_ci_high": estimates[name].ci_high}
        else:
            row |= {f"{name}{suffix}": np.nan for name in METRICS for suffix in ("", "_ci_low", "_ci_high")}
        row |= {"seconds": outcome.seconds, "n_warnings": outcome.n_warnings, "error": outcome.error}
        rows.append(row)
    table = pd.DataFrame(rows)
    table = table.sort_values(["auc", "accuracy"], ascending=False, na_position="last", kind="stable").reset_index(drop=True)
    table.insert(table.columns.get_loc("seconds"), "delong_p_vs_best", np.nan)
    ok = table["status"] == "ok"
    if ok.any():
        best = outcomes[table.loc[ok.idxmax(), "model_id"]]
        table.loc[ok, "delong_p_vs_best"] = [
            delong_test(cohort.y, best.scores, outcomes[i].scores).p_value for i in table.loc[ok, "model_id"]
        ]
    return table


def delong_matrix(outcomes: dict[str, ModelOutcome], y: np.ndarray, model_ids: list[str]) -> pd.DataFrame:
    """Two-sided DeLong p-values between every pair of the given models."""
    matrix = pd.DataFrame(1.0, index=model_ids, columns=model_ids)
    for i, a in enumerate(model_ids):
        for b in model_ids[i + 1 :]:
            matrix.loc[a, b] = matrix.loc[b, a] = delong_test(y, outcomes[a].scores, outcomes[b].scores).p_value
    return matrix


@dataclass(frozen=True)
class PermutationCheck:
    """AUCs of one model refitted on label permutations: what chance gives on this cohort."""

    model_id: str
    observed_auc: float
    null_aucs: list[float]
    p_value: float  # (1 + #{null >= observed}) / (1 + permutations)

    @property
    def null_mean(self) -> float:
        return float(np.mean(self.null_aucs))

    @property
    def null_interval(self) -> tuple[float, float]:
        low, high = np.quantile(self.null_aucs, [0.025, 0.975])
        return float(low), float(high)


def permutation_check(
    outcome: ModelOutcome,
    cohort: Cohort,
    columns: list[str],
    config: StudyConfig,
    observed_auc: float,
    n_permutations: int = 20,
    *,
    n_jobs: int = 1,
    dask_address: str | None = None,
) -> PermutationCheck:
    """Nested CV of the same model with permuted labels (the whole pipeline, selection included).

    Labels are permuted across rows (per-lesion data: whole patients' label vectors between
    patients with as many lesions, :func:`.best_of_many.permuted_labels`).
    The p-value does not account for having picked the best of many models; the null AUCs of
    the best model show what chance alone gives.
    """
    rng = np.random.default_rng(config.seed + 12345)
    X = cohort.features[columns].to_numpy(dtype=float)
    groups = cohort.groups if cohort.grouped else None
    calls = [(outcome.spec, X, permuted_labels(cohort.y, groups, 1, rng)[:, 0], groups, columns, config) for _ in range(n_permutations)]
    null = [a for a in map_unordered(_permuted_auc, calls, n_jobs, dask_address) if np.isfinite(a)]
    if not null:
        raise SIRTInputError(f"the permutation check of {outcome.id} failed on every permutation")
    p_value = (1 + sum(a >= observed_auc for a in null)) / (1 + len(null))
    return PermutationCheck(outcome.id, observed_auc, null, float(p_value))


def _permuted_auc(spec: ModelSpec, X: np.ndarray, y: np.ndarray, groups, columns: list[str], config: StudyConfig) -> float:
    outcome = run_model(spec, X, y, groups, columns, config)
    return auc_score(y, outcome.scores) if outcome.status == "ok" else float("nan")


def rerun_seconds_estimate(result: StudyResult, n_jobs: int = 1, dask_address: str | None = None) -> float:
    """Wall seconds that one rerun of the whole search (one step of :func:`study_null`) should take.

    The study's own wall time when it computed every model; for a resumed study, the compute
    seconds saved with every model spread over the local workers (on Dask, whose worker count is
    not known here, the compute seconds themselves: an upper bound).
    """
    if result.n_reused == 0:
        return result.seconds
    compute = float(sum(o.seconds for o in result.outcomes.values()))
    return compute if dask_address else compute / worker_count(n_jobs)


def study_null(
    cohort: Cohort,
    result: StudyResult,
    folder: str | Path,
    *,
    max_permutations: int = DEFAULT_PERMUTATIONS,
    stop_after: int = DEFAULT_STOP_AFTER,
    n_jobs: int = 1,
    dask_address: str | None = None,
    progress: Callable[[int, float | None], None] | None = None,
) -> StudyNull:
    """Rerun every model of ``result`` on permuted labels until the sequential p-value is settled.

    Each rerun is the whole search (nested CV and all); its best AUC is one draw of the null of the
    study's best (:mod:`.best_of_many`). Permutations are drawn from the study seed, and each
    rerun's best is saved to ``<folder>/null/permutation_<n>.json`` so an interrupted null resumes.
    ``progress(permutations done, best AUC of the last)`` is called before the first and after each.
    """
    start = time.perf_counter()
    ok = result.table[result.table["status"] == "ok"]
    if ok.empty:
        raise SIRTInputError("no model of the study could be fitted; there is no best model to test")
    observed = float(ok["auc"].iloc[0])
    groups = cohort.groups if cohort.grouped else None
    tasks: dict[tuple[str, str], list[str]] = {}
    for outcome in result.outcomes.values():
        tasks.setdefault((outcome.strategy, outcome.selector), []).append(outcome.classifier)
    matrices = {s: cohort.features[c].to_numpy(dtype=float) for s, c in result.columns.items()}
    models = sorted(o.fingerprint or o.id for o in result.outcomes.values())
    store = ResultStore(Path(folder) / NULL_DIR, NULL_SCHEMA)
    rng = np.random.default_rng(result.config.seed + NULL_SEED_OFFSET)
    null_best: list[float] = []
    if progress is not None:
        progress(0, None)
    while not sequential_done(null_best, observed, stop_after, max_permutations):
        y = permuted_labels(cohort.y, groups, 1, rng)[:, 0]
        name, key = f"permutation_{len(null_best):04d}", task_key({"models": models, "labels": y.tolist()})
        saved = store.load(name, key)
        if isinstance(saved, dict) and "best_auc" in saved:
            best = float(saved["best_auc"])
        else:
            calls = [
                (strategy, selector, tuple(classifiers), matrices[strategy], y, groups, result.columns[strategy], result.config)
                for (strategy, selector), classifiers in tasks.items()
            ]
            aucs = [auc_score(y, o.scores) for group in map_unordered(run_model_group, calls, n_jobs, dask_address) for o in group if o.status == "ok"]
            if not aucs:
                raise SIRTInputError("no model could be fitted on permuted labels; the study-level null cannot be computed")
            best = float(np.nanmax(aucs))
            store.save(name, key, {"best_auc": best, "n_models": len(aucs)})
        null_best.append(best)
        if progress is not None:
            progress(len(null_best), best)
    return StudyNull(len(ok), observed, np.array(null_best), max_permutations, stop_after, time.perf_counter() - start)


def refit(spec: ModelSpec, cohort: Cohort, columns: list[str], config: StudyConfig):
    """The model refitted on the whole cohort: hyper-parameters chosen by the inner CV on all rows.

    Returns ``(pipeline, hyper-parameters)``. Its performance is the study's cross-validated
    estimate, not anything measured on this fit.
    """
    X = cohort.features[columns].to_numpy(dtype=float)
    groups = cohort.groups if cohort.grouped else None
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore")
        return fit_model(spec.selector, spec.classifier, X, cohort.y, groups, config, config.seed)


def cv_metrics(table: pd.DataFrame, model_id: str, config: StudyConfig, study_level: dict | None = None) -> dict:
    """The cross-validated metrics of one model with their intervals, for its model card.

    ``study_level`` (the best-of-many statistics of the study) is added with whether this model is
    the study's best, the one those numbers are about.
    """
    row = table.set_index("model_id").loc[model_id]
    metrics = {name: {"value": float(row[name]), "ci_low": float(row[f"{name}_ci_low"]), "ci_high": float(row[f"{name}_ci_high"])} for name in METRICS}
    card = {
        "validation": f"{config.outer_folds}-fold nested cross-validation ({config.inner_folds}-fold inner grid search), pooled out-of-fold predictions",
        "confidence_intervals": f"{config.ci_level:.0%} percentile bootstrap, {config.n_bootstrap} samples",
        "seed": config.seed,
        **metrics,
    }
    if study_level is not None:
        ok = table[table["status"] == "ok"]
        card["study_level"] = {**study_level, "this_model_is_the_study_best": bool(len(ok) and ok.iloc[0]["model_id"] == model_id)}
    return card
