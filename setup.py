"""Packaging for memgen, driven by settings.ini (nbdev 2 layout)."""

from configparser import ConfigParser
import setuptools

cfg = ConfigParser(delimiters=['='])
cfg.read('settings.ini', encoding='utf-8')
c = cfg['DEFAULT']
req = lambda key: c.get(key, '').split()

setuptools.setup(
    name=c['lib_name'],
    version=c['version'],
    description=c['description'],
    author=c['author'],
    author_email=c['author_email'],
    license='Apache-2.0',
    keywords=c['keywords'].split(),
    python_requires=f">={c['min_python']}",
    packages=setuptools.find_packages(include=['memgen', 'memgen.*']),
    include_package_data=True,
    package_data={'memgen': ['_modidx.py']},
    install_requires=req('requirements'),
    extras_require={
        'book': req('book_requirements'),
        'dev': req('dev_requirements'),
        'all': req('book_requirements') + req('dev_requirements'),
    },
    entry_points={'console_scripts': c['console_scripts'].split(), 'nbdev': [f"{c['lib_name']}={c['lib_name']}._modidx:d"]},
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    zip_safe=False,
)
