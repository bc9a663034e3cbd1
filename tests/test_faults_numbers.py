"""Numbers at the edges (reliability round 3, case 5): metrics are scale-invariant where the quantity is, theory functions
stay finite and inside their range for every finite positive input, and inputs that would draw wrong pictures are refused.
Each case failed on the main before this round (the value it returned is in the comment)."""

import numpy as np
import pandas as pd
import pytest
from memgen import metrics, theory as th
from memgen.core import MemgenError
from memgen.explore import explorer_grid
from memgen.tables import summarise

rng = np.random.default_rng(0)
A, B = rng.standard_normal((20, 50)), rng.standard_normal((30, 50))


@pytest.mark.parametrize('scale', [1e154, 1e-200, 1e300])
def test_cosine_metrics_do_not_depend_on_scale(scale):
    "m and q are cosines: scaling every vector leaves them as they are (1e154: m was 0.0, true 0.315)."
    m, q = metrics.memorisation(A, B), metrics.convergence(A, B[:20])
    assert metrics.memorisation(A * scale, B * scale) == pytest.approx(m, rel=1e-12)
    assert metrics.convergence(A * scale, B[:20] * scale) == pytest.approx(q, rel=1e-12)


@pytest.mark.parametrize('scale', [1e160, 1e-200])
def test_copies_are_memorised_at_any_scale(scale):
    "Exact copies of training points have distance ratio 0 < 1/3 whatever their scale (was 0.0, true 1.0)."
    assert metrics.nn_ratio_memorised(B[:5] * scale, B * scale) == (1.0, 0.0)
    assert metrics.nn_ratio_memorised(A * scale, B * scale) == metrics.nn_ratio_memorised(A, B)


@pytest.mark.parametrize('gamma', [1e-11, 1e-20, 1e-50, 1e-300])
def test_q_white_at_tiny_loads_is_gamma(gamma):
    "q(gamma) = gamma (1 - gamma/4 + ...) as gamma -> 0 (q_white(1e-50) was NaN; 1e-20 was off by 2e-7)."
    assert th.q_white(gamma) / gamma == pytest.approx(1.0, rel=1e-9)


@pytest.mark.parametrize('gamma', [1e6, 1e9, 1e300])
def test_q_of_a_spectrum_stays_a_cosine_at_huge_loads(gamma):
    "convergence_q is at most 1 (was 1.0000003 at gamma >= 1e6) and close to it."
    q = float(th.convergence_q(th.power_law_spectrum(100, 1.0), gamma))
    assert 1 - 1e-5 <= q <= 1.0


@pytest.mark.parametrize('n', [1e8, 1e12, 1e20, 1e100])
def test_m_white_is_a_cosine_near_its_asymptote_at_huge_n(n):
    "m(n) <= 1 and follows sqrt(2 ln n / n) (m_white(1e20) was 9.4: the log-gamma ratio lost every digit)."
    m = float(th.m_white(n))
    assert 0 < m <= 1 and 0.85 < m / float(th.memorisation_asymptote(n)) < 1.0
    assert 0 < float(th.m_white(n, 0.5)) < m


def test_q_circ_joins_its_series_smoothly():
    "The circulant q uses the exact Gamma ratio below 50 and its series above: both agree where they meet."
    assert float(th.q_circ(49.999999)) == pytest.approx(float(th.q_circ(50.000001)), rel=1e-9)


@pytest.mark.parametrize(
    'gammas, message',
    [
        ([0.5, 0.1, 1.0], 'gammas is not strictly increasing'),
        (np.logspace(-200, 200, 5), r'expected n <= 2\^53'),
        ([0.1, float('inf')], 'gammas'),
    ],
)
def test_explorer_refuses_grids_it_would_draw_wrongly(gammas, message):
    "Unsorted loads drew cells in the wrong place; logspace(-200, 200) failed with n = -9223372036854775808."
    with pytest.raises(MemgenError, match=message):
        explorer_grid(gammas, [1.0, 2.0])


def test_summarise_refuses_infinite_values():
    "An infinite value gave sem 0 (a perfect measurement); it is an error upstream, named here."
    t = pd.DataFrame({'quantity': 'q', 'seed': [0, 1, 2], 'value': [0.5, np.inf, 0.4]})
    with pytest.raises(MemgenError, match='infinite value'):
        summarise(t)


SPEC = th.power_law_spectrum(200, 1.0)
RANGES = {  # function of one positive input, and the range its values must lie in
    'q_white': (th.q_white, (0, 1)),
    'q_white ridge': (lambda g: th.q_white(g, th.RidgeSqrt(0.5)), (0, 1)),
    'convergence_q': (lambda g: th.convergence_q(SPEC, g), (0, 1)),
    'convergence_q ridge': (lambda g: th.convergence_q(SPEC, g, th.RidgeSqrt(0.5)), (0, 1)),
    'q_circ': (th.q_circ, (0, 1)),
    'Q_bbp': (lambda g: th.Q_bbp(1.0, 3.0, g), (0, 1)),
    'Q_bbp power-law bulk': (lambda g: th.Q_bbp(SPEC[5:], SPEC[0] * 3, g), (0, 1)),
    'D_lat': (lambda g: th.D_lat((2.0,), g), (0, 1)),
    'D_bulk white': (lambda g: th.D_bulk(np.ones(50), g), (0, np.inf)),
    'D_bulk power law': (lambda g: th.D_bulk(SPEC, g), (0, np.inf)),
    'bulk_edge': (lambda g: th.bulk_edge(np.ones(50), g), (1, np.inf)),
    'm_white': (lambda n: th.m_white(max(1, round(n))) if n < 1e300 else th.m_white(1e300), (0, 1)),
}


@pytest.mark.parametrize('name', list(RANGES))
@pytest.mark.parametrize('x', [1e-300, 1e-50, 1e-12, 1e-3, 0.5, 1.0, 2.0, 1e3, 1e12, 1e50, 1e300])
def test_theory_functions_stay_finite_and_in_range(name, x):
    "Every finite positive input gives a finite value in the function's range, without overflow, invalid or divide-by-zero."
    f, (lo, hi) = RANGES[name]
    with np.errstate(over='raise', invalid='raise', divide='raise'):  # underflow to 0 is exact enough
        y = np.asarray(f(x), dtype=float)
    assert np.all(np.isfinite(y)) and np.all((lo <= y) & (y <= hi)), (name, x, y)
