"""Benchmark of the study's exact fast paths against the libraries' own calls. Not a test.

    python bench/bench_fast_paths.py

One call as the study's cross-validation makes it: a SMOTE-balanced training fold of the
36-patient design (48 rows × 5 features, 24 per class) and 12 evaluation rows.

- ``auc``: ``roc_auc_score`` against :func:`SIRTResponseLib.cv_fits.roc_auc` on 12 scores;
- ``svm``: ``clone(model).fit(X, y).predict_proba(X_eval)`` of the study's Platt-calibrated SVM
  against :func:`SIRTResponseLib.fast_svm.calibrated_svc_proba`, at each C of its grid;
- ``xgb``: the same for XGBoost against :func:`SIRTResponseLib.fast_xgb.xgb_predict_proba`, at
  each depth of its grid.

(The MLP has its own benchmark, ``bench/bench_fast_mlp.py``: its time depends on the iterations.)
Per case: the best of 5 ``timeit`` repeats of each, interleaved so that background load hits both
alike, single-threaded BLAS as inside the study, their ratio, and a check that the results are
bitwise equal. The machine's load average before and after is recorded.

Results go to ``bench/results/fast_paths.json``; a markdown table is printed.
"""

from __future__ import annotations

import json
import os
import platform
import timeit
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import scipy  # noqa: E402
import sklearn  # noqa: E402
import xgboost  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from SIRTResponseLib.cv_fits import roc_auc  # noqa: E402
from SIRTResponseLib.fast_svm import calibrated_svc_proba  # noqa: E402
from SIRTResponseLib.fast_xgb import xgb_predict_proba  # noqa: E402
from SIRTResponseLib.models import GRIDS, make_classifier  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "bench" / "results" / "fast_paths.json"
REPEATS = 5


def _ms(function, number: int) -> float:
    return timeit.timeit(function, number=number) / number * 1e3


def _compare(name: str, setting: str, library, fast, number: int) -> dict:
    equal = bool(np.array_equal(library(), fast()))
    library_ms, fast_ms = [], []
    for _ in range(REPEATS):
        library_ms.append(_ms(library, number))
        fast_ms.append(_ms(fast, number * 5))
    return {"path": name, "setting": setting, "library_ms": min(library_ms), "fast_ms": min(fast_ms),
            "speedup": min(library_ms) / min(fast_ms), "bitwise_equal": equal}


def main() -> None:
    load_before = os.getloadavg()
    rng = np.random.default_rng(0)
    X, X_eval = rng.normal(size=(48, 5)), rng.normal(size=(12, 5))
    y = rng.permutation(np.repeat([0, 1], 24))
    y_eval, scores = rng.permutation(np.repeat([0, 1], 6)), rng.random(12)
    rows = [_compare("auc", "12 scores", lambda: roc_auc_score(y_eval, scores), lambda: roc_auc(y_eval, scores), 100)]
    for C in GRIDS["svm"]["estimator__C"]:
        model = make_classifier("svm", 0).set_params(estimator__C=C)
        rows.append(_compare("svm", f"C {C}", lambda m=model: clone(m).fit(X, y).predict_proba(X_eval),
                             lambda m=model: calibrated_svc_proba(m, X, y, X_eval), 20))
    for depth in GRIDS["xgb"]["max_depth"]:
        model = make_classifier("xgb", 0).set_params(max_depth=depth)
        rows.append(_compare("xgb", f"max_depth {depth}", lambda m=model: clone(m).fit(X, y).predict_proba(X_eval),
                             lambda m=model: xgb_predict_proba(m, X, y, X_eval), 10))
    result = {
        "case": "48 rows x 5 features (24 per class), 12 evaluation rows, the study's classifiers, seed 0",
        "rows": rows,
        "speedup_per_path": {p: sum(r["library_ms"] for r in rows if r["path"] == p) / sum(r["fast_ms"] for r in rows if r["path"] == p)
                             for p in dict.fromkeys(r["path"] for r in rows)},
        "load_average_before_1_5_15_min": [round(x, 2) for x in load_before],
        "load_average_after_1_5_15_min": [round(x, 2) for x in os.getloadavg()],
        "cpu_count": os.cpu_count(),
        "versions": {"python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__,
                     "scikit-learn": sklearn.__version__, "xgboost": xgboost.__version__},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print("| path | setting | library (ms) | fast (ms) | speed-up | bitwise equal |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['path']} | {r['setting']} | {r['library_ms']:.3f} | {r['fast_ms']:.3f} | {r['speedup']:.1f}x | {r['bitwise_equal']} |")
    speedups = ", ".join(f"{p} {v:.1f}x" for p, v in result["speedup_per_path"].items())
    print(f"{speedups}; load average {result['load_average_before_1_5_15_min']} -> {result['load_average_after_1_5_15_min']}; {RESULTS}")


if __name__ == "__main__":
    main()
