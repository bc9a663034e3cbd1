"""memgen.theory against Monte Carlo of the finite-d linear model, closed forms, limits and robustness.

Tolerances: `k * sem + bias`, with sem the Monte-Carlo standard error (k = 4) and `bias` the finite-d correction
stated in the theory notebook (O(1/d) for white data, O(n/d) for memorisation, O(1/ln d) for alpha = 1)."""

import warnings
import numpy as np
import pytest
from memgen import theory as th, metrics
from memgen.data import SpikedWhite, PowerLaw
from memgen.linear import LinearGenerativeModel, SimConfig, simulate
from memgen.tables import summarise
from memgen.core import MemgenError, mean_sem


def mc_q(data, d, gammas, n_seeds=4, n_samples=200, g=None):
    cfg = SimConfig(data, ds=(d,), gammas=tuple(gammas), n_seeds=n_seeds, n_samples=n_samples, g=g, quantities=('q',))
    s = summarise(simulate(cfg, show_progress=False)).sort_values('gamma')
    return s.value.to_numpy(), s['sem'].to_numpy()


GAMMAS = (0.1, 0.5, 1.0, 4.0)


def test_q_white_closed_forms_and_limits():
    assert th.q_white(1.0) == pytest.approx(64 / (9 * np.pi**2), abs=1e-7)
    assert th.q_white(1e-3) / 1e-3 == pytest.approx(1.0, rel=2e-3)
    assert 1 - th.q_white(1e3) < 1e-3
    g = np.logspace(-3, 3, 200)
    assert np.all(np.diff(th.q_white(g)) > 0)
    # the deterministic-equivalent quadrature is accurate to ~1e-6 relative (checked against the exact MP integral)
    np.testing.assert_allclose(th.convergence_q(np.ones(300), GAMMAS), th.q_white(GAMMAS), rtol=3e-6)


@pytest.mark.parametrize('g', [None, th.RidgeSqrt(0.5)])
def test_q_white_against_monte_carlo(g):
    mc, sem = mc_q(SpikedWhite, 500, GAMMAS, g=g)
    dev = np.abs(mc - th.q_white(GAMMAS, g))
    assert np.all(dev < 4 * sem + 0.005), (dev, sem)


@pytest.mark.parametrize('alpha, bias', [(0.5, 0.01), (1.0, 0.05)])
def test_q_power_law_against_monte_carlo(alpha, bias):
    mc, sem = mc_q(lambda d: PowerLaw(d, alpha), 500, GAMMAS)
    theory = th.convergence_q(th.power_law_spectrum(500, alpha), GAMMAS)
    assert np.all(np.abs(mc - theory) < 4 * sem + bias), (mc, theory, sem)


def test_spikes_do_not_change_q():
    base = th.convergence_q(np.ones(2000), GAMMAS)
    spiked = th.convergence_q(np.r_[1 + np.array([5.0, 2.0]), np.ones(1998)], GAMMAS)
    np.testing.assert_allclose(spiked, base, atol=5e-3)


def _mc_Q(model, gamma, reps=3, seed=0):
    rng = np.random.default_rng(seed)
    n = int(gamma * model.d)
    vals = [metrics.latent_recovery(_cov(model, n, rng), model.latents)[0] for _ in range(reps)]
    return mean_sem(vals)


def _cov(model, n, rng):
    X = model.sample(n, rng)
    return X.T @ X / n


@pytest.mark.parametrize('beta', [2.0, 5.0])
def test_bbp_overlap_white_against_monte_carlo(beta):
    gammas = (0.05, 1.0, 4.0) if beta == 2.0 else (1.0, 4.0)
    for gm in gammas:
        m, s = _mc_Q(SpikedWhite(1000, (beta,), seed=1), gm)
        assert abs(m - th.Q_bbp(1.0, 1 + beta, gm)) < 4 * s + 0.03, (beta, gm, m, s)


