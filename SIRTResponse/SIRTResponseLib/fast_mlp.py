"""scikit-learn's L-BFGS multilayer perceptron fitted without its per-evaluation Python overhead.

The study's MLP (one hidden layer of relu units, a logistic output, L-BFGS) is fitted 30 times per
model on a few dozen rows. Each fit takes a few hundred L-BFGS iterations, and each evaluation of
the loss and gradient does microseconds of arithmetic wrapped in tens of microseconds of Python:
``_loss_grad_lbfgs`` → ``_backprop`` → ``_forward_pass``, ``safe_sparse_dot``, ``binary_log_loss``
(``np.clip``, ``xlogy``, ``np.average``), ``_compute_loss_grad``, ``_pack``, plus the caching and
copying of scipy's ``minimize`` (``MemoizeJac``, ``ScalarFunction``). :func:`fit_mlp` keeps
scikit-learn's own ``fit`` — parameter and input validation, label binarisation, the Glorot
initialisation from ``random_state``, the final checks — and replaces only ``_fit_lbfgs``:

* the loss and gradient perform the same floating-point operations on the same operands as
  ``_backprop`` (the same BLAS products on the same memory layouts, the same ufuncs and
  reductions over the same axes) in preallocated buffers; where two of scikit-learn's steps are
  merged, they are elementwise operations with one correctly rounded IEEE result either way (the
  four divisions by the row count are one division of the packed gradient, the two products
  ``alpha * coefs`` one product of the packed coefficients, the mean of the one-column loss
  terms and its ``.sum()`` one scalar division of their sum);
* the optimiser is scipy's own L-BFGS-B routine (``_lbfgsb.setulb``) driven by the loop of
  ``scipy.optimize._lbfgsb_py._minimize_lbfgsb``, with ``ScalarFunction``'s caching (the first
  evaluation at the start point, a new one only when the point changes) and its counts of
  iterations and evaluations for ``max_iter`` and ``max_fun``.

The fitted estimator's ``coefs_``, ``intercepts_``, ``n_iter_``, ``loss_`` and probabilities are
bitwise those of ``clone(mlp).fit(X, y)``, with the same ``ConvergenceWarning`` when ``max_iter``
is reached (tests compare them over the study's grid), about 3× faster (``bench/bench_fast_mlp.py``:
48 rows × 5 features, the study's grid). It is written here, on private code of
scikit-learn and scipy, because neither offers a lean L-BFGS fit; the private code it reproduces
is pinned by a SHA-256 of its source (scikit-learn 1.9.1 with scipy 1.17.1 or 1.18.1), so a
scikit-learn or scipy whose code differs gets the plain estimator rather than a guess. Any other setting — another solver, activation or depth, several
classes or outputs, sparse or float32 input — also goes to the plain ``fit``.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import types

import numpy as np
import scipy.optimize._differentiable_functions as scipy_functions
import scipy.optimize._lbfgsb_py as scipy_lbfgsb
import scipy.optimize._optimize as scipy_optimize
from scipy._lib._util import _ScalarFunctionWrapper
from scipy.optimize import OptimizeResult
from scipy.special import expit, xlogy
from sklearn.base import clone
from sklearn.neural_network import MLPClassifier
from sklearn.neural_network import _base as mlp_base
from sklearn.neural_network import _multilayer_perceptron as mlp_module
from sklearn.utils.extmath import safe_sparse_dot
from sklearn.utils.optimize import _check_optimize_result

_MLP = mlp_module.BaseMultilayerPerceptron
_REPRODUCED_CODE = (
    _MLP._fit, _MLP._fit_lbfgs, _MLP._loss_grad_lbfgs, _MLP._backprop, _MLP._forward_pass,
    _MLP._compute_loss_grad, _MLP._unpack, mlp_module._pack, mlp_base.binary_log_loss,
    mlp_base.inplace_relu, mlp_base.inplace_logistic, mlp_base.inplace_relu_derivative, safe_sparse_dot,
    scipy_lbfgsb._minimize_lbfgsb, scipy_optimize.MemoizeJac, _ScalarFunctionWrapper.__call__,
    scipy_functions.ScalarFunction.__init__, scipy_functions.ScalarFunction._update_x,
    scipy_functions.ScalarFunction._update_fun, scipy_functions.ScalarFunction._update_grad,
    scipy_functions.ScalarFunction.fun_and_grad,
)
# SHA-256 of the sources above in the versions where the bitwise tests passed.
_REPRODUCED_SHA256 = {
    "5559c48d8f4c87e70790b63b9171c8fd286843bd123f05ac5468583f1e9ae165": "scikit-learn 1.9.1, scipy 1.17.1",
    "40813a52982341073fc9ffb67dc4e1063baa0ced024d5f6a23bd53fb9a235f02": "scikit-learn 1.9.1, scipy 1.18.1",
}
_LBFGSB = {name: p.default for name, p in inspect.signature(scipy_lbfgsb._minimize_lbfgsb).parameters.items()}


def reproduced_code_sha256() -> str:
    """SHA-256 of the installed sources of the private scikit-learn and scipy code reproduced here."""
    return hashlib.sha256("".join(inspect.getsource(code) for code in _REPRODUCED_CODE).encode()).hexdigest()


@functools.cache
def _installed_code_is_reproduced() -> bool:
    try:
        return reproduced_code_sha256() in _REPRODUCED_SHA256
    except (OSError, TypeError):  # sources not installed
        return False


def reproduces(mlp: MLPClassifier) -> bool:
    """Whether :func:`fit_mlp` runs this MLP's L-BFGS itself (on binary dense float64 data)."""
    layers = mlp.hidden_layer_sizes
    one_layer = not hasattr(layers, "__iter__") or len(list(layers)) == 1
    return (type(mlp) is MLPClassifier and mlp.solver == "lbfgs" and mlp.activation == "relu"
            and one_layer and _installed_code_is_reproduced())


