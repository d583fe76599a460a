"""The documentation under docs/: the site builds with Sphinx with warnings as errors, and
the runnable examples of its pages run and check their own results.

A runnable example is a code block of a ``docs/*.md`` page written as a MyST directive
whose ``:name:`` starts with ``run-`` (docs/README.md says the same)::

    ```{code-block} python
    :name: run-first-network

    ...
    assert error < 0.05
    ```

The runnable blocks of one page run in order, in one namespace, in a fresh temporary
folder; each ends with the assertions that make it an example of a right result, not only
of a run. Plain ```python blocks are shown, not run. Examples kept as files
(``docs/examples/``, ``docs/plugin-example/``) are included with ``literalinclude`` and
checked by test_examples.py and test_plugins.py.
"""
import pathlib
import re
import subprocess
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
#: A MyST code-block directive: its fence, its options (``:key: value`` lines), its body.
BLOCK = re.compile(r"^(?P<fence>`{3,})\{code-block\}[ \t]+python[ \t]*\n"
                   r"(?P<options>(?:[ \t]*:[\w-]+:[^\n]*\n)*)"
                   r"(?P<body>.*?)^(?P=fence)[ \t]*$", re.M | re.S)
OPTION = re.compile(r"^[ \t]*:([\w-]+):[ \t]*(.*?)[ \t]*$", re.M)
#: Every page of the site (docs/index.md lists them in its toctrees).
PAGES = ("index", "getting-started", "phasing", "recipe", "network", "projects", "runs",
         "mpi", "results", "cli", "algorithms", "api", "plugins", "performance")
#: Each runnable example should take well under this (seconds, on a loaded 2-core machine).
SLOW = 20.0


def runnable(page):
    """``[(name, code)]``: the runnable blocks of a page, in order."""
    found = []
    for match in BLOCK.finditer(page.read_text()):
        options = dict(OPTION.findall(match["options"]))
        if options.get("name", "").startswith("run-"):
            found.append((options["name"], match["body"]))
    return found


RUNNABLE = sorted(page for page in DOCS.glob("*.md") if page.stem != "README" and runnable(page))


def test_runnable_blocks_are_found_and_named_once():
    """The convention is in use (a regular expression that matched nothing would make the
    example tests pass by running nothing), and every name is unique across the site."""
    names = [name for page in RUNNABLE for name, _ in runnable(page)]
    assert len(names) >= 5, names
    assert len(set(names)) == len(names), names


def test_every_page_is_in_the_site():
    pages = {path.stem for path in DOCS.glob("*.md")} - {"README"}
    assert pages == set(PAGES)


def test_the_site_builds_without_a_warning(tmp_path):
    pytest.importorskip("sphinx", reason="pip install '.[docs]' to build the documentation")
    pytest.importorskip("myst_parser", reason="pip install '.[docs]' to build the documentation")
    html = tmp_path / "html"
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         "-d", str(tmp_path / "doctrees"), str(DOCS), str(html)],
        capture_output=True, text=True, timeout=300)
    elapsed = time.monotonic() - start
    assert result.returncode == 0, result.stderr[-5000:]
    for page in PAGES:
        assert (html / f"{page}.html").is_file(), page
    # the CLI reference is the parser's help: every command is there with its options
    cli = (html / "cli.html").read_text()
    for text in ("prnf phase", "--dump-model", "prnf project run", "--cluster", "prnf simulate"):
        assert text in cli, text
    api = (html / "api.html").read_text()
    for name in ("Runner", "Param", "ProjectionAlgorithm", "make_stream", "save_h5"):
        assert name in api, name
    assert (html / "_static" / "phase-result.png").is_file()
    print(f"documentation built in {elapsed:.1f} s")


@pytest.mark.parametrize("page", RUNNABLE, ids=[page.stem for page in RUNNABLE])
def test_the_runnable_examples_of_a_page(page, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": f"docs_{page.stem.replace('-', '_')}"}
    timings = {}
    for name, code in runnable(page):
        start = time.monotonic()
        exec(compile(code, f"{page.relative_to(ROOT)} ({name})", "exec"), namespace)
        timings[name] = time.monotonic() - start
    with capsys.disabled():
        slow = {name: round(t, 1) for name, t in timings.items() if t > SLOW}
        if slow:
            print(f"\n{page.name}: examples slower than {SLOW:g} s: {slow}")


def test_the_readme_links_and_picture_exist():
    """The README's links into docs/ and its picture are files (and the picture is small)."""
    readme = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\((docs/[^)#\s]+)", readme)
    assert targets, "the README links to no documentation page"
    for target in targets:
        assert (ROOT / target).exists(), target
    pictures = [t for t in targets if t.endswith(".png")]
    assert pictures, "the README shows no picture"
    for picture in pictures:
        assert (ROOT / picture).stat().st_size < 300_000, picture


def test_the_readme_network_example_is_the_tested_one():
    """The README's Python example is docs/examples/network.py (which test_examples.py
    checks on spipy's data), line for line from its import on."""
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"^```python\n(.*?)^```", readme, re.M | re.S)
    example = (DOCS / "examples" / "network.py").read_text()
    code = example[example.index("from prnf_core import"):]
    assert code in blocks, "the README's network example differs from docs/examples/network.py"


def test_the_plugin_test_template_passes(tmp_path, monkeypatch):
    """docs/plugin-example/tests/test_my_rrr.py, the guide's test template, on the example
    plugin (its discovery test skips: the example is not installed)."""
    import importlib.util
    import inspect
    example = DOCS / "plugin-example"
    monkeypatch.syspath_prepend(str(example))
    spec = importlib.util.spec_from_file_location("docs_test_my_rrr",
                                                  example / "tests" / "test_my_rrr.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    tests = [(name, f) for name, f in vars(module).items() if name.startswith("test_")]
    assert len(tests) >= 3, tests
    ran = 0
    for name, test in tests:
        kwargs = {"tmp_path": tmp_path} if "tmp_path" in inspect.signature(test).parameters else {}
        try:
            test(**kwargs)
            ran += 1
        except pytest.skip.Exception:
            assert name == "test_discovered_through_its_entry_point", name
    assert ran >= 2