def test_bbp_closed_form_and_sharp_transition():
    beta = 3.0
    c = 1 / np.array([0.05, 0.1, 0.2, 1.0])
    expect = np.where(1 / c > 1 / beta**2, (1 - c / beta**2) / (1 + c / beta), 0.0)
    np.testing.assert_allclose(th.Q_bbp(1.0, 1 + beta, 1 / c), expect, atol=1e-12)
    gc = 1 / beta**2
    # Q = 0 up to gamma_c, then rises linearly (a kink: the BBP phase transition)
    assert th.Q_bbp(1.0, 1 + beta, gc * 0.999) == 0.0
    above = th.Q_bbp(1.0, 1 + beta, gc * np.array([1.1, 1.2]))
    assert above[0] > 0.02 and above[1] > above[0]
    # q is smooth through gamma_c: no jump in q where Q jumps
    q = th.q_white(np.array([gc * 0.99, gc * 1.01]))
    assert abs(q[1] - q[0]) < 0.01


def test_template_overlap_over_power_law_against_monte_carlo():
    model = PowerLaw(1000, 0.5, betas=(40.0,), seed=2)
    for gm in (0.5, 2.0):
        m, s = _mc_Q(model, gm)
        theory = th.Q_template(model.bulk_spectrum, model.latent_coords()[0], 40.0, gm)
        assert abs(m - theory) < 4 * s + 0.02, (gm, m, theory)


def test_outlier_location_against_monte_carlo():
    rng = np.random.default_rng(3)
    model = SpikedWhite(800, (3.0,), seed=4)
    X = model.sample(1600, rng)
    top = np.linalg.eigvalsh(X.T @ X / 1600)[-1]
    assert top == pytest.approx(th.psi(4.0, 1.0, 2.0), rel=0.02)  # above the BBP point the outlier sits at psi(ell)


def test_memorisation_closed_forms():
    assert th.m_white(1) == pytest.approx(1.0, abs=1e-9)
    m = th.m_white([1, 2, 5, 10, 100, 1000, 10**5])
    assert np.all(np.diff(m) < 0)
    assert np.all(np.diff(th.m_white(10, [0.0, 0.1, 1.0, 10.0])) < 0)
    # the leading asymptote sqrt(2 ln n / n) is approached slowly from below
    r = th.m_white([10**3, 10**5]) / th.memorisation_asymptote([10**3, 10**5])
    assert np.all(r < 1) and r[1] > r[0]


@pytest.mark.parametrize('n, lam, bias', [(2, 0.0, 0.005), (10, 0.0, 0.005), (100, 0.0, 0.012), (10, 0.5, 0.005)])
def test_memorisation_against_monte_carlo(n, lam, bias):
    rng = np.random.default_rng(n)
    d = 2000
    vals = []
    for _ in range(4):
        X = rng.standard_normal((n, d))
        mdl = LinearGenerativeModel(th.RidgeSqrt(lam)).fit(X)
        vals.append(metrics.memorisation(mdl.sample(rng.standard_normal((500, d))), X)[0])
    m, s = mean_sem(vals)
    assert abs(m - th.m_white(n, lam)) < 4 * s + bias, (m, s, th.m_white(n, lam))


@pytest.mark.parametrize('gamma, beta', [(0.5, 1.0), (0.5, 3.0), (2.0, 1.0), (2.0, 3.0)])
def test_operator_distance_against_monte_carlo(gamma, beta):
    rng = np.random.default_rng(5)
    model = SpikedWhite(800, (beta,), seed=3)
    n = int(gamma * 800)
    vals = [metrics.operator_distance(model.covariance(), _cov(model, n, rng)) for _ in range(3)]
    assert np.mean(vals) == pytest.approx(th.D_op(beta, gamma), rel=0.03)