def fit_mlp(mlp: MLPClassifier, X: np.ndarray, y: np.ndarray) -> MLPClassifier:
    """``clone(mlp).fit(X, y)``, bitwise, at a fraction of the cost."""
    model = clone(mlp)
    if not reproduces(mlp):
        return model.fit(X, y)
    model._fit_lbfgs = types.MethodType(_fit_lbfgs, model)  # the one step of fit done here
    try:
        return model.fit(X, y)
    finally:
        del model._fit_lbfgs


def _fit_lbfgs(self, X, y, sample_weight, activations, deltas, coef_grads, intercept_grads, layer_units):
    """``BaseMultilayerPerceptron._fit_lbfgs`` for one output of dense float64 rows without weights."""
    binary = y.shape[1] == 1 and self.out_activation_ == "logistic"
    if not (binary and sample_weight is None and type(X) is np.ndarray and X.dtype == np.float64):
        return MLPClassifier._fit_lbfgs(self, X, y, sample_weight, activations, deltas, coef_grads, intercept_grads, layer_units)
    n_features, n_hidden, n_outputs = layer_units
    c0, c1 = n_features * n_hidden, n_features * n_hidden + n_hidden * n_outputs  # the offsets of _fit_lbfgs
    self._coef_indptr = [(0, c0, (n_features, n_hidden)), (c0, c1, (n_hidden, n_outputs))]
    self._intercept_indptr = [(c1, c1 + n_hidden), (c1 + n_hidden, c1 + n_hidden + n_outputs)]
    packed = mlp_module._pack(self.coefs_, self.intercepts_)
    loss_grad = _loss_grad(X, y, self.alpha, n_hidden)
    result = _minimize_lbfgsb(loss_grad, packed, maxfun=self.max_fun, maxiter=self.max_iter, gtol=self.tol)
    self.n_iter_ = _check_optimize_result("lbfgs", result, self.max_iter)
    self.loss_ = result.fun
    self._unpack(result.x)


