"""Benchmark: the theory curve q(gamma) for a power-law spectrum: its time, its accuracy, and a Monte-Carlo estimate.

Prints the time of memgen.theory.convergence_q (d = 10^4, 100 values of gamma), its largest deviation from a reference
evaluation of the same formula with 16 times the eigenvalue nodes and half the table step (the settings of the previous
implementation, or finer), the reference's time, and the time of a Monte-Carlo estimate of q at d = 10^3 to 1% precision
on the same gamma grid (extrapolated from a timed subset), with the ratios."""

import time
from unittest import mock
import numpy as np
from memgen import theory
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
    print(f"theory: convergence_q, power law alpha=1, d=10^4, 100 gammas: {t_theory * 1e3:.1f} ms")
    with mock.patch.object(theory, '_NODES', 16 * theory._NODES), mock.patch.object(theory._Spectrum, 'STEP', theory._Spectrum.STEP / 2):
        t_ref, q_ref = best_of(lambda: convergence_q(spec, gammas), k=1)
    print(
        f"reference (16x nodes, half the table step): {t_ref * 1e3:.0f} ms; largest |q - q_ref| = {np.max(np.abs(q - q_ref)):.1e}; "
        f"ratio reference / theory: {t_ref / t_theory:.1f}x"
    )

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
