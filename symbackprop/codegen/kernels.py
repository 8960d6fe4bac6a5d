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
           "_erf_near_zero": ("_rational", "_CODY_NEAR_ZERO"),
           "_erfc_tail": ("_rational", "_CODY_MIDDLE", "_CODY_FAR")}
# How many scratch arrays each kernel takes (between its input and its output).
SCRATCH = {"_erf": 7, "_erfc": 7}


# W. J. Cody's coefficients (CALERF, 1985), (numerator, denominator) of each interval's
# rational function: shared with the array-API kernels (xp_kernels.py), and copied into a
# module with the kernels that read them.
_CODY_NEAR_ZERO = ((3.1611237438705655, 113.86415415105016, 377.485237685302,
                    3209.3775891384694, 0.18577770618460315),
                   (23.601290952344122, 244.02463793444417, 1282.6165260773723,
                    2844.236833439171))
_CODY_MIDDLE = ((0.5641884969886701, 8.883149794388377, 66.11919063714163,
                 298.6351381974001, 881.952221241769, 1712.0476126340707,
                 2051.0783778260716, 1230.3393547979972, 2.1531153547440383e-08),
                (15.744926110709835, 117.6939508913125, 537.1811018620099,
                 1621.3895745666903, 3290.7992357334597, 4362.619090143247,
                 3439.3676741437216, 1230.3393548037495))
_CODY_FAR = ((0.30532663496123236, 0.36034489994980445, 0.12578172611122926,
              0.016083785148742275, 0.0006587491615298378, 0.016315387137302097),
             (2.568520192289822, 1.8729528499234604, 0.5279051029514285,
              0.06051834131244132, 0.0023352049762686918))


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
    # 0.46875 < a <= 4: erfc(a) = exp(-a^2) c(a)/d(a) (c, d: _CODY_MIDDLE), into r
    np.clip(a, 0.46875, 4.0, out=y)
    _rational(y, *_CODY_MIDDLE, num, den, r)
    # a > 4: erfc(a) = exp(-a^2) (1/sqrt(pi) - w p(w)/q(w)) / a with w = 1/a^2 (p, q:
    # _CODY_FAR), into num;
    # beyond 27.3 erfc is 0 in float64 (below the least subnormal), so a stops there
    np.clip(a, 4.0, 27.3, out=y)
    np.square(y, s)
    np.reciprocal(s, s)
    _rational(s, *_CODY_FAR, num, den, num)
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
    np.clip(x, -0.46875, 0.46875, out=x1)
    np.square(x1, w)
    _rational(w, *_CODY_NEAR_ZERO, num, den, num)
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


def source_of(value, name: str | None = None) -> str:
    """The source of a kernel function, or of the table of coefficients ``name`` (a tuple of
    rows of floats), as a generated module carries it."""
    if callable(value):
        return textwrap.dedent(inspect.getsource(value)).rstrip() + "\n"
    lines = []
    for k, row in enumerate(value):
        lead = f"{name} = ((" if k == 0 else " " * (len(name) + 4) + "("
        body = textwrap.wrap(", ".join(repr(float(v)) for v in row), 92 - len(lead),
                             break_long_words=False)
        rows = [lead + body[0]] + [" " * len(lead) + b for b in body[1:]]
        rows[-1] += ")," if k < len(value) - 1 else "))"
        lines += rows
    return "\n".join(lines) + "\n"


def needed(names) -> list[str]:
    """The kernels ``names`` call, with every kernel they call in turn, in a fixed order."""
    return needed_in(DEPENDS, names)


def source(name: str) -> str:
    """The source of kernel ``name``, as a generated module carries it."""
    return source_of(globals()[name], name)
