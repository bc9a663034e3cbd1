"Faults of the chapter cache and the book build: inputs in the cache key, corrupt entries, leftovers of killed runs, --strict."

import json, os, re, signal, subprocess, sys, textwrap, time
from pathlib import Path
import pytest
from conftest import ROOT
from test_book import _notebook, ToyParams
from memgen.book import build_book, execute_chapter, execution_key
from memgen.chapters import Chapter, ConvergenceParams, chapter_params, get_chapter
from memgen.core import pid_alive
from memgen.core import MemgenError


def toy_root(tmp_path: Path, code: str) -> Path:
    "A checkout with a landing page and one toy chapter, toy.ipynb, running `code` after its parameters cell."
    (tmp_path / '_config.yml').write_text(
        'title: toy\nonly_build_toc_files: true\nexecute:\n  execute_notebooks: "off"\nexclude_patterns: [_build]\n'
    )
    (tmp_path / '_toc.yml').write_text('format: jb-book\nroot: intro\nchapters:\n  - file: toy\n')
    (tmp_path / 'intro.md').write_text('# Intro\n')
    (tmp_path / 'toy.ipynb').write_text(_notebook(code))
    return tmp_path


def quiet(*a):
    pass


# --- 1. the cache key covers what a chapter reads -----------------------------------------------------------------


def test_declared_input_file_is_part_of_the_cache_key(tmp_path):
    "A chapter that reads a stored results file re-executes when the file changes (it was served stale before)."
    root = toy_root(tmp_path, "import json; print('value', json.load(open('data.json'))['v'])")
    toy = Chapter('toy', 'toy.ipynb', 'Toy', ToyParams, {'quick': ToyParams()}, inputs=lambda p, root: [Path('data.json')])
    (root / 'data.json').write_text('{"v": 1}')
    nb1, reused1 = execute_chapter(toy, ToyParams(), root, root / '_build', log=quiet)
    (root / 'data.json').write_text('{"v": 22}')
    nb2, reused2 = execute_chapter(toy, ToyParams(), root, root / '_build', log=quiet)
    assert (reused1, reused2) == (False, False) and nb1 != nb2
    assert 'value 22' in nb2.read_text()
    assert execute_chapter(toy, ToyParams(), root, root / '_build', log=quiet) == (nb2, True)


def test_sweep_records_and_celeba_are_part_of_the_cache_key(tmp_path, monkeypatch):
    (tmp_path / 'toy.ipynb').write_text(_notebook('pass'))
    conv = Chapter('conv', 'toy.ipynb', 'Conv', ConvergenceParams, {'quick': ConvergenceParams()})
    (tmp_path / 's.yaml').write_text('name: t\ntask: theory_q\nproduct: {gamma: [0.5]}\nstore: res\n')
    p = ConvergenceParams(sweep='s.yaml')
    k0 = execution_key(conv, p, tmp_path)
    (tmp_path / 'res/t/jobs/abc').mkdir(parents=True)
    (tmp_path / 'res/t/jobs/abc/table.csv').write_text('q\n0.5\n')
    assert execution_key(conv, p, tmp_path) != k0
    real = get_chapter('real')
    monkeypatch.delenv('MEMGEN_CELEBA', raising=False)
    (tmp_path / 'nbs/chapters').mkdir(parents=True)
    (tmp_path / real.path).write_text(_notebook('pass'))
    k_none = execution_key(real, real.profile('quick'), tmp_path)
    (tmp_path / 'faces').mkdir()
    (tmp_path / 'faces/a.png').write_bytes(b'1')
    monkeypatch.setenv('MEMGEN_CELEBA', str(tmp_path / 'faces'))
    k_env = execution_key(real, real.profile('quick'), tmp_path)
    (tmp_path / 'faces/b.png').write_bytes(b'2')
    assert len({k_none, k_env, execution_key(real, real.profile('quick'), tmp_path)}) == 3


@pytest.mark.parametrize('sweep', ['/etc/passwd', '../outside.yaml', 'sweeps/../../outside.yaml'])
def test_sweep_outside_the_repository_is_refused(tmp_path, sweep):
    (tmp_path / 'toy.ipynb').write_text(_notebook('pass'))
    conv = Chapter('conv', 'toy.ipynb', 'Conv', ConvergenceParams, {'quick': ConvergenceParams()})
    with pytest.raises(MemgenError, match='is outside the repository'):
        execute_chapter(conv, ConvergenceParams(sweep=sweep), tmp_path, tmp_path / '_build', log=quiet)
    assert not (tmp_path / '_build').exists()


