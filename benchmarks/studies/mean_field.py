"""Mean-field signal propagation through a wide tanh MLP (Poole et al. 2016; Schoenholz,
Gilmer, Ganguli & Sohl-Dickstein 2017, "Deep Information Propagation", ICLR, sec. 2-3).

Weights W_ij ~ N(0, sigma_w^2 / N), biases ~ N(0, sigma_b^2). In the infinite-width limit the
pre-activation variance of a layer follows ``q_l = sigma_w^2 E[phi(sqrt(q_(l-1)) z)^2] +
sigma_b^2`` (z ~ N(0, 1)) to a fixed point q*, and the correlation c of two inputs follows
``c_l = (sigma_w^2 E[phi(u1) phi(u2)] + sigma_b^2) / q*`` with u1 = sqrt(q*) z1, u2 = sqrt(q*)
(c z1 + sqrt(1 - c^2) z2). Its slope at c = 1, ``chi_1 = sigma_w^2 E[phi'(sqrt(q*) z)^2]``,
separates the ordered phase (chi_1 < 1: every input maps to the same output) from the chaotic
one (chi_1 > 1: nearby inputs decorrelate); the slope at the stable fixed point c*, chi_c, sets
the depth over which correlations are still informative, ``xi_c = -1 / ln(chi_c)`` (eq. 9),
infinite on the critical line chi_1 = 1. The paper's trainability bound is depth < 6 xi_c
(sec. 5, fig. 5). Expectations by Gauss-Hermite quadrature (``GAUSS_POINTS`` per dimension).
"""

import math

import numpy as np
from scipy import optimize

GAUSS_POINTS = 80
C_TOLERANCE, C_MAX_ITER = 1e-12, 10_000

# nodes and weights for E[f(z)], z ~ N(0, 1): Hermite's exp(-x^2) rule with z = sqrt(2) x
_nodes, _weights = np.polynomial.hermite.hermgauss(GAUSS_POINTS)
Z, W = math.sqrt(2.0) * _nodes, _weights / math.sqrt(math.pi)


def phi(x: np.ndarray) -> np.ndarray:
    return np.tanh(x)


def dphi(x: np.ndarray) -> np.ndarray:
    return 1.0 / np.cosh(x) ** 2


def q_map(q: float, sigma_w2: float, sigma_b2: float) -> float:
    """One layer of the variance recursion (eq. 3)."""
    return sigma_w2 * float(W @ phi(math.sqrt(q) * Z) ** 2) + sigma_b2


def q_star(sigma_w2: float, sigma_b2: float) -> float:
    """The fixed point of ``q_map``: 0 when it is the only one (sigma_b = 0, sigma_w^2 <= 1),
    else the positive root, by Brent's method on [tiny, sigma_w^2 + sigma_b^2] (tanh^2 <= 1
    bounds q* by the latter)."""

    def gap(q: float) -> float:
        return q_map(q, sigma_w2, sigma_b2) - q

    tiny = 1e-12
    if gap(tiny) <= 0:
        return 0.0
    return optimize.brentq(gap, tiny, sigma_w2 + sigma_b2 + 1.0, xtol=1e-14)


def chi_1(sigma_w2: float, sigma_b2: float) -> float:
    """sigma_w^2 E[phi'(sqrt(q*) z)^2] (eq. 5): < 1 ordered, > 1 chaotic."""
    q = q_star(sigma_w2, sigma_b2)
    return sigma_w2 * float(W @ dphi(math.sqrt(q) * Z) ** 2)


def _pair_expectation(f, q: float, c: float) -> float:
    """E[f(u1) f(u2)] for the correlated pair of pre-activations, by the product rule."""
    z1, z2 = Z[:, None], Z[None, :]
    u1 = math.sqrt(q) * z1
    u2 = math.sqrt(q) * (c * z1 + math.sqrt(max(1.0 - c * c, 0.0)) * z2)
    return float(W @ (f(u1) * f(u2)) @ W)


def c_map(c: float, q: float, sigma_w2: float, sigma_b2: float) -> float:
    """One layer of the correlation recursion (eq. 4) at the variance fixed point ``q``."""
    if q == 0.0:
        return 1.0
    return (sigma_w2 * _pair_expectation(phi, q, c) + sigma_b2) / q


def c_star(sigma_w2: float, sigma_b2: float) -> float:
    """The stable fixed point of ``c_map``: 1 in the ordered phase, else reached by iterating
    from c = 0 (the map is increasing and c = 1 repels)."""
    if chi_1(sigma_w2, sigma_b2) <= 1.0:
        return 1.0
    q, c = q_star(sigma_w2, sigma_b2), 0.0
    for _ in range(C_MAX_ITER):
        new = c_map(c, q, sigma_w2, sigma_b2)
        if abs(new - c) < C_TOLERANCE:
            return new
        c = new
    return c


def chi_c(sigma_w2: float, sigma_b2: float) -> float:
    """Slope of ``c_map`` at c*: sigma_w^2 E[phi'(u1) phi'(u2)] (eq. 8); chi_1 where c* = 1."""
    c = c_star(sigma_w2, sigma_b2)
    if c == 1.0:
        return chi_1(sigma_w2, sigma_b2)
    return sigma_w2 * _pair_expectation(dphi, q_star(sigma_w2, sigma_b2), c)


def xi_c(sigma_w2: float, sigma_b2: float) -> float:
    """Correlation depth -1 / ln(chi_c) (eq. 9); infinite where chi_c = 1 (criticality)."""
    slope = chi_c(sigma_w2, sigma_b2)
    return math.inf if slope >= 1.0 else -1.0 / math.log(slope)


def critical_sigma_w2(sigma_b2: float, low: float = 0.5, high: float = 10.0) -> float:
    """The sigma_w^2 where chi_1 = 1 at this sigma_b^2 (the order-to-chaos line)."""
    if sigma_b2 == 0.0:
        return 1.0  # q* = 0 up to sigma_w^2 = 1 and chi_1 = sigma_w^2 there
    return optimize.brentq(lambda s: chi_1(s, sigma_b2) - 1.0, low, high, xtol=1e-12)
