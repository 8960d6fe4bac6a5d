"""erf and erfc for the array-API trainers: the standard has neither.

The same approximations as ``kernels.py`` (W. J. Cody's rational Chebyshev approximations in
three intervals of |x|, every interval evaluated at inputs clipped into it and the right one
kept), written as pure functions of arrays of any array-API library: no ``out=``, no in-place
update, so that jax.jit can trace them. Copied into a generated module, source and all
(``source(name)``), when its calls name them; tested here as they are, against ``math.erf``.
Each takes the array namespace ``xp`` first.
"""
from __future__ import annotations

from .kernels import _CODY_FAR, _CODY_MIDDLE, _CODY_NEAR_ZERO, needed_in, source_of

# The kernels a trainer's calls may name, and the kernels each one calls in turn.
DEPENDS = {"_erf": ("_erf_near_zero", "_erfc_tail"), "_erfc": ("_erf_near_zero", "_erfc_tail"),
           "_erf_near_zero": ("_rational", "_CODY_NEAR_ZERO"),
           "_erfc_tail": ("_rational", "_CODY_MIDDLE", "_CODY_FAR")}
# (the coefficient tables are kernels.py's: one table for both kinds of kernel)


def _rational(t, p, q):
    """P(t)/Q(t) in Cody's form, n = len(q): the numerator is Horner's scheme on
    p[n] t^n + p[0] t^(n-1) + ... + p[n-1], the denominator on t^n + q[0] t^(n-1) + ... + q[n-1]."""
    n = len(q)
    num, den = t * p[n], t
    for k in range(n - 1):
        num = (num + p[k]) * t
        den = (den + q[k]) * t
    return (num + p[n - 1]) / (den + q[n - 1])


def _erfc_tail(xp, a):
    """erfc(a) for a >= 0.46875 (Cody's second and third intervals), for every a >= 0.

    Below 0.46875 it gives erfc(0.46875); callers take that interval from ``_erf``'s first one.
    """
    # 0.46875 < a <= 4: erfc(a) = exp(-a^2) c(a)/d(a)
    middle = _rational(xp.clip(a, 0.46875, 4.0), *_CODY_MIDDLE)
    # a > 4: erfc(a) = exp(-a^2) (1/sqrt(pi) - w p(w)/q(w)) / a with w = 1/a^2; beyond 27.3
    # erfc is 0 in float64 (below the least subnormal), so a stops there
    y = xp.clip(a, 4.0, 27.3)
    w = 1.0 / (y * y)
    far = (5.6418958354775628695e-1 - _rational(w, *_CODY_FAR) * w) / y
    r = xp.where(a > 4.0, far, middle)
    # times exp(-a^2) = exp(-h^2) exp(-(a - h)(a + h)), h = a rounded down to 1/16: h^2 exact
    y = xp.clip(a, 0.46875, 27.3)
    h = xp.trunc(y * 16.0) * 0.0625
    return r * xp.exp(-(h * h)) * xp.exp(-((y - h) * (y + h)))


def _erf_near_zero(xp, x):
    """erf(x1) = x1 a(x1^2)/b(x1^2), x1 = x clipped to [-0.46875, 0.46875]."""
    x1 = xp.clip(x, -0.46875, 0.46875)
    return _rational(x1 * x1, *_CODY_NEAR_ZERO) * x1


def _erf(xp, x):
    """erf(x), entry by entry, relative error below 1e-15 in float64."""
    tail = xp.copysign(1.0 - _erfc_tail(xp, xp.abs(x)), x)  # sign(x) (1 - erfc(|x|))
    return xp.where(xp.abs(x) > 0.46875, tail, _erf_near_zero(xp, x))


def _erfc(xp, x):
    """erfc(x) = 1 - erf(x), entry by entry, without cancellation for large x (relative
    error below 1e-14 in float64 until it underflows near x = 26.5)."""
    tail = _erfc_tail(xp, xp.abs(x))
    tail = xp.where(x < 0.0, 2.0 - tail, tail)  # erfc(x) = 2 - erfc(|x|) for x < 0
    return xp.where(xp.abs(x) > 0.46875, tail, 1.0 - _erf_near_zero(xp, x))


def needed(names) -> list[str]:
    """The kernels ``names`` call, with every kernel they call in turn, in a fixed order."""
    return needed_in(DEPENDS, names)


def source(name: str) -> str:
    """The source of kernel ``name``, as a generated module carries it."""
    return source_of(globals()[name], name)
