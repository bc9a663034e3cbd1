"""The memgen command line: listing, and bad input rejected with exit code 2 before anything is written.

Most cases run in-process through `memgen.cli.main` (the console script calls exactly that); a few subprocess smoke
tests keep what only a process shows: the installed script, exit codes, a closed pipe, what gets imported."""

import contextlib, io, os, subprocess, sys
from pathlib import Path
import pytest
from conftest import ROOT

MEMGEN = [str(Path(sys.executable).parent / 'memgen')]  # the installed console script


def run(args, cwd, process: bool = False) -> subprocess.CompletedProcess:
    "`memgen ARGS` in `cwd`: in-process through main() (argparse's exits included), or the installed script (`process`)."
    if process:
        return subprocess.run(MEMGEN + args, cwd=cwd, capture_output=True, text=True, timeout=300)
    from memgen.cli import main

    out, err, here = io.StringIO(), io.StringIO(), os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(args)
            except SystemExit as e:
                code = e.code
    finally:
        os.chdir(here)
    return subprocess.CompletedProcess(args, code or 0, out.getvalue(), err.getvalue())


@pytest.mark.parametrize('process', [False, True])
def test_list(checkout, process):
    r = run(['list'], checkout, process)
    assert r.returncode == 0 and 'convergence' in r.stdout and 'quick=' in r.stdout and 'full=' in r.stdout


@pytest.mark.parametrize('args, message', [(['run', 'convergence', '-p', 'ds', '0'], 'd=0 is not allowed; expected d >= 1')])
def test_the_installed_script_exits_2_with_one_line(checkout, args, message):
    "The console script in a process: exit code 2 and one line on stderr, as main() returns in-process."
    r = run(args, checkout, process=True)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and message in r.stderr, r.stderr
    assert not (checkout / '_build').exists()


@pytest.mark.parametrize(
    'args, message',
    [
        (
            ['run', 'nosuchchapter'],
            "chapter 'nosuchchapter' is unknown; expected one of ['intro', 'convergence', 'memorisation', 'latent', 'powerlaw', 'diffusion', 'training', 'explorer', 'real', 'measure', 'distances', 'denoisers']",
        ),
        (['run', 'convergence', '--profile', 'huge'], "invalid choice: 'huge'"),
        (['book', '--profile', 'huge'], "invalid choice: 'huge'"),
        (['book', '--only', 'nosuchchapter'], "chapter 'nosuchchapter' is unknown"),
        (['run', 'convergence', '-p', 'nope', '1'], "parameter 'nope' is unknown for ConvergenceParams"),
        (['run', 'convergence', '-p', 'n_seeds', 'many'], "n_seeds='many' is not a valid int"),
        (['run', 'convergence', '-p', 'gammas', '0.5,0'], 'gammas=0 is not allowed; expected gammas > 0'),
        (['run', 'convergence', '-p', 'ds', '0'], 'd=0 is not allowed; expected d >= 1'),
        (['run', 'convergence', '--device', 'tpu'], "invalid choice: 'tpu'"),
        (['book', '--repository-url', 'github.com/me'], "repository_url='github.com/me' is not allowed; expected https://HOST/OWNER/REPO"),
    ],
)
def test_bad_input_is_one_line_exit_2_nothing_written(checkout, args, message):
    assert_one_line_exit_2(checkout, args, message)


def assert_one_line_exit_2(checkout, args, message):
    "Bad input: exit 2, one line on stderr naming the problem, nothing written."
    r = run(args, checkout)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], r.stderr
    assert not (checkout / '_build').exists()


def test_outside_a_checkout(tmp_path):
    r = run(['run', 'convergence'], tmp_path)
    assert r.returncode == 2 and 'no _toc.yml and _config.yml found' in r.stderr


# --- one error path: every bad input or OS error is one line on stderr and exit 2, never a traceback -------------------

import torch

NO_CUDA = not torch.cuda.is_available()


@pytest.mark.parametrize(
    'args, message',
    [
        (['run', 'convergence', '-p', 'ds', '[1,'], "parameter ds='[1,' is not a valid JSON list"),
        (['run', 'convergence', '-p', 'ds', '100000'], 'd=100000 needs about 298 GiB'),
        (['run', 'denoisers', '-p', 'device', 'banana'], "device='banana' is not allowed"),
        (['run', 'convergence', '-p', 'sweep', '/etc/passwd'], "sweep='/etc/passwd' is outside the repository"),
        (['run', 'convergence', '-p', 'sweep', '../sweep.yaml'], "sweep='../sweep.yaml' is outside the repository"),
        (['sweep', 'nosuch.yaml', '--workers', '0'], 'workers=0 is not allowed; expected an integer >= 1'),
        (['sweep', 'nosuch.yaml', '--workers', 'x'], "workers='x' is not an integer"),
    ]
    + (
        [
            (['run', 'denoisers', '--device', 'cuda'], "device='cuda' was asked for but torch sees no CUDA GPU"),
            (['run', 'denoisers', '-p', 'device', 'cuda'], "device='cuda' was asked for but torch sees no CUDA GPU"),
            (['book', '--device', 'cuda'], "device='cuda' was asked for but torch sees no CUDA GPU"),
        ]
        if NO_CUDA
        else []
    ),
)
def test_more_bad_input_is_one_line_exit_2(checkout, args, message):
    assert_one_line_exit_2(checkout, args, message)


