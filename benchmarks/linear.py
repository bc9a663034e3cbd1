"""Benchmark: sampling from a linear generative model, and the nearest-neighbour memorisation metric.

1. Draw 1000 samples from a model fit on n = d/10 points at d = 4000: memgen's thin-SVD path (O(n^2 d) fit,
   O(n d) per sample) vs the naive path (d x d covariance, eigh, d x d matrix square root).
2. Nearest-training-point cosine of 200 samples against 10^4 training images (d = 256): memgen's chunked matrix
   products vs a plain Python loop over training points."""

import time
import numpy as np
from memgen.linear import LinearGenerativeModel
from memgen.metrics import nearest_cosine


def timed(f):
    t = time.perf_counter()
    out = f()
    return time.perf_counter() - t, out


def naive_samples(X, z):
    n = len(X)
    w, V = np.linalg.eigh(X.T @ X / n)
    return z @ ((V * np.sqrt(np.clip(w, 0, None))) @ V.T)


def loop_nearest(s, t):
    su = s / np.linalg.norm(s, axis=1, keepdims=True)
    best = np.zeros(len(s))
    for x in t:  # one training point at a time
        c = np.abs(su @ (x / np.linalg.norm(x)))
        best = np.maximum(best, c)
    return best


def main():
    rng = np.random.default_rng(0)
    d = 4000
    n = d // 10
    X = rng.standard_normal((n, d))
    z = rng.standard_normal((1000, d))
    t_svd, a = timed(lambda: LinearGenerativeModel().fit(X).sample(z))
    t_eigh, b = timed(lambda: naive_samples(X, z))
    assert np.allclose(a, b, atol=1e-6)
    print(f"sampling 1000 at d={d}, n={n}: thin SVD {t_svd:.2f} s, naive d x d eigh {t_eigh:.2f} s, ratio {t_eigh / t_svd:.1f}x")

    s, t = rng.standard_normal((200, 256)), rng.standard_normal((10_000, 256))
    t_fast, (best, _) = timed(lambda: nearest_cosine(s, t))
    t_loop, ref = timed(lambda: loop_nearest(s, t))
    assert np.allclose(best, ref)
    print(
        f"nearest cosine, 200 samples vs 10^4 training images: chunked {t_fast * 1e3:.0f} ms, "
        f"Python loop {t_loop * 1e3:.0f} ms, ratio {t_loop / t_fast:.0f}x"
    )


if __name__ == '__main__':
    main()