def test_operator_distance_is_blind_to_the_bbp_transition():
    # at gamma_c = 1/beta^2 the bulk edge moves by 2 beta + beta^2 > beta: up to 2 gamma_c the operator norm is the
    # no-spike value (2 sqrt(c) + c) / (1 + beta), with no feature at gamma_c
    beta = 3.0
    g = np.linspace(0.2, 2.0, 19) / beta**2
    c = 1 / g
    np.testing.assert_allclose(th.D_op((beta,), g), (2 * np.sqrt(c) + c) / (1 + beta), rtol=1e-9)


def test_latent_distance_threshold():
    beta = 3.0
    gc = 1 / beta**2
    np.testing.assert_array_equal(th.D_lat((beta,), np.linspace(0.001, 0.9999, 50) * gc), 1.0)
    above = th.D_lat((beta,), gc * np.linspace(1.0001, 100, 200))
    assert np.all(np.diff(above) < 0) and above[0] < 1
    # two spikes: the mean of the BBP overlaps, a kink at each 1/beta_k^2
    g = np.array([0.5, 3.0])
    np.testing.assert_allclose(th.D_lat((1.0, 5.0), g), 1 - (th.Q_bbp(1.0, 2.0, g) + th.Q_bbp(1.0, 6.0, g)) / 2, atol=1e-14)


@pytest.mark.parametrize('betas, gammas', [((3.0,), (0.5, 2.0)), ((1.0, 5.0), (0.3, 3.0))])
def test_latent_distance_against_simulation(betas, gammas):
    """Chordal D_lat of LinearGenerativeModel fits on n = gamma d samples vs theory, d = 200 and 400, 4 training sets.

    Tolerance 3 sem + 0.03 (finite-d bias of the overlaps, O(d^-1/2) at these d); gammas away from each 1/beta_k^2."""
    for d in (200, 400):
        model = SpikedWhite(d, betas, seed=1)
        for gm in gammas:
            rng = np.random.default_rng([d, int(gm * 10)])
            n = int(gm * d)
            vals = [
                metrics.latent_distance(LinearGenerativeModel().fit(model.sample(n, rng)).covariance(), model.latents) for _ in range(4)
            ]
            m, s = mean_sem(vals)
            assert abs(m - th.D_lat(betas, gm)) < 3 * s + 0.03, (betas, d, gm, m, s)


@pytest.mark.parametrize('alpha', [0.0, 0.5])
def test_bulk_distance_against_monte_carlo(alpha):
    rng = np.random.default_rng(6)
    model = PowerLaw(400, alpha)
    for gm in (0.5, 2.0):
        S = _cov(model, int(gm * 400), rng)
        assert metrics.bulk_distance(model.covariance(), S) == pytest.approx(th.D_bulk(model.bulk_spectrum, gm), abs=0.01)


def test_bulk_distance_is_function_of_q_for_white_data():
    g = np.logspace(-2, 2, 30)
    np.testing.assert_allclose(th.D_bulk(np.ones(10), g), 2 * (1 - np.sqrt(th.q_white(g))), atol=1e-9)


def test_solvers_are_robust_over_wide_ranges():
    spec = np.logspace(0, -8, 3000)  # 8 decades
    gammas = np.logspace(-3, 3, 25)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        q = th.convergence_q(spec, gammas)
        qr = th.convergence_q(spec, gammas, th.RidgeSqrt(1e-3))
        qw = th.q_white(gammas)
    for arr in (q, qr, qw):
        assert np.all(np.isfinite(arr)) and np.all((arr > 0) & (arr <= 1 + 1e-9))
        assert np.all(np.diff(arr) > -1e-9)


