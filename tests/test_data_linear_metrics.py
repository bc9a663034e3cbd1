"""Data generators, the linear generative model and the metrics (issue: data generators and linear models).

Sampling-error tolerances: for n samples, each entry of the empirical covariance has standard deviation
sqrt((S_ii S_jj + S_ij^2) / n); we require every entry within 5 such standard deviations."""
from functools import partial
import numpy as np
import pytest
import torch
from memgen import data as D, metrics as M
from memgen.core import MemgenError
from memgen.linear import LinearGenerativeModel, SimConfig, simulate, fit_pair, draw_seeds
from memgen.theory import RidgeSqrt

GENERATORS = [
    D.SpikedWhite(30, betas=(4.0, 1.0), seed=1),
    D.PowerLaw(30, alpha=1.0, seed=2),
    D.PowerLaw(30, alpha=0.5, rotate=True, betas=(3.0,), seed=3),
    D.StationaryImages(6, 6, alpha=2.0, betas=(2.0,), seed=4),
]


@pytest.mark.parametrize('model', GENERATORS, ids=lambda m: type(m).__name__)
def test_covariance_of_samples_matches_declared(model):
    n = 10_000
    X = model.sample(n, np.random.default_rng(0))
    S, C = X.T @ X / n, model.covariance()
    sd = np.sqrt((np.outer(np.diag(C), np.diag(C)) + C**2) / n)
    assert np.all(np.abs(S - C) < 5 * sd), np.max(np.abs(S - C) / sd)
    np.testing.assert_allclose(np.sort(np.linalg.eigvalsh(C))[::-1], model.spectrum(), atol=1e-8)


@pytest.mark.parametrize('alpha', [1.0, 2.0, 3.0])
def test_stationary_images_follow_the_power_law(alpha):
    m = D.StationaryImages(32, 32, alpha=alpha)
    k, P = D.radial_power(m.sample(300, np.random.default_rng(1)), 32, 32)
    sel = (k >= 3) & (k <= 12)
    # compare with the declared spectrum (|k|^2 + 1)^(-alpha/2), normalised to mean 1
    declared = (k[sel]**2 + 1.0)**(-alpha / 2) / ((D._freq2(32, 32) + 1.0)**(-alpha / 2)).mean()
    np.testing.assert_allclose(P[sel], declared, rtol=0.1)


def test_disjoint_splits():
    pool = D.natural_patches(8, max_patches=2000)
    A, B = pool.sample_disjoint(900, np.random.default_rng(0))
    rows = lambda X: {r.tobytes() for r in X}
    assert len(rows(A)) == 900 and not rows(A) & rows(B)
    A, B, T = D.disjoint_split(np.arange(100)[:, None], 40, np.random.default_rng(1), n_test=20)
    assert not (set(A.ravel()) & set(B.ravel())) and not (set(T.ravel()) & (set(A.ravel()) | set(B.ravel())))
    with pytest.raises(MemgenError, match='n=1001 per set needs 2002 images'):
        pool.sample_disjoint(1001, np.random.default_rng(0))


@pytest.mark.parametrize('g', [None, RidgeSqrt(0.3)])
@pytest.mark.parametrize('n', [10, 60])
def test_linear_model_samples_have_covariance_g_of_S_squared(g, n):
    d, m = 40, 40_000
    X = np.random.default_rng(n).standard_normal((n, d))
    mdl = LinearGenerativeModel(g).fit(X)
    w, V = np.linalg.eigh(X.T @ X / n)
    gS = (V * (g or RidgeSqrt())(np.clip(w, 0, None))) @ V.T
    xs = mdl.sample(np.random.default_rng(0).standard_normal((m, d)))
    C = gS @ gS
    sd = np.sqrt((np.outer(np.diag(C), np.diag(C)) + C**2) / m)
    assert np.all(np.abs(xs.T @ xs / m - C) < 5 * sd + 1e-12)
    np.testing.assert_allclose(mdl.covariance(), C, atol=1e-10)


def test_same_seed_same_sample_and_deterministic_simulation():
    model = D.SpikedWhite(50, betas=(2.0,))
    a1, b1, *_ = fit_pair(model, 20, np.random.default_rng(5))
    a2, b2, *_ = fit_pair(model, 20, np.random.default_rng(5))
    z = draw_seeds(10, 50, np.random.default_rng(9))
    np.testing.assert_array_equal(a1.sample(z), a2.sample(z))
    cfg = SimConfig(data=partial(D.SpikedWhite, betas=(2.0,)), ds=(40,), gammas=(0.5, 2.0), n_seeds=2, n_samples=20)
    t1, t2 = simulate(cfg, show_progress=False), simulate(cfg, show_progress=False)
    assert t1.equals(t2)


