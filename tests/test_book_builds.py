"""Toy books built end to end: a failing chapter keeps the previous book; a broken reference or a missing figure fails the
build. Apart from tests/test_book.py, so that they run beside the quick book (make test gives each file one worker)."""

import shutil
import pytest
from conftest import ROOT
from test_book import _notebook, ToyParams
from memgen.book import build_book, ChapterFailed
from memgen.chapters import Chapter
from memgen.core import MemgenError


def test_failing_chapter_keeps_previous_book(tmp_path):
    (tmp_path / '_config.yml').write_text(
        'title: toy\nonly_build_toc_files: true\nexecute:\n  execute_notebooks: "off"\nexclude_patterns: [_build]\n'
    )
    (tmp_path / '_toc.yml').write_text('format: jb-book\nroot: intro\nchapters:\n  - file: toy\n')
    (tmp_path / 'intro.md').write_text('# Intro\n')
    toy = Chapter('toy', 'toy.ipynb', 'Toy', ToyParams, {'quick': ToyParams(), 'full': ToyParams(2)})
    (tmp_path / 'toy.ipynb').write_text(_notebook('print(x * 21)'))
    html = build_book(root=tmp_path, chapters=[toy], log=lambda *a: None)
    before = (html / 'toy.html').read_text()
    assert '21' in before
    (tmp_path / 'toy.ipynb').write_text(_notebook('raise ValueError("boom")'))
    with pytest.raises(ChapterFailed) as e:
        build_book(root=tmp_path, chapters=[toy], log=lambda *a: None)
    msg = str(e.value)
    assert "chapter 'toy' failed in cell" in msg and 'ValueError: boom' in msg
    assert (tmp_path / '_build' / 'failed' / 'toy.ipynb').exists()
    assert (html / 'toy.html').read_text() == before
    assert not list((tmp_path / '_build').glob('.stage-*'))


@pytest.mark.parametrize(
    'text, warning',
    [
        ('A fine page.', None),
        ('See {doc}`nowhere`.', "unknown document: 'nowhere'"),
        ('![a figure](missing.png)', 'image file not readable: missing.png'),
        ('See {py:func}`memgen.theory.no_such_function`.', 'py:func reference target not found: memgen.theory.no_such_function'),
    ],
)
def test_broken_reference_or_missing_figure_fails_the_build(tmp_path, text, warning):
    """With the book's own _config.yml (-W, nitpicky): a broken link, a missing figure or an unresolved API
    reference stops the build with the warning; the page without it builds."""
    shutil.copy2(ROOT / '_config.yml', tmp_path / '_config.yml')
    (tmp_path / '_toc.yml').write_text('format: jb-book\nroot: intro\n')
    (tmp_path / 'intro.md').write_text(f'# Intro\n\n{text}\n')
    if warning is None:
        assert (build_book(root=tmp_path, chapters=[], log=lambda *a: None) / 'index.html').exists()
        return
    with pytest.raises(MemgenError) as e:
        build_book(root=tmp_path, chapters=[], log=lambda *a: None)
    assert 'jupyter-book build failed' in str(e.value) and warning in str(e.value), str(e.value)[-1500:]
    assert not (tmp_path / '_build' / 'html').exists()
