"""Expected run time of the GPU-scale work: the 'denoisers' chapter at the full profile and the denoiser sweeps.

FLOPs are counted exactly (memgen.pairs.pair_experiment_flops: convolutions, two per multiply-add). The FLOP
rates of a training step and of a sampling (forward) pass of the paper preset are *measured here*, through memgen's
own training loop and denoiser wrapper, so on the GPU that will run the work the printed times are its expected
times. `--tflops R` prints the times at an assumed sustained rate R instead (planning a GPU run from a laptop).
At the end it prints the rate measured by a real run: the stored medium profile (results/denoisers-medium), its FLOPs
(the steps its models actually trained, and its sampling) over its recorded job time.

    python benchmarks/full_profile.py                 # measure on this device (CPU: ~1 minute; GPU: ~1 minute)
    python benchmarks/full_profile.py --tflops 150    # at an assumed 150 TFLOP/s
"""

import argparse, time
from dataclasses import replace
import torch
from memgen import denoisers as dn, pairs
from memgen.chapters import get_chapter
from memgen.core import resolve_device
from memgen.sweep import expand, get_task, make_params


def measure_rates(H: int, dev: str, steps: int) -> tuple[float, float]:
    "Sustained FLOP/s of training steps and of denoiser forward passes (paper preset, H x H) on `dev`."
    mc, tc = dn.preset('paper')
    images = torch.randn(512, H, H)
    sync = torch.cuda.synchronize if dev == 'cuda' else (lambda: None)
    dn.train_denoiser(images, mc, replace(tc, steps=2, log_every=0), device=dev, show_progress=False)  # warm up
    t = time.perf_counter()
    model, _ = dn.train_denoiser(images, mc, replace(tc, steps=steps, log_every=0), device=dev, show_progress=False)
    sync()
    t_train = time.perf_counter() - t  # includes model set-up: small next to the steps here
    D = dn.as_denoiser(model, H, H, batch=256)
    y = torch.randn(256, H * H, device=dev)
    D(y)
    sync()
    t = time.perf_counter()
    for _ in range(max(1, steps // 2)):
        D(y)
    sync()
    t_fwd = (time.perf_counter() - t) / max(1, steps // 2)
    return (dn.step_flops(mc, H, H, tc.batch) * steps / t_train, dn.step_flops(mc, H, H, 256, train=False) / t_fwd)


def job_flops(cfg: pairs.PairConfig, train_steps: float | None = None) -> tuple[int, dict]:
    "Image side and FLOPs (training, sampling) of a pair-experiment config; `train_steps`: the total steps actually trained."
    mc, tc, _, control = cfg.configs()
    H = 80 if cfg.data == 'celeba' else cfg.H
    f = pairs.pair_experiment_flops(
        mc, tc, H, H, cfg.N_grid, len(cfg.seeds), cfg.sampler_steps, cfg.n_samples, cfg.n_samples_Q, cfg.n_test, control=control is not None
    )
    if train_steps is not None:
        f['train'] = train_steps * dn.step_flops(mc, H, H, tc.batch)
    f['sample'] *= 1 + len(cfg.checkpoints)  # the measurements are repeated at each checkpoint
    return H, f


def workloads():
    "(name, H, train FLOPs, sample FLOPs) for the chapter's full profile and each denoiser sweep, grouped by H."
    out = [('chapter denoisers (full)', *job_flops(get_chapter('denoisers').profile('full')))]
    for spec in ('sweeps/denoisers-full.yaml', 'sweeps/denoisers-patches.yaml', 'sweeps/denoisers-celeba.yaml'):
        by_H = {}
        for j in expand(spec):
            cfg = replace(make_params(get_task('denoisers'), j.params), seeds=(j.seed,))
            H, f = job_flops(cfg)
            acc = by_H.setdefault(H, {'train': 0.0, 'sample': 0.0, 'jobs': 0})
            acc['train'] += f['train']
            acc['sample'] += f['sample']
            acc['jobs'] += 1
        out += [(f"{spec} ({a['jobs']} jobs, {H}x{H})", H, {'train': a['train'], 'sample': a['sample']}) for H, a in by_H.items()]
    return out


def measured_medium(folder: str = 'results/denoisers-medium') -> None:
    "The stored medium run's measured throughput: FLOPs of the steps it actually trained and sampled over its job time."
    try:
        table, rec = pairs.load_results(folder, pairs.PAIR_PROFILES['medium'], pairs.PAIR_COLUMNS)
    except Exception as e:
        print(f"no measured rate: {e}")
        return
    cfg = pairs.PAIR_PROFILES['medium']
    steps = table[(table.quantity == 'steps') & table.step.isna()].value.sum()
    _, f = job_flops(cfg, train_steps=steps)
    secs = rec['job_seconds_total']
    print(
        f"medium profile, stored ({rec['jobs']} jobs on {rec['device']}, {pairs.cpus_text(rec)}, git {', '.join(rec['gits'])}): "
        f"{(f['train'] + f['sample']) / 1e15:.1f} PFLOP ({steps:.0f} training steps) in {secs / 3600:.2f} h of job time: "
        f"measured {(f['train'] + f['sample']) / secs / 1e9:.1f} GFLOP/s per job"
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--tflops', type=float, default=None, help='assumed sustained TFLOP/s instead of measuring')
    ap.add_argument('--steps', type=int, default=None, help='training steps timed per size (default: 3 on CPU, 100 on GPU)')
    a = ap.parse_args()
    dev = resolve_device('auto')
    work = workloads()
    rates = {}
    for H in sorted({w[1] for w in work}):
        if a.tflops:
            rates[H] = (a.tflops * 1e12,) * 2
        elif dev == 'cpu' and H > 32:
            rates[H] = rates[32]  # a paper-preset step at 80x80 takes ~30 s on a CPU
        else:
            rates[H] = measure_rates(H, dev, a.steps or (100 if dev == 'cuda' else 3))
        src = 'assumed' if a.tflops else ('measured at 32x32' if dev == 'cpu' and H > 32 else 'measured')
        print(f"{H}x{H}: training {rates[H][0] / 1e12:.3f} TFLOP/s, sampling {rates[H][1] / 1e12:.3f} TFLOP/s ({src}, {dev})")
    total = 0.0
    for name, H, f in work:
        s = f['train'] / rates[H][0] + f['sample'] / rates[H][1]
        total += s * (not name.startswith('chapter'))
        print(f"{name:55s} {f['train'] / 1e18:8.2f} EFLOP train + {f['sample'] / 1e18:6.2f} sample  ->  {s / 3600:9.1f} h")
    print(f"all sweeps, one device: {total / 3600:.1f} h")
    measured_medium()


if __name__ == '__main__':
    main()
