"""Benchmarks of sweeps.

1. A CPU-bound sweep (8 linear-model jobs of a few seconds each) run serially vs on the local process pool. Both runs
   start from empty stores; the ratio is serial time / local time. Each local worker is limited to one BLAS thread, the
   serial run uses the machine's default threading (a plain baseline).
2. The store's own cost: 200 trivial jobs run serially (lock, record check, publish per job), and three concurrent
   sweep processes over one store of 200 fast theory_q jobs (each job recorded once; 'busy' jobs are skipped).

Usage: python benchmarks/sweep.py [pool|store|all]   (default: all)"""

import json, os, subprocess, sys, tempfile, time
from dataclasses import dataclass
import pandas as pd
from memgen import sweep as sw


def spec(store):
    return sw.SweepSpec(
        'bench',
        'linear',
        product={'gamma': [0.5, 1.0, 2.0, 4.0]},
        fixed={'d': 1000, 'n_seeds': 2, 'n_samples': 300, 'quantities': ('q', 'm', 'D_bulk', 'D_lat')},
        seeds=(0, 1),
        store=store,
    )


def pool():
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        t = time.perf_counter()
        sw.run_sweep(spec(a), 'serial', show_progress=False)
        t_serial = time.perf_counter() - t
        t = time.perf_counter()
        sw.run_sweep(spec(b), 'local', show_progress=False)
        t_local = time.perf_counter() - t
    print(
        f"8 jobs on {os.cpu_count()} cores: serial {t_serial:.1f} s, local process pool {t_local:.1f} s, speed-up {t_serial / t_local:.2f}x"
    )


@dataclass(frozen=True)
class NoParams:
    x: int = 0


def trivial(p, seed):
    return pd.DataFrame([{'value': p.x}])


def store():
    with tempfile.TemporaryDirectory() as d:
        s = sw.SweepSpec('trivial', sw.Task('trivial', trivial, NoParams), product={'x': list(range(200))}, store=d)
        t = time.perf_counter()
        sw.run_sweep(s, 'serial', show_progress=False)
        dt = time.perf_counter() - t
        print(f"200 trivial jobs, serial: {dt:.2f} s, {1e3 * dt / 200:.1f} ms of store work per job")
        theory = {
            'name': 's',
            'task': 'theory_q',
            'product': {'gamma': [round(0.1 + 0.01 * i, 4) for i in range(200)]},
            'fixed': {'d': 20},
            'store': d,
        }
        code = (
            f"import json, sys; from memgen import sweep as sw; print(json.dumps(sw.run_sweep({theory!r}, 'serial', show_progress=False)))"
        )
        t = time.perf_counter()
        procs = [subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.PIPE, text=True) for _ in range(3)]
        outs = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
        dt = time.perf_counter() - t
        print(
            f"3 concurrent sweeps of 200 theory_q jobs: {dt:.1f} s (with 3 interpreter starts), exit codes "
            f"{[p.returncode for p in procs]}, ran {[o.get('ran', 0) for o in outs]} (sum {sum(o.get('ran', 0) for o in outs)}), "
            f"busy {[o.get('busy', 0) for o in outs]}"
        )


if __name__ == '__main__':
    what = sys.argv[1] if len(sys.argv) > 1 else 'all'
    if what in ('pool', 'all'):
        pool()
    if what in ('store', 'all'):
        store()
