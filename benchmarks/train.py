"""Benchmark: denoiser training and sampling throughput, memgen's fast path vs a plain fp32 PyTorch baseline of the same model.

Training. Baseline: fp32, a torch DataLoader over a TensorDataset, default Adam, no autocast or compile. memgen: the
preset's `train_denoiser` loop with bf16 autocast, channels-last and torch.compile on (what 'calibrated-fast' and the
calibrated-h32 profile use; on a CPU with AMX bf16 pays, on CUDA the same flags are the defaults).
Sampling: one denoiser call on a batch of 512 noisy images, `as_denoiser(model)` against `as_denoiser(model, amp=True,
compile=True)`. Prints absolute numbers and ratios; the models are the medium profile's ('small', 16x16) and the
calibrated recipe's at 16x16 and 32x32.

    python benchmarks/train.py [steps] [threads] [preset:side ...]     e.g. 20 2 calibrated:32

Each configuration compiles its model (tens of seconds on a CPU) before it is timed; the three default configurations
take several minutes on 2 cores.
"""

import sys, time
from dataclasses import replace
import numpy as np
import torch
from memgen import denoisers as dn
from memgen.core import resolve_device


def baseline(images, mc, tc, steps, dev):
    "A plain fp32 training loop of the same model, loss and noise levels."
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
    if dev == 'cuda':
        torch.cuda.synchronize()


def timed(f, repeat=1):
    t = time.perf_counter()
    for _ in range(repeat):
        f()
    return (time.perf_counter() - t) / repeat


def main(steps=20, threads=2, *configs):
    torch.set_num_threads(threads)
    dev = resolve_device('auto')
    print(f"device {dev}, {threads} threads, {steps} training steps per timing; ratios are baseline time / memgen time")
    chosen = [(c.split(':')[0], int(c.split(':')[1])) for c in configs] or [('small', 16), ('calibrated', 16), ('calibrated', 32)]
    for name, side in chosen:
        mc, tc = dn.preset(name)
        images = torch.randn(4096, side, side)
        fast = replace(tc, steps=steps, log_every=0, amp=True, compile=True, channels_last=True)
        train = lambda: dn.train_denoiser(images, mc, fast, device=dev, show_progress=False)
        baseline(images, mc, tc, 3, dev)
        dn.train_denoiser(images, mc, replace(fast, steps=3), device=dev, show_progress=False)  # compiles
        t_base, t_ours = timed(lambda: baseline(images, mc, tc, steps, dev)), timed(train)
        model = mc.build(side, side).to(dev).eval()
        y, s = np.random.default_rng(0).standard_normal((512, side * side)).astype(np.float32), 1.0
        plain, quick = dn.as_denoiser(model, side, side), dn.as_denoiser(model, side, side, amp=True, compile=True)
        plain(y, s), quick(y, s)  # warm up, compiles
        s_base, s_ours = timed(lambda: plain(y, s), 3), timed(lambda: quick(y, s), 3)
        ips = lambda t: steps * tc.batch / t
        print(
            f"{name:>10} {mc.arch.__name__}(width {mc.width}, depth {mc.depth}) {side}x{side}, batch {tc.batch}: "
            f"training {ips(t_base):.0f} -> {ips(t_ours):.0f} images/s ({t_base / t_ours:.2f}x); "
            f"sampling {512 / s_base:.0f} -> {512 / s_ours:.0f} images/s ({s_base / s_ours:.2f}x)"
        )


if __name__ == '__main__':
    main(*(int(a) for a in sys.argv[1:3]), *sys.argv[3:])
