"""Data generators, the linear generative model and the metrics (issue: data generators and linear models).

Sampling-error tolerances: for n samples, each entry of the empirical covariance has standard deviation
sqrt((S_ii S_jj + S_ij^2) / n); we require every entry within 5 such standard deviations."""

from functools import partial
import numpy as np
import pytest
import torch
from memgen import data as D, metrics as M
from memgen.core import MemgenError
from memgen.tables import summarise
from memgen.linear import LinearGenerativeModel, CirculantGenerativeModel, SimConfig, simulate, fit_pair, QUANTITIES
from memgen.theory import RidgeSqrt, Q_bbp, q_circ

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
    x = m.sample(300, np.random.default_rng(1)).reshape(-1, 32, 32)
    P2, kr = np.mean(np.abs(np.fft.fft2(x)) ** 2, axis=0).ravel() / 1024, np.rint(np.sqrt(D._freq2(32, 32))).astype(int).ravel()
    k = np.unique(kr)
    P = np.array([P2[kr == v].mean() for v in k])  # the radially averaged power at integer |k|
    sel = (k >= 3) & (k <= 12)
    # compare with the declared spectrum (|k|^2 + 1)^(-alpha/2), normalised to mean 1
    declared = (k[sel] ** 2 + 1.0) ** (-alpha / 2) / ((D._freq2(32, 32) + 1.0) ** (-alpha / 2)).mean()
    np.testing.assert_allclose(P[sel], declared, rtol=0.1)


def test_disjoint_splits():
    pool = D.natural_patches(8, max_patches=2000)
    A, B = pool.sample_disjoint(900, np.random.default_rng(0))
    rows = lambda X: {r.tobytes() for r in X}
    assert len(rows(A)) == 900 and not rows(A) & rows(B)
    A, B, T = pool.sample_disjoint(40, np.random.default_rng(1), n_test=20)
    assert len(rows(A) | rows(B) | rows(T)) == 100  # three disjoint sets
    with pytest.raises(MemgenError, match='n=1001 per set needs 2002 images'):
        pool.sample_disjoint(1001, np.random.default_rng(0))


@pytest.mark.parametrize(
    'model',
    GENERATORS + [D.GaussianSurrogate(D.natural_patches(8, max_patches=200)), D.natural_patches(8, max_patches=200)],
    ids=lambda m: type(m).__name__,
)
def test_every_model_is_a_data_model_with_one_sample_disjoint(model):
    assert isinstance(model, D.DataModel) and type(model).sample_disjoint is D.DisjointDraws.sample_disjoint
    A, B, T = D.sample_disjoint(model, 50, np.random.default_rng(3), n_test=20)
    assert A.shape == B.shape == (50, model.d) and T.shape == (20, model.d)
    rows = lambda X: {r.tobytes() for r in X}
    assert not rows(A) & rows(B) and not rows(T) & (rows(A) | rows(B))
    again = model.sample_disjoint(50, np.random.default_rng(3), 2, n_test=20)  # the method is the function
    assert all(np.array_equal(x, y) for x, y in zip((A, B, T), again))
    if isinstance(model, D.FinitePool):
        with pytest.raises(
            MemgenError, match=r'n=95 per set needs 210 images \(2 sets and n_test=20\) but natural patches 8x8 has 200; expected n <= 90'
        ):
            model.sample_disjoint(95, np.random.default_rng(0), n_test=20)


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
    z = np.random.default_rng(9).standard_normal((10, 50))
    np.testing.assert_array_equal(a1.sample(z), a2.sample(z))
    cfg = SimConfig(data=partial(D.SpikedWhite, betas=(2.0,)), ds=(40,), gammas=(0.5, 2.0), n_seeds=2, n_samples=20)
    t1, t2 = simulate(cfg, show_progress=False), simulate(cfg, show_progress=False)
    assert t1.equals(t2)


def test_torch_backend_matches_numpy():
    X = np.random.default_rng(0).standard_normal((30, 20))
    z = np.random.default_rng(1).standard_normal((7, 20))
    a = LinearGenerativeModel().fit(X).sample(z)
    b = LinearGenerativeModel().fit(torch.tensor(X)).sample(torch.tensor(z)).numpy()
    np.testing.assert_allclose(a, b, atol=1e-10)


def _brute_nearest(s, t):
    su, tu = s / np.linalg.norm(s, axis=1, keepdims=True), t / np.linalg.norm(t, axis=1, keepdims=True)
    return [max(abs(float(a @ b)) for b in tu) for a in su]


