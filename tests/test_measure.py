"""memgen measure: known answers through the command line, the pair experiment reproduced from its own samples, bad
input in one line, large training sets searched without a float copy, and the report in a real browser."""

import contextlib, io, json, tracemalloc
from dataclasses import replace
from pathlib import Path
import numpy as np
import pytest
from PIL import Image
from conftest import open_page
from memgen.cli import main
from memgen.measure import measure


def run(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(['measure', *map(str, argv)])
    return rc, out.getvalue(), err.getvalue()


def save_pngs(folder: Path, imgs: np.ndarray) -> Path:
    folder.mkdir(parents=True)
    for i, a in enumerate(imgs):
        Image.fromarray(a).save(folder / f'seed_{i:04d}.png')
    return folder


def report(out: Path) -> dict:
    rep = json.loads((out / 'report.json').read_text())
    return {(r['quantity'], r['model']): r for r in rep['table'] if r['quantity'] != 'Q'}


@pytest.fixture(scope='module')
def images(tmp_path_factory):
    "Folders of PNG images: two disjoint training sets, held-out images, and 24 samples per model."
    tmp = tmp_path_factory.mktemp('measure')
    rng = np.random.default_rng(0)
    ta, tb, ho = (rng.integers(0, 256, (n, 12, 12), dtype=np.uint8) for n in (60, 60, 30))
    noise = lambda: rng.integers(0, 256, (24, 12, 12), dtype=np.uint8)
    return {
        'train_a': save_pngs(tmp / 'train_a', ta),
        'train_b': save_pngs(tmp / 'train_b', tb),
        'heldout': save_pngs(tmp / 'heldout', ho),
        'copies_a': save_pngs(tmp / 'copies_a', ta[:24]),  # a model that returns its training images
        'copies_b': save_pngs(tmp / 'copies_b', tb[:24]),
        'noise_a': save_pngs(tmp / 'noise_a', noise()),  # two models of independent noise
        'noise_b': save_pngs(tmp / 'noise_b', noise()),
        'tmp': tmp,
    }


def test_known_answers_through_the_command_line(images):
    i, out = images, images['tmp'] / 'r-copies'
    rc, stdout, err = run('--a', i['copies_a'], '--b', i['copies_b'], '--train-a', i['train_a'], '--train-b', i['train_b'],
                          '--heldout', i['heldout'], '--out', out)  # fmt: skip
    assert rc == 0, err
    r = report(out)
    assert r[('m_centred', 'A')]['value'] == pytest.approx(1.0, abs=1e-12) and r[('nn_ratio', 'B')]['value'] == 1.0
    assert r[('m_heldout_centred', 'A')]['hi'] < 0.5  # the baseline: real images the model never saw are no copies
    assert 'm_centred' in stdout and 'report.html' in err
    # the same samples in A and B: q = 1; independent noise: q near 0, within its interval
    run('--a', i['noise_a'], '--b', i['noise_a'], '--train-a', i['train_a'], '--train-b', i['train_b'], '--out', out / 'same')
    assert report(out / 'same')[('q', 'AB')]['value'] == pytest.approx(1.0, abs=1e-12)
    rc, _, _ = run('--a', i['noise_a'], '--b', i['noise_b'], '--train-a', i['train_a'], '--train-b', i['train_b'],
                   '--centre', 'none', '--out', out / 'indep')  # fmt: skip
    q = report(out / 'indep')[('q_centred', 'AB')]
    assert rc == 0 and q['lo'] < 0 < q['hi'] and abs(q['value']) < 0.15, q
    assert ('m', 'A') in report(out / 'indep') and ('m_centred', 'A') not in report(out / 'indep')  # --centre none: raw cosines


def test_bad_input_is_one_line_and_exit_2(images, tmp_path):
    i = images
    (tmp_path / 'empty').mkdir()
    (tmp_path / 'broken').mkdir()
    (tmp_path / 'broken' / 'x.png').write_bytes(b'no image')
    small = save_pngs(tmp_path / 'small', np.zeros((24, 8, 8), np.uint8) + 9)
    np.save(tmp_path / 'short.npy', np.ones((23, 12, 12)))
    args = lambda a, b, ta: ('--a', a, '--b', b, '--train-a', ta, '--train-b', i['train_b'], '--out', tmp_path / 'r')
    cases = [
        (args(i['noise_a'], i['noise_b'], tmp_path / 'empty'), 'train_a: ', 'contains no .png/.jpg images'),
        (args(i['noise_a'], i['noise_b'], tmp_path / 'broken'), 'x.png cannot be read as an image', ''),
        (args(small, i['noise_b'], i['train_a']), 'B has images of shape (12, 12) but A has (8, 8)', ''),
        (args(i['noise_a'], tmp_path / 'short.npy', i['train_a']), 'A has 24 samples and B has 23', ''),
        (args(i['noise_a'], tmp_path / 'missing.npy', i['train_a']), 'does not exist', ''),
    ]
    for argv, *want in cases:
        rc, _, err = run(*argv)
        assert rc == 2 and len(err.strip().splitlines()) == 1 and all(w in err for w in want), (argv, err)
    assert not (tmp_path / 'r').exists()  # nothing written for bad input
    rc, _, err = run(*args(i['noise_a'], i['noise_b'], i['train_a']), '--threshold', '2')
    assert rc == 2 and '--threshold 2.0 is not allowed' in err


def test_reproduces_the_pair_experiment_from_its_own_samples(tmp_path):
    from memgen import pairs
    from memgen.data import StationaryImages
    from memgen.denoisers import preset, make_sampler

    mc, tc = preset('tiny')
    tab, grids = pairs.run_pair_experiment(
        StationaryImages(8, 8, alpha=2.0, betas=(4.0,)), [6], mc, replace(tc, steps=30), make_sampler('ddim', 1.0, 8, tc.sigma_max, n_samples=16),
        n_samples_Q=16, device='cpu', show_progress=False, keep_samples=True,
    )  # fmt: skip
    g = grids[6]
    for k in ('samples_A', 'samples_B', 'train_A', 'train_B', 'heldout'):
        np.save(tmp_path / f'{k}.npy', g[k])
    want = tab.set_index(['quantity', 'model']).value
    f = lambda k: tmp_path / f'{k}.npy'
    for centre, names in (('none', {'m': 'm', 'q': 'q_shared', 'm_heldout': 'm_heldout'}),
                          ('image', {'m_centred': 'm_centred', 'q_centred': 'q_shared_centred', 'm_heldout_centred': 'm_heldout_centred'})):  # fmt: skip
        rc, _, err = run('--a', f('samples_A'), '--b', f('samples_B'), '--train-a', f('train_A'), '--train-b', f('train_B'),
                         '--heldout', f('heldout'), '--centre', centre, '--out', tmp_path / centre)  # fmt: skip
        assert rc == 0, err
        got = report(tmp_path / centre)
        for mine, theirs in names.items():
            for model in ('A', 'B') if mine.startswith('m') and 'heldout' not in mine else ('A',) if 'heldout' in mine else ('AB',):
                ref = want[(theirs, 'data' if 'heldout' in mine else model)]
                assert abs(got[(mine, model)]['value'] - ref) < 1e-9, (mine, model, got[(mine, model)]['value'], ref)
        if centre == 'none':
            for model in 'AB':
                assert abs(got[('nn_ratio', model)]['value'] - want[('nn_ratio', model)]) < 1e-12


def test_large_training_set_is_searched_without_a_float_copy(tmp_path):
    # 4000 images of 80x80 as a uint8 .npy (26 MB); a float64 copy would be 205 MB
    rng = np.random.default_rng(1)
    train = np.lib.format.open_memmap(tmp_path / 'train.npy', mode='w+', dtype=np.uint8, shape=(4000, 80, 80))
    train[:] = rng.integers(0, 256, train.shape, dtype=np.uint8)
    train.flush()
    samples = np.asarray(train[:8], dtype=float) + rng.standard_normal((8, 80, 80))
    tracemalloc.start()
    t = measure(samples, samples[::-1], tmp_path / 'train.npy', tmp_path / 'train.npy', chunk=256)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 0.3 * train.size * 8, f'peak {peak / 1e6:.0f} MB'  # measured: 53 MB, a few float blocks of 256 images
    m = t.set_index(['quantity', 'model']).value
    assert m[('m_centred', 'A')] > 0.99 and m[('nn_ratio', 'A')] == 1.0


def test_report_opens_offline_in_a_browser(images, browser):
    i, out = images, images['tmp'] / 'r-browser'
    rc, _, err = run('--a', i['noise_a'], '--b', i['copies_b'], '--train-a', i['train_a'], '--train-b', i['train_b'],
                     '--heldout', i['heldout'], '--out', out)  # fmt: skip
    assert rc == 0, err
    res = open_page(browser, (out / 'report.html').as_uri())
    assert res['rendered'] >= 2 and res['errors'] == [] and res['external_requests'] == [] and res['failed'] == [], res
