"""Defined once: one default of PairConfig, changed in a copy of the package, reaches the denoisers chapter, the sweeps of
task 'denoisers' and the benchmark of the full profile, none of which repeats it."""

import os, shutil, subprocess, sys, textwrap
from conftest import ROOT


def test_a_pair_default_reaches_the_chapter_the_sweep_and_the_benchmark(tmp_path):
    # sampler_steps: overridden by none of the chapter's quick profile, the medium profile and sweeps/denoisers-medium.yaml
    shutil.copytree(ROOT / 'memgen', tmp_path / 'memgen', ignore=shutil.ignore_patterns('__pycache__'))
    pairs_py = tmp_path / 'memgen' / 'pairs.py'
    src = pairs_py.read_text()
    old = '\n    sampler_steps: int = 50\n'
    assert src.count(old) == 1, 'the default to change is not where this test expects it'
    pairs_py.write_text(src.replace(old, '\n    sampler_steps: int = 37\n'))
    spec = tmp_path / 'small.yaml'  # a sweep of task 'denoisers' that does not name sampler_steps
    spec.write_text(
        f"name: small\ntask: denoisers\nproduct: {{N_grid: [[4], [16]]}}\nfixed: {{train_steps: 20}}\nstore: {tmp_path / 'store'}\n"
    )
    code = textwrap.dedent(f'''
        import sys
        import memgen
        assert memgen.__file__.startswith({str(tmp_path)!r}), memgen.__file__          # the copy, not the checkout
        from memgen.chapters import chapter_defaults
        assert chapter_defaults('denoisers')['sampler_steps'] == 37
        from memgen.sweep import expand, load_spec
        for spec in ({str(spec)!r}, {str(ROOT / 'sweeps' / 'denoisers-medium.yaml')!r}):
            steps = {{j.params['sampler_steps'] for j in expand(load_spec(spec))}}
            assert steps == {{37}}, (spec, steps)
        sys.path.insert(0, {str(ROOT / 'benchmarks')!r})
        import full_profile                           # the benchmark reads PAIR_PROFILES['medium'] from the package
        assert full_profile.pairs.__file__.startswith({str(tmp_path)!r}), full_profile.pairs.__file__
        assert full_profile.pairs.PAIR_PROFILES['medium'].sampler_steps == 37
        print('flops', *full_profile.job_flops(full_profile.pairs.PAIR_PROFILES['medium'])[1].values())
        print('ok')
    ''')
    env = {
        **os.environ,
        'PYTHONPATH': os.pathsep.join([str(tmp_path), os.environ.get('PYTHONPATH', '')]).rstrip(os.pathsep),
        'OMP_NUM_THREADS': '1',
    }
    r = subprocess.run([sys.executable, '-c', code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip().endswith('ok'), (r.stdout, r.stderr)
    sys.path.insert(0, str(ROOT / 'benchmarks'))
    import full_profile  # the checkout's benchmark (sampler_steps 50): the copy's costs less to sample, as much to train

    train, sample = full_profile.job_flops(full_profile.pairs.PAIR_PROFILES['medium'])[1].values()
    train37, sample37 = map(float, r.stdout.split('flops')[1].split()[:2])
    assert train37 == train and sample37 < 0.8 * sample, (train37, train, sample37, sample)