# --- 4. sizes beyond the machine's memory fail when parameters are built --------------------------------------------


def test_dimension_beyond_memory_fails_before_work():
    with pytest.raises(MemgenError, match=r'd=100000 needs about 298 GiB .* expected d <= \d+'):
        chapter_params(get_chapter('convergence'), 'quick', [('ds', '100000')])


# --- 2, 3, 6: corrupt entries, leftovers, strict claims (one toy book, built a few times) ----------------------------

CLAIM = textwrap.dedent('''\
    import json, os
    print('toy page', x)
    if os.environ.get('MEMGEN_RESULTS'):
        json.dump({'c_false': {'statement': 'toy claim that fails', 'value': 0.3, 'holds': False, 'kind': 'measured', 'criterion': 'value > 0.5'},
                   'c_true': {'statement': 'toy claim that holds', 'value': 0.9, 'holds': True, 'kind': 'theory', 'criterion': 'value > 0.5'},
                   'old': {'value': 1.0, 'text': 'an old-style headline number'}}, open(os.environ['MEMGEN_RESULTS'], 'w'))''')


def test_strict_corrupt_cache_and_leftovers(tmp_path):
    root = toy_root(tmp_path, CLAIM)
    toy = Chapter('toy', 'toy.ipynb', 'Toy', ToyParams, {'quick': ToyParams(), 'full': ToyParams(2)})
    logs = []
    html = build_book(root=root, chapters=[toy], log=logs.append)  # not strict: builds, reports the claim
    assert 'toy page' in (html / 'toy.html').read_text()
    assert '[1/1] toy: executed in' in '\n'.join(logs)  # one line per chapter when stderr is not a terminal
    assert any('1 claim(s) not reproduced' in l and 'toy/c_false: toy claim that fails' in l for l in logs), logs
    with pytest.raises(MemgenError) as e:  # strict: fails naming the claim, book kept
        build_book(root=root, chapters=[toy], strict=True, log=quiet)
    assert str(e.value) == 'strict: 1 claim(s) not reproduced: toy/c_false: toy claim that fails'
    assert (html / 'toy.html').exists()

    # a truncated executed notebook and book record, and the leftovers of killed runs
    cache = root / '_build' / 'cache' / 'toy'
    nb = next(cache.glob('*.ipynb'))
    nb.write_text(nb.read_text()[:200])
    stamp = html / '.memgen-book.json'
    stamp.write_text(stamp.read_text()[:30])
    dead = subprocess.Popen(['true'])
    dead.wait()
    (cache / f'.{nb.stem}.{dead.pid}.running.ipynb').write_text('{')
    (cache / f'.{nb.stem}.{dead.pid}.results.json').write_text('{')
    (root / '_build' / f'.stage-{dead.pid}-abcd').mkdir()
    logs = []
    build_book(root=root, chapters=[toy], log=logs.append)
    text = '\n'.join(logs)
    assert 'is corrupt' in text and 'executing it again' in text, text
    assert f'book record {stamp} is corrupt' in text and 'book built' in text and 'book unchanged' not in text, text
    assert 'Traceback' not in text
    assert 'toy page' in nb.read_text() and '"holds": false' in nb.with_suffix('.results.json').read_text()
    assert sorted(p.name for p in cache.glob('.*')) == [] and not list((root / '_build').glob('.stage-*'))

    # a truncated .results.json alone is detected too (its checksum is recorded)
    res = nb.with_suffix('.results.json')
    res.write_text(res.read_text()[:40])
    logs = []
    build_book(root=root, chapters=[toy], log=logs.append)
    assert any('toy' in l and 'is corrupt' in l for l in logs), logs
    assert json.loads(res.read_text())['c_false']['holds'] is False


# --- 3. signals: temporary files removed, children killed ------------------------------------------------------------


def _wait_for(path: Path, timeout: float = 300) -> str:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.1)
    raise AssertionError(f'{path} did not appear in {timeout}s')


def _wait_gone(pid: int, timeout: float = 60) -> bool:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if not pid_alive(pid):
            return True
        time.sleep(0.1)
    return False


def _toy_script(root: Path, force: bool = False) -> str:
    "A Python script that executes the toy chapter of `root` as `memgen run` does."
    return textwrap.dedent(f'''\
        import sys; sys.path.insert(0, {str(ROOT / 'tests')!r})
        from pathlib import Path
        from test_book import ToyParams
        from memgen.book import execute_chapter
        from memgen.chapters import Chapter
        toy = Chapter('toy', 'toy.ipynb', 'Toy', ToyParams, {{'quick': ToyParams()}})
        execute_chapter(toy, ToyParams(), Path({str(root)!r}), Path({str(root / '_build')!r}), force={force})''')