def _loss_grad(X: np.ndarray, y: np.ndarray, alpha: float, n_hidden: int):
    """``_loss_grad_lbfgs`` of a relu hidden layer and a logistic output, in preallocated buffers.

    Loss ``-mean(y log p + (1 - y) log(1 - p)) + alpha/2 |W|² / n`` with ``p = σ(relu(X W₀ + b₀) W₁ + b₁)``
    clipped to [eps, 1 - eps]; gradient by backpropagation (scikit-learn's ``_backprop``).
    """
    n, n_features = X.shape
    c0, c1 = n_features * n_hidden, n_features * n_hidden + n_hidden  # packed: W₀, W₁, b₀, b₁
    params, grad = np.empty(c1 + n_hidden + 1), np.empty(c1 + n_hidden + 1)
    coefs, w0_flat, w1_flat, coef_grads = params[:c1], params[:c0], params[c0:c1], grad[:c1]
    w0, w1, b0, b1 = w0_flat.reshape(n_features, n_hidden), w1_flat.reshape(n_hidden, 1), params[c1:-1], params[-1:]
    gw0, gw1, gb0, gb1 = grad[:c0].reshape(n_features, n_hidden), grad[c0:c1].reshape(n_hidden, 1), grad[c1:-1], grad[-1:]
    hidden, out, d_hidden = np.empty((n, n_hidden)), np.empty((n, 1)), np.empty((n, n_hidden))
    X_t, hidden_t, w1_t = X.T, hidden.T, w1.T  # the transposed operands of _backprop's products
    prob, term, other, scaled = np.empty((n, 1)), np.empty((n, 1)), np.empty((n, 1)), np.empty(c1)
    dead = np.empty((n, n_hidden), dtype=bool)
    y_true, y_false = y.astype(np.float64), (1 - y).astype(np.float64)  # 0/1, as xlogy casts the bool and int labels
    eps = np.finfo(np.float64).eps
    half_alpha = 0.5 * alpha

    def loss_and_grad(packed: np.ndarray) -> tuple[np.float64, np.ndarray]:
        params[:] = packed
        np.matmul(X, w0, out=hidden)  # _forward_pass
        np.add(hidden, b0, out=hidden)
        np.maximum(hidden, 0, out=hidden)
        np.matmul(hidden, w1, out=out)
        np.add(out, b1, out=out)
        expit(out, out=out)
        np.clip(out, eps, 1 - eps, out=prob)  # binary_log_loss
        xlogy(y_true, prob, out=term)
        np.subtract(1, prob, out=other)
        xlogy(y_false, other, out=other)
        np.add(term, other, out=term)
        loss = -(np.add.reduce(term, axis=0)[0] / n)  # np.average(axis=0) of one column, then .sum()
        values = 0
        values += np.dot(w0_flat, w0_flat)
        values += np.dot(w1_flat, w1_flat)
        loss += half_alpha * values / n
        np.subtract(out, y_true, out=out)  # output delta
        np.matmul(hidden_t, out, out=gw1)
        np.add.reduce(out, axis=0, out=gb1)
        np.matmul(out, w1_t, out=d_hidden)
        np.equal(hidden, 0, out=dead)  # inplace_relu_derivative
        np.copyto(d_hidden, 0, where=dead)
        np.matmul(X_t, d_hidden, out=gw0)
        np.add.reduce(d_hidden, axis=0, out=gb0)
        np.multiply(alpha, coefs, out=scaled)  # alpha * coefs_ of both layers
        np.add(coef_grads, scaled, out=coef_grads)
        np.divide(grad, n, out=grad)  # coefficient and intercept gradients / n
        return loss, grad

    return loss_and_grad


def _minimize_lbfgsb(loss_grad, x0: np.ndarray, *, maxfun: int, maxiter: int, gtol: float) -> OptimizeResult:
    """``scipy.optimize.minimize(loss_grad, x0, method="L-BFGS-B", jac=True)`` without bounds or callback."""
    m, maxls = _LBFGSB["maxcor"], _LBFGSB["maxls"]
    factr = _LBFGSB["ftol"] / np.finfo(float).eps
    n = x0.size
    evaluated = x0.copy()  # ScalarFunction evaluates at x0 first and again only where x changes
    f_evaluated, g_evaluated = loss_grad(evaluated)
    nfev = 1
    nbd, low_bnd, upper_bnd = np.zeros(n, np.int32), np.zeros(n), np.zeros(n)
    x, f, g = np.array(x0, dtype=np.float64), np.array(0.0), np.zeros(n)
    wa, iwa = np.zeros(2 * m * n + 5 * n + 11 * m * m + 8 * m), np.zeros(3 * n, np.int32)
    task, ln_task, lsave = np.zeros(2, np.int32), np.zeros(2, np.int32), np.zeros(4, np.int32)
    isave, dsave = np.zeros(44, np.int32), np.zeros(29)
    n_iterations = 0
    while True:
        g = g.astype(np.float64)  # a copy: the cached gradient stays as evaluated
        scipy_lbfgsb._lbfgsb.setulb(m, x, low_bnd, upper_bnd, nbd, f, g, factr, gtol, wa, iwa, task, lsave, isave, dsave, maxls, ln_task)
        if task[0] == 3:  # f and g wanted at x
            if not np.array_equal(x, evaluated):
                evaluated = x.copy()
                f_evaluated, g_evaluated = loss_grad(evaluated)
                nfev += 1
            f, g = f_evaluated, g_evaluated
        elif task[0] == 1:  # a new iterate
            n_iterations += 1
            if n_iterations >= maxiter:
                task[:] = 5, 504
            elif nfev > maxfun:
                task[:] = 5, 502
        else:
            break
    warnflag = 0 if task[0] == 4 else 1 if (nfev > maxfun or n_iterations >= maxiter) else 2
    message = scipy_lbfgsb.status_messages[task[0]] + ": " + scipy_lbfgsb.task_messages[task[1]]
    return OptimizeResult(fun=f, x=x, nit=n_iterations, nfev=nfev, status=warnflag, message=message, success=warnflag == 0)
