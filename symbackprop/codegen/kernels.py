"""Special functions NumPy lacks, as vectorised in-place kernels for the generated trainers.

A generated module depends on NumPy only, and NumPy has no ``erf``. The functions here are copied
into a module, source and all (``source(name)``), when one of its kernels calls them; they are
also imported and tested as they are (against ``math.erf``), so the text a trainer carries is
the text that was tested.

Each kernel follows the calling convention of the generated code: arrays in, scratch arrays of
the same shape (their contents are overwritten), the result written into the last argument,
which may be the input itself. No array is allocated.

erf and erfc use W. J. Cody's rational Chebyshev approximations ("Rational Chebyshev
approximations for the error function", Math. Comp. 23 (1969) 631-637; the coefficients of his
CALERF, 1985), in three intervals of |x|: x R(x^2) up to 0.46875, and exp(-x^2) R(x) up to 4 and
exp(-x^2)/x (1/sqrt(pi) + R(1/x^2)/x^2) beyond, with exp(-x^2) split so that x^2 is exact.
Every interval is evaluated over the whole array at inputs clipped into it, and the right one is
kept by multiplying with 0/1 masks: exact, and finite for every finite input.
"""
from __future__ import annotations

import inspect
import textwrap

import numpy as np

# The kernels a trainer's calls may name, and the kernels each one calls in turn.
DEPENDS = {"_erf": ("_erf_near_zero", "_erfc_tail"), "_erfc": ("_erf_near_zero", "_erfc_tail"),
           "_erf_near_zero": ("_rational",), "_erfc_tail": ("_rational",)}
# How many scratch arrays each kernel takes (between its input and its output).
SCRATCH = {"_erf": 7, "_erfc": 7}


def _rational(t, p, q, num, den, out):
    """out = P(t)/Q(t) in Cody's form, n = len(q): the numerator is Horner's scheme on
    p[n] t^n + p[0] t^(n-1) + ... + p[n-1], the denominator on t^n + q[0] t^(n-1) + ... + q[n-1]."""
    n = len(q)
    np.multiply(t, p[n], num)
    np.copyto(den, t)
    for k in range(n - 1):
        np.add(num, p[k], num)
        np.multiply(num, t, num)
        np.add(den, q[k], den)
        np.multiply(den, t, den)
    np.add(num, p[n - 1], num)
    np.add(den, q[n - 1], den)
    np.divide(num, den, out)


def _erfc_tail(a, y, num, den, r, s, out):
    """erfc(a) for a >= 0.46875 (Cody's second and third intervals), for every a >= 0.

    Below 0.46875 it gives erfc(0.46875); callers take that interval from ``_erf``'s first one.
    """
    c = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
         2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03,
         2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8)
    d = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
         1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
         3.43936767414372164e03, 1.23033935480374942e03)
    p = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
         1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)
    q = (2.56852019228982242e00, 1.87295284992346047e00, 5.27905102951428412e-1,
         6.05183413124413191e-2, 2.33520497626869185e-3)
    # 0.46875 < a <= 4: erfc(a) = exp(-a^2) c(a)/d(a), into r
    np.clip(a, 0.46875, 4.0, out=y)
    _rational(y, c, d, num, den, r)
    # a > 4: erfc(a) = exp(-a^2) (1/sqrt(pi) - w p(w)/q(w)) / a with w = 1/a^2, into num;
    # beyond 27.3 erfc is 0 in float64 (below the least subnormal), so a stops there
    np.clip(a, 4.0, 27.3, out=y)
    np.square(y, s)
    np.reciprocal(s, s)
    _rational(s, p, q, num, den, num)
    np.multiply(num, s, num)
    np.subtract(5.6418958354775628695e-1, num, num)
    np.divide(num, y, num)
    # keep the interval a lies in: r = [a > 4] num + [a <= 4] r
    np.greater(a, 4.0, den)
    np.multiply(num, den, num)
    np.subtract(1.0, den, den)
    np.multiply(r, den, r)
    np.add(r, num, r)
    # times exp(-a^2) = exp(-h^2) exp(-(a - h)(a + h)), h = a rounded down to 1/16: h^2 is exact
    np.clip(a, 0.46875, 27.3, out=y)
    np.multiply(y, 16.0, s)
    np.trunc(s, s)
    np.multiply(s, 0.0625, s)
    np.subtract(y, s, num)
    np.add(y, s, den)
    np.multiply(num, den, num)
    np.negative(num, num)
    np.exp(num, num)
    np.square(s, s)
    np.negative(s, s)
    np.exp(s, s)
    np.multiply(r, s, out)
    np.multiply(out, num, out)