def _sigterm(script: str, flag: Path, while_running=lambda proc: None) -> tuple[subprocess.Popen, str, str]:
    "Run `script`, wait until it writes `flag`, look (`while_running(proc)`), send SIGTERM: (process, flag text, stderr)."
    proc = subprocess.Popen([sys.executable, '-c', script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        text = _wait_for(flag)
        while_running(proc)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc, text, err


def test_sigterm_during_a_chapter_removes_its_temporary_files(tmp_path):
    root = toy_root(
        tmp_path,
        "import os, time, json\n"
        "json.dump({'a': 1}, open(os.environ['MEMGEN_RESULTS'], 'w'))\n"
        "open('started', 'w').write(str(os.getpid()))\ntime.sleep(120)",
    )
    cache = root / '_build' / 'cache' / 'toy'
    running = lambda proc: list(cache.glob(f'.*.{proc.pid}.*')) or pytest.fail('no temporary files while running')
    proc, kernel, err = _sigterm(_toy_script(root), root / 'started', running)
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]
    assert list(cache.glob('.*')) == [] and list(cache.glob('*.ipynb')) == []
    assert _wait_gone(int(kernel)), 'the kernel outlived the killed run'


def test_killed_force_rerun_keeps_the_previous_entry(tmp_path):
    "`--force` executes beside the cached entry and replaces it only when complete: killed midway, the old entry is intact."
    from memgen.book import cache_problem

    root = toy_root(
        tmp_path, "import os, time\nprint('answer', 42)\nif os.path.exists('slow'):\n    open('started', 'w').write('1'); time.sleep(120)"
    )
    toy = Chapter('toy', 'toy.ipynb', 'Toy', ToyParams, {'quick': ToyParams()})
    nb, reused = execute_chapter(toy, ToyParams(), root, root / '_build', log=quiet)
    before = {f.name: f.read_bytes() for f in nb.parent.glob(nb.stem + '*')}
    assert not reused and len(before) == 2 and cache_problem(nb) is None  # the notebook and its record
    (root / 'slow').write_text('')
    proc, _, err = _sigterm(_toy_script(root, force=True), root / 'started')
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]
    assert {f.name: f.read_bytes() for f in nb.parent.glob(nb.stem + '*')} == before and cache_problem(nb) is None
    assert list(nb.parent.glob('.*')) == []  # the killed run's temporary files are gone


def test_sigterm_kills_the_jupyter_book_process_group(tmp_path):
    "The book's jupyter-book subprocess runs in its own process group, killed when memgen is killed."
    flag = tmp_path / 'child'
    script = textwrap.dedent(f'''\
        import sys
        from memgen.book import _run_quietly, cleanup_on_signals
        with cleanup_on_signals():
            _run_quietly([sys.executable, '-c', "import os, time; open({str(flag)!r}, 'w').write(str(os.getpid())); time.sleep(120)"])''')
    proc, child, _ = _sigterm(script, flag)
    assert proc.returncode == 128 + signal.SIGTERM
    assert _wait_gone(int(child)), 'the child outlived memgen'


def test_chapters_execute_with_one_thread_unless_set(tmp_path, monkeypatch):
    "A chapter's kernel runs one OpenMP/BLAS thread (torch's CPU sums then match from build to build) unless the caller sets it."
    root = toy_root(tmp_path, "import os; print('threads', os.environ['OMP_NUM_THREADS'], os.environ['MKL_NUM_THREADS'])")
    toy = Chapter('toy', 'toy.ipynb', 'Toy', ToyParams, {'quick': ToyParams()})
    for var in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
        monkeypatch.delenv(var, raising=False)
    nb, _ = execute_chapter(toy, ToyParams(), root, root / '_build', log=quiet)
    assert 'threads 1 1' in nb.read_text()
    monkeypatch.setenv('OMP_NUM_THREADS', '3')
    nb, _ = execute_chapter(toy, ToyParams(), root, root / '_build', force=True, log=quiet)
    assert 'threads 3 1' in nb.read_text()


# --- parallel chapters ----------------------------------------------------------------------------------------------


