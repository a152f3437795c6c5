"""ln P(lo <= y <= hi) for y ~ N(mean, sigma^2), the probability the formula guide and the
cycle-consistency choice of `geode generate` score targets by (search::generate::window_log_probability).

Reference: scipy.stats.norm for the ordinary cases, mpmath at 50 digits for all of them (the far tails,
where float64 differences of CDFs cancel to 0). Writes tests/fixtures/window_probability_scipy.json.

    python3 -m venv /tmp/ref && /tmp/ref/bin/pip install scipy mpmath
    /tmp/ref/bin/python scripts/make_window_fixtures.py
"""
import json
import math

import mpmath
import scipy
from scipy.stats import norm

mpmath.mp.dps = 50
INF = float("inf")
CASES = [
    (1.75, 0.5, 1.5, 2.0),  # centred on a band-gap window
    (1.0, 0.3, 1.5, 2.0),  # below it
    (2.6, 0.3, 1.5, 2.0),  # above it
    (0.0, 1.0, -1.0, 1.0),
    (0.2, 0.05, 3.0, 3.5),  # 56 sigma below: P ~ 1e-683 underflows f64, the function floors at ln(f64::MIN_POSITIVE)
    (-2.0, 1.0, 5.0, 6.0),  # 7 sigma below
    (12.0, 1.0, 0.0, 1.0),  # 11 sigma above
    (2.0, 0.3, 1.5, INF),  # one-sided
    (2.0, 0.3, -INF, 1.5),
    (0.0, 1.0, -INF, INF),
]


def exact(mean, sigma, lo, hi):
    cdf = lambda x: mpmath.mpf(1) if x == INF else (mpmath.mpf(0) if x == -INF else mpmath.ncdf((mpmath.mpf(x) - mean) / sigma))
    # Upper-tail form on the far side, so 50 digits are plenty even 56 sigma out.
    sf = lambda x: mpmath.mpf(0) if x == INF else (mpmath.mpf(1) if x == -INF else mpmath.ncdf(-(mpmath.mpf(x) - mean) / sigma))
    p = sf(lo) - sf(hi) if lo != -INF and lo >= mean else cdf(hi) - cdf(lo)
    return float(mpmath.log(p))


rows = []
for mean, sigma, lo, hi in CASES:
    ln_p = exact(mean, sigma, lo, hi)
    with_scipy = math.log(max(norm.cdf(hi, mean, sigma) - norm.cdf(lo, mean, sigma), 1e-300))
    rows.append({"mean": mean, "sigma": sigma, "lo": None if lo == -INF else lo, "hi": None if hi == INF else hi, "ln_p": ln_p, "ln_p_scipy_naive": with_scipy})

json.dump({"source": f"mpmath {mpmath.__version__} (50 digits), scipy {scipy.__version__}", "cases": rows}, open("tests/fixtures/window_probability_scipy.json", "w"), indent=1)
for r in rows:
    print(r)
