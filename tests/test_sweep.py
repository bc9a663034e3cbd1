"""Sweeps: executors agree with a serial run, kill-and-resume, failures, concurrent sweeps, bad input."""

import json, os, signal, subprocess, sys, time
from dataclasses import dataclass
from pathlib import Path
import pandas as pd
import pytest
import yaml
from conftest import ROOT
from memgen.core import pid_alive
from memgen import sweep as sw
from memgen.core import check_int

MEMGEN = str(Path(sys.executable).parent / 'memgen')


def spec_dict(store, name='s', **kw):
    d = {
        'name': name,
        'task': 'linear',
        'product': {'gamma': [0.5, 1.0, 2.0, 4.0]},
        'fixed': {'d': 40, 'n_seeds': 1, 'n_samples': 30, 'quantities': ['q', 'm']},
        'seeds': [0, 1],
        'store': str(store),
    }
    d.update(kw)
    return d


def table(spec):
    t = sw.collect(spec)
    return t.drop(columns=['job']).sort_values(['gamma', 'job_seed', 'quantity']).reset_index(drop=True)


@pytest.fixture(scope='module')
def serial_reference(tmp_path_factory):
    spec = spec_dict(tmp_path_factory.mktemp('serial'))
    assert sw.run_sweep(spec, 'serial', show_progress=False) == {'done': 0, 'ran': 8}
    return table(spec)


@pytest.mark.parametrize('executor', ['local', 'submitit-local'])
def test_executors_match_serial_exactly(tmp_path, serial_reference, executor):
    # submitit starts one interpreter per job: its half of the grid (seed 0) keeps the test short
    seeds = [0, 1] if executor == 'local' else [0]
    spec = spec_dict(tmp_path, seeds=seeds)
    n = 4 * len(seeds)
    counts = sw.run_sweep(spec, executor, workers=2, show_progress=False)
    assert counts.get('ran') == n, counts
    want = serial_reference[serial_reference.job_seed.isin(seeds)].reset_index(drop=True)
    pd.testing.assert_frame_equal(table(spec), want)
    assert sw.run_sweep(spec, executor, workers=2, show_progress=False) == {'done': n}  # nothing re-run


def _wait_until_lock_holders_are_gone(running: Path, timeout: float = 20.0) -> None:
    "SIGKILL of a process group returns before every worker has died: wait until no lock names a live process."
    t0 = time.time()
    while time.time() - t0 < timeout:
        pids = []
        for lock in running.glob('*.lock'):
            try:
                pids.append(int(json.loads(lock.read_text())['pid']))
            except (OSError, ValueError, KeyError):
                pass
        if not any(pid_alive(pid) for pid in pids):
            return
        time.sleep(0.05)


