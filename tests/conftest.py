"Shared fixtures: the repository root and the headless-browser check."

import os, shutil
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get('CI', '').lower() in ('1', 'true', 'yes')


def chromium_path():
    "Path of a Chromium binary, or None."
    for name in ('chromium', 'chromium-browser', 'google-chrome'):
        p = shutil.which(name)
        if p:
            return p
    return None


def need(ok: bool, what: str):
    "Skip a test whose system tool is missing, with the reason; in CI a missing tool is a failure (.ci/run installs it)."
    if ok:
        return
    if IN_CI:
        pytest.fail(f'{what} is required in CI (.ci/run installs it)')
    pytest.skip(f'{what} is missing here: install it to run this test')


def can_compile_cpp() -> bool:
    "Whether torch.compile can build CPU kernels here: a C++ compiler and this Python's headers (Python.h)."
    import sysconfig

    cxx = any(name and shutil.which(name) for name in (os.environ.get('CXX'), 'g++', 'c++', 'clang++'))
    return cxx and (Path(sysconfig.get_path('include')) / 'Python.h').exists()


@pytest.fixture(scope='session')
def browser():
    "A Playwright-driven headless Chromium (the system binary). Skips locally if missing; fails in CI."
    exe = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        exe = None
    need(exe is not None, "Chromium (Debian's chromium) with Playwright")
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=exe,
            args=[
                '--no-sandbox',
                '--disable-gpu',
                '--disable-background-networking',
                '--disable-component-update',
                '--no-first-run',
                '--disable-sync',
                '--disable-quic',
            ],
        )
        yield b
        b.close()


def open_page(
    browser, url: str, selector: str = '.memgen-chart svg.marks', timeout_ms: int = 20000, local: tuple = ('file:', 'data:', 'blob:')
) -> dict:
    "Open `url`, wait for `selector`; return console/page errors, requests outside `local`, and failed loads."
    page = browser.new_page()
    errors, requests, failed = [], [], []
    page.on('console', lambda m: errors.append(m.text) if m.type == 'error' else None)
    page.on('pageerror', lambda e: errors.append(str(e)))
    page.on('request', lambda r: requests.append(r.url) if not r.url.startswith(local) else None)
    page.on('requestfailed', lambda r: failed.append(r.url))
    page.on('response', lambda r: failed.append(f'{r.status} {r.url}') if r.status >= 400 else None)
    page.goto(url)
    page.wait_for_selector(selector, timeout=timeout_ms)
    page.wait_for_timeout(300)
    n = page.locator(selector).count()
    page.close()
    return {'rendered': n, 'errors': errors, 'external_requests': requests, 'failed': failed}


def open_offline(browser, html: Path, selector: str = '.memgen-chart svg.marks', timeout_ms: int = 20000) -> dict:
    "Open a built page from file:// (see open_page)."
    return open_page(browser, Path(html).resolve().as_uri(), selector, timeout_ms)


@pytest.fixture
def checkout(tmp_path):
    "A minimal copy of the book sources (no _build), to see that bad input writes nothing."
    for f in ('_toc.yml', '_config.yml'):
        shutil.copy2(ROOT / f, tmp_path / f)
    shutil.copytree(ROOT / 'nbs' / 'chapters', tmp_path / 'nbs' / 'chapters')
    return tmp_path
