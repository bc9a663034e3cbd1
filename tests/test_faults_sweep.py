"""Faults of the sweep store (issue 14): concurrent sweeps, limits, validation, failures, leftovers, workers.

Each test failed on the code before the fix and passes after it."""

import json, os, signal, socket, subprocess, sys, textwrap, time, tracemalloc, types
from dataclasses import dataclass
from pathlib import Path
import pandas as pd
import pytest
import yaml
from memgen import sweep as sw
from memgen.core import MemgenError, check_int


def theory_spec(store, n=200, name='s'):
    "n fast theory_q jobs (a few ms each)."
    return {
        'name': name,
        'task': 'theory_q',
        'product': {'gamma': [round(0.1 + 0.01 * i, 4) for i in range(n)]},
        'fixed': {'d': 20},
        'seeds': [0],
        'store': str(store),
    }


def store_leftovers(folder: Path) -> list[str]:
    "Temporary folders/files and lock files left in a sweep folder."
    return sorted([p.name for p in (folder / 'jobs').glob('.*')] + [p.name for p in (folder / 'running').glob('*')])


# 1. concurrent sweeps: one locking protocol, atomic publication ------------------------------------------------------


def test_an_empty_lock_is_not_taken_over(tmp_path):
    # before: a lock just created with O_EXCL but not yet written was read as {} and judged stale
    (tmp_path / 'running').mkdir()
    (tmp_path / 'running' / 'k.0.lock').write_text('')
    assert sw._acquire(tmp_path, 'k', lease=3600) is None


def test_a_publisher_that_loses_the_race_discards_its_copy_quietly(tmp_path):
    # before: os.replace onto the winner's folder raised OSError [Errno 39] Directory not empty
    job = sw.expand(theory_spec(tmp_path, n=1))[0]
    table = pd.DataFrame([{'quantity': 'q_theory', 'value': 0.5}])
    assert sw._publish(job, table, tmp_path, 0.1) == 'ran'
    assert sw._publish(job, table, tmp_path, 0.1) == 'done'
    assert [p.name for p in (tmp_path / 'jobs').iterdir()] == [job.key]  # no temporary folder left


