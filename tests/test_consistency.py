"The package is the export of the notebooks, notebooks are stored clean, and the book's chapters are consistent."

import json, re, shutil, subprocess, sys
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


def test_science_core_imports_neither_torch_nor_the_book_engine():
    core = ', '.join(f'memgen.{m}' for m in sorted(LAYERS['core']))
    engine = [f'memgen.{m}' for m in sorted(LAYERS['engine'] | LAYERS['nets'])]
    code = f'import sys, {core}; bad = [m for m in ("torch", "jupyter_book", "papermill", *{engine!r}) if m in sys.modules]; print(bad)'
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == '[]'


def test_ci_runs_the_readme_test_command():
    readme, ci = (ROOT / 'README.md').read_text(), (ROOT / '.ci' / 'run').read_text()
    assert 'make test' in readme and 'make book' in readme
    assert 'make test' in ci


# The package's three layers (issue 25): a torch-free science core (with the generic sweep runner and charts), the
# torch networks and the experiments on them, the book engine. Imports, lazy ones included, point down only.
LAYERS = {
    'core': {
        'core',
        'theory',
        'data',
        'linear',
        'metrics',
        'diffusion',
        'dynamics',
        'tables',
        'checks',
        'explore',
        'plots',
        'page',
        'sweep',
        'store',
    },
    'nets': {'denoisers', 'pairs', 'gapscan', 'measure'},
    'engine': {'book', 'chapters', 'cli', 'sphinxext'},
}


def import_graph() -> dict[str, set[str]]:
    "memgen module -> the memgen modules it imports anywhere in its source (top level or inside functions)."
    import ast

    mods = {p.stem for p in (ROOT / 'memgen').glob('*.py') if not p.stem.startswith('_')}
    graph = {}
    for m in mods:
        deps = set()
        for node in ast.walk(ast.parse((ROOT / 'memgen' / f'{m}.py').read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                deps |= {node.module.split('.')[0]} if node.module else {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.split('.')[0] == 'memgen':
                deps |= {node.module.split('.')[1]} if '.' in node.module else {a.name for a in node.names}
            elif isinstance(node, ast.Import):
                deps |= {a.name.split('.')[1] for a in node.names if a.name.startswith('memgen.')}
        graph[m] = (deps & mods) - {m}
    return graph


def find_circle(graph: dict[str, set[str]]) -> list[str] | None:
    "A path m -> ... -> m through the graph, or None."

    def visit(m, path):
        if m in path:
            return path[path.index(m) :] + [m]
        for d in sorted(graph[m]):
            if found := visit(d, path + [m]):
                return found
        return None

    return next((c for m in sorted(graph) if (c := visit(m, []))), None)


def test_imports_point_down_the_layers_and_form_no_circle():
    graph = import_graph()
    assert set(graph) == set().union(*LAYERS.values()), 'every module belongs to one layer'
    rank = {m: i for i, layer in enumerate(LAYERS.values()) for m in layer}
    up = [(m, d) for m, deps in graph.items() for d in deps if rank[d] > rank[m]]
    assert not up, f'imports pointing up a layer: {up}'
    assert find_circle(graph) is None, find_circle(graph)


def test_the_import_checks_see_what_they_check():
    graph = import_graph()
    assert 'core' in graph['book'] and not graph['core']  # top-level imports
    assert 'denoisers' in graph['pairs']  # imports inside functions
    assert find_circle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': set()}) == ['a', 'b', 'c', 'a']
    assert find_circle({'a': {'b'}, 'b': set()}) is None


API_PAGE = ROOT / 'nbs' / 'chapters' / 'api.md'


def api_modules() -> set[str]:
    "The modules the API page documents (one autodoc automodule each)."
    return set(re.findall(r'^\.\. automodule:: memgen\.(\w+)$', API_PAGE.read_text(), re.M))


def test_every_labelled_chapter_equation_links_to_the_code_that_computes_it():
    import importlib

    found = 0
    for nb in sorted((ROOT / 'nbs' / 'chapters').glob('*.ipynb')):
        for cell in json.loads(nb.read_text())['cells']:
            text = ''.join(cell['source'])
            for m in re.finditer(r'\$\$ \((eq-[\w-]+)\)', text):
                found += 1
                refs = re.findall(r'\{py:func\}`[^`<]*<memgen\.(\w+)\.(\w+)>`', text[m.end() : m.end() + 600])
                assert refs, f'{nb.name}: equation {m[1]} has no link to its code'
                for mod, name in refs:
                    assert mod in api_modules(), f'{nb.name}: {m[1]} links to memgen.{mod}, which the API page does not document'
                    obj = getattr(importlib.import_module(f'memgen.{mod}'), name, None)
                    assert callable(obj) and not isinstance(obj, type), f'{nb.name}: memgen.{mod}.{name} is not a function'
                    assert m[1] in (obj.__doc__ or ''), f'{nb.name}: the docstring of memgen.{mod}.{name} does not name {m[1]}'
    assert found >= 9


def test_the_api_page_documents_every_module():
    mods = {p.stem for p in (ROOT / 'memgen').glob('*.py') if not p.stem.startswith('_')}
    assert api_modules() == mods, (mods - api_modules(), api_modules() - mods)


def test_every_docstring_reads_as_written_on_the_api_page():
    "The book is built with warnings as errors: each public docstring, through rst_docstring, parses without a message."
    import importlib
    import inspect
    import io

    from docutils.core import publish_doctree
    from sphinx.util.docstrings import prepare_docstring

    from memgen.sphinxext import rst_docstring

    n, bad = 0, []
    for m in sorted(api_modules()):
        mod = importlib.import_module(f'memgen.{m}')
        objs = [mod] + [getattr(mod, k) for k in getattr(mod, '__all__', [])]
        objs += [v for o in objs if inspect.isclass(o) for v in vars(o).values() if inspect.isfunction(v)]
        for o in objs:
            doc = getattr(o, '__doc__', None) if callable(o) or inspect.ismodule(o) else None
            if not doc:
                continue
            n += 1
            err = io.StringIO()
            text = '\n'.join(rst_docstring(prepare_docstring(doc)))
            publish_doctree(text, settings_overrides={'warning_stream': err, 'report_level': 1, 'halt_level': 5})
            if err.getvalue().strip():
                bad.append((m, getattr(o, '__qualname__', m), err.getvalue().strip()[:200]))
    assert n > 300 and not bad, bad[:5]
