"""Diffusion with linear denoisers: denoisers, samplers, exact covariance propagation and effective maps."""

import numpy as np
import pytest
import torch
from memgen import denoisers as dn, diffusion as df, dynamics as dyn, metrics as M
from memgen.core import MemgenError
from memgen.theory import memorisation_map


@pytest.fixture(scope='module')
def data64():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((200, 64)) * np.linspace(2, 0.3, 64)
    return X, X.T @ X / 200


@pytest.mark.parametrize('eta', [0.0, 1.0])
def test_generated_covariance_converges_to_S(data64, eta):
    X, S = data64
    D, sch = df.optimal_denoiser(X), df.linear_schedule(1000)
    errs = [np.linalg.norm(df.sampled_covariance(D, sch, k, eta) - S) / np.linalg.norm(S) for k in (10, 100, 1000)]
    assert errs[0] > errs[1] > errs[2] and errs[2] < 0.01, errs


def test_matrix_route_equals_spectral_route(data64):
    X, _ = data64
    D, sch = df.optimal_denoiser(X[:20], weight_decay=0.1), df.linear_schedule(200)

    class Dense:  # the same denoiser seen only through .matrix
        d = D.d

        def matrix(self, s):
            return D.matrix(s)

    np.testing.assert_allclose(df.sampled_covariance(Dense(), sch, 30, 1.0), df.sampled_covariance(D, sch, 30, 1.0), atol=1e-10)


def test_samples_lie_in_the_span_of_training_data():
    X = np.random.default_rng(0).standard_normal((5, 40))
    xs = df.ddim_sample(df.optimal_denoiser(X), df.linear_schedule(200), np.random.default_rng(1).standard_normal((8, 40)), steps=50)
    P = X.T @ np.linalg.pinv(X.T)
    np.testing.assert_allclose(xs @ P.T, xs, atol=1e-8)


@pytest.mark.parametrize(
    'name, w',
    [
        ('weight decay', lambda l, s: l / (l + s**2 + 0.5)),
        ('covariance ridge', lambda l, s: (l + 0.3) / (l + 0.3 + s**2)),
        ('early stopping, identity init', lambda l, s: l / (l + s**2) + (1 - l / (l + s**2)) * np.exp(-2 * 0.5 * (l + s**2))),
    ],
)
def test_regularised_map_matches_simulation(name, w):
    rng = np.random.default_rng(2)
    X = rng.standard_normal((30, 20)) * np.linspace(1.5, 0.2, 20)
    D = df.SpectralDenoiser(X, w)
    sch = df.linear_schedule(500)
    xs = df.ddpm_sample(D, sch, rng.standard_normal((20000, 20)), np.random.default_rng(3), steps=60)
    C_mc, C = xs.T @ xs / len(xs), df.sampled_covariance(D, sch, 60, 1.0)
    sd = np.sqrt((np.outer(np.diag(C), np.diag(C)) + C**2) / len(xs))
    assert np.all(np.abs(C_mc - C) < 5 * sd + 1e-12)
    # and its eigenvalues are the effective map g(lambda)^2 on the data eigenvalues
    g2 = df.effective_map(w, D.lam, sch, 60, 1.0) ** 2
    np.testing.assert_allclose(np.sort(np.linalg.eigvalsh(C))[::-1][: len(g2)], np.sort(g2)[::-1], rtol=1e-8, atol=1e-10)


def test_regularisation_and_memorisation():
    sch = df.linear_schedule(1000)
    exact = df.DiffusionMap(lambda l, s: l / (l + s**2), sch, 200)
    ridge = df.DiffusionMap(lambda l, s: (l + 0.5) / (l + 0.5 + s**2), sch, 200)
    decay = df.DiffusionMap(lambda l, s: l / (l + s**2 + 1.0), sch, 200)
    n = np.array([2, 10, 50])
    m0, mr = (memorisation_map(n, 2000, g) for g in (exact, ridge))
    assert np.all(mr < m0 - 0.05)  # isotropic variance lowers memorisation
    # Monte Carlo: run the sampler itself on white data. Weight decay is a pure shrinkage (g(0) = 0), for which the
    # formula gives m0 by construction, so only the sampler can show that it does not lower memorisation.
    rng = np.random.default_rng(4)
    d = 1000
    X = rng.standard_normal((10, d))
    for g, mt in ((ridge.w, mr[1]), (exact.w, m0[1]), (decay.w, m0[1])):
        xs = df.ddim_sample(df.SpectralDenoiser(X, g), sch, rng.standard_normal((300, d)), steps=200)
        m, sem = M.memorisation(xs, X)
        assert abs(m - mt) < 4 * sem + 0.02, (m, mt)


