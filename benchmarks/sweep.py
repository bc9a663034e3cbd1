"""Benchmark: a CPU-bound sweep (8 linear-model jobs of a few seconds each) run serially vs on the local process pool.

Both runs start from empty stores; the ratio is serial time / local time. Each local worker is limited to one BLAS
thread, the serial run uses the machine's default threading (a plain baseline)."""
import os, tempfile, time
from memgen import sweep as sw


def spec(store):
    return sw.SweepSpec('bench', 'linear', product={'gamma': [0.5, 1.0, 2.0, 4.0]},
                        fixed={'d': 1000, 'n_seeds': 2, 'n_samples': 300, 'quantities': ('q', 'm', 'D_bulk', 'D_lat')},
                        seeds=(0, 1), store=store)


def main():
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        t = time.perf_counter(); sw.run_sweep(spec(a), 'serial', show_progress=False); t_serial = time.perf_counter() - t
        t = time.perf_counter(); sw.run_sweep(spec(b), 'local', show_progress=False); t_local = time.perf_counter() - t
    print(f"8 jobs on {os.cpu_count()} cores: serial {t_serial:.1f} s, local process pool {t_local:.1f} s, "
          f"speed-up {t_serial / t_local:.2f}x")


if __name__ == '__main__':
    main()
