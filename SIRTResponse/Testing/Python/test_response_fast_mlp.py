"""The study's MLP fitted without scikit-learn's per-evaluation overhead: the same model, bit for bit."""

from __future__ import annotations

import warnings
from itertools import pairwise

import numpy as np
import pytest
import scipy.optimize
import scipy.sparse
from sklearn.base import clone
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_limits

from SIRTResponseLib import fast_mlp
from SIRTResponseLib.fast_mlp import fit_mlp, reproduces
from SIRTResponseLib.models import GRIDS, make_classifier


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """As in the study's cross-validation: on tiny problems BLAS threads only wait on each other."""
    with threadpool_limits(1):
        yield


def _fit_both(mlp: MLPClassifier, X, y):
    """scikit-learn's fit and :func:`fit_mlp`, each with the warnings it raised."""
    with warnings.catch_warnings(record=True) as plain_warnings:
        warnings.simplefilter("always")
        plain = clone(mlp).fit(X, y)
    with warnings.catch_warnings(record=True) as fast_warnings:
        warnings.simplefilter("always")
        fast = fit_mlp(mlp, X, y)
    return (plain, plain_warnings), (fast, fast_warnings)


def _assert_same_model(plain_fit, fast_fit, X_eval):
    (plain, plain_warnings), (fast, fast_warnings) = plain_fit, fast_fit
    for expected, got in zip(plain.coefs_ + plain.intercepts_, fast.coefs_ + fast.intercepts_, strict=True):
        np.testing.assert_array_equal(got, expected)
    assert (fast.n_iter_, fast.loss_, type(fast.loss_)) == (plain.n_iter_, plain.loss_, type(plain.loss_))
    np.testing.assert_array_equal(fast.predict_proba(X_eval), plain.predict_proba(X_eval))
    np.testing.assert_array_equal(fast.classes_, plain.classes_)
    assert vars(fast).keys() == vars(plain).keys()  # the same fitted state, nothing patched left behind
    for name in ("_coef_indptr", "_intercept_indptr", "n_features_in_", "n_outputs_", "n_layers_", "out_activation_"):
        assert getattr(fast, name, None) == getattr(plain, name, None)
    assert [(w.category, str(w.message)) for w in fast_warnings] == [(w.category, str(w.message)) for w in plain_warnings]


