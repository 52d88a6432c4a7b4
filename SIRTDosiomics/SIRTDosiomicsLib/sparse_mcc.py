"""Sparse GLCM Maximal Correlation Coefficient for pyradiomics, bitwise identical to its own.

With 1 Gy bins a tumour dose map has hundreds of grey levels, and pyradiomics'
GLCM Maximal Correlation Coefficient builds Q(i, j) = Σ_k p(i,k) p(j,k) / (p_x(i) p_y(k) + ε) with a
dense Ng × Ng × 13 product for every k: O(Ng³), most of the time of a dose-map extraction. The GLCM
of a dose map is sparse (neighbouring voxels have close doses, ~3 % non-zero), so
:func:`enable_sparse_mcc` replaces that method in the worker by one that adds only the non-zero
products, with the same operands, in the same order: every element of Q gets the same sequence of
IEEE additions minus additions of exact zeros (x + 0.0 = x for x ≥ 0), so Q, its eigenvalues and
MCC are bitwise identical (checked by the tests against the engine's own method). It is installed
only when the engine's method is the exact source it was verified against
(:data:`VERIFIED_MCC_SOURCE_SHA256`); any other pyradiomics version keeps its own method.
"""

from __future__ import annotations

import hashlib
import inspect
from typing import Any

import numpy as np

VERIFIED_MCC_SOURCE_SHA256 = "f5c70815cff84ff8e5b6c2bb7d5c228a6dc59180874bff8d5ae368d4a74befd5"
"""SHA-256 of ``inspect.getsource(RadiomicsGLCM.getMCCFeatureValue)`` in pyradiomics(-bhklab) 3.0.1–3.1.4."""


def sparse_mcc_q(P: np.ndarray, px: np.ndarray, py: np.ndarray, eps: float) -> np.ndarray:
    """pyradiomics' MCC matrix Q (shape (Nv, Ng, Ng, Na)), summing only the non-zero GLCM products.

    Same operands and order as ``RadiomicsGLCM.getMCCFeatureValue``: for each k in increasing order,
    Q[i, j] += (P[i, k] · P[j, k]) / (p_x[i] · p_y[k] + ε); terms with P[i, k] = 0 or P[j, k] = 0 are
    exact zeros and are skipped.
    """
    Nv, Ng, _, Na = P.shape
    Q = np.zeros((Nv, Ng, Ng, Na), dtype=np.result_type(P, px, py))
    for v in range(Nv):
        for a in range(Na):
            Pa = P[v, :, :, a]
            q = Q[v, :, :, a]
            row_marginal = px[v, :, 0, a]
            for k in range(Ng):
                column = Pa[:, k]
                nz = np.flatnonzero(column)
                if nz.size == 0:
                    continue
                c = column[nz]
                q[np.ix_(nz, nz)] += (c[:, None] * c[None, :]) / (row_marginal[nz] * py[v, 0, k, a] + eps)[:, None]
    return Q


def _sparse_getMCCFeatureValue(self):
    Q = sparse_mcc_q(self.P_glcm, self.coefficients["px"], self.coefficients["py"], self.coefficients["eps"])
    # From here on, pyradiomics' own code, unchanged.
    Q_eigenValue = np.linalg.eigvals(Q.transpose((0, 3, 1, 2)))
    Q_eigenValue.sort()
    if Q_eigenValue.shape[2] < 2:
        return 1  # flat region
    MCC = np.sqrt(Q_eigenValue[:, :, -2])
    return np.nanmean(MCC, 1).real


_ORIGINAL_MCC: dict[str, Any] = {}


def enable_sparse_mcc(enable: bool = True) -> bool:
    """Install (or remove) the sparse MCC in this process; returns whether it is active.

    Refuses (returns False) when the installed pyradiomics' method is not the verified source.
    """
    from radiomics import glcm

    current = glcm.RadiomicsGLCM.getMCCFeatureValue
    active = getattr(current, "_sirt_sparse", False)
    if not enable:
        if active:
            glcm.RadiomicsGLCM.getMCCFeatureValue = _ORIGINAL_MCC["method"]
        return False
    if active:
        return True
    try:
        source = inspect.getsource(current)
    except (OSError, TypeError):
        return False
    if hashlib.sha256(source.encode()).hexdigest() != VERIFIED_MCC_SOURCE_SHA256:
        return False
    _ORIGINAL_MCC["method"] = current

    def getMCCFeatureValue(self):  # noqa: N802 - pyradiomics' naming
        return _sparse_getMCCFeatureValue(self)

    getMCCFeatureValue.__doc__ = current.__doc__
    getMCCFeatureValue._sirt_sparse = True
    glcm.RadiomicsGLCM.getMCCFeatureValue = getMCCFeatureValue
    return True
