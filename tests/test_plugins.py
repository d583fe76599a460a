"""Plugin discovery: built-ins through their real entry point, fake in-test plugins."""
import importlib.metadata
import inspect
import os
import subprocess
import sys

import pytest

from prnf_core import AlgorithmNode, PluginError, hookimpl, phmodel
from prnf_core import plugins as plugins_mod
from prnf_core.plugins import Registry, get_plugin_manager, get_registry, reset_registry


class Fake(AlgorithmNode):
    algorithm = "FAKE"

    def iterate(self, stream, ctx):
        stream.record(self.name, [0.0] * self.params["iteration"], [0.0] * self.params["iteration"])
        return stream


class FakePlugin:
    @hookimpl
    def prnf_register_algorithms(self):
        return [Fake]


def test_builtins_found_through_the_entry_point():
    eps = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="prnf")}
    assert eps["builtin"] == "prnf_algorithms.plugin"
    registry = Registry(get_plugin_manager(autoload=True))
    assert {"ERA", "HIO", "DM", "RAAR", "HPR"} <= set(registry.names())
    assert registry.get("HIO").distribution == "prnf"
    assert "gamma" in registry.get("HIO").signature()


def test_autoload_switch_gives_an_empty_registry(monkeypatch):
    monkeypatch.setenv(plugins_mod.DISABLE_ENV, "1")
    assert Registry(get_plugin_manager()).names() == []


def test_fake_plugin_registers_and_phmodel_resolves_it(monkeypatch):
    pm = get_plugin_manager(autoload=False)
    pm.register(FakePlugin(), name="fake")
    monkeypatch.setattr(plugins_mod, "get_registry", lambda: Registry(pm))
    monkeypatch.setattr("prnf_core.phmodel.get_registry", lambda: Registry(pm))
    assert phmodel.FAKE is Fake
    with pytest.raises(AttributeError, match="unknown algorithm 'ERA'; installed: FAKE"):
        phmodel.ERA


def test_unknown_algorithm_lists_the_installed_ones():
    with pytest.raises(AttributeError, match=r"unknown algorithm 'HOI'; installed: DM, ERA, HIO, HPR, (OSS, )?(PixelRAAR, )?(PoissonHIO, )?RAAR"):
        phmodel.HOI


def test_duplicate_names_name_both_distributions():
    pm = get_plugin_manager(autoload=False)
    pm.register(FakePlugin(), name="first")
    pm.register(FakePlugin(), name="second")
    pm.distributions = {"first": ("dist-one", "1"), "second": ("dist-two", "2")}
    with pytest.raises(PluginError, match="FAKE.*dist-one.*dist-two"):
        Registry(pm)


def test_class_without_name_is_refused():
    class Nameless(AlgorithmNode):
        pass

    class Plugin:
        @hookimpl
        def prnf_register_algorithms(self):
            return [Nameless]

    pm = get_plugin_manager(autoload=False)
    pm.register(Plugin(), name="bad")
    with pytest.raises(PluginError, match="Nameless.*'algorithm'"):
        Registry(pm)


def test_broken_plugin_is_reported_and_skipped(monkeypatch, caplog):
    real = importlib.metadata.entry_points

    class BrokenEP:
        name, value, dist = "broken", "no_such_module_xyz", None

        def load(self):
            raise ImportError("no module named no_such_module_xyz")

    def entry_points(group):
        return list(real(group=group)) + [BrokenEP()]

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    registry = Registry(get_plugin_manager(autoload=True))
    assert "ERA" in registry.names()
    assert "broken" in registry.broken
    assert "failed to import" in caplog.text