def test_effective_rank_and_finite_d_convergence_against_monte_carlo():
    """alpha = 1.5, d = 600: effective rank O(1), so the cosine does not self-average. At gamma = 0.2 the finite-d
    curve E_z[sum D_k^2 z_k^2 / sum lambda_k z_k^2] is within 3 MC standard errors, the d -> infinity one is not."""
    lam = th.power_law_spectrum(600, 1.5)
    assert 5 < th.effective_rank(lam) < 5.7 and th.effective_rank(np.ones(600)) == pytest.approx(600)
    np.testing.assert_allclose(th.convergence_q_finite(lam, [0.2, 0.7, 2.5]), [0.855, 0.947, 0.986], atol=3e-3)
    t = simulate(SimConfig(PowerLaw(600, 1.5), gammas=(0.2,), n_seeds=4, n_samples=200, quantities=('q',)), show_progress=False)
    mc, sem = t.value.mean(), np.sqrt(np.mean(t['sem'] ** 2) / len(t))
    assert abs(mc - th.convergence_q_finite(lam, 0.2)) < 3 * sem, (mc, sem)
    assert abs(mc - th.convergence_q(lam, 0.2)) > 5 * sem, (mc, sem)


def test_q_circ_closed_forms():
    assert th.q_circ(1) == pytest.approx(np.pi / 4, abs=1e-14)
    np.testing.assert_allclose(th.q_circ([2, 4, 16]), [0.8836, 0.9396, 0.9845], atol=1e-4)
    n = np.logspace(0, 12, 60)
    q = th.q_circ(n)
    assert np.all(np.diff(q) > 0) and np.all(q <= 1) and q[-1] == pytest.approx(1 - 1 / (4 * n[-1]), abs=1e-15)
    assert th.q_circ(0.5) == pytest.approx(special_q(0.5))


def special_q(n):
    from scipy.special import gamma as G

    return G(n + 0.5) ** 2 / (n * G(n) ** 2)


def test_q_white_guards_at_huge_gamma():
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert th.q_white(1e100) == 1.0 and not np.isnan(th.q_white(1e100))
        assert th.q_white(1e12) <= 1.0
        q = th.q_white(np.logspace(3, 100, 40))
    assert np.all(np.diff(q) >= 0) and np.all(q <= 1)
    assert th.q_white(1e12) == pytest.approx(1 - 1 / 4e12, abs=1e-15)


@pytest.mark.parametrize(
    'call, message',
    [
        (lambda: th.convergence_q([1 + 1j, 1.0], 1.0), 'spectrum is complex'),
        (lambda: th.q_white(1 + 1j), 'gamma is complex'),
        (lambda: th.Q_bbp([1.0, 1j], 3.0, 1.0), 'bulk_spectrum is complex'),
        (lambda: th.D_lat((3.0,), 0.0), 'gamma=0 is not allowed'),
        (lambda: th.q_circ(0), 'n=0 is not allowed'),
        (lambda: th.convergence_q_finite(np.ones(5), 1.0, n_z=0), 'n_z=0 is not allowed'),
        (lambda: th.q_white(0.0), 'gamma=0 is not allowed'),
        (lambda: th.q_white(-1.0), 'gamma=-1 is not allowed'),
        (lambda: th.q_white(np.nan), 'NaN'),
        (lambda: th.convergence_q([], 1.0), 'empty'),
        (lambda: th.convergence_q([1.0, -1.0], 1.0), 'negative eigenvalue'),
        (lambda: th.convergence_q([0.0, 0.0], 1.0), 'all zeros'),
        (lambda: th.convergence_q(np.ones(5), 1.0, g='sqrt'), 'is not a spectral map'),
        (lambda: th.m_white(0), 'n=0 is not allowed'),
        (lambda: th.m_white(3, -0.1), 'lam=-0.1 is not allowed'),
        (lambda: th.Q_bbp(1.0, 0.5, 1.0), 'not above the bulk'),
        (lambda: th.power_law_spectrum(0, 1.0), 'd=0 is not allowed'),
        (lambda: th.power_law_spectrum(10, -1.0), 'alpha=-1 is not allowed'),
    ],
)
def test_bad_input(call, message):
    with pytest.raises(MemgenError, match=message):
        call()