def _erf_near_zero(x, x1, w, num, den):
    """x1 = x clipped to [-0.46875, 0.46875], then num = erf(x1) = x1 a(x1^2)/b(x1^2)."""
    a = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
         3.20937758913846947e03, 1.85777706184603153e-1)
    b = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03,
         2.84423683343917062e03)
    np.clip(x, -0.46875, 0.46875, out=x1)
    np.square(x1, w)
    _rational(w, a, b, num, den, num)
    np.multiply(num, x1, num)


def _erf(x, s0, s1, s2, s3, s4, s5, s6, out):
    """out = erf(x), entry by entry, relative error below 1e-15 in float64; out may be x."""
    _erf_near_zero(x, s1, s2, s3, s4)  # s3 = erf(x) where |x| <= 0.46875
    np.absolute(x, s0)
    _erfc_tail(s0, s1, s2, s4, s5, s6, s1)  # s1 = erfc(|x|) where |x| > 0.46875
    np.subtract(1.0, s1, s1)
    np.copysign(s1, x, s1)  # erf(x) = sign(x) (1 - erfc(|x|)) there
    np.greater(s0, 0.46875, s0)
    np.multiply(s1, s0, s1)
    np.subtract(1.0, s0, s0)
    np.multiply(s3, s0, s3)
    np.add(s3, s1, out)


def _erfc(x, s0, s1, s2, s3, s4, s5, s6, out):
    """out = erfc(x) = 1 - erf(x), entry by entry, without cancellation for large x (relative
    error below 1e-14 in float64 until it underflows near x = 26.5); out may be x."""
    _erf_near_zero(x, s1, s2, s3, s4)
    np.subtract(1.0, s3, s3)  # erfc(x) where |x| <= 0.46875
    np.absolute(x, s0)
    _erfc_tail(s0, s1, s2, s4, s5, s6, s1)  # erfc(|x|) where |x| > 0.46875
    np.less(x, 0.0, s2)  # erfc(x) = 2 - erfc(|x|) for x < 0
    np.multiply(s2, 2.0, s4)
    np.multiply(s2, 2.0, s2)
    np.subtract(1.0, s2, s2)
    np.multiply(s1, s2, s1)
    np.add(s1, s4, s1)
    np.greater(s0, 0.46875, s0)
    np.multiply(s1, s0, s1)
    np.subtract(1.0, s0, s0)
    np.multiply(s3, s0, s3)
    np.add(s3, s1, out)


def needed_in(depends: dict, names) -> list[str]:
    """The kernels ``names`` call, with every kernel they call in turn (``depends``), in a
    fixed order."""
    out, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name not in out:
            out.add(name)
            todo += depends.get(name, ())
    return sorted(out)


def source_of(function) -> str:
    """The source of a kernel function, as a generated module carries it."""
    return textwrap.dedent(inspect.getsource(function)).rstrip() + "\n"


def needed(names) -> list[str]:
    """The kernels ``names`` call, with every kernel they call in turn, in a fixed order."""
    return needed_in(DEPENDS, names)


def source(name: str) -> str:
    """The source of kernel ``name``, as a generated module carries it."""
    return source_of(globals()[name])
