"""Convolutional denoisers on CPU with the tiny preset: the same code paths the GPU runs (bf16 autocast, channels-last,
fused Adam and torch.compile are on by default only on CUDA; the tests force them on the CPU)."""

from dataclasses import replace
import json
import numpy as np
import pytest
import torch
from memgen import denoisers as dn, pairs
from memgen.core import MemgenError
from memgen.data import StationaryImages
from conftest import need, can_compile_cpp


@pytest.fixture(scope='module')
def images():
    return torch.tensor(StationaryImages(8, 8, alpha=1.0).sample(128, np.random.default_rng(0)).reshape(-1, 8, 8), dtype=torch.float32)


@pytest.mark.parametrize('arch', [dn.BFCNN, dn.BFUNet])
def test_bias_free_and_homogeneous(arch):
    net = dn.ModelConfig(arch, width=8, depth=2 if arch is dn.BFUNet else 4).build().eval()
    assert not any(n.endswith('bias') for n, _ in net.named_parameters())
    y = torch.randn(3, 1, 16, 16)
    with torch.no_grad():
        for a in (0.1, 2.0, 10.0):
            torch.testing.assert_close(net(a * y), a * net(y), rtol=1e-4, atol=1e-5)


def test_training_lowers_the_loss_and_logs(images, tmp_path):
    mc, tc = dn.preset('tiny-blind')  # plain MSE: the loss falls (EDM-weighted, the optimum's loss is about 1 at every level)
    _, log = dn.train_denoiser(images, mc, replace(tc, steps=60, log_every=20), out_dir=tmp_path, device='cpu', show_progress=False)
    assert log[-1]['loss'] < 0.7 * log[0]['loss']
    assert [json.loads(l)['step'] for l in (tmp_path / 'train.jsonl').read_text().splitlines()] == [20, 40, 60]
    assert json.loads((tmp_path / 'config.json').read_text())['model']['arch'].endswith('BFCNN')


def test_resume_reaches_the_same_weights(images, tmp_path):
    mc, tc = dn.preset('tiny')
    tc = replace(tc, steps=30, checkpoint_every=10, ema_fraction=0.3)
    full, _ = dn.train_denoiser(images, mc, tc, out_dir=tmp_path / 'a', device='cpu', show_progress=False)

    class Stop(Exception):
        pass

    def kill(step, loss):
        if step == 17:
            raise Stop

    with pytest.raises(Stop):
        dn.train_denoiser(images, mc, tc, out_dir=tmp_path / 'b', device='cpu', show_progress=False, callback=kill)
    resumed, _ = dn.train_denoiser(images, mc, tc, out_dir=tmp_path / 'b', resume=True, device='cpu', show_progress=False)
    for (k, v), w in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(v, w), k


def test_divergence_stops_with_step_and_keeps_checkpoint(images, tmp_path):
    mc, tc = dn.preset('tiny')
    tc = replace(tc, steps=40, checkpoint_every=10)

    def poison(step, loss):
        if step == 25:  # corrupt the weights: the next loss is NaN
            with torch.no_grad():
                [p.fill_(float('nan')) for p in model_ref[0].parameters()]

    model_ref = []
    orig = dn.ModelConfig.build

    def build(self, *size):
        m = orig(self, *size)
        model_ref.append(m)
        return m

    dn.ModelConfig.build = build
    try:
        with pytest.raises(MemgenError, match=r'training diverged at step 26 .*last good checkpoint kept at'):
            dn.train_denoiser(images, mc, tc, out_dir=tmp_path, device='cpu', show_progress=False, callback=poison)
    finally:
        dn.ModelConfig.build = orig
    assert dn.load_checkpoint(tmp_path / 'checkpoint.pt')['step'] == 20


def test_checkpoint_errors(tmp_path, images):
    mc, tc = dn.preset('tiny')
    dn.train_denoiser(images, mc, replace(tc, steps=5), out_dir=tmp_path, device='cpu', show_progress=False)
    with pytest.raises(MemgenError, match='different configuration'):
        dn.train_denoiser(images, replace(mc, width=16), replace(tc, steps=5), out_dir=tmp_path, resume=True, device='cpu')
    (tmp_path / 'junk.pt').write_bytes(b'\x00\x01junk')
    with pytest.raises(MemgenError, match='corrupt'):
        dn.load_checkpoint(tmp_path / 'junk.pt')
    with pytest.raises(MemgenError, match='no checkpoint at'):
        dn.load_checkpoint(tmp_path / 'missing.pt')