def test_torch_backend_matches_numpy():
    X = np.random.default_rng(0).standard_normal((30, 20)); z = np.random.default_rng(1).standard_normal((7, 20))
    a = LinearGenerativeModel().fit(X).sample(z)
    b = LinearGenerativeModel().fit(torch.tensor(X)).sample(torch.tensor(z)).numpy()
    np.testing.assert_allclose(a, b, atol=1e-10)


def _brute_nearest(s, t):
    su, tu = s / np.linalg.norm(s, axis=1, keepdims=True), t / np.linalg.norm(t, axis=1, keepdims=True)
    return [max(abs(float(a @ b)) for b in tu) for a in su]


def test_memorisation_metric_matches_brute_force_with_chunks():
    rng = np.random.default_rng(2); s, t = rng.standard_normal((20, 12)), rng.standard_normal((1000, 12))
    best, _ = M.nearest_cosine(s, t, chunk=97)
    np.testing.assert_allclose(best, _brute_nearest(s, t), atol=1e-12)
    bt, _ = M.nearest_cosine(torch.tensor(s), torch.tensor(t), chunk=97)
    np.testing.assert_allclose(bt.numpy(), best, atol=1e-12)


def test_nn_ratio_matches_brute_force():
    rng = np.random.default_rng(3); t = rng.standard_normal((300, 5))
    s = np.r_[t[:10] + 0.01 * rng.standard_normal((10, 5)), rng.standard_normal((30, 5))]
    d = np.linalg.norm(s[:, None] - t[None], axis=2); d.sort(axis=1)
    expect = np.mean(d[:, 0] / d[:, 1] < 1 / 3)
    assert M.nn_ratio_memorised(s, t, chunk=64)[0] == pytest.approx(expect)
    assert M.nn_ratio_memorised(torch.tensor(s), torch.tensor(t), chunk=64)[0] == pytest.approx(expect)


def test_celeba_loader_on_a_tiny_fixture(tmp_path):
    from PIL import Image
    rng = np.random.default_rng(0)
    for i in range(3): Image.fromarray((rng.uniform(size=(218, 178)) * 255).astype(np.uint8)).save(tmp_path / f'{i:06d}.jpg')
    pool = D.load_celeba(str(tmp_path))
    assert pool.images.shape == (3, 6400) and pool.H == 80
    np.save(tmp_path / 'faces.npy', rng.uniform(size=(5, 80, 80)))
    assert D.load_celeba(str(tmp_path / 'faces.npy')).images.shape == (5, 6400)
    torch.save(torch.rand(4, 1, 80, 80), tmp_path / 'faces.pt')
    assert D.load_celeba(str(tmp_path / 'faces.pt')).images.shape == (4, 6400)


@pytest.mark.parametrize('call, message', [
    (lambda: D.SpikedWhite(10, betas=(-1.0,)), 'betas=-1 is not allowed'),
    (lambda: D.PowerLaw(10, alpha=-0.5), 'alpha=-0.5 is not allowed'),
    (lambda: D.SpikedWhite(0), 'd=0 is not allowed'),
    (lambda: D.SpikedWhite(10).sample(0, np.random.default_rng()), 'n=0 is not allowed'),
    (lambda: D.StationaryImages(0, 4), 'H=0 is not allowed'),
    (lambda: D.ImagePool(np.zeros((4, 5, 5)), 4, 4), 'expected (N, 4, 4)'),
    (lambda: D.load_celeba('/no/such/path'), 'CelebA not found at /no/such/path'),
    (lambda: D.natural_patches(8, images=('nope',)), "which skimage.data does not have"),
    (lambda: LinearGenerativeModel().fit(np.ones(5)), 'expected a 2-D array'),
    (lambda: LinearGenerativeModel().fit(np.array([[1.0, np.nan]])), 'NaN'),
    (lambda: LinearGenerativeModel().fit(np.ones((3, 4))).sample(np.ones((2, 5))), 'z has 5 columns; expected d=4'),
    (lambda: M.convergence(np.ones((3, 4)), np.ones((2, 4))), 'expected equal shapes'),
    (lambda: M.memorisation(np.ones((3, 4)), np.ones((2, 5))), 'samples have 4 features but train has 5'),
    (lambda: M.latent_recovery(np.eye(3), np.ones((1, 4))), 'expected (d, d) and (r, d)'),
])
def test_bad_input(call, message):
    with pytest.raises(MemgenError, match=message.replace('(', r'\(').replace(')', r'\)')):
        call()