def _rows(n_rows: int, n_features: int, seed: int):
    """z-scored-like features with ties and duplicated rows, as after SMOTE on coarse features."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_rows, n_features))
    X[:, 0] = np.round(X[:, 0])
    X[n_rows - n_rows // 4 :] = X[: n_rows // 4]
    y = (X[:, -1] + rng.normal(size=n_rows) > 0).astype(int)
    return X, y, np.vstack([rng.normal(size=(7, n_features)), X[:3]])


def test_the_study_mlp_takes_the_fast_path(monkeypatch):
    if not fast_mlp._installed_code_is_reproduced():  # correct but slow: the plain fit (the other tests still compare)
        pytest.skip("this scikit-learn or scipy differs in the private code fit_mlp reproduces; check the bitwise tests "
                    "with the gate lifted, then add reproduced_code_sha256() to _REPRODUCED_SHA256")
    mlp = make_classifier("mlp", 0)
    assert reproduces(mlp)
    calls = []
    lbfgsb = fast_mlp._minimize_lbfgsb
    monkeypatch.setattr(fast_mlp, "_minimize_lbfgsb", lambda *args, **kwargs: calls.append(1) or lbfgsb(*args, **kwargs))
    X, y, _ = _rows(24, 5, 0)
    fit_mlp(mlp, X, y)
    assert calls == [1]


@pytest.mark.parametrize("alpha", GRIDS["mlp"]["alpha"])
@pytest.mark.parametrize(("n_rows", "n_features", "seed"), [(48, 5, 0), (24, 5, 7), (37, 3, 123)])
def test_fit_equals_scikit_learns_fit(alpha, n_rows, n_features, seed):
    X, y, X_eval = _rows(n_rows, n_features, seed)
    mlp = make_classifier("mlp", seed).set_params(alpha=alpha)
    plain_fit, fast_fit = _fit_both(mlp, X, y)
    _assert_same_model(plain_fit, fast_fit, X_eval)
    assert plain_fit[0].n_iter_ > 10 and 0 < plain_fit[0].predict_proba(X_eval)[:, 1].std()  # a real fit, not a constant


@pytest.mark.parametrize("limit", [{"max_iter": 15}, {"max_fun": 20}])
def test_limits_and_convergence_warning_as_scikit_learn(limit):
    X, y, X_eval = _rows(40, 5, 3)
    plain_fit, fast_fit = _fit_both(make_classifier("mlp", 3).set_params(**limit), X, y)
    _assert_same_model(plain_fit, fast_fit, X_eval)
    assert len(fast_fit[1]) == 1 and "failed to converge" in str(fast_fit[1][0].message)


def test_labels_other_than_0_and_1_and_an_integer_hidden_size():
    X, y, X_eval = _rows(30, 4, 5)
    labels = np.array(["responder", "non-responder"])[y]
    mlp = MLPClassifier(hidden_layer_sizes=6, solver="lbfgs", max_iter=300, alpha=0.01, random_state=5)
    assert reproduces(mlp) == fast_mlp._installed_code_is_reproduced()
    _assert_same_model(*_fit_both(mlp, X, labels), X_eval)


def test_loss_and_gradient_equal_scikit_learns_at_any_point():
    X, y, _ = _rows(33, 5, 11)
    mlp = make_classifier("mlp", 11).set_params(max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlp.fit(X, y)  # sets the layer bookkeeping that _loss_grad_lbfgs needs
    y_fit = y.reshape(-1, 1).astype(bool)  # as _validate_input gives it
    layer_units = [5, 8, 1]
    rng = np.random.default_rng(0)
    for scale in (0.1, 1.0, 5.0):  # large weights leave some relu units dead on every row
        packed = scale * rng.normal(size=5 * 8 + 8 + 8 + 1)
        args = (X, y_fit, None, [X, None, None], [None, None], [np.empty((a, b)) for a, b in pairwise(layer_units)], [np.empty(b) for b in layer_units[1:]])
        expected_loss, expected_grad = mlp._loss_grad_lbfgs(packed.copy(), *args)
        loss, grad = fast_mlp._loss_grad(X, y_fit, mlp.alpha, 8)(packed.copy())
        assert loss == expected_loss and type(loss) is type(expected_loss)
        np.testing.assert_array_equal(grad, expected_grad)


def test_optimizer_equals_scipy_minimize():
    X, y, _ = _rows(30, 5, 2)
    loss_grad = fast_mlp._loss_grad(X, y.reshape(-1, 1).astype(bool), 0.1, 8)
    x0 = np.random.default_rng(2).uniform(-0.5, 0.5, 5 * 8 + 8 + 8 + 1)
    for maxiter, maxfun in ((500, 15000), (25, 15000), (500, 12)):
        expected = scipy.optimize.minimize(lambda x: tuple(a.copy() if isinstance(a, np.ndarray) else a for a in loss_grad(x)), x0, method="L-BFGS-B", jac=True, options={"maxiter": maxiter, "maxfun": maxfun, "gtol": 1e-4})
        got = fast_mlp._minimize_lbfgsb(loss_grad, x0, maxfun=maxfun, maxiter=maxiter, gtol=1e-4)
        np.testing.assert_array_equal(got.x, expected.x)
        assert (got.fun, got.nit, got.nfev, got.status, got.message) == (expected.fun, expected.nit, expected.nfev, expected.status, expected.message)


@pytest.mark.parametrize(
    ("mlp", "data"),
    [
        (MLPClassifier(hidden_layer_sizes=(8,), activation="tanh", solver="lbfgs", max_iter=200, random_state=0), "binary"),
        (MLPClassifier(hidden_layer_sizes=(8, 4), solver="lbfgs", max_iter=200, random_state=0), "binary"),
        (MLPClassifier(hidden_layer_sizes=(8,), solver="adam", max_iter=50, random_state=0), "binary"),
        (MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=200, random_state=0), "three classes"),
        (MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=200, random_state=0), "sparse"),
        (MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=200, random_state=0), "float32"),
    ],
)
def test_other_settings_and_inputs_go_to_scikit_learn(mlp, data):
    X, y, X_eval = _rows(30, 4, 1)
    if data == "three classes":
        y = np.arange(30) % 3
    elif data == "sparse":
        X = scipy.sparse.csr_matrix(np.where(np.abs(X) > 0.5, X, 0.0))
    elif data == "float32":
        X, X_eval = X.astype(np.float32), X_eval.astype(np.float32)
    fast = mlp.activation == "relu" and len(mlp.hidden_layer_sizes) == 1 and mlp.solver == "lbfgs"
    assert reproduces(mlp) == (fast and fast_mlp._installed_code_is_reproduced())
    _assert_same_model(*_fit_both(mlp, X, y), X_eval)
