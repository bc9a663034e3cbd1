"The phase-diagram explorer: the grid is exact and cheap, and its sliders work offline in a browser."

import numpy as np
import pytest
from memgen import theory as th
from memgen.explore import white_phase_grid, explorer_grid, explorer_chart
from memgen.plots import write_vega_bundle, chart_html, VEGA_BUNDLE_NAME


def test_white_grid_matches_pointwise_theory():
    gs, bs = np.logspace(-2, 2, 23), np.logspace(-1, 1, 19)
    G = white_phase_grid(gs, bs, lam=0.5)
    Q = np.array([[float(th.Q_bbp(1.0, 1 + b, g)) for b in bs] for g in gs])
    np.testing.assert_allclose(G['Q'], Q, atol=1e-12)
    np.testing.assert_allclose(G['q'], th.q_white(gs, th.RidgeSqrt(0.5)), atol=1e-12)
    below = gs[:, None] * bs[None, :] ** 2 <= 1  # below gamma_c = 1/beta^2: Q = 0, D_lat = 1
    assert np.all(G['Q'][below] == 0) and np.all(G['D_lat'][below] == 1) and np.all(G['Q'][~below] > 0)


def test_converged_not_recovered_region_is_the_strip_between_the_boundaries():
    gs, bs = np.logspace(-2, 2, 120), np.logspace(-1, 1, 100)
    G = white_phase_grid(gs, bs)
    g_half = float(np.interp(0.5, G['q'], gs))
    region = (G['q'][:, None] >= 0.5) & (G['Q'] == 0)
    expect = (gs[:, None] >= g_half) & (gs[:, None] * bs[None, :] ** 2 <= 1)
    np.testing.assert_array_equal(region, expect)
    assert region.any() and not region.all()


@pytest.fixture(scope='module')
def explorer_page(tmp_path_factory):
    out = tmp_path_factory.mktemp('explorer')
    write_vega_bundle(out / VEGA_BUNDLE_NAME)
    E = explorer_grid(np.logspace(-2, 1.5, 16), np.logspace(-0.7, 0.9, 14), alphas=(0.0, 0.25, 0.5), lams=(0.0, 0.5, 1.0), d=200, d_m=200)
    html = (
        f'<!doctype html><html><head><meta charset="utf-8"><script src="{VEGA_BUNDLE_NAME}"></script></head>'
        f'<body>{chart_html(explorer_chart(E).to_dict())}</body></html>'
    )
    (out / 'explorer.html').write_text(html)
    return out / 'explorer.html'


def test_sliders_change_the_chart_offline(browser, explorer_page):
    page = browser.new_page()
    errors = []
    page.on('console', lambda m: errors.append(m.text) if m.type == 'error' else None)
    page.on('pageerror', lambda e: errors.append(str(e)))
    page.goto(explorer_page.resolve().as_uri())
    page.wait_for_selector('.memgen-chart svg.marks', timeout=20000)
    page.wait_for_timeout(300)
    sliders = page.locator('input[type=range]')
    assert sliders.count() == 2
    svg = lambda: page.locator('.memgen-chart svg.marks').first.inner_html()
    before = svg()
    for i in range(2):  # each slider alone changes what is drawn
        s = sliders.nth(i)
        s.evaluate("(el) => { el.value = el.max; el.dispatchEvent(new Event('input', {bubbles: true})); }")
        page.wait_for_timeout(400)
        after = svg()
        assert after != before, f'moving slider {i} did not change the chart'
        before = after
    page.close()
    assert not errors, errors