def test_memorisation_metric_matches_brute_force_with_chunks():
    rng = np.random.default_rng(2)
    s, t = rng.standard_normal((20, 12)), rng.standard_normal((1000, 12))
    best, _ = M.nearest_cosine(s, t, chunk=97)
    np.testing.assert_allclose(best, _brute_nearest(s, t), atol=1e-12)
    bt, _ = M.nearest_cosine(torch.tensor(s), torch.tensor(t), chunk=97)
    np.testing.assert_allclose(bt.numpy(), best, atol=1e-12)


def test_nn_ratio_matches_brute_force():
    rng = np.random.default_rng(3)
    t = rng.standard_normal((300, 5))
    s = np.r_[t[:10] + 0.01 * rng.standard_normal((10, 5)), rng.standard_normal((30, 5))]
    d = np.linalg.norm(s[:, None] - t[None], axis=2)
    d.sort(axis=1)
    expect = np.mean(d[:, 0] / d[:, 1] < 1 / 3)
    assert M.nn_ratio_memorised(s, t, chunk=64)[0] == pytest.approx(expect)
    assert M.nn_ratio_memorised(torch.tensor(s), torch.tensor(t), chunk=64)[0] == pytest.approx(expect)


def test_sample_metrics_one_path_for_numpy_and_torch():
    "numpy and torch take one array-API code path: the same numbers, results in the input's namespace and dtype."
    rng = np.random.default_rng(4)
    s, t = rng.standard_normal((15, 9)), rng.standard_normal((40, 9)) + 0.2
    t[7] = t[3]  # a repeated training point: ties in both metrics
    for chunk in (1, 3, 8192):  # chunks of one training point have no second nearest
        b, a = M.nearest_cosine(s, t, chunk=chunk)
        bt, at = M.nearest_cosine(torch.tensor(s), torch.tensor(t), chunk=chunk)
        assert bt.dtype == torch.float64 and at.dtype == torch.int64
        np.testing.assert_allclose(bt.numpy(), b, atol=1e-12)
        np.testing.assert_array_equal(at.numpy(), a)
        assert M.nn_ratio_memorised(torch.tensor(s), torch.tensor(t), 0.9, chunk) == M.nn_ratio_memorised(s, t, 0.9, chunk)
    # float32 tensors on the CPU are measured in float64, like numpy
    assert M.memorisation(torch.tensor(s, dtype=torch.float32), t) == pytest.approx(M.memorisation(s.astype(np.float32), t), abs=1e-12)
    assert M.convergence(torch.tensor(s), torch.tensor(s[::-1].copy()), centre=True) == pytest.approx(
        M.convergence(s, s[::-1], centre=True), abs=1e-12
    )


def test_training_mean_and_per_image_centring_have_distinct_names():
    rng = np.random.default_rng(5)
    s, t = rng.standard_normal((10, 6)) + 2, rng.standard_normal((30, 6)) + 2
    mu = t.mean(0)
    assert M.memorisation(s, t, subtract_mean=True) == pytest.approx(M.memorisation(s - mu, t - mu), abs=1e-12)
    bt, _ = M.nearest_cosine(torch.tensor(s), torch.tensor(t), subtract_mean=True)
    np.testing.assert_allclose(bt.numpy(), M.nearest_cosine(s - mu, t - mu)[0], atol=1e-12)
    with pytest.raises(TypeError, match="unexpected keyword argument 'centre'"):  # centre= means per image (convergence)
        M.memorisation(s, t, centre=True)
    per_image = M.memorisation(M.centre_images(s), M.centre_images(t))[0]
    assert per_image != pytest.approx(M.memorisation(s, t, subtract_mean=True)[0], abs=1e-3)


