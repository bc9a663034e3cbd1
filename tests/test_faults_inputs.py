"""Limits and paths (reliability round 3, case 6): every input that could only fail at run time, walk outside the
repository or allocate beyond the machine is refused before any work, in one line; each case failed on the previous main."""

import pytest
import yaml
from test_cli import assert_one_line_exit_2, run  # the in-process runner and its check (the checkout fixture is conftest's)
from memgen import sweep as sw
from memgen.core import MemgenError


@pytest.mark.parametrize(
    'args, message',
    [
        (['run', 'denoisers', '-p', 'stored', '/usr'], "denoisers input='/usr' is outside the repository"),
        (['run', 'training', '-p', 'cnn_stored', '../../..'], "training input='../../..' is outside the repository"),
        (['run', 'diffusion', '-p', 'seed', '-1'], 'seed=-1 is not allowed; expected seed >= 0'),
        (['run', 'distances', '-p', 'alpha', 'nan'], 'alpha=nan contains NaN or inf'),
        (['run', 'convergence', '-p', 'n_samples', '100000000000000000000'], 'n_samples=100000000000000000000 rows of dimension 400 need'),
        (['run', 'explorer', '-p', 'd', '3000000000'], 'rows of dimension 3000000000 need'),
        (['run', 'intro', '-p', 'results', 'junk{'], "results='junk{' is not allowed; expected a JSON object"),
    ],
)
def test_chapter_inputs_are_refused_before_the_notebook(checkout, args, message):
    assert_one_line_exit_2(checkout, args, message)


def test_home_in_a_store_path_is_expanded(tmp_path, monkeypatch):
    "`store: ~/x` is the home folder's x (it made a literal ./~/x)."
    monkeypatch.setenv('HOME', str(tmp_path / 'home'))
    spec = sw.load_spec({'name': 't', 'task': 'theory_q', 'product': {'gamma': [0.5]}, 'store': '~/x'})
    assert spec.folder == tmp_path / 'home' / 'x' / 't'


def test_a_key_given_twice_is_an_error(tmp_path):
    "YAML lets the last of two equal keys win silently; a sweep spec refuses it, naming the key."
    f = tmp_path / 's.yaml'
    f.write_text('name: t\ntask: theory_q\nproduct: {gamma: [0.5]}\nstore: a\nstore: b\n')
    with pytest.raises(MemgenError, match="key 'store' is given twice"):
        sw.load_spec(f)
    f.write_text('name: t\ntask: theory_q\nproduct: {gamma: [0.5], gamma: [1.0]}\nstore: a\n')
    with pytest.raises(MemgenError, match="key 'gamma' is given twice"):
        sw.load_spec(f)


@pytest.mark.skipif(__import__('torch').cuda.is_available(), reason='this machine has a CUDA GPU')
def test_a_device_the_machine_lacks_is_refused_before_any_job(tmp_path):
    "A spec asking for cuda passed --status and failed job by job when run; here the run refuses it first (Slurm runs elsewhere)."
    from memgen.pairs import PairConfig  # noqa: F401  (registers the task's parameters)

    spec = {
        'name': 'g',
        'task': 'denoisers',
        'product': {'N_grid': [[2]]},
        'fixed': {'device': 'cuda', 'preset': 'tiny'},
        'store': str(tmp_path),
    }
    with pytest.raises(MemgenError, match="device='cuda' was asked for but torch sees no CUDA GPU"):
        sw.run_sweep(spec, 'serial', show_progress=False)
    assert not (tmp_path / 'g' / 'jobs').exists()
    assert sw.sweep_status(spec)['pending'] == 1  # the status of a GPU sweep is still readable here


def test_collect_with_no_finished_job_writes_nothing(checkout):
    "--collect of a sweep with no finished job overwrote its output with an empty file and exited 0."
    (checkout / 's.yaml').write_text(yaml.safe_dump({'name': 't', 'task': 'theory_q', 'product': {'gamma': [0.5]}, 'store': 'res'}))
    (checkout / 'out.csv').write_text('kept\n')
    r = run(['sweep', 's.yaml', '--collect', 'out.csv'], checkout)
    assert r.returncode == 2 and 'has no finished job' in r.stderr and (checkout / 'out.csv').read_text() == 'kept\n', r.stderr


def test_store_of_a_damaged_sweep_exits_2(checkout):
    "--store stored 7 of 8 (N, seed) pairs with exit 0 when one job's result was cut; now it refuses, listing the job."
    from memgen.pairs import PairConfig
    from memgen.core import to_jsonable

    tiny = PairConfig(H=8, N_grid=(2,), preset='tiny', train_steps=5, sampler_steps=3, n_samples=4, n_samples_Q=8, n_test=8, betas=(4.0,))
    fixed = {k: v for k, v in to_jsonable(tiny).items() if k != 'N_grid'}
    (checkout / 'p.yaml').write_text(
        yaml.safe_dump({'name': 'p', 'task': 'denoisers', 'product': {'N_grid': [[2], [3]]}, 'fixed': fixed, 'store': 'res'})
    )
    assert run(['sweep', 'p.yaml', '--executor', 'serial'], checkout).returncode == 0
    res = sorted((checkout / 'res' / 'p' / 'jobs').glob('*/table.csv'))[0]
    res.write_text(res.read_text()[:-25])
    r = run(['sweep', 'p.yaml', '--store', 'stored'], checkout)
    assert r.returncode == 2 and '1 of 2 jobs have not finished or are damaged' in r.stderr, r.stderr
    assert not (checkout / 'stored').exists()


@pytest.mark.parametrize(
    'fixed, message',
    [({'d': 300000}, 'd=300000 needs about 2682 GiB'), ({'n_samples': 10**18}, 'n_samples=1000000000000000000 rows of dimension 200 need')],
)
def test_a_sweep_that_cannot_fit_is_refused_before_any_job(tmp_path, fixed, message):
    "A linear spec with d: 300000 ran until MemoryError; sweep tasks pass the size guard the chapters pass."
    spec = {'name': 't', 'task': 'linear', 'product': {'gamma': [0.5]}, 'fixed': fixed, 'store': str(tmp_path)}
    with pytest.raises(MemgenError, match=message):
        sw.run_sweep(spec, 'serial', show_progress=False)
    assert not (tmp_path / 't').exists()


def test_a_simulation_that_cannot_fit_is_refused_from_python():
    "The library's own entry point has the guard too: SimConfig refuses what would run until MemoryError."
    from memgen.data import SpikedWhite
    from memgen.linear import SimConfig

    with pytest.raises(MemgenError, match='d=300000 needs about 2682 GiB'):
        SimConfig(SpikedWhite(300000))
    with pytest.raises(MemgenError, match='n_samples=10000000000000000 rows of dimension 100 need'):
        SimConfig(ds=(100,), n_samples=10**16)
