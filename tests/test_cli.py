"The memgen command line: listing, and bad input rejected with exit code 2 before anything is written."
import shutil, subprocess, sys
from pathlib import Path
import pytest
from conftest import ROOT

MEMGEN = [str(Path(sys.executable).parent / 'memgen')]   # the installed console script


@pytest.fixture
def checkout(tmp_path):
    "A minimal copy of the book sources (no _build), to see that bad input writes nothing."
    for f in ('_toc.yml', '_config.yml'): shutil.copy2(ROOT / f, tmp_path / f)
    shutil.copytree(ROOT / 'nbs' / 'chapters', tmp_path / 'nbs' / 'chapters')
    return tmp_path


def run(args, cwd):
    return subprocess.run(MEMGEN + args, cwd=cwd, capture_output=True, text=True, timeout=120)


def test_list(checkout):
    r = run(['list'], checkout)
    assert r.returncode == 0 and 'convergence' in r.stdout and 'quick=' in r.stdout and 'full=' in r.stdout


@pytest.mark.parametrize('args, message', [
    (['run', 'nosuchchapter'], "chapter 'nosuchchapter' is unknown; expected one of ['intro', 'convergence', 'memorisation', 'latent', 'powerlaw', 'diffusion', 'real', 'distances', 'api', 'denoisers']"),
    (['run', 'convergence', '--profile', 'huge'], "invalid choice: 'huge'"),
    (['book', '--profile', 'huge'], "invalid choice: 'huge'"),
    (['book', '--only', 'nosuchchapter'], "chapter 'nosuchchapter' is unknown"),
    (['run', 'convergence', '-p', 'nope', '1'], "parameter 'nope' is unknown for ConvergenceParams"),
    (['run', 'convergence', '-p', 'n_seeds', 'many'], "n_seeds='many' is not a valid int"),
    (['run', 'convergence', '-p', 'gammas', '0.5,0'], 'gammas=0 is not allowed; expected gammas > 0'),
    (['run', 'convergence', '-p', 'ds', '0'], 'd=0 is not allowed; expected d >= 1'),
    (['run', 'convergence', '--device', 'tpu'], "invalid choice: 'tpu'"),
    (['book', '--repository-url', 'github.com/me'], "repository_url='github.com/me' is not allowed; expected https://HOST/OWNER/REPO"),
])
def test_bad_input_is_one_line_exit_2_nothing_written(checkout, args, message):
    r = run(args, checkout)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], r.stderr
    assert not (checkout / '_build').exists()


def test_outside_a_checkout(tmp_path):
    r = run(['run', 'convergence'], tmp_path)
    assert r.returncode == 2 and 'no _toc.yml and _config.yml found' in r.stderr
