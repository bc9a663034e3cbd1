"""Benchmark: the theory curve q(gamma) for a power-law spectrum vs a Monte-Carlo estimate of the same curve.

Prints the time of memgen.theory.convergence_q (d = 10^4, 100 values of gamma) and of a Monte-Carlo estimate of q
at d = 10^3 to 1% precision on the same gamma grid (extrapolated from a timed subset), and their ratio."""

import time
import numpy as np
from memgen.theory import convergence_q, power_law_spectrum
from memgen.linear import SimConfig, simulate
from memgen.tables import summarise
from memgen.data import PowerLaw


def best_of(f, k=3):
    ts = []
    for _ in range(k):
        t = time.perf_counter()
        out = f()
        ts.append(time.perf_counter() - t)
    return min(ts), out


def main():
    gammas = np.logspace(-2, 2, 100)
    spec = power_law_spectrum(10_000, 1.0)
    t_theory, q = best_of(lambda: convergence_q(spec, gammas))
    print(f"theory: convergence_q, power law alpha=1, d=10^4, 100 gammas: {t_theory * 1e3:.0f} ms")

    # Monte Carlo at d = 1000: seeds needed for a standard error of 1% of q, timed on a subset of gammas.
    d, sub = 1000, gammas[::20]
    t0 = time.perf_counter()
    tab = simulate(SimConfig(PowerLaw(d, 1.0), gammas=tuple(sub), n_seeds=3, n_samples=100, quantities=('q',)), show_progress=False)
    t_sub = time.perf_counter() - t0
    per_pair = t_sub / (len(sub) * 3)
    s = summarise(tab)
    sd, qm = (s['sem'] * np.sqrt(s['count'])).to_numpy(), s.value.to_numpy()
    seeds = np.maximum(3, np.ceil((sd / (0.01 * qm)) ** 2))  # seeds for sem = 1% of q
    t_mc = per_pair * seeds.mean() * len(gammas)
    print(
        f"monte carlo: d=1000, 1% precision, 100 gammas: {t_mc:.1f} s (extrapolated from {t_sub:.1f} s, {seeds.mean():.0f} pairs per gamma)"
    )
    print(f"ratio monte carlo / theory: {t_mc / t_theory:.0f}x")


if __name__ == '__main__':
    main()