def test_kadkhodaie_sampler_terminates_identically_and_in_span():
    X = np.random.default_rng(0).standard_normal((6, 30))
    D = df.optimal_denoiser(X)
    y0 = np.random.default_rng(1).standard_normal((5, 30)) * 3
    a = df.kadkhodaie_sample(D, y0, np.random.default_rng(7), h0=0.05, beta=0.5, sigma_min=0.01)
    b = df.kadkhodaie_sample(D, y0, np.random.default_rng(7), h0=0.05, beta=0.5, sigma_min=0.01)
    np.testing.assert_array_equal(a, b)
    P = X.T @ np.linalg.pinv(X.T)
    np.testing.assert_allclose(a @ P.T, a, atol=1e-8)
    # torch tensors and a torch generator give the same kind of result
    t = df.kadkhodaie_sample(D, torch.tensor(y0), torch.Generator().manual_seed(7), h0=0.05, sigma_min=0.01)
    assert t.shape == (5, 30) and torch.isfinite(t).all()


def test_torch_sampling_matches_numpy_without_noise():
    X = np.random.default_rng(0).standard_normal((12, 16))
    D, sch = df.optimal_denoiser(X, cov_ridge=0.2), df.linear_schedule(100)
    xT = np.random.default_rng(1).standard_normal((4, 16))
    a = df.ddim_sample(D, sch, xT, steps=25)
    b = df.ddim_sample(D, sch, torch.tensor(xT), steps=25).numpy()
    np.testing.assert_allclose(a, b, atol=1e-10)
    # the other samplers and denoisers: one code path, tensors in, tensors out (same dtype), the numpy numbers
    y0 = 3 * xT  # beta = 1 injects no noise: the generators do not matter
    a = df.kadkhodaie_sample(D, y0, np.random.default_rng(2), h0=0.05, beta=1.0, sigma_min=0.05, max_iter=200)
    b = df.kadkhodaie_sample(D, torch.tensor(y0), torch.Generator().manual_seed(2), h0=0.05, beta=1.0, sigma_min=0.05, max_iter=200)
    assert b.dtype == torch.float64
    np.testing.assert_allclose(b.numpy(), a, atol=1e-10)
    TL = dn.TrainedLinearDenoiser(np.array([0.1, 1.0]), np.stack([0.5 * np.eye(16), np.random.default_rng(3).standard_normal((16, 16))]))
    np.testing.assert_allclose(TL(torch.tensor(xT), 0.9).numpy(), TL(xT, 0.9), atol=1e-12)
    assert TL(torch.tensor(xT, dtype=torch.float32), 0.9).dtype == torch.float32
    sig = np.linspace(0.1, 2.0, 4)
    np.testing.assert_allclose(D(torch.tensor(xT), torch.tensor(sig)).numpy(), D(xT, sig), atol=1e-12)
    with pytest.raises(MemgenError, match='NaN/inf in the sample at sampling step 3'):
        df._check_finite(torch.tensor([[1.0, float('inf')]]), 3, 0.5)


def test_trained_denoiser_approaches_closed_form():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 8)) * np.linspace(1.5, 0.3, 8)
    sig = np.array([0.1, 0.5, 2.0])
    gap = lambda T: max(
        np.linalg.norm(T.matrix(s) - df.optimal_denoiser(X).matrix(s)) / np.linalg.norm(df.optimal_denoiser(X).matrix(s)) for s in sig
    )
    gaps = [gap(dn.train_linear_denoisers(X, sig, steps=k, lr=0.02, device='cpu')[0]) for k in (50, 200, 1500)]
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 0.05, gaps


