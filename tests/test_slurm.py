"""Sweeps on a real Slurm cluster (single node, started by .ci/slurm-up): every job once, scancel and rerun, a task
stopped at its time limit, --status while jobs wait in the queue. Skipped with the reason where Slurm cannot run."""

import contextlib, io, json, os, shutil, subprocess, sys, threading, time
from dataclasses import dataclass, replace
from pathlib import Path
import cloudpickle
import pandas as pd
import pytest
from conftest import IN_CI, ROOT
from memgen import sweep as sw
from memgen.cli import main

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the test's task travels to the Slurm jobs by value


def _cluster_up() -> str:
    "'' when a Slurm node answers, else why not."
    if not shutil.which('sinfo'):
        return 'Slurm is not installed (Debian: slurmctld slurmd slurm-client munge)'
    r = subprocess.run(['sinfo', '-h', '-o', '%T'], capture_output=True, text=True)
    return '' if r.returncode == 0 and any(s in r.stdout for s in ('idle', 'mixed', 'alloc')) else 'no Slurm node is up'


@pytest.fixture(scope='module')
def slurm():
    "A running single-node Slurm: the one here, or one started by .ci/slurm-up (root only); else the test is skipped."
    why = _cluster_up()
    if why and os.geteuid() == 0 and (shutil.which('slurmctld') or IN_CI):
        r = subprocess.run([str(ROOT / '.ci' / 'slurm-up')], capture_output=True, text=True, timeout=600)
        why = _cluster_up() and f'.ci/slurm-up failed: {(r.stderr or r.stdout).strip()[-300:]}'
    if why and IN_CI and not shutil.which('sinfo'):
        pytest.fail(f'{why}: .ci/run installs it in CI')
    if why:
        pytest.skip(f'{why}; as root, .ci/slurm-up installs and starts a single-node cluster')


@dataclass(frozen=True)
class NapParams:
    x: int = 0
    nap: float = 0.0  # seconds the job with x == 1 sleeps while the file `gate` exists
    gate: str = ''


def nap(p: NapParams, seed: int) -> pd.DataFrame:
    if p.x == 1 and p.gate and Path(p.gate).exists():
        time.sleep(p.nap)
    return pd.DataFrame([{'x': p.x, 'seed': seed, 'value': 10 * p.x + seed, 'pid': os.getpid()}])


NAP = sw.Task('nap', nap, NapParams)


@pytest.fixture(autouse=True)
def cancel_leftovers(tmp_path):
    "After each test, cancel what its sweeps left in the queue (a failed test must not hold the node's CPUs)."
    yield
    for q in tmp_path.glob(f'store/*/{sw.SLURM_QUEUE}'):
        ids = sorted({i.split('_')[0] for i in json.loads(q.read_text()).values()})
        subprocess.run(['scancel', *ids], capture_output=True)


def spec(tmp_path, name, xs=(0, 1, 2), slurm=None, **fixed):
    return sw.SweepSpec(name, NAP, product={'x': list(xs)}, fixed=fixed, seeds=[0], store=str(tmp_path / 'store'), slurm=slurm or {})


def in_thread(fn, *a, **kw):
    "Run fn in a thread; returns (thread, box) where box['out'] is its result once the thread ends."
    box = {}
    t = threading.Thread(target=lambda: box.__setitem__('out', fn(*a, **kw)), daemon=True)
    t.start()
    return t, box


def wait_for(cond, timeout: float, what: str):
    t0 = time.time()
    while not cond():
        assert time.time() - t0 < timeout, f'timed out after {timeout} s waiting for {what}'
        time.sleep(0.2)


def queue_ids(s) -> dict:
    return json.loads((s.folder / sw.SLURM_QUEUE).read_text())


def records(s) -> list:
    jobs = s.folder / 'jobs'
    return sorted(p.name for p in jobs.iterdir() if not p.name.startswith('.')) if jobs.exists() else []


def test_sweep_through_slurm_runs_every_job_once(slurm, tmp_path, capfd):
    s = spec(tmp_path, 'once', xs=(0, 1, 2))
    assert sw.run_sweep(s, 'slurm') == {'done': 0, 'ran': 3}
    err = capfd.readouterr().err
    assert 'sacct' not in err and 'Bypassing' not in err, err[-1000:]  # states come from squeue, without noise
    assert err.strip().splitlines()[-1].endswith('finished: 3'), err[-500:]
    t = sw.collect(s).sort_values('x')
    assert t.value.tolist() == [0, 10, 20] and t.pid.nunique() == 3  # three Slurm tasks, one process each
    assert len(queue_ids(s)) == 3 and len(records(s)) == 3
    assert sw.run_sweep(s, 'slurm') == {'done': 3}  # nothing submitted again
    assert len(list((s.folder / 'submitit').glob('*_result.pkl'))) == 3


