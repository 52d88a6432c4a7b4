"""Benchmark of the study's calibrated SVM (``SIRTResponseLib.fast_svm.calibrated_svc_proba``). Not a test.

    python bench/bench_fast_svm.py

One fit-and-predict as the study makes it: 48 rows × 5 features (SMOTE-balanced, 24 per class,
as a training fold of the 36-patient design after oversampling), 12 evaluation rows, the study's
SVM (:func:`SIRTResponseLib.models.make_classifier`) at each C of its grid. Per C: the time of
``clone(model).fit(X, y).predict_proba(X_eval)`` and of ``calibrated_svc_proba`` (best of 5
``timeit`` repeats, the two interleaved so that background load hits both alike, single-threaded
BLAS as inside the study), their ratio, and a check that the probabilities are bitwise equal.
The machine's load average before and after is recorded.

Results go to ``bench/results/fast_svm.json``; a markdown table is printed.
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
from sklearn.base import clone  # noqa: E402

from SIRTResponseLib.fast_svm import calibrated_svc_proba, reproduces  # noqa: E402
from SIRTResponseLib.models import GRIDS, make_classifier  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "bench" / "results" / "fast_svm.json"
REPEATS = 5


def _best_ms(function, number: int) -> float:
    return timeit.timeit(function, number=number) / number * 1e3


def main() -> None:
    load_before = os.getloadavg()
    rng = np.random.default_rng(0)
    X, X_eval = rng.normal(size=(48, 5)), rng.normal(size=(12, 5))
    y = rng.permutation(np.repeat([0, 1], 24))
    rows = []
    for C in GRIDS["svm"]["estimator__C"]:
        model = make_classifier("svm", 0).set_params(estimator__C=C)
        assert reproduces(model)
        equal = np.array_equal(calibrated_svc_proba(model, X, y, X_eval), clone(model).fit(X, y).predict_proba(X_eval))
        sklearn_ms, fast_ms = [], []
        for _ in range(REPEATS):
            sklearn_ms.append(_best_ms(lambda model=model: clone(model).fit(X, y).predict_proba(X_eval), 20))
            fast_ms.append(_best_ms(lambda model=model: calibrated_svc_proba(model, X, y, X_eval), 200))
        rows.append({"C": C, "scikit_learn_ms": min(sklearn_ms), "fast_ms": min(fast_ms), "speedup": min(sklearn_ms) / min(fast_ms), "bitwise_equal": equal})
    result = {
        "case": "48 rows x 5 features (24 per class), 12 evaluation rows, study's SVM, seed 0",
        "rows": rows,
        "grid_speedup": sum(r["scikit_learn_ms"] for r in rows) / sum(r["fast_ms"] for r in rows),
        "load_average_before_1_5_15_min": [round(x, 2) for x in load_before],
        "load_average_after_1_5_15_min": [round(x, 2) for x in os.getloadavg()],
        "cpu_count": os.cpu_count(),
        "versions": {"python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__, "scikit-learn": sklearn.__version__},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print("| C | scikit-learn (ms) | fast_svm (ms) | speed-up | bitwise equal |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['C']} | {r['scikit_learn_ms']:.2f} | {r['fast_ms']:.3f} | {r['speedup']:.1f}x | {r['bitwise_equal']} |")
    print(f"grid total: {result['grid_speedup']:.1f}x; load average {result['load_average_before_1_5_15_min']} -> {result['load_average_after_1_5_15_min']}; {RESULTS}")


if __name__ == "__main__":
    main()