def test_bad_input():
    X = np.random.default_rng(0).standard_normal((5, 6))
    D = df.optimal_denoiser(X)
    sch = df.linear_schedule(50)
    with pytest.raises(MemgenError, match='not strictly decreasing at t=2'):
        df.Schedule(np.array([0.9, 0.8, 0.85]))
    with pytest.raises(MemgenError, match='steps=0 is not allowed'):
        df.ddim_sample(D, sch, np.zeros((2, 6)), steps=0)
    with pytest.raises(MemgenError, match='steps=60 exceeds'):
        df.ddim_sample(D, sch, np.zeros((2, 6)), steps=60)
    with pytest.raises(MemgenError, match=r'returned shape \(2, 5\) for input \(2, 6\) at step 0'):
        df.ddim_sample(lambda y, s: y[:, :5], sch, np.zeros((2, 6)))
    bad = lambda y, s: y * np.nan if s < 1.0 else y
    with pytest.raises(MemgenError, match=r'NaN/inf in the denoiser output at sampling step \d+ \(sigma=0\.'):
        df.ddim_sample(bad, sch, np.ones((2, 6)))
    with pytest.raises(MemgenError, match='pass a generator'):
        df.ddpm_sample(D, sch, np.zeros((2, 6)), None)
    with pytest.raises(MemgenError, match='beta=0.0 is not allowed; expected 0 < beta <= 1'):
        df.kadkhodaie_sample(D, np.ones((2, 6)), np.random.default_rng(), beta=0.0)


# Training time (beyond the paper): a linear denoiser trained for time tau gives the spectral map g_tau.


@pytest.mark.parametrize('d', [100, 200])
def test_training_time_theory_matches_trained_diffusion_models(d):
    "q(tau) at gamma = 1 and m(tau) at n = 5 of DDIM-sampled models trained for tau, against the theory with g_tau."
    from memgen import theory as th

    for tau in (0.1, 2.0):
        t = df.simulate_diffusion(dyn.GradientFlow(tau), d, ns=(5, d), n_seeds=3, n_samples=40, steps=40, seed=3, show_progress=False)
        s = t.groupby(['n', 'quantity']).value.agg(['mean', 'std', 'count'])
        sem = s['std'] / np.sqrt(s['count'])
        q_th = float(th.q_white(1.0, dyn.training_map(tau, steps=40)))
        m_th = float(dyn.memorisation_curve([tau], 5, d, steps=40)[0])
        assert abs(s.loc[(d, 'q'), 'mean'] - q_th) <= 3 * sem[(d, 'q')] + 1.0 / d, (tau, s.loc[(d, 'q')], q_th)
        assert abs(s.loc[(5, 'm'), 'mean'] - m_th) <= 3 * sem[(5, 'm')] + 0.03, (tau, s.loc[(5, 'm')], m_th)


def test_latent_recovery_does_not_depend_on_training_time():
    "Exact: the generated covariance has the same top eigenvectors at every tau; by simulation: Q of generated samples agrees within errors."
    from memgen.data import SpikedWhite
    from memgen.metrics import latent_recovery, latent_recovery_from_samples

    sw = SpikedWhite(80, betas=(4.0,))
    X = sw.sample(160, np.random.default_rng(0))
    sch = df.linear_schedule(1000)
    exact = [
        latent_recovery(df.sampled_covariance(df.SpectralDenoiser(X, dyn.GradientFlow(t)), sch, 30), sw.latents)[0]
        for t in (0.02, 0.3, 3.0, 30.0)
    ]
    assert np.ptp(exact) < 1e-8 and exact[0] > 0.5, exact
    xT = np.random.default_rng(1).standard_normal((3000, 80))
    sim = [
        latent_recovery_from_samples(df.ddim_sample(df.SpectralDenoiser(X, dyn.GradientFlow(t)), sch, xT, steps=30), sw.latents, n_boot=10)
        for t in (0.3, 30.0)
    ]
    (Q1, e1), (Q2, e2) = sim
    assert abs(Q1[0] - Q2[0]) <= 3 * np.hypot(e1[0], e2[0]) + 1e-3, sim
    assert abs(Q1[0] - exact[0]) <= 3 * e1[0] + 0.02, (Q1, exact)


def test_memorisation_time_scaling_is_flat_in_n():
    "tau_mem(n, d) of linear diffusion models: the power-law exponent in n is far from Bonnaire et al.'s linear growth."
    ns = np.array([2, 8, 32, 128])
    tm = dyn.memorisation_time(ns, 2000, steps=40)
    b = np.polyfit(np.log(ns), np.log(tm), 1)[0]
    assert abs(b) < 0.5, (tm, b)


def test_training_time_bad_input():
    with pytest.raises(MemgenError, match='tau'):
        dyn.GradientFlow(-0.5)
    with pytest.raises(MemgenError, match='beyond the stability limit'):
        dyn.GradientFlow(1.0, lr=0.9)(np.array([1.0, 2.0]), 1.0)
    with pytest.raises(MemgenError, match='non-empty'):
        dyn.training_curves([], [1.0])
    with pytest.raises(MemgenError, match='n < d'):
        dyn.memorisation_time([500], 100)
