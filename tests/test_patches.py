"""Natural patches are disjoint by construction: training sets drawn from the pool share no pixel of any photograph."""

from functools import lru_cache
import numpy as np
import pytest
from memgen import data as D
from memgen.core import MemgenError


@lru_cache(maxsize=None)
def pool(size: int, max_patches: int | None = None) -> D.ImagePool:
    return D.natural_patches(size, max_patches=max_patches)


def footprint(origins: np.ndarray, size: int) -> np.ndarray:
    "Boolean mask (picture, row, col) of the source pixels that the patches at `origins` cover, independent of patch_overlap."
    m = np.zeros((len(D.NATURAL_IMAGES), 700, 700), bool)
    for k, r, c in origins:
        m[k, r : r + size, c : c + size] = True
    return m


def origins_of(p: D.ImagePool, X: np.ndarray) -> np.ndarray:
    "Origins of the rows of X, found by content (the patches of a pool are distinct)."
    index = {r.tobytes(): i for i, r in enumerate(p.images)}
    return p.origins[[index[r.tobytes()] for r in X]]


def shared_pixels(p: D.ImagePool, *sets) -> list[int]:
    "Number of source pixels shared by each pair of sets."
    fp = [footprint(origins_of(p, X), p.H) for X in sets]
    return [int((fp[a] & fp[b]).sum()) for a in range(len(fp)) for b in range(a + 1, len(fp))]


@pytest.mark.parametrize('size, max_patches', [(12, 20000), (32, None)])
def test_disjoint_sets_share_no_pixel(size, max_patches):
    p = pool(size, max_patches)
    assert len({r.tobytes() for r in p.images}) == len(p)  # de-duplicated
    for N in (1024, len(p) // 2):
        A, B = p.sample_disjoint(N, np.random.default_rng(N))
        assert shared_pixels(p, A, B) == [0], N
        assert D.patch_overlap(origins_of(p, A), origins_of(p, B), size).max() == 0
    # the denoisers' split (two training sets and held-out images) at the largest N it allows
    A, B, T = p.sample_disjoint((len(p) - 64) // 2, np.random.default_rng(1), n_test=64)
    assert shared_pixels(p, A, B, T) == [0, 0, 0]


def test_old_overlapping_cut_fails_the_check():
    x, o = D._cut(D.NATURAL_IMAGES, 12, 6)  # the former default: stride size // 2
    x, first = np.unique(x, axis=0, return_index=True)
    keep = np.random.default_rng(0).choice(len(x), 20000, replace=False)
    old = D.ImagePool(D.standardise(x[keep]), 12, 12, origins=o[first][keep])
    A, B = old.sample_disjoint(1024, np.random.default_rng(0))
    assert shared_pixels(old, A, B)[0] > 0
    frac = D.patch_overlap(origins_of(old, A), origins_of(old, B), 12)
    assert 0.05 < np.mean(frac >= 0.25) < 0.15  # measured: 10% (12% reported before the fix)


def test_origins_locate_each_patch():
    p = pool(16)
    pictures = [D._gray_picture(n) for n in D.NATURAL_IMAGES]
    crops = np.array([pictures[k][r : r + 16, c : c + 16].ravel() for k, r, c in p.origins])
    np.testing.assert_allclose(D.standardise(crops), p.images, atol=1e-12)
    assert (p.origins[:, 1:] % 16 == 0).all() and p.origins.dtype.kind == 'i'


def test_patch_overlap_closed_forms_and_brute_force():
    assert D.patch_overlap([[0, 0, 0]], [[0, 6, 6], [0, 0, 6], [0, 3, 0], [1, 0, 0], [0, 12, 0], [0, -11, 11]], 12).tolist() == [
        0.25,
        0.5,
        0.75,
        0.0,
        0.0,
        1 / 144,
    ]
    rng = np.random.default_rng(0)
    a = np.c_[rng.integers(0, 3, 120), rng.integers(0, 40, (120, 2))]
    b = np.c_[rng.integers(0, 3, 80), rng.integers(0, 40, (80, 2))]
    pix = lambda o: {(int(k), r, c) for k, r0, c0 in o for r in range(r0, r0 + 8) for c in range(c0, c0 + 8)}
    brute = [max(len(pix([ob]) & pix([oa])) for oa in a) / 64 for ob in b]
    np.testing.assert_allclose(D.patch_overlap(a, b, 8), brute)


def test_stride_and_origins_checks():
    with pytest.raises(MemgenError, match=r'stride=6 < size=12 cuts overlapping patches.*expected stride >= 12'):
        D.natural_patches(12, stride=6)
    sparse = D.natural_patches(8, stride=20, images=('camera', 'coins'))  # gaps between tiles are allowed
    assert (sparse.origins[:, 1:] % 20 == 0).all() and shared_pixels(
        sparse, *sparse.sample_disjoint(len(sparse) // 2, np.random.default_rng(0))
    ) == [0]
    with pytest.raises(MemgenError, match=r'origins has shape \(4, 2\).*expected integers of shape \(4, 3\)'):
        D.ImagePool(np.zeros((4, 4)), 2, 2, origins=np.zeros((4, 2), int))
    with pytest.raises(MemgenError, match=r'origins_b has shape \(2,\)'):
        D.patch_overlap(np.zeros((1, 3)), np.zeros(2), 4)


def test_pools_fit_the_chapter_and_specs():
    "Non-overlapping tiles: the real chapter's quick profile (12x12, N up to 1024, gamma up to 4) and H = 16, 32 fit."
    assert len(pool(12, 20000)) >= max(2 * 1024 + 64, 2 * 4 * 144)
    assert len(pool(16)) >= 2 * 1024 + 64 and len(pool(32)) >= 2 * 1024 + 64