def test_os_errors_are_one_line(checkout):
    "A _build that cannot be written (here: a file in its place), a sweep store that is a file, --collect to a folder."
    (checkout / '_build').write_text('not a folder')
    r = run(['run', 'intro'], checkout)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and 'Traceback' not in r.stderr, r.stderr
    (checkout / 'afile').write_text('')
    (checkout / 's.yaml').write_text('name: t\ntask: theory_q\nproduct: {gamma: [0.5]}\nstore: afile\n')
    r = run(['sweep', 's.yaml', '--executor', 'serial'], checkout)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and 'is a file' in r.stderr, r.stderr
    (checkout / 's.yaml').write_text('name: t\ntask: theory_q\nproduct: {gamma: [0.5]}\nstore: res\n')
    (checkout / 'out').mkdir()
    r = run(['sweep', 's.yaml', '--collect', 'out'], checkout)
    assert r.returncode == 2 and r.stderr.strip() == 'memgen: error: --collect out is a folder; expected a file path such as out.csv', (
        r.stderr
    )


def test_list_into_a_closed_pipe_exits_quietly(checkout):
    "`memgen list | head -1`: the reader goes away; no BrokenPipeError traceback."
    p = subprocess.Popen(MEMGEN + ['list'], cwd=checkout, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()  # the reader has gone before memgen writes
    err = p.stderr.read().decode()
    p.wait(timeout=120)
    assert p.returncode == 0 and err == '', err


def test_list_follows_the_book_order(checkout):
    from memgen.book import toc_files
    from memgen.chapters import CHAPTERS

    r = run(['list'], checkout)
    listed = [l.split(':')[0] for l in r.stdout.splitlines() if not l.startswith(' ')]
    by_entry = {c.path.removesuffix('.ipynb'): c.name for c in CHAPTERS}
    in_toc = [by_entry[e] for e in toc_files(checkout) if e in by_entry]
    assert listed[: len(in_toc)] == in_toc and sorted(listed) == sorted(by_entry.values()), listed


def test_registry_and_list_import_no_torch():
    "The chapter registry, the book driver, the command line, `memgen list` and `memgen.measure` load without torch."
    steps = [
        'import memgen.chapters',
        'import memgen.book',
        'import memgen.cli',
        'import io, contextlib; from memgen.cli import main\nwith contextlib.redirect_stdout(io.StringIO()): assert main(["list"]) == 0',
        'import memgen.measure',
    ]
    # one interpreter, checked after each step: a step that imported torch is named (later steps only add imports)
    code = '\n'.join(f"{c}\nassert 'torch' not in sys.modules, {c!r}" for c in steps)
    r = subprocess.run([sys.executable, '-c', f'import sys\n{code}\nprint("ok")'], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == 'ok', (r.stdout, r.stderr[-2000:])


def test_sweep_help_names_max_jobs(checkout):
    from memgen.sweep import MAX_JOBS

    assert f'more than {MAX_JOBS} jobs' in run(['sweep', '--help'], checkout).stdout


def test_failed_sweep_jobs_exit_1_with_one_line(tmp_path, capsys):
    "Job failures are not bad input: exit 1, the counts on stdout and a one-line summary on stderr."
    from dataclasses import dataclass
    from memgen import sweep as sw
    from memgen.cli import main

    @dataclass(frozen=True)
    class FailParams:
        a: int = 1

    if 'cli_fail_toy' not in sw.TASKS:

        @sw.register_task('cli_fail_toy', FailParams)
        def fail_toy(p, seed):
            raise RuntimeError(f'toy failure {seed}')

    (tmp_path / 's.yaml').write_text(f'name: fails\ntask: cli_fail_toy\nproduct: {{a: [1, 2]}}\nstore: {tmp_path / "res"}\n')
    rc = main(['sweep', str(tmp_path / 's.yaml'), '--executor', 'serial'])
    out, err = capsys.readouterr()
    assert rc == 1 and '"failed": 2' in out, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and 'memgen: sweep fails: 2 job(s) failed' in lines[0] and 'toy failure' in lines[0], err