def test_celeba_loader_on_a_tiny_fixture(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray((rng.uniform(size=(218, 178)) * 255).astype(np.uint8)).save(tmp_path / f'{i:06d}.jpg')
    pool = D.load_celeba(str(tmp_path))
    assert pool.images.shape == (3, 6400) and pool.H == 80
    np.save(tmp_path / 'faces.npy', rng.uniform(size=(5, 80, 80)))
    assert D.load_celeba(str(tmp_path / 'faces.npy')).images.shape == (5, 6400)
    torch.save(torch.rand(4, 1, 80, 80), tmp_path / 'faces.pt')
    assert D.load_celeba(str(tmp_path / 'faces.pt')).images.shape == (4, 6400)


def test_latent_recovery_does_not_pair_by_rank():
    # betas listed weakest first: rank pairing would pair u_1 (beta = 1) with the beta = 5 eigenvector and report ~0
    model = D.SpikedWhite(100, betas=(1.0, 5.0), seed=1)
    gamma = 50
    X = model.sample(gamma * 100, np.random.default_rng(0))
    C = X.T @ X / len(X)
    bbp = [Q_bbp(1.0, 1 + b, gamma) for b in (1.0, 5.0)]  # 0.96, 0.999
    for method in ('subspace', 'best'):
        Q = M.latent_recovery(C, model.latents, method=method)
        assert np.all(Q > 0.9) and np.allclose(Q, bbp, atol=0.03), (method, Q, bbp)
    paired = np.sum(model.latents * M.top_eigenvectors(C, 2).T, axis=1) ** 2
    assert np.all(paired < 0.05), paired
    # the LinearOperator route (Lanczos on generated samples) gives the same subspace overlaps
    xs = LinearGenerativeModel().fit(X).sample(np.random.default_rng(1).standard_normal((3000, 100)))
    Qs, err = M.latent_recovery_from_samples(xs, model.latents, n_boot=5)
    assert np.all(Qs > 0.85) and np.all(err < 0.05), (Qs, err)


def test_latent_distance_is_chordal():
    rng = np.random.default_rng(4)
    d, r = 30, 3
    V = np.linalg.qr(rng.standard_normal((d, d)))[0]
    C = (V * np.r_[10.0, 8.0, 6.0, np.ones(d - 3)]) @ V.T
    assert M.latent_distance(C, rng.standard_normal((3, 3)) @ V[:, :3].T) == pytest.approx(0.0, abs=1e-10)  # any basis
    assert M.latent_distance(C, V[:, 3:6].T) == pytest.approx(1.0, abs=1e-10)
    U = np.linalg.qr(rng.standard_normal((d, r)))[0]
    expect = 1 - np.linalg.norm(U.T @ V[:, :3]) ** 2 / r
    assert M.latent_distance(C, U.T) == pytest.approx(expect, abs=1e-10) and 0 <= expect <= 1
    from scipy.sparse.linalg import aslinearoperator

    assert M.latent_distance(aslinearoperator(C), U.T) == pytest.approx(expect, abs=1e-8)
    assert M.operator_distance(np.diag([2.0, 1.0]), np.eye(2)) == pytest.approx(0.5)


def test_centred_convergence_and_scale_invariance():
    a, b = np.random.default_rng(5).standard_normal((2, 100, 64))
    raw, cen = M.convergence(a, b)[0], M.convergence(a, b, centre=True)[0]
    assert abs(M.convergence(a + 5.0, b + 5.0)[0] - raw) > 0.5  # the offset dominates the raw cosine
    assert M.convergence(a + 5.0, b + 5.0, centre=True)[0] == pytest.approx(cen, abs=1e-12)
    assert M.convergence(1e200 * a, 1e200 * b)[0] == pytest.approx(raw, abs=1e-12)
    assert M.convergence(1e-200 * a, 1e-200 * b)[0] == pytest.approx(raw, abs=1e-12)


def test_simulation_quantities_d_lat_and_d_op():
    assert QUANTITIES == ('m', 'q', 'Q', 'D_bulk', 'D_lat', 'D_op')
    cfg = SimConfig(data=partial(D.SpikedWhite, betas=(4.0,)), ds=(60,), gammas=(0.5, 2.0), n_seeds=2, n_samples=20)
    sm = summarise(simulate(cfg, show_progress=False)).set_index(['gamma', 'quantity']).value
    assert sm[2.0, 'D_lat'] == pytest.approx(1 - sm[2.0, 'Q'], abs=1e-9) and 0 <= sm[2.0, 'D_lat'] < sm[0.5, 'D_lat'] <= 1
    assert sm[0.5, 'D_op'] > 0
    # a data model without latents: no Q and no D_lat rows, the rest as usual
    cfg2 = SimConfig(data=lambda d: D.SpikedWhite(d), ds=(40,), gammas=(1.0,), n_seeds=1, n_samples=10)
    assert set(simulate(cfg2, show_progress=False).quantity) == {'m', 'q', 'D_bulk', 'D_op'}


def test_circulant_model_convergence_matches_q_circ():
    """Two circulant models on disjoint sets of n white stationary 32x32 images: MC q vs q_circ(n), tolerance 0.01
    (measured sem about 0.003 at n = 1 with 16 training-set pairs; finite-d bias O(1/d))."""
    si = D.StationaryImages(32, 32, alpha=0.0)
    for n in (1, 2, 4, 16):
        rng = np.random.default_rng(n)
        qs = []
        for _ in range(16):
            XA, XB = si.sample_disjoint(n, rng, 2)
            z = rng.standard_normal((20, si.d))
            qs.append(
                M.convergence(CirculantGenerativeModel(32, 32).fit(XA).sample(z), CirculantGenerativeModel(32, 32).fit(XB).sample(z))[0]
            )
        assert abs(np.mean(qs) - q_circ(n)) < 0.01, (n, np.mean(qs), q_circ(n))


def test_circulant_model_does_not_recover_localised_templates():
    # pixel templates on white stationary images, n = 1200 at d = 576: Q <= 2 r / d for the circulant model, BBP for the linear one
    si = D.StationaryImages(24, 24, alpha=0.0)
    rng = np.random.default_rng(7)
    pix = np.eye(si.d)[[100, 300, 500]]
    X = D.add_latents(si.sample(1200, rng), (6.0, 4.0, 3.0), pix, rng)
    cm = CirculantGenerativeModel(24, 24).fit(X)
    Qc = M.latent_recovery(cm.covariance(), pix)
    assert np.all(Qc < 0.05) and np.all(Qc <= 6 / si.d + 1e-9), Qc
    assert np.all(M.latent_recovery(LinearGenerativeModel().fit(X).covariance(), pix) > 0.75)
    Mz = cm.sample(np.eye(si.d))
    np.testing.assert_allclose(cm.covariance(), Mz @ Mz.T, atol=1e-10)


def test_linear_model_guards_numpy_and_torch():
    with pytest.raises(MemgenError, match='X is empty'):
        LinearGenerativeModel().fit(np.zeros((0, 4)))
    with pytest.raises(MemgenError, match='X is empty'):
        LinearGenerativeModel().fit(torch.zeros(0, 4))
    with pytest.raises(MemgenError, match='NaN'):
        LinearGenerativeModel().fit(torch.tensor([[1.0, float('nan')]]))
    with pytest.raises(MemgenError, match='X is complex'):
        LinearGenerativeModel().fit(np.ones((3, 4)) * 1j)
    with pytest.raises(MemgenError, match='X is complex'):
        LinearGenerativeModel().fit(torch.ones(3, 4, dtype=torch.complex128))
    X = np.random.default_rng(0).standard_normal((5, 4))
    bad = np.array([[0.0, np.nan, 1.0, 2.0]])
    with pytest.raises(MemgenError, match='z contains 1 NaN'):
        LinearGenerativeModel().fit(X).sample(bad)
    with pytest.raises(MemgenError, match='z contains NaN'):
        LinearGenerativeModel().fit(torch.tensor(X)).sample(torch.tensor(bad))


@pytest.mark.parametrize(
    'call, message',
    [
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
        (lambda: M.latent_recovery(np.eye(3), np.ones((1, 3)), method='paired'), "method='paired' is not allowed"),
        (lambda: M.latent_distance(np.eye(3), [[1.0, 0, 0], [2.0, 0, 0]]), 'linearly dependent'),
        (lambda: M.memorisation(np.ones((3, 4)), np.ones((2, 4)), chunk=-1), 'chunk=-1 is not allowed'),
        (lambda: M.nearest_cosine(np.ones((3, 4)), np.ones((2, 4)), chunk=0), 'chunk=0 is not allowed'),
        (lambda: M.nn_ratio_memorised(np.ones((3, 4)), np.ones((2, 4)), chunk=0), 'chunk=0 is not allowed'),
        (lambda: M.convergence(np.ones((3, 4)) * 1j, np.ones((3, 4))), 'samples_a is complex'),
        (lambda: M.memorisation(np.ones((3, 4)), np.ones((2, 4)) + 0j), 'train is complex'),
        (lambda: M.memorisation(torch.ones(3, 4, dtype=torch.complex128), np.ones((2, 4))), 'samples is complex'),
        (lambda: M.latent_recovery(np.eye(3) * 1j, np.ones((1, 3))), 'cov is complex'),
        (lambda: M.operator_distance(np.eye(3), np.eye(3) + 0j), 'C is complex'),
        (lambda: M.bulk_distance(np.eye(3) * 1j, np.eye(3)), 'A is complex'),
        (lambda: CirculantGenerativeModel(4, 4).fit(np.ones((2, 15))), 'X has shape (2, 15); expected rows of length'),
        (lambda: CirculantGenerativeModel(0, 4), 'H=0 is not allowed'),
    ],
)
def test_bad_input(call, message):
    with pytest.raises(MemgenError, match=message.replace('(', r'\(').replace(')', r'\)')):
        call()