def test_scancel_then_rerun_runs_only_the_missing_job(slurm, tmp_path):
    gate = tmp_path / 'gate'
    gate.write_text('sleep')
    s = spec(tmp_path, 'cancel', xs=(0, 1), nap=300.0, gate=str(gate))
    th, box = in_thread(sw.run_sweep, s, 'slurm', show_progress=False)
    key = sw.expand(s)[1].key  # the job with x == 1
    wait_for(lambda: any((s.folder / 'running').glob(f'{key}.*.lock')), 60, 'the job x=1 to run')
    subprocess.run(['scancel', queue_ids(s)[key]], check=True)
    th.join(60)
    assert not th.is_alive()
    res = box['out']
    assert res['ran'] == 1 and res['failed'] == 1, res
    assert res['failures'][0]['job'] == key and 'left the queue without a result' in res['failures'][0]['error']
    assert sw.sweep_status(s)['pending'] == 1  # the cancelled job left no record and no live lock
    gate.unlink()
    assert sw.run_sweep(s, 'slurm', show_progress=False) == {'done': 1, 'ran': 1}
    assert records(s) == sorted(j.key for j in sw.expand(s))  # each job recorded once
    assert len(list((s.folder / 'jobs').glob('.*'))) == 0


def test_time_limit_reports_failed_and_the_next_call_reruns(slurm, tmp_path):
    # Slurm's time-limit warning (USR2, signal_delay_s before the 1-minute limit, so about 5 s after the start) stops a
    # task that is not checkpointable; only that job is in the sweep, so the warning cannot catch a job that is merely slow to start
    gate = tmp_path / 'gate'
    gate.write_text('sleep')
    s = spec(tmp_path, 'limit', xs=(1,), slurm={'timeout_min': 1, 'signal_delay_s': 55}, nap=300.0, gate=str(gate))
    t0 = time.time()
    res = sw.run_sweep(s, 'slurm', show_progress=False)
    assert res.get('failed') == 1 and 'ran' not in res and time.time() - t0 < 120, res
    err = res['failures'][0]['error']
    assert 'timed-out' in err or 'left the queue' in err, res
    # timed out in the task: a failure record; killed before Python could take the warning (a slow start under load): the
    # job left the queue without a result, which counts as pending, as a cancelled job does (test_scancel_...)
    assert sw.sweep_status(s)['failed' if 'timed-out' in err else 'pending'] == 1
    gate.unlink()  # the next call, with a time limit that fits (Slurm options are not part of a job's key), runs it
    assert sw.run_sweep(replace(s, slurm={'timeout_min': 5}), 'slurm', show_progress=False) == {'done': 0, 'ran': 1}
    assert sw.sweep_status(s)['done'] == 1


def test_status_while_jobs_wait_in_the_queue(slurm, tmp_path):
    s = spec(tmp_path, 'held', xs=(0, 1), slurm={'additional_parameters': {'hold': True}})
    spec_file = tmp_path / 'held.yaml'
    th, box = in_thread(sw.run_sweep, s, 'slurm', show_progress=False)
    wait_for(lambda: (s.folder / sw.SLURM_QUEUE).exists(), 60, 'the submission')
    status = sw.sweep_status(s)
    assert status == {'total': 2, 'done': 0, 'failed': 0, 'running': 0, 'queued': 2, 'pending': 0}, status
    # the same through the command line: one JSON line
    spec_file.write_text(json.dumps({'name': 'held', 'task': 'nap', 'product': {'x': [0, 1]}, 'store': str(tmp_path / 'store')}))
    sw.register_task('nap', NapParams)(nap)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(['sweep', str(spec_file), '--status']) == 0
    assert json.loads(out.getvalue())['queued'] == 2
    array = next(iter(queue_ids(s).values())).split('_')[0]
    subprocess.run(['scontrol', 'release', array], check=True)
    th.join(120)
    assert box['out'] == {'done': 0, 'ran': 2}
    assert sw.sweep_status(s) == {'total': 2, 'done': 2, 'failed': 0, 'running': 0, 'queued': 0, 'pending': 0}
