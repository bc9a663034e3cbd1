"The package is the export of the notebooks, notebooks are stored clean, and the book's chapters are consistent."

import json, shutil, subprocess, sys
from pathlib import Path
import pytest
from conftest import ROOT
from memgen.book import toc_files, resolve_toc_file
from memgen.chapters import CHAPTERS, get_chapter
from memgen.core import to_jsonable

BIN = Path(sys.executable).parent


def _copy_project(tmp: Path) -> Path:
    shutil.copy2(ROOT / 'settings.ini', tmp / 'settings.ini')
    shutil.copytree(ROOT / 'nbs', tmp / 'nbs', ignore=shutil.ignore_patterns('.ipynb_checkpoints'))
    return tmp


def test_package_is_export_of_notebooks(tmp_path):
    _copy_project(tmp_path)
    r = subprocess.run([BIN / 'nbdev_export'], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    fresh = {p.name: p.read_text() for p in (tmp_path / 'memgen').glob('*.py')}
    repo = {p.name: p.read_text() for p in (ROOT / 'memgen').glob('*.py')}
    assert sorted(fresh) == sorted(repo), 'memgen/ has files that no notebook exports, or misses some'
    stale = [n for n in fresh if fresh[n] != repo[n]]
    assert not stale, f'memgen/ differs from nbdev_export of nbs/ in {stale}: edit the notebook and run nbdev_export'


def test_notebooks_are_clean(tmp_path):
    _copy_project(tmp_path)
    r = subprocess.run([BIN / 'nbdev_clean'], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    dirty = [
        str(p.relative_to(tmp_path))
        for p in (tmp_path / 'nbs').rglob('*.ipynb')
        if p.read_bytes() != (ROOT / p.relative_to(tmp_path)).read_bytes()
    ]
    assert not dirty, f'notebooks not clean (run nbdev_clean): {dirty}'


def test_chapters_have_no_outputs():
    for ch in CHAPTERS:
        nb = json.loads((ROOT / ch.path).read_text())
        assert all(not c.get('outputs') for c in nb['cells'] if c['cell_type'] == 'code'), ch.path


def _parameters_cell(path: Path) -> str:
    cells = [c for c in json.loads(path.read_text())['cells'] if 'parameters' in c.get('metadata', {}).get('tags', [])]
    assert len(cells) == 1, f'{path} needs exactly one cell tagged "parameters", found {len(cells)}'
    return ''.join(cells[0]['source'])


def test_toc_entries_exist_and_chapters_are_registered():
    entries = toc_files(ROOT)
    files = [resolve_toc_file(ROOT, e) for e in entries]
    assert all(f.exists() for f in files)
    notebooks = {str(f.relative_to(ROOT)) for f in files if f.suffix == '.ipynb'}
    chapters = {n for n in notebooks if n.startswith('nbs/chapters/')}
    assert chapters == {ch.path for ch in CHAPTERS}, (
        'every chapter notebook in _toc.yml is registered in memgen.chapters.CHAPTERS and vice versa'
    )
    library = notebooks - chapters
    assert {'nbs/02_theory.ipynb', 'nbs/03_linear.ipynb', 'nbs/04_metrics.ipynb'} <= library, (
        'the book publishes the library notebooks with the derivations'
    )
    assert all(Path(n).parent == Path('nbs') for n in library), library


def test_no_page_cites_files_outside_the_repository():
    pages = [resolve_toc_file(ROOT, e) for e in toc_files(ROOT)]
    for f in pages:
        text = f.read_text()
        assert 'SCIENCE.md' not in text and '../shared' not in text, f'{f.relative_to(ROOT)} cites a file outside the repository'


@pytest.mark.parametrize('chapter', [c.name for c in CHAPTERS])
def test_parameters_cell_matches_quick_profile(chapter):
    ch = get_chapter(chapter)
    ns = {}
    exec(_parameters_cell(ROOT / ch.path), ns)
    defaults = {k: v for k, v in ns.items() if not k.startswith('__') and not callable(v)}  # a cell may derive them (chapter_defaults)
    assert to_jsonable(defaults) == to_jsonable(ch.profile('quick')), 'the notebook embeds the quick profile as its defaults'


def test_denoiser_experiment_is_defined_once():
    "The chapter's parameters, the sweep task's parameters and the stored runs' sweep specs are the one PairConfig."
    from dataclasses import asdict, fields, replace
    from memgen import pairs
    from memgen.sweep import expand, get_task, make_params

    quick = get_chapter('denoisers').profile('quick')
    assert isinstance(quick, pairs.PairConfig) and get_task('denoisers').params is pairs.PairConfig
    pair_fields = [f.name for f in fields(pairs.PairConfig)]
    assert {k: getattr(quick, k) for k in pair_fields} == asdict(pairs.PAIR_PROFILES['quick'])
    for name, spec in (
        ('medium', 'denoisers-medium'),
        ('calibrated', 'denoisers-calibrated'),
        ('calibrated-h8', 'denoisers-calibrated-h8'),
        ('calibrated-h32', 'denoisers-calibrated-h32'),
    ):
        profile, cells = pairs.PAIR_PROFILES[name], set()
        for j in expand(ROOT / 'sweeps' / f'{spec}.yaml'):
            p = make_params(get_task('denoisers'), j.params)
            assert replace(p, N_grid=profile.N_grid, seeds=profile.seeds) == profile, f'job {j.key} differs from the {name} profile'
            cells |= {(N, j.seed) for N in p.N_grid}
        assert cells == {(N, s) for N in profile.N_grid for s in profile.seeds}, f'the sweep covers the {name} profile exactly'


def test_library_notebooks_have_title_subtitle_and_default_exp():
    for nb in sorted((ROOT / 'nbs').glob('[0-9][0-9]_*.ipynb')):
        cells = json.loads(nb.read_text())['cells']
        first = ''.join(cells[0]['source'])
        assert first.startswith('# ') and '\n> ' in first, f'{nb.name}: first cell must be "# title" and "> subtitle"'
        assert any('#| default_exp' in ''.join(c['source']) for c in cells[:3]), f'{nb.name} lacks #| default_exp'


def test_theory_does_not_import_torch_or_jupyter():
    code = 'import sys, memgen.theory; bad = [m for m in ("torch", "jupyter_book", "papermill") if m in sys.modules]; print(bad)'
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == '[]'


def test_ci_runs_the_readme_test_command():
    readme, ci = (ROOT / 'README.md').read_text(), (ROOT / '.ci' / 'run').read_text()
    assert 'make test' in readme and 'make book' in readme
    assert 'make test' in ci