def test_shared_noise_gives_identical_samples_from_identical_models(images):
    mc, tc = dn.preset('tiny')
    m1, _ = dn.train_denoiser(images, mc, replace(tc, steps=10), device='cpu', show_progress=False)
    m2, _ = dn.train_denoiser(images, mc, replace(tc, steps=10), device='cpu', show_progress=False)
    init = np.random.default_rng(0).standard_normal((6, 64))
    for cfg in (dn.DDIM(steps=20, eta=1.0, sigma_min=0.05), dn.Ascent(h0=0.2, max_iter=30)):
        a = cfg.run(dn.as_denoiser(m1, 8, 8), init, np.random.default_rng(5))
        b = cfg.run(dn.as_denoiser(m2, 8, 8), init, np.random.default_rng(5))
        c = cfg.run(dn.as_denoiser(m2, 8, 8), init, np.random.default_rng(6))
        np.testing.assert_array_equal(a, b)
        assert not np.allclose(a, c)


def test_pair_experiment_memorises_at_N_1(images):
    mc, tc = dn.preset('tiny')
    data = StationaryImages(8, 8, alpha=1.0, betas=(3.0,))
    tab, grids = pairs.run_pair_experiment(
        data,
        [1],
        dn.ModelConfig(dn.BFUNet, 8, 1, conditioned=True),
        replace(tc, steps=400, lr=3e-3),
        dn.DDIM(steps=30, eta=0.0, sigma_max=tc.sigma_max, n_samples=8),
        n_samples_Q=32,
        device='cpu',
        show_progress=False,
    )
    m = tab.query("quantity == 'm' and model == 'A'").value.iloc[0]
    base = tab.query("quantity == 'm_heldout'").value.iloc[0]
    assert m > 0.9 and m > base + 0.3, (m, base)  # a conditioned net at 400 steps: 0.93 (0.88 at 150); held-out 0.11


@pytest.mark.parametrize(
    'call, message',
    [
        (lambda: dn.preset('huge'), "preset 'huge' is unknown"),
        (lambda: dn.TrainConfig(steps=0), 'steps=0 is not allowed'),
        (lambda: dn.TrainConfig(ema_fraction=1.0), 'ema_fraction=1.0 is not allowed'),
        (lambda: dn.ModelConfig(width=0), 'width=0 is not allowed'),
        (lambda: dn.train_denoiser(np.zeros((4, 3)), *dn.preset('tiny'), device='cpu'), 'expected (N, H, W)'),
        (lambda: dn.train_denoiser(torch.full((4, 8, 8), float('inf')), *dn.preset('tiny'), device='cpu'), 'NaN/inf'),
        (lambda: pairs.run_pair_experiment(StationaryImages(8, 8), [0], *dn.preset('tiny'), device='cpu'), 'N=0 is not allowed'),
        (  # a sampler that starts below 5 sqrt(lambda_max) of a training set (|x|^2 at N = 1, about d = 64) is refused before training
            lambda: pairs.run_pair_experiment(StationaryImages(8, 8), [1], *dn.preset('tiny'), dn.DDIM(sigma_max=3.0), device='cpu'),
            'sigma_max=3 is too small: training set 0 (N = 1) has top eigenvalue',
        ),
        (lambda: dn.apply_denoiser(dn.CirculantNet(8, 8), torch.zeros(1, 1, 8, 8), None), 'noise-level conditioned: pass sigma'),
    ],
)
def test_bad_input(call, message):
    with pytest.raises(MemgenError, match=message.replace('(', r'\(').replace(')', r'\)')):
        call()


def test_N_larger_than_half_the_pool():
    from memgen.data import ImagePool

    pool = ImagePool(np.random.default_rng(0).standard_normal((50, 8, 8)), 8, 8)
    with pytest.raises(MemgenError, match='n=30 per set needs'):
        pairs.run_pair_experiment(pool, [30], *dn.preset('tiny'), device='cpu', show_progress=False)


def test_gpu_path_on_cpu_with_compile(images, tmp_path):
    """The CUDA features forced on the CPU (bf16 autocast, channels-last, fused Adam, torch.compile) run the same
    loop: the loss falls and tracks the plain fp32 run to within bf16 precision. torch.compile needs a C++ compiler."""
    need(can_compile_cpp(), 'a C++ compiler (g++) and Python headers (python3-dev) for torch.compile')
    mc, tc = dn.ModelConfig(dn.BFUNet, width=8, depth=2), replace(dn.preset('tiny')[1], steps=20, log_every=5)
    _, plain = dn.train_denoiser(images, mc, tc, device='cpu', show_progress=False)
    fast = replace(tc, amp=True, channels_last=True, fused=True, compile=True)
    _, log = dn.train_denoiser(images, mc, fast, out_dir=tmp_path, device='cpu', show_progress=False)
    assert log[-1]['loss'] < log[0]['loss']
    for a, b in zip(plain, log):
        assert abs(a['loss'] - b['loss']) < 0.05 * a['loss'], (a, b)
    assert json.loads((tmp_path / 'config.json').read_text())['features'] == {
        'amp': True,
        'channels_last': True,
        'fused': True,
        'compile': True,
    }