def test_killed_sweep_leaves_no_partial_record_and_resumes(tmp_path):
    # jobs of ~0.5-1 s each, so that a kill after the first finished job leaves most of them undone
    heavy = {'d': 300, 'n_seeds': 1, 'n_samples': 50, 'quantities': ['q', 'D_bulk', 'D_lat']}
    spec_file = tmp_path / 'spec.yaml'
    spec_file.write_text(yaml.safe_dump(spec_dict(tmp_path / 'store', fixed=heavy)))
    jobs_dir = tmp_path / 'store' / 's' / 'jobs'
    p = subprocess.Popen(
        [MEMGEN, 'sweep', str(spec_file), '--executor', 'local', '--workers', '2'],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    t0 = time.time()
    while time.time() - t0 < 120 and not (jobs_dir.exists() and any(jobs_dir.glob('[!.]*'))):
        time.sleep(0.01)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    _wait_until_lock_holders_are_gone(tmp_path / 'store' / 's' / 'running')
    finished = [d for d in jobs_dir.glob('[!.]*')]
    assert 1 <= len(finished) < 8, len(finished)
    assert all(sorted(f.name for f in d.iterdir()) == ['run.json', 'table.csv'] for d in finished)  # nothing half-written
    counts = sw.run_sweep(sw.load_spec(spec_file), 'serial', show_progress=False)
    assert counts['done'] == len(finished) and counts['done'] + counts.get('ran', 0) == 8, counts
    assert not list(jobs_dir.glob('.*'))  # stray temp folders cleaned
    reference = spec_dict(tmp_path / 'reference', fixed=heavy)
    sw.run_sweep(reference, 'serial', show_progress=False)
    pd.testing.assert_frame_equal(table(sw.load_spec(spec_file)), table(reference))


@dataclass(frozen=True)
class FlakyParams:
    x: int = 1

    def __post_init__(self):
        check_int('x', self.x, minimum=0)


def flaky(p, seed):
    if p.x == 3:
        raise RuntimeError('boom at x=3')
    return pd.DataFrame([{'quantity': 'x2', 'value': p.x * 2}])


FLAKY = sw.Task('flaky', flaky, FlakyParams)


@pytest.mark.parametrize('executor', ['serial', 'local'])
def test_failing_job_is_recorded_and_does_not_stop_others(tmp_path, executor):
    spec = sw.SweepSpec('f', FLAKY, product={'x': [1, 2, 3, 4, 5, 6, 7, 8]}, store=str(tmp_path))
    counts = sw.run_sweep(spec, executor, workers=2, show_progress=False)
    assert counts.get('ran') == 7 and counts.get('failed') == 1 and len(counts['failures']) == 1, counts
    failed = list((tmp_path / 'f' / 'failed').glob('*.json'))
    assert len(failed) == 1 and 'boom at x=3' in json.loads(failed[0].read_text())['traceback']
    assert sw.sweep_status(spec) == {'total': 8, 'done': 7, 'failed': 1, 'running': 0, 'queued': 0, 'pending': 0}
    key = next(j.key for j in sw.expand(spec) if j.params['x'] == 3)
    assert sw.run_sweep(spec, 'serial', show_progress=False) == {  # failed jobs are re-run
        'done': 7,
        'failed': 1,
        'failures': [{'job': key, 'error': 'RuntimeError: boom at x=3'}],
    }


def test_two_sweeps_on_one_store(tmp_path, serial_reference):
    spec_file = tmp_path / 'spec.yaml'
    spec_file.write_text(yaml.safe_dump(spec_dict(tmp_path / 'store')))
    procs = [
        subprocess.Popen([MEMGEN, 'sweep', str(spec_file), '--executor', 'serial'], stdout=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outs = [json.loads(p.communicate(timeout=300)[0].strip().splitlines()[-1]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sum(o.get('ran', 0) for o in outs) == 8, outs  # each job ran exactly once
    pd.testing.assert_frame_equal(table(sw.load_spec(spec_file)), serial_reference)


def test_chapter_reads_sweep_results(tmp_path):
    from memgen.book import run_chapter
    import shutil, tempfile

    (ROOT / '_build').mkdir(exist_ok=True)
    inside = Path(tempfile.mkdtemp(prefix='test-sweep-', dir=ROOT / '_build'))  # a chapter reads sweeps inside the repository only
    try:
        spec = spec_dict(inside / 'store', name='conv', fixed={'d': 30, 'n_seeds': 1, 'n_samples': 20, 'quantities': ['q']})
        spec_file = inside / 'conv.yaml'
        spec_file.write_text(yaml.safe_dump(spec))
        _run_chapter_on_sweep(run_chapter, spec_file, tmp_path)
    finally:
        shutil.rmtree(inside, ignore_errors=True)


def _run_chapter_on_sweep(run_chapter, spec_file, tmp_path):
    sw.run_sweep(sw.load_spec(spec_file), 'serial', show_progress=False)
    nb = run_chapter('convergence', 'quick', [('sweep', str(spec_file.relative_to(ROOT))), ('ds', '30')], build_dir=tmp_path / 'build')
    text = json.dumps(json.loads(Path(nb).read_text())['cells'])
    assert 'read 8 simulations from the sweep' in text


@pytest.mark.parametrize(
    'spec, message',
    [
        (dict(task='nope'), "task 'nope' is unknown"),
        (dict(product={'gama': [1]}), "parameter 'gama' is unknown for task 'linear'"),
        (dict(product={'gamma': []}), "grid entry 'gamma' is []"),
        (dict(product={'gamma': list(range(1, 400)), 'd': list(range(1, 300))}), 'over 100000; pass yes=True (--yes)'),
        (dict(fixed={'d': 0}), 'd=0 is not allowed'),
    ],
)
def test_bad_input_on_the_command_line(tmp_path, spec, message):
    f = tmp_path / 'spec.yaml'
    f.write_text(yaml.safe_dump(spec_dict(tmp_path / 'store', **spec)))
    r = subprocess.run([MEMGEN, 'sweep', str(f)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / 'store').exists()


def test_status_and_collect_on_the_command_line(tmp_path):
    f = tmp_path / 'spec.yaml'
    f.write_text(yaml.safe_dump(spec_dict(tmp_path / 'store')))
    r = subprocess.run([MEMGEN, 'sweep', str(f), '--status'], capture_output=True, text=True)
    assert json.loads(r.stdout) == {'total': 8, 'done': 0, 'failed': 0, 'running': 0, 'queued': 0, 'pending': 8}
    subprocess.run([MEMGEN, 'sweep', str(f), '--executor', 'serial'], check=True, capture_output=True)
    out = tmp_path / 'all.csv'
    subprocess.run([MEMGEN, 'sweep', str(f), '--collect', str(out)], check=True, capture_output=True)
    assert len(pd.read_csv(out)) == 16


@pytest.mark.parametrize('spec_file', sorted((ROOT / 'sweeps').glob('*.yaml')), ids=lambda p: p.stem)
def test_shipped_specs_expand_and_fit_their_data(spec_file):
    """Every shipped spec expands to valid jobs, and every denoiser job on a finite pool (the patches) asks for at
    most what the pool holds: two disjoint training sets of N and held-out images."""
    from memgen.data import image_dataset

    jobs = sw.expand(spec_file)
    assert jobs and len({j.key for j in jobs}) == len(jobs)
    for H in {j.params['H'] for j in jobs if j.params.get('data') == 'patches'}:
        pool = len(image_dataset('patches', H).images)
        for j in jobs:
            if j.params.get('data') == 'patches' and j.params['H'] == H:
                need = 2 * max(j.params['N_grid']) + j.params.get('n_test', 64)
                assert need <= pool, (spec_file.name, H, j.params['N_grid'], pool)