def test_three_concurrent_sweeps_record_every_job_once(tmp_path):
    spec_file = tmp_path / 'spec.yaml'
    spec_file.write_text(yaml.safe_dump(theory_spec(tmp_path / 'store')))
    code = (
        "import json, sys; from memgen import sweep as sw; "
        "print(json.dumps(sw.run_sweep(sw.load_spec(sys.argv[1]), 'serial', show_progress=False)))"
    )
    procs = [
        subprocess.Popen([sys.executable, '-c', code, str(spec_file)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [e[-2000:] for _, e in outs]
    counts = [json.loads(o.strip().splitlines()[-1]) for o, _ in outs]
    assert sum(c.get('ran', 0) for c in counts) == 200, counts  # each job ran exactly once
    assert all(sum(c.values()) == 200 and set(c) <= {'done', 'ran', 'busy'} for c in counts), counts
    folder = tmp_path / 'store' / 's'
    assert len(list((folder / 'jobs').glob('[!.]*'))) == 200 and store_leftovers(folder) == []
    assert sw.sweep_status(spec_file) == {'total': 200, 'done': 200, 'failed': 0, 'running': 0, 'queued': 0, 'pending': 0}
    assert len(sw.collect(spec_file)) == 200


# 2. limits before expanding ----------------------------------------------------------------------------------------


def test_a_huge_grid_is_refused_from_its_sizes(tmp_path, monkeypatch):
    def product(*a):
        raise AssertionError('the grid was expanded before its size was checked')

    monkeypatch.setattr(sw, 'itertools', types.SimpleNamespace(product=product))  # so a regression fails fast, not OOM
    spec = theory_spec(tmp_path, n=1)
    spec['product'] = {'gamma': [1.0] * 1000, 'alpha': [1.0] * 1000, 'd': [10] * 1000}
    spec['fixed'] = {}
    sw.get_task('theory_q')  # its module (scipy) imported before the clock starts
    tracemalloc.start()
    t0 = time.perf_counter()
    with pytest.raises(MemgenError, match='the sweep has 1000000000 jobs, over 100000'):
        sw.expand(spec)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert time.perf_counter() - t0 < 1 and peak < 5e6, (time.perf_counter() - t0, peak)
    assert sw.n_jobs({**spec, 'zip': {'x': [1, 2]}, 'product': {'gamma': [1, 2, 3]}, 'seeds': [0, 1]}) == 12


# 3. the whole spec is checked before anything runs ------------------------------------------------------------------

BAD_SPECS = [
    ({'product': {'gamma': [0.5, 1.0], 'alpha': [1.0, 2.0, -1.0]}}, 'alpha=-1 is not allowed; expected alpha >= 0'),
    ({'task': 'chapter', 'product': {'chapter': ['convergence', 'nope']}, 'fixed': {}}, "chapter 'nope' is unknown"),
    ({'fixed': {'d': 20, 'gama': 1}}, "parameter 'gama' is unknown for task 'theory_q'"),
    ({'fixed': {'d': 'big'}}, "parameter d='big' of task 'theory_q' is not allowed; expected an integer"),
    ({'product': {'gamma': [1.0, [2.0]]}}, "parameter gamma=(2.0,) of task 'theory_q' is not allowed; expected a number"),
    ({'seeds': 3}, 'seeds=3 is not allowed; expected a non-empty list of integers >= 0'),
    ({'seeds': [0, -1]}, 'seed=-1 is not allowed'),
    ({'fixed': [1, 2]}, 'fixed=[1, 2] is not allowed; expected a mapping'),
    ({'product': 'gamma'}, "product='gamma' is not allowed; expected a mapping"),
    ({'name': 123}, 'name=123 is not allowed; expected a simple name'),
    ({'name': '..'}, "name='..' is not allowed; expected a simple name"),
    ({'name': '../escape'}, "name='../escape' is not allowed"),
    ({'name': '/abs'}, "name='/abs' is not allowed"),
    ({'store': 5}, 'store=5 is not allowed; expected a folder path'),
    ({'task': ['linear']}, "task ['linear'] is unknown"),
]


@pytest.mark.parametrize('bad, message', BAD_SPECS, ids=[m[:30] for _, m in BAD_SPECS])
def test_bad_specs_fail_before_any_job_runs(tmp_path, bad, message):
    f = tmp_path / 'spec.yaml'
    f.write_text(yaml.safe_dump({**theory_spec(tmp_path / 'store', n=3), **bad}))
    with pytest.raises(MemgenError) as e:
        sw.run_sweep(f, 'serial', show_progress=False)
    assert message in str(e.value) and '\n' not in str(e.value), str(e.value)
    assert not (tmp_path / 'store').exists() and not (tmp_path / '..' / 'escape').exists()


@pytest.mark.parametrize(
    'text, message',
    [
        ('name: s\ntask: [theory_q\n', 'is not valid plain YAML at line 3, column 1'),
        ("!!python/object/apply:os.system ['touch pwned']\n", "could not determine a constructor for the tag"),
        ('name: s\ntask: !!python/name:os.system\n', 'could not determine a constructor for the tag'),
        ('- 1\n- 2\n', 'is not a YAML mapping'),
    ],
)
def test_bad_yaml_is_one_line_error(tmp_path, text, message):
    f = tmp_path / 'spec.yaml'
    f.write_text(text)
    with pytest.raises(MemgenError) as e:
        sw.load_spec(f)
    assert message in str(e.value) and '\n' not in str(e.value), str(e.value)
    assert not (tmp_path / 'pwned').exists()


def test_a_store_that_is_a_file_is_refused(tmp_path):
    (tmp_path / 'afile').write_text('x')
    with pytest.raises(MemgenError, match='is a file; expected a folder'):
        sw.run_sweep(theory_spec(tmp_path / 'afile'), 'serial')
    (tmp_path / 'st').mkdir()
    (tmp_path / 'st' / 's').write_text('x')
    with pytest.raises(MemgenError, match='is a file; expected a folder'):
        sw.load_spec(theory_spec(tmp_path / 'st'))


# 4. failures reported -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FlakyParams:
    x: int = 1

    def __post_init__(self):
        check_int('x', self.x, minimum=0)


def flaky(p, seed):
    if p.x % 3 == 0:
        raise RuntimeError(f'boom at x={p.x}\nsecond line')
    return pd.DataFrame([{'quantity': 'x2', 'value': p.x * 2}])


FLAKY = sw.Task('flaky', flaky, FlakyParams)


def test_run_sweep_reports_failed_jobs(tmp_path):
    spec = sw.SweepSpec('f', FLAKY, product={'x': [1, 2, 3, 4, 5, 6]}, store=str(tmp_path))
    keys = {j.params['x']: j.key for j in sw.expand(spec)}
    res = sw.run_sweep(spec, 'serial', show_progress=False)
    assert res == {
        'done': 0,
        'ran': 4,
        'failed': 2,
        'failures': sorted(
            [{'job': keys[3], 'error': 'RuntimeError: boom at x=3'}, {'job': keys[6], 'error': 'RuntimeError: boom at x=6'}],
            key=lambda f: f['job'],
        ),
    }, res
    json.dumps(res)  # the CLI prints it as JSON
    assert sw.run_sweep(spec, 'serial', show_progress=False)['failures'] == res['failures']  # failed jobs are re-run


# 5. leftovers and status --------------------------------------------------------------------------------------------


def test_status_does_not_count_stale_locks_as_running(tmp_path):
    spec = theory_spec(tmp_path, n=3)
    jobs = sw.expand(spec)
    run = tmp_path / 's' / 'running'
    run.mkdir(parents=True)
    zombie = subprocess.Popen(['true'])  # exited, not yet reaped:
    t0 = time.time()  # wait for it to be a zombie
    while time.time() - t0 < 20 and 'Z' not in Path(f'/proc/{zombie.pid}/status').read_text().split('State:')[1].split()[0]:
        time.sleep(0.02)
    host = socket.gethostname()
    for j, pid in zip(jobs, [999_999_999, zombie.pid, os.getpid()]):
        (run / f'{j.key}.0.lock').write_text(json.dumps({'host': host, 'pid': pid, 'start': time.time()}))
    try:
        assert sw.sweep_status(spec) == {'total': 3, 'done': 0, 'failed': 0, 'running': 1, 'queued': 0, 'pending': 2}
    finally:
        zombie.wait()
    old = run / f'{jobs[2].key}.0.lock'
    os.utime(old, (time.time() - 7200,) * 2)  # no heartbeat for two hours
    assert sw.sweep_status(spec)['running'] == 0


def test_leftovers_of_a_killed_sweep_are_cleaned_on_the_next_run(tmp_path):
    spec = theory_spec(tmp_path, n=4)
    jobs = sw.expand(spec)
    folder = tmp_path / 's'
    assert sw.run_sweep(spec, 'serial', show_progress=False) == {'done': 0, 'ran': 4}
    dead = json.dumps({'host': socket.gethostname(), 'pid': 999_999_999, 'start': time.time()})
    for j in jobs[:2]:  # what SIGKILL leaves behind
        (folder / 'jobs' / f'.{j.key}.deadbeef').mkdir()
        (folder / 'jobs' / f'.{j.key}.deadbeef' / 'table.csv').write_text('x')
        (folder / 'running' / f'{j.key}.3.lock').write_text(dead)
    tmp = folder / 'running' / f'.{jobs[0].key}.0a1b2c3d'
    tmp.write_text(dead)
    os.utime(tmp, (time.time() - 120,) * 2)
    assert store_leftovers(folder) != []
    assert sw.run_sweep(spec, 'serial', show_progress=False) == {'done': 4}
    assert store_leftovers(folder) == []


def _children(pid: int) -> list[int]:
    "Pids of the live children of `pid` (from /proc)."
    out = []
    for p in Path('/proc').glob('[0-9]*'):
        try:
            stat = (p / 'stat').read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(')') + 2 :].split()
        if int(fields[1]) == pid and fields[0] != 'Z':
            out.append(int(p.name))
    return out


def _slow_task(folder: Path) -> None:
    "A module slowtask.py in `folder` with SLOW, a task that sleeps $SLOW_WAIT seconds (default 60): the same jobs whatever the wait."
    (folder / 'slowtask.py').write_text(
        textwrap.dedent('''
        import os, time, pandas as pd
        from dataclasses import dataclass
        from memgen.sweep import Task
        @dataclass(frozen=True)
        class P:
            x: int = 0
        def slow(p, seed):
            time.sleep(float(os.environ.get('SLOW_WAIT', 60))); return pd.DataFrame([{'value': p.x}])
        SLOW = Task('slow', slow, P)
    ''')
    )


def _wait_running(store: Path, n: int, timeout: float = 90) -> None:
    "Wait until `n` jobs of the sweep store hold their locks."
    t0 = time.time()
    while time.time() - t0 < timeout and len(list((store / 'running').glob('*.lock'))) < n:
        time.sleep(0.1)


@pytest.mark.skipif(not Path('/proc').exists(), reason='needs /proc')
def test_pool_workers_do_not_outlive_a_killed_sweep(tmp_path):
    _slow_task(tmp_path)
    code = (
        f"from memgen import sweep as sw; from slowtask import SLOW; "
        f"sw.run_sweep(sw.SweepSpec('w', SLOW, product={{'x': [1, 2, 3, 4]}}, store={str(tmp_path / 'store')!r}), "
        f"'local', workers=2, show_progress=False)"
    )
    p = subprocess.Popen([sys.executable, '-c', code], env={**os.environ, 'PYTHONPATH': str(tmp_path)})
    try:
        _wait_running(tmp_path / 'store' / 'w', 2)
        kids = _children(p.pid)
        assert len(kids) >= 2, kids  # two workers (and a resource tracker)
    finally:
        p.kill()
        p.wait()  # SIGKILL of the main process only

    def gone(k):
        try:
            return ') Z ' in Path(f'/proc/{k}/stat').read_text()  # a zombie: dead, not yet reaped
        except OSError:
            return True

    t0 = time.time()
    while time.time() - t0 < 10 and not all(gone(k) for k in kids):
        time.sleep(0.2)
    alive = [k for k in kids if not gone(k)]
    for k in alive:
        os.kill(k, signal.SIGKILL)
    assert alive == [], 'pool workers outlived the killed sweep'


def test_records_are_readable_by_others(tmp_path):
    old = os.umask(0o022)
    try:
        spec = sw.SweepSpec('f', FLAKY, product={'x': [1, 3]}, store=str(tmp_path))
        sw.run_sweep(spec, 'serial', show_progress=False)
    finally:
        os.umask(old)
    files = [p for p in (tmp_path / 'f').rglob('*') if p.is_file()]
    assert {p.name for p in files} >= {'run.json', 'table.csv', 'spec.json'} and len(list((tmp_path / 'f' / 'failed').iterdir())) == 1
    assert {oct(p.stat().st_mode & 0o777) for p in files} == {'0o644'}, [(p.name, oct(p.stat().st_mode)) for p in files]


def test_cut_or_corrupt_records_are_not_collected_and_are_rerun(tmp_path, capsys):
    spec = theory_spec(tmp_path, n=4)
    jobs = sw.expand(spec)
    folder = tmp_path / 's' / 'jobs'
    sw.run_sweep(spec, 'serial', show_progress=False)
    full = sw.collect(spec)
    csv = folder / jobs[0].key / 'table.csv'
    csv.write_text(csv.read_text()[:-8])  # a cut CSV
    (folder / jobs[1].key / 'run.json').write_text('{"config": {"ta')  # a cut JSON
    capsys.readouterr()
    assert sw.sweep_status(spec) == {'total': 4, 'done': 2, 'failed': 0, 'running': 0, 'queued': 0, 'pending': 2}
    t = sw.collect(spec)
    assert sorted(t.job) == sorted(j.key for j in jobs[2:])  # never silently collected
    notices = capsys.readouterr().err.strip().splitlines()
    assert len(notices) == 4 and all('will be re-run' in n for n in notices), notices
    assert any(f'job {jobs[0].key}: table.csv does not match the SHA-256' in n for n in notices)
    assert any(f'job {jobs[1].key}: run.json is cut or corrupt' in n for n in notices)
    assert sw.run_sweep(spec, 'serial', show_progress=False) == {'done': 2, 'ran': 2}
    pd.testing.assert_frame_equal(
        sw.collect(spec).sort_values('gamma').reset_index(drop=True), full.sort_values('gamma').reset_index(drop=True)
    )


# 6. workers -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize('workers', [0, -2, 1.5, True, '2'])
def test_workers_must_be_a_positive_integer(tmp_path, workers):
    with pytest.raises(MemgenError, match=r'workers=.* is not allowed; expected a positive integer, or None for all cores'):
        sw.run_sweep(theory_spec(tmp_path / 'store', n=2), 'local', workers=workers, show_progress=False)
    assert not (tmp_path / 'store').exists()


@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM])
def test_interrupt_stops_a_local_sweep_within_seconds(tmp_path, sig):
    "Ctrl-C (or SIGTERM) on a local sweep, as `memgen sweep` runs it: queued jobs never start, running ones stop, nothing half-recorded."
    _slow_task(tmp_path)

    def sweep():  # the task sleeps $SLOW_WAIT seconds: the same jobs (keys) whatever the wait
        return (
            'import sys, slowtask; from memgen import sweep as sw; from memgen.book import cleanup_on_signals\n'
            'try:\n    with cleanup_on_signals():\n'
            f"        print(sw.run_sweep(sw.SweepSpec('w', slowtask.SLOW, product={{'x': list(range(8))}}, "
            f"store={str(tmp_path / 'store')!r}), 'local', workers=2, show_progress=False))\n"
            'except KeyboardInterrupt:\n    sys.exit(130)'
        )

    env = {**os.environ, 'PYTHONPATH': str(tmp_path), 'SLOW_WAIT': '20'}
    p = subprocess.Popen([sys.executable, '-c', sweep()], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_running(tmp_path / 'store' / 'w', 2)
        kids = _children(p.pid)
        t1 = time.time()
        p.send_signal(sig)
        out, err = p.communicate(timeout=30)
        stopped = time.time() - t1
    finally:
        if p.poll() is None:
            p.kill()
    assert stopped < 10 and p.returncode in (130, 128 + sig), (stopped, p.returncode, err[-2000:])
    assert not list((tmp_path / 'store' / 'w' / 'jobs').glob('*/run.json'))  # no job finished, none half-written
    time.sleep(0.5)
    assert all(not Path(f'/proc/{k}').exists() or ') Z ' in Path(f'/proc/{k}/stat').read_text() for k in kids), kids
    r = subprocess.run([sys.executable, '-c', sweep()], env={**env, 'SLOW_WAIT': '0'}, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "'ran': 8" in r.stdout, (r.stdout, r.stderr[-2000:])  # the interrupted jobs run again


def test_commit_every_commits_what_finished_when_interrupted(tmp_path):
    "`memgen sweep --commit-every` (what `make medium` runs): Ctrl-C stops it and the finished jobs are committed on the way out."
    repo = tmp_path / 'repo'
    repo.mkdir()
    git = lambda *a: subprocess.run(['git', *a], cwd=repo, capture_output=True, text=True, check=True).stdout
    git('init', '-q')
    git('config', 'user.email', 't@example.com')
    git('config', 'user.name', 'test')
    (repo / 's.yaml').write_text('name: w\ntask: slow_commit\nproduct: {x: [0, 1, 2]}\nstore: res\n')
    code = textwrap.dedent('''
        import sys, time, pandas as pd
        from dataclasses import dataclass
        from memgen import sweep as sw
        from memgen.cli import main
        @dataclass(frozen=True)
        class P:
            x: int = 0
        @sw.register_task('slow_commit', P)
        def slow(p, seed):
            time.sleep(60 if p.x == 2 else 0); return pd.DataFrame([{'value': p.x}])
        sys.exit(main(['sweep', 's.yaml', '--executor', 'serial', '--commit-every', '3600']))''')
    p = subprocess.Popen([sys.executable, '-c', code], cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        t0 = time.time()
        while time.time() - t0 < 90 and len(list((repo / 'res' / 'w' / 'jobs').glob('*/run.json'))) < 2:
            time.sleep(0.1)
        time.sleep(0.5)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130, err[-2000:]
    committed = git('ls-files', 'res').split()
    assert len([f for f in committed if f.endswith('run.json') and '/jobs/' in f]) == 2, committed
    assert git('status', '--porcelain', '--', 'res/w/jobs') == ''  # every finished record is in the commit
    assert 'sweep store, partial' in git('log', '--format=%s')


# 9. records of the layout before December 2026 (config.json, result.csv): sealed in place, never lost ----------------


def _old_layout(spec) -> tuple:
    "One finished theory job, rewritten in the old layout: (job, its record folder, config.json's text)."
    job = sw.expand(spec)[0]
    out = sw.load_spec(spec).folder / 'jobs' / job.key
    sw.run_job(job, out.parent.parent)
    rec = json.loads((out / 'run.json').read_text())
    (out / 'run.json').unlink()
    (out / 'table.csv').rename(out / 'result.csv')
    cfg = {**rec['config'], 'seconds': 0.5, 'result_bytes': (out / 'result.csv').stat().st_size, 'versions': rec['versions']}
    return job, out, json.dumps(cfg)


def _read(out, key, barrier, q):
    barrier.wait()
    q.put(sw._record(Path(out), key))


def test_readers_at_once_all_see_an_old_record_whole(tmp_path):
    # before: one reader moved result.csv to table.csv before run.json existed; the others saw 'run.json is missing'
    import multiprocessing as mp
    import shutil

    spec = {**theory_spec(tmp_path, n=1), 'fixed': {'d': 20}}
    job, out, cfg = _old_layout(spec)
    template = tmp_path / 'template'
    shutil.copytree(out, template)
    ctx, seen = mp.get_context('fork'), []
    for _ in range(12):
        shutil.rmtree(out)
        shutil.copytree(template, out)
        (out / 'config.json').write_text(cfg)
        barrier, q = ctx.Barrier(3), ctx.Queue()
        procs = [ctx.Process(target=_read, args=(str(out), job.key, barrier, q)) for _ in range(3)]
        [p.start() for p in procs]
        [p.join() for p in procs]
        seen += [q.get() for _ in procs]
        assert sorted(p.name for p in out.iterdir()) == ['run.json', 'table.csv']
    assert seen == ['ok'] * 36, seen


def test_an_old_record_that_cannot_be_sealed_is_read_as_it_is(tmp_path, monkeypatch):
    # before: a store that cannot be written (another user's, a read-only mount) read as all pending, and run_job cleared it
    spec = {**theory_spec(tmp_path, n=1), 'fixed': {'d': 20}}
    job, out, cfg = _old_layout(spec)
    (out / 'config.json').write_text(cfg)

    def refuse(*a, **k):
        raise PermissionError(13, 'Permission denied')

    monkeypatch.setattr(sw.os, 'link', refuse)
    monkeypatch.setattr(sw.os, 'replace', refuse)
    assert sw._record(out, job.key) == 'ok' and sw.sweep_status(spec)['done'] == 1
    assert len(sw.collect(spec)) == 1 and sw.run_job(job, out.parent.parent) == 'done'
    assert sorted(p.name for p in out.iterdir()) == ['config.json', 'result.csv']  # untouched
    (out / 'config.json').write_text('[1]')  # not an object: named, not a crash
    assert sw._record(out, job.key) == "config.json is not this job's"