def test_core_never_imports_numba():
    import subprocess
    import sys
    code = ("import sys, prnf_core; from prnf_core import phexec, phmodel; "
            "assert 'numba' not in sys.modules, 'core imported numba'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_the_core_results_do_not_import_the_executor():
    """phexec imports results (save_h5, plot_result); results imported merge_note back from
    phexec, a circle. merge_note lives in merge.py now, phexec re-exports it."""
    import ast
    import pathlib
    from prnf_core import merge, phexec
    assert phexec.merge_note is merge.merge_note
    source = (pathlib.Path(merge.__file__).parent / "results.py").read_text()
    imported = {node.module for node in ast.walk(ast.parse(source))
                if isinstance(node, ast.ImportFrom) and node.module}
    assert not imported & {"phexec", "prnf_core.phexec"}, imported


def test_registry_is_cached_and_resettable():
    first = get_registry()
    assert get_registry() is first
    reset_registry()
    assert get_registry() is not first


def test_the_plugin_guide_is_a_working_plugin():
    # the guide's pyproject.toml did not install (no version); its example is now these files,
    # which the guide (docs/plugins.md) shows with literalinclude
    import pathlib
    import sys
    import tomllib
    root = pathlib.Path(__file__).resolve().parent.parent
    example = root / "docs" / "plugin-example"
    guide = (root / "docs" / "plugins.md").read_text()
    for name in ("my_rrr/plugin.py", "pyproject.toml"):
        assert (example / name).is_file() and f"{{literalinclude}} plugin-example/{name}" in guide, name
    project = tomllib.loads((example / "pyproject.toml").read_text())["project"]
    assert project["version"] and project["entry-points"]["prnf"]["rrr"] == "my_rrr.plugin"
    sys.path.insert(0, str(example))
    try:
        import my_rrr.plugin as plugin
    finally:
        sys.path.remove(str(example))
    pm = get_plugin_manager(autoload=False)
    pm.register(plugin, name="my_rrr")
    registry = Registry(pm)
    assert registry.get("RRR").cls is plugin.RRR
    node = plugin.RRR(10, 20, beta=0.6)
    assert node.coefficients(None) == (0.4, 0.6, 1.0, -0.6)
    assert "beta=0.5" in registry.get("RRR").signature()


def test_the_plugin_guide_shows_what_its_snippets_use():
    """The rule snippets show ``from numba import njit``, ``get_registry`` is named with its
    import (the guide named it without one), a required Param is declared and checked, and
    the poisson rule is shown with its named constants."""
    import pathlib
    import re
    root = pathlib.Path(__file__).resolve().parent.parent
    guide = (root / "docs" / "plugins.md").read_text()
    assert "get_registry()" in guide and re.search(r"from prnf_core import\s+get_registry", guide)
    shown = {path: (root / path).read_text().partition(start)[1:]
             for path, start in re.findall(r"\{literalinclude\} \.\./(\S+)\n(?:[ \t]*:[\w-]+:.*\n)*?"
                                           r'[ \t]*:start-at: "([^"]+)"', guide)}
    rules_shown = {path: "".join(text) for path, text in shown.items() if "@njit" in text[1]}
    assert set(rules_shown) == {"plugins/prnf-pixel-raar/prnf_pixel_raar/pixel_raar.py",
                                "plugins/prnf-poisson/prnf_poisson/poisson.py"}, shown
    for path, text in rules_shown.items():
        assert "from numba import njit" in text, path
    assert "c.weight_term" in rules_shown["plugins/prnf-poisson/prnf_poisson/poisson.py"]
    assert 'Param("lam", kind="float"' in guide and "lam left out" in guide
    # the decision on a Fourier-space hook for OSS, and why (issue 33)
    assert re.search(r"## Design notes\n\n\*\*No Fourier-space hook", guide)


def test_a_misspelt_hook_fails_loudly():
    class Misspelt:
        @hookimpl
        def prnf_register_algorithm(self):       # no trailing s: pluggy alone ignores it
            return [Fake]

    pm = get_plugin_manager(autoload=False)
    with pytest.raises(PluginError, match="prnf_register_algorithm.*prnf_register_algorithms"):
        pm.register(Misspelt(), name="typo")


def test_a_class_instead_of_a_list_is_named():
    class Plugin:
        @hookimpl
        def prnf_register_algorithms(self):
            return Fake

    pm = get_plugin_manager(autoload=False)
    pm.register(Plugin(), name="single")
    with pytest.raises(PluginError, match=r"returned <class.*Fake'>; return a list.*\[Fake\]"):
        Registry(pm)


def test_writing_a_plugin_imports_little():
    """``from prnf_core import hookimpl`` (a plugin's entry-point module) loads neither
    numpy, scipy nor h5py: the core's names are imported on first use."""
    import subprocess
    import sys
    code = ("import sys; from prnf_core import hookimpl; "
            "print(sorted(m for m in ('numpy', 'scipy', 'h5py', 'numba') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]"


def test_declared_parameters_drive_checks_signature_and_storage():
    from prnf_core import ConfigError, Param

    class Declared(AlgorithmNode):
        algorithm = "DECLARED"
        parameters = (Param("beta", kind="float", low=0.0, high=1.0),
                      Param("steps", 3, "int", low=1), Param("flag", False, "bool", keyword=True))

        def iterate(self, stream, ctx):
            return stream

    node = Declared(5, 10, 0.5, name="d")
    assert node.name == "d" and node.params == {"iteration": 5, "support_size": 10,
                                                "beta": 0.5, "steps": 3}
    assert Declared(5, 10, 0.5, flag=True).params["flag"] is True
    assert str(inspect.signature(Declared)) == \
        "(iteration, support_size, beta, steps=3, name=None, *, flag=False)"
    for args, kwargs, words in [((5, 10), {}, "needs beta"), ((5, 10, 2.0), {}, r"beta=2.0.*\[0.0, 1.0\]"),
                                ((5, 10, 0.5), {"flag": "no"}, "flag='no': give True or False"),
                                ((5, 10, 0.5), {"gama": 1}, "no parameter gama"),
                                ((5, 10, 0.5, 1.5), {}, "steps=1.5: give an integer >= 1")]:
        with pytest.raises(ConfigError, match=words):
            Declared(*args, **kwargs)


def test_the_installed_package_loads_its_algorithms(tmp_path):
    # the wheel once left out prnf_algorithms.kernels: the tests, run from the source tree,
    # passed, while `prnf demo` on a fresh install found no algorithm at all. Run from an
    # empty folder, without PYTHONPATH, this imports what pip installed.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    code = ("from prnf_core.plugins import get_registry; "
            "print(' '.join(sorted(get_registry().names())))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "failed to import" not in proc.stderr, proc.stderr
    assert {"ERA", "HIO", "DM", "RAAR", "HPR"} <= set(proc.stdout.split())


class _EntryPoint:
    """A fake entry point whose import runs ``load``."""

    dist = None

    def __init__(self, name, load):
        self.name, self.value, self._load = name, name, load

    def load(self):
        return self._load()


class RaisingHook:
    @hookimpl
    def prnf_register_algorithms(self):
        raise RuntimeError("hook exploded")


def _blocking_import():
    import time
    time.sleep(600)


IMPORT_FAULTS = {
    # every command exited 3 without a word / blocked / printed a raw traceback
    "sys.exit at import": (lambda: sys.exit(3), "failed to import: it called sys.exit(3)"),
    "blocks at import": (_blocking_import, "failed to import: ImportTimeout: its import did not finish within 0.5 s"),
    "raises at import": (lambda: 1 / 0, "failed to import: ZeroDivisionError"),
    "a hook raises": (lambda: RaisingHook(), "its hook prnf_register_algorithms() raised: RuntimeError: hook exploded"),
}


@pytest.mark.parametrize("case", IMPORT_FAULTS, ids=list(IMPORT_FAULTS))
def test_a_broken_plugin_is_named_skipped_and_listed(monkeypatch, capsys, case):
    from prnf_core.cli import main
    load, words = IMPORT_FAULTS[case]
    real = importlib.metadata.entry_points
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda group: list(real(group=group)) + [_EntryPoint("hostile", load)])
    monkeypatch.setenv("PRNF_PLUGIN_IMPORT_TIMEOUT", "0.5")
    monkeypatch.delenv(plugins_mod.DISABLE_ENV, raising=False)
    reset_registry()
    try:
        assert main(["plugins"]) == 0
        out = capsys.readouterr().out
    finally:
        reset_registry()
    assert "ERA(" in out                          # the rest of PRNF works
    assert f"(broken) plugin 'hostile' from unknown, skipped: {words}" in out, out


def test_the_import_deadline_restores_the_programs_own_alarm(monkeypatch):
    import signal
    fired = []
    previous = signal.signal(signal.SIGALRM, lambda *a: fired.append(1))
    signal.setitimer(signal.ITIMER_REAL, 30)
    try:
        with plugins_mod._import_deadline("x"):
            pass
        left, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 25 < left <= 30 and signal.getsignal(signal.SIGALRM) is not previous
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