def _two_toys(tmp_path: Path, second: str) -> tuple[Path, list]:
    "A checkout with two toy chapters: toy prints a seeded sum and its process id; toy2 runs `second`."
    tmp_path.mkdir(parents=True, exist_ok=True)
    root = toy_root(
        tmp_path,
        'import os, numpy as np\nprint("sum", repr(np.random.default_rng(x).standard_normal(1000).sum()), "pid", os.getpid(), "ppid", os.getppid())',
    )
    (root / '_toc.yml').write_text('format: jb-book\nroot: intro\nchapters:\n  - file: toy\n  - file: toy2\n')
    (root / 'toy2.ipynb').write_text(_notebook(second))
    chapters = [Chapter(n, f'{n}.ipynb', n, ToyParams, {'quick': ToyParams()}) for n in ('toy', 'toy2')]
    return root, chapters


def test_parallel_chapters_give_the_serial_numbers(tmp_path):
    "Two workers execute the chapters in their own processes, with the numbers of a serial run; a rebuild re-runs nothing."
    import os
    from memgen.book import execute_chapters

    outputs = {}
    for workers in (1, 2):
        root, chapters = _two_toys(tmp_path / f'w{workers}', 'print("second")')
        plan = [(ch, ToyParams()) for ch in chapters]
        executed, timings = execute_chapters(plan, root, root / '_build', workers=workers, log=quiet)
        text = executed['toy'].read_text()
        outputs[workers] = text[text.index('sum') : text.index('pid')]
        ppid = int(re.search(r'ppid (\d+)', text)[1])  # the kernel's parent: the process that executed the chapter
        assert (ppid == os.getpid()) == (workers == 1), (workers, ppid)
        assert {c: v['cached'] for c, v in timings.items()} == {'toy': False, 'toy2': False}
    assert outputs[1] == outputs[2] and 'sum' in outputs[1]
    html = build_book(root=root, chapters=chapters, workers=2, log=quiet)  # the two-worker run's entries are reused
    stamp = json.loads((html / '.memgen-book.json').read_text())
    assert {c: v['cached'] for c, v in stamp['chapters'].items()} == {'toy': True, 'toy2': True}


def test_parallel_failure_reports_the_chapter_and_keeps_the_others(tmp_path):
    "A chapter failing in a worker stops the build with its name and cell; the chapter beside it finishes and is cached."
    root, chapters = _two_toys(tmp_path, 'raise ValueError("boom")')
    with pytest.raises(MemgenError) as e:
        build_book(root=root, chapters=chapters, workers=2, log=quiet)
    assert "chapter 'toy2' failed in cell" in str(e.value) and 'ValueError: boom' in str(e.value)
    assert len(list((root / '_build' / 'cache' / 'toy').glob('*.ipynb'))) == 1
    assert not (root / '_build' / 'html').exists()


@pytest.mark.parametrize('workers', [1, 2])
def test_ctrl_c_on_a_book_build_is_one_line(tmp_path, workers):
    "Ctrl-C (SIGINT to the whole process group, as a terminal sends it) during chapters: exit 130, one line, nothing left behind."
    root, chapters = _two_toys(tmp_path, "import os, time\nopen(f'started-{os.getpid()}', 'w').write('1')\ntime.sleep(120)")
    (root / 'toy.ipynb').write_text(_notebook("import os, time\nopen(f'started-{os.getpid()}', 'w').write('1')\ntime.sleep(120)"))
    script = textwrap.dedent(f'''\
        import sys; sys.path.insert(0, {str(ROOT / 'tests')!r})
        from pathlib import Path
        from test_book import ToyParams
        from memgen.book import build_book
        from memgen.chapters import Chapter
        chapters = [Chapter(n, f'{{n}}.ipynb', n, ToyParams, {{'quick': ToyParams()}}) for n in ('toy', 'toy2')]
        try:
            build_book(root=Path({str(root)!r}), chapters=chapters, workers={workers}, log=lambda *a: None)
        except KeyboardInterrupt:
            print('memgen: interrupted', file=sys.stderr); sys.exit(130)''')
    proc = subprocess.Popen(
        [sys.executable, '-c', script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        t0 = time.time()
        while time.time() - t0 < 120 and len(list(root.glob('started-*'))) < min(workers, 2):
            time.sleep(0.1)
        kernels = [int(f.name.split('-')[1]) for f in root.glob('started-*')]
        assert kernels, 'no chapter started'
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130 and err.strip() == 'memgen: interrupted', err[-3000:]
    assert all(_wait_gone(k) for k in kernels), 'a kernel outlived the interrupted build'
    build = root / '_build'
    assert not list(build.glob('.stage-*')) and not [p for p in build.rglob('.*') if p.is_file()], list(build.rglob('.*'))
