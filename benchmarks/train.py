"""Benchmark: denoiser training and sampling throughput, memgen's fast path vs a plain fp32 PyTorch baseline of the same model.

Training. Baseline: fp32, a torch DataLoader over a TensorDataset, default Adam, no autocast or compile. memgen: the
preset's `train_denoiser` loop with bf16 autocast, channels-last and torch.compile on (what 'calibrated-fast' and the
calibrated-h32 profile use; on a CPU with AMX bf16 pays, on CUDA the same flags are the defaults).
Ensemble: the pair experiment's models trained at once as one grouped network (`train_ensemble`, the same fast flags):
3 members (A, B and the same-data C of one seed) and 15 (five seeds: what `run_pair_experiment(..., ensemble=True)`
trains together at each N under the calibrated protocol). Its throughput counts every member's images, so its ratio is
the baseline's time for one model over the ensemble's time per model.
Sampling: one denoiser call on a batch of 512 noisy images, `as_denoiser(model)` against `as_denoiser(model, amp=True,
compile=True)`. Prints absolute numbers and ratios; the models are the medium profile's ('small', 16x16) and the
calibrated recipe's at 16x16 and 32x32.

    python benchmarks/train.py [steps] [threads] [preset:side ...]     e.g. 60 2 calibrated:32

Training throughput is the median time of a step after the first fifth of `steps` (which compile and warm up).

Each configuration compiles its model (tens of seconds on a CPU) before it is timed; the three default configurations
take several minutes on 2 cores.
"""

import sys, time
from dataclasses import replace
import numpy as np
import torch
from memgen import denoisers as dn
from memgen.core import resolve_device

MEMBERS = (3, 15)  # A, B and the same-data C of one seed; of five seeds


def baseline(images, mc, tc, steps, dev, tick=None):
    "A plain fp32 training loop of the same model, loss and noise levels; tick() after each step."
    model = mc.build(*images.shape[-2:]).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=tc.lr)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images[:, None]), batch_size=tc.batch, shuffle=True, drop_last=True)
    it, done = iter(loader), 0
    while done < steps:
        try:
            (x,) = next(it)
        except StopIteration:
            it = iter(loader)
            continue
        x = x.to(dev)
        sigma = tc.sigma_sampler(len(x), None).to(dev) * tc.sigma_max
        y = x + sigma[:, None, None, None] * torch.randn_like(x)
        loss = (tc.loss_weight(sigma)[:, None, None, None] * (dn.apply_denoiser(model, y, sigma) - x) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        done += 1
        if tick:
            tick()
    if dev == 'cuda':
        torch.cuda.synchronize()


def step_time(run, steps):
    "Median seconds per training step of run(steps, tick), which calls tick() after each step (the first fifth dropped: compiling, warm-up)."
    ticks = []
    run(steps, lambda *_: ticks.append(time.perf_counter()))
    return float(np.median(np.diff(ticks[steps // 5 :])))


def timed(f, repeat=1):
    t = time.perf_counter()
    for _ in range(repeat):
        f()
    return (time.perf_counter() - t) / repeat


def main(steps=60, threads=2, *configs):
    torch.set_num_threads(threads)
    dev = resolve_device('auto')
    print(
        f"device {dev}, {threads} threads, {steps} training steps per timing; training: median time per step; ratios are baseline time / memgen time"
    )
    chosen = [(c.split(':')[0], int(c.split(':')[1])) for c in configs] or [('small', 16), ('calibrated', 16), ('calibrated', 32)]
    for name, side in chosen:
        mc, tc = dn.preset(name)
        images = torch.randn(4096, side, side)
        fast = replace(tc, log_every=0, amp=True, compile=True, channels_last=True)
        ours = lambda n, tick: dn.train_denoiser(images, mc, replace(fast, steps=n), device=dev, show_progress=False, callback=tick)
        ensemble = lambda k: (
            lambda n, tick: dn.train_ensemble(
                [images] * k, mc, [replace(fast, steps=n, seed=s) for s in range(k)], device=dev, show_progress=False, callback=tick
            )
        )
        t_base = step_time(lambda n, tick: baseline(images, mc, tc, n, dev, tick), steps)
        t_ours = step_time(ours, steps)
        t_ens = {k: step_time(ensemble(k), steps) / k for k in MEMBERS}  # per model
        model = mc.build(side, side).to(dev).eval()
        y, s = np.random.default_rng(0).standard_normal((512, side * side)).astype(np.float32), 1.0
        plain, quick = dn.as_denoiser(model, side, side), dn.as_denoiser(model, side, side, amp=True, compile=True)
        plain(y, s), quick(y, s)  # warm up, compiles
        s_base, s_ours = timed(lambda: plain(y, s), 3), timed(lambda: quick(y, s), 3)
        ips = lambda t: tc.batch / t
        print(
            f"{name:>10} {mc.arch.__name__}(width {mc.width}, depth {mc.depth}) {side}x{side}, batch {tc.batch}: "
            f"training {ips(t_base):.0f} -> {ips(t_ours):.0f} images/s ({t_base / t_ours:.2f}x), "
            + "".join(f"as an ensemble of {k}: {ips(t):.0f} images/s per model ({t_base / t:.2f}x), " for k, t in t_ens.items())
            + f"sampling {512 / s_base:.0f} -> {512 / s_ours:.0f} images/s ({s_base / s_ours:.2f}x)"
        )


if __name__ == '__main__':
    main(*(int(a) for a in sys.argv[1:3]), *sys.argv[3:])
