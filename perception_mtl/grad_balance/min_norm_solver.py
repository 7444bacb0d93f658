"""Exact min-norm point of a convex hull, from the Gram matrix (shared by MGDA and tests).

``min_norm_weights(M)`` solves ``min_w w^T M w`` subject to ``w >= 0, sum(w) = 1`` with a primal
active-set method. Unlike Frank-Wolfe (Sener & Koltun's solver) it terminates at the exact KKT
point, which the hand-derived tests need. T is the number of tasks (2-10), so every linear solve
is tiny and runs in float64 on the CPU.
"""

from __future__ import annotations

import warnings

import numpy as np


def min_norm_weights(gram: np.ndarray, tol: float = 1e-12, max_iter: int | None = None) -> np.ndarray:
    """Convex weights of the min-norm point of the hull of T gradients.

    Args:
        gram: (T, T) symmetric positive semi-definite Gram matrix ``G G^T`` of the gradients.
        tol: optimality tolerance on the KKT multipliers, relative to the largest diagonal entry.
        max_iter: active-set iterations (default 50 * T).

    Returns:
        (T,) float64 weights on the simplex; ``w @ G`` is the min-norm point. All-zero
        gradients give uniform weights (every point of the hull is the origin).
    """
    m = np.asarray(gram, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"min_norm_weights: gram must be (T, T), got {m.shape}")
    t = m.shape[0]
    if t == 1:
        return np.ones(1)
    scale = float(np.max(np.diag(m)))
    if not np.isfinite(m).all():
        raise ValueError("min_norm_weights: gram has non-finite entries")
    if scale <= 0:
        return np.full(t, 1.0 / t)
    m = (m + m.T) / (2 * scale)  # scale-free tolerances; the minimiser does not change
    free = np.zeros(t, dtype=bool)
    start = int(np.argmin(np.diag(m)))
    free[start] = True
    w = np.zeros(t)
    w[start] = 1.0
    for _ in range(max_iter or 50 * t):
        idx = np.flatnonzero(free)
        target = _equality_qp(m[np.ix_(idx, idx)])
        if np.all(target >= 0):
            w = np.zeros(t)
            w[idx] = target
            grad = m @ w
            # Multipliers of the inactive w_j >= 0 constraints: (M w)_j - w^T M w.
            mult = grad - float(w @ grad)
            mult[free] = np.inf
            j = int(np.argmin(mult))
            if mult[j] >= -tol:
                return w
            free[j] = True
        else:
            # Step from w towards the equality solution until the first weight reaches zero.
            cur = w[idx]
            block = target < 0
            ratios = cur[block] / (cur[block] - target[block])
            k = int(np.argmin(ratios))
            w[idx] = cur + ratios[k] * (target - cur)
            dropped = idx[block][k]
            w[dropped] = 0.0
            free[dropped] = False
            w = np.clip(w, 0.0, None)
            w /= w.sum()
    warnings.warn("min_norm_weights: active set did not converge; returning the last feasible point", stacklevel=2)
    return w


def _equality_qp(m_ff: np.ndarray) -> np.ndarray:
    """argmin w^T M w subject to sum(w) = 1 on the free set (minimum-norm solution when singular)."""
    n = m_ff.shape[0]
    kkt = np.zeros((n + 1, n + 1))
    kkt[:n, :n] = m_ff
    kkt[:n, n] = -1.0
    kkt[n, :n] = 1.0
    rhs = np.zeros(n + 1)
    rhs[n] = 1.0
    sol = np.linalg.lstsq(kkt, rhs, rcond=None)[0][:n]
    sol[np.abs(sol) < 1e-15] = 0.0
    return sol
