"""Benchmark: the study's MLP fitted by ``fast_mlp.fit_mlp`` against scikit-learn's ``fit``.

On 48 rows × 5 features (the size of an outer training part after SMOTE, k = 5), for the study's
alpha grid and several seeds (data and ``random_state``): the best of ``--repeat`` timeit runs of
``clone(mlp).fit(X, y)`` and of ``fit_mlp(mlp, X, y)``, with one BLAS thread as in the study's
cross-validation. Every pair of fits is checked to be bitwise the same model first.

    python bench/bench_fast_mlp.py [--seeds 5] [--repeat 5]

Writes ``bench/results/fast_mlp.json`` (with the load average before and after: timings taken
while other work runs are upper bounds).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import timeit
import warnings
from pathlib import Path

import numpy as np
import scipy
import scipy.optimize  # loaded before threadpool_limits, so that its BLAS is limited too
import sklearn
from sklearn.base import clone
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "SIRTResponse"))

from SIRTResponseLib.fast_mlp import fit_mlp, reproduces
from SIRTResponseLib.models import GRIDS, make_classifier


def rows(seed: int, n_rows: int = 48, n_features: int = 5):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_rows, n_features))
    y = (X[:, 0] + rng.normal(size=n_rows) > 0).astype(int)
    return X, y


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--number", type=int, default=3, help="fits per timeit run")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # ConvergenceWarning of fits that reach max_iter, in both
    load_before = os.getloadavg()
    cases = []
    with threadpool_limits(1):
        for seed in range(args.seeds):
            X, y = rows(seed)
            for alpha in GRIDS["mlp"]["alpha"]:
                mlp = make_classifier("mlp", seed).set_params(alpha=alpha)
                assert reproduces(mlp)
                plain, fast = clone(mlp).fit(X, y), fit_mlp(mlp, X, y)
                assert all(np.array_equal(a, b) for a, b in zip(plain.coefs_ + plain.intercepts_, fast.coefs_ + fast.intercepts_, strict=True))
                assert (plain.n_iter_, plain.loss_) == (fast.n_iter_, fast.loss_)
                fits = {"scikit_learn_s": lambda m=mlp, X=X, y=y: clone(m).fit(X, y), "fit_mlp_s": lambda m=mlp, X=X, y=y: fit_mlp(m, X, y)}
                seconds = {name: min(timeit.repeat(fit, number=args.number, repeat=args.repeat)) / args.number for name, fit in fits.items()}
                cases.append({"seed": seed, "alpha": alpha, "n_iter": int(plain.n_iter_), **seconds, "speedup": seconds["scikit_learn_s"] / seconds["fit_mlp_s"]})
                print(f"seed {seed} alpha {alpha:<6} {plain.n_iter_:>3} iterations  {seconds['scikit_learn_s'] * 1e3:7.1f} ms -> {seconds['fit_mlp_s'] * 1e3:6.1f} ms", flush=True)
    total_plain, total_fast = sum(c["scikit_learn_s"] for c in cases), sum(c["fit_mlp_s"] for c in cases)
    report = {
        "rows": 48, "features": 5, "grid": GRIDS["mlp"], "seeds": args.seeds, "timeit": {"number": args.number, "repeat": args.repeat, "statistic": "min"},
        "cases": cases,
        "total": {"scikit_learn_s": total_plain, "fit_mlp_s": total_fast, "speedup": total_plain / total_fast},
        "machine": {"cpus": os.cpu_count(), "blas_threads": 1, "python": platform.python_version(), "platform": platform.platform(), "numpy": np.__version__, "scipy": scipy.__version__, "scikit_learn": sklearn.__version__, "load_average_before": load_before, "load_average_after": os.getloadavg()},
    }
    out = ROOT / "bench" / "results" / "fast_mlp.json"
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"all fits: {total_plain:.2f} s -> {total_fast:.2f} s, speed-up {total_plain / total_fast:.2f}x; wrote {out}")


if __name__ == "__main__":
    main()