def test_ensemble_gpu_path_on_cpu_with_compile(images):
    """An ensemble on the CUDA path forced on the CPU (bf16, channels-last, fused Adam, compiled grouped UNet, EDM
    preconditioning): each member's losses track the same member trained alone on that path, to within bf16 precision."""
    need(can_compile_cpp(), 'a C++ compiler (g++) and Python headers (python3-dev) for torch.compile')
    mc = dn.ModelConfig(dn.BFUNet, width=8, depth=2, conditioned=True)
    fast = replace(dn.preset('tiny')[1], steps=20, log_every=5, amp=True, channels_last=True, fused=True, compile=True)
    sets, tcs = [images[k::3] for k in range(3)], [replace(fast, seed=s) for s in (1, 2, 3)]
    together = dn.train_ensemble(sets, mc, tcs, device='cpu', show_progress=False)
    for x, tc, (model, log) in zip(sets, tcs, together):
        alone, log1 = dn.train_denoiser(x, mc, tc, device='cpu', show_progress=False)
        assert model.stopped_at == 20 and len(log) == len(log1) == 4
        for a, b in zip(log1, log):
            assert abs(a['loss'] - b['loss']) < 0.05 * a['loss'], (a, b)
        assert next(model.parameters()).is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize('H', [32, 80])
def test_paper_preset_runs_at_full_profile_sizes(H):
    """The full profile's model (paper preset) at 32x32 and 80x80: a few steps of training and sampling on the CPU
    with a small batch, through run_pair_experiment, give finite numbers for every quantity."""
    mc, tc = dn.preset('paper')
    tc = replace(tc, steps=2, batch=2, log_every=0)
    sc = dn.DDIM(steps=2, eta=1.0, sigma_max=tc.sigma_max, n_samples=2)
    tab, grids = pairs.run_pair_experiment(
        StationaryImages(H, H, alpha=1.0, betas=(4.0,)), [2], mc, tc, sc, n_test=2, n_samples_Q=4, device='cpu', show_progress=False
    )
    assert np.isfinite(tab.value).all() and grids[2]['A'].shape == (2, H, H)
    assert {'m', 'q_shared', 'q_independent', 'Q', 'psnr', 'q_linear'} <= set(tab.quantity)
    if H == 32:  # the same run with both models as one grouped network: the same rows, numbers to float order
        tab2, _ = pairs.run_pair_experiment(
            StationaryImages(H, H, alpha=1.0, betas=(4.0,)),
            [2],
            mc,
            tc,
            sc,
            n_test=2,
            n_samples_Q=4,
            device='cpu',
            show_progress=False,
            ensemble=True,
        )
        assert tab2.drop(columns=['value', 'sem']).equals(tab.drop(columns=['value', 'sem']))
        np.testing.assert_allclose(tab2.value, tab.value, rtol=1e-3, atol=1e-4)


def test_interrupted_pair_sweep_resumes_from_its_store(tmp_path):
    "A pair-experiment sweep cut after one of its jobs finishes the rest on the next run, keeps the finished record, and stores."
    import yaml
    from memgen.core import to_jsonable
    from memgen.sweep import run_sweep, sweep_status

    tiny = pairs.PairConfig(
        H=8,
        N_grid=(2,),
        preset='tiny',
        train_steps=10,
        sampler_steps=4,
        n_samples=4,
        n_samples_Q=8,
        n_test=8,
        betas=(4.0,),
        eval_every=5,
        patience=1,
        checkpoints=(5,),
    )
    fixed = {k: v for k, v in to_jsonable(tiny).items() if k != 'N_grid'}
    spec = tmp_path / 'pairs.yaml'
    spec.write_text(
        yaml.safe_dump(
            {
                'name': 'pairs',
                'task': 'denoisers',
                'store': str(tmp_path / 'store'),
                'seeds': [0, 1],
                'product': {'N_grid': [[2], [3]]},
                'fixed': fixed,
            }
        )
    )
    run_sweep(spec, 'serial')
    jobs = sorted((tmp_path / 'store' / 'pairs' / 'jobs').iterdir())
    assert len(jobs) == 4
    kept = jobs[0] / 'table.csv'
    stamp = kept.stat().st_mtime_ns
    for j in jobs[1:]:
        [f.unlink() for f in j.iterdir()]
        j.rmdir()  # the run was cut after its first job
    assert sweep_status(spec)['done'] == 1
    res = run_sweep(spec, 'serial')
    assert res['ran'] == 3 and sweep_status(spec)['done'] == 4 and kept.stat().st_mtime_ns == stamp
    cfg, out = pairs.store_sweep(spec, tmp_path / 'stored')
    assert cfg == replace(tiny, N_grid=(2, 3), seeds=(0, 1))
    table, rec = pairs.load_results(out, cfg, pairs.PAIR_COLUMNS)
    assert set(table.seed) == {0, 1} and {5.0} <= set(table.step.dropna())  # checkpoint rows came through the store
    with pytest.raises(MemgenError, match='computed for another config: eta=1.0 there, 0.0 here'):
        pairs.load_results(out, replace(cfg, eta=0.0))
