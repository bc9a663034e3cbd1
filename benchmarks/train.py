"""Benchmark: denoiser training throughput (images/s), memgen's loop vs a plain baseline loop of the same model.

memgen: data held on the device as one tensor, indices and noise from a generator, on CUDA bf16 autocast,
channels-last and a fused Adam. Baseline: fp32, a torch DataLoader over a TensorDataset, default Adam, no AMP/compile.
Run on whatever device is present; prints both absolute numbers and the ratio."""

import time, sys
from dataclasses import replace
import torch
from memgen import denoisers as dn
from memgen.core import resolve_device


def baseline(images, mc, steps, batch, dev):
    model = mc.build().to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images[:, None]), batch_size=batch, shuffle=True, drop_last=True)
    it, done = iter(loader), 0
    while done < steps:
        try:
            (x,) = next(it)
        except StopIteration:
            it = iter(loader)
            continue
        x = x.to(dev)
        y = x + 3.0 * torch.rand(len(x), 1, 1, 1, device=dev) * torch.randn_like(x)
        loss = ((model(y) - x) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        done += 1
    if dev == 'cuda':
        torch.cuda.synchronize()


def main(side=32, steps=60, batch=64):
    dev = resolve_device('auto')
    images = torch.randn(4096, side, side)
    mc, tc = dn.ModelConfig(dn.BFUNet, width=32, depth=3), dn.TrainConfig(steps=steps, batch=batch, log_every=0)
    for f in (
        lambda: baseline(images, mc, 5, batch, dev),
        lambda: dn.train_denoiser(images, mc, replace(tc, steps=5), device=dev, show_progress=False),
    ):
        f()  # warm up
    t = time.perf_counter()
    baseline(images, mc, steps, batch, dev)
    t_base = time.perf_counter() - t
    t = time.perf_counter()
    dn.train_denoiser(images, mc, tc, device=dev, show_progress=False)
    if dev == 'cuda':
        torch.cuda.synchronize()
    t_ours = time.perf_counter() - t
    ips = lambda s: steps * batch / s
    print(f"device {dev}, BFUNet(32, depth 3), {side}x{side} images, batch {batch}, {steps} steps")
    print(f"baseline loop: {ips(t_base):.0f} images/s; memgen loop: {ips(t_ours):.0f} images/s; ratio {t_base / t_ours:.2f}x")


if __name__ == '__main__':
    main(*map(int, sys.argv[1:]))
