"""Benchmark: the phase-diagram grid (q, Q, D_lat over 200 x 200 (gamma, beta) points, white bulk) vectorised vs a
point-by-point loop over the general theory functions (q_white and Q_bbp per point; the loop is timed on a
20 x 20 subset and extrapolated). Also times the explorer's full tables (4 bulk exponents x 5 ridges, 50 x 50)."""

import numpy as np
from memgen import theory as th
from memgen.explore import white_phase_grid, explorer_grid
from theory import best_of  # the timing helper of benchmarks/theory.py (same folder)


def main():
    gs, bs = np.logspace(-2, 2, 200), np.logspace(-1, 1, 200)
    t_vec, G = best_of(lambda: white_phase_grid(gs, bs))
    print(f"vectorised: 200 x 200 grid of q, Q, D_lat (white bulk): {t_vec * 1e3:.1f} ms")
    sub_g, sub_b = gs[::10], bs[::10]

    def loop():
        q = {g: float(th.q_white(g)) for g in sub_g}
        return np.array([[(q[g], float(th.Q_bbp(1.0, 1 + b, g))) for b in sub_b] for g in sub_g])

    t_loop, L = best_of(loop, k=1)
    assert np.allclose(L[..., 1], G['Q'][::10, ::10], atol=1e-12)
    t_loop_full = t_loop * (gs.size * bs.size) / (sub_g.size * sub_b.size)
    print(f"point by point: 20 x 20 in {t_loop:.3f} s -> 200 x 200 extrapolated {t_loop_full:.1f} s")
    print(f"ratio (loop / vectorised): {t_loop_full / t_vec:.0f}x")
    t_tab, E = best_of(lambda: explorer_grid(np.logspace(-2, 2, 50), np.logspace(-1, 1, 50)), k=1)
    print(
        f"explorer tables (4 exponents x 5 ridges, 50 x 50, d = 1000): {t_tab:.2f} s, {len(E.cells) + len(E.q) + len(E.Q) + len(E.m)} rows"
    )


if __name__ == '__main__':
    main()
