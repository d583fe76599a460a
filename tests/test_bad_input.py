"""Bad input gets the library's own error naming what was wrong; random input never gets
anything else (hypothesis); numerics never produce NaN or infinity."""
import json

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prnf_core import (ConfigError, DataFileError, ModelFileError, PluginError, PRNFError, Runner,
                       phmodel)
from prnf_core.data import INPUT_DEFAULTS

from helpers import config, write_pattern


@pytest.fixture
def files(tmp_path):
    pattern, mask, _ = write_pattern(tmp_path)
    np.save(tmp_path / "small_mask.npy", np.zeros((8, 8)))
    np.save(tmp_path / "grey_mask.npy", np.full((32, 32), 0.5))
    np.save(tmp_path / "all_masked.npy", np.ones((32, 32)))
    np.save(tmp_path / "model_small.npy", np.zeros((8, 8)))
    np.save(tmp_path / "objects.npy", np.array([None, {}], dtype=object), allow_pickle=True)
    np.zeros(100).tofile(tmp_path / "raw.bin")
    with h5py.File(tmp_path / "data.h5", "w") as f:
        f["entry/data"] = np.ones((32, 32))
    (tmp_path / "garbage.npy").write_bytes(b"not an array")
    return tmp_path, pattern, mask


def run_input(cfg):
    inp = phmodel.pInput(cfg)
    Runner([inp], phmodel.pOutput().after(phmodel.ERA(2, 20).after(inp))).run(1, seed=0)


def model_file(tmp, edit):
    pattern = str(tmp / "pattern.npy")
    inp = phmodel.pInput(config(pattern))
    Runner([inp], phmodel.pOutput().after(phmodel.HIO(2, 20, 0.9).after(inp))).dump_model(tmp / "m.json")
    doc = json.loads((tmp / "m.json").read_text())
    edit(doc)
    (tmp / "m.json").write_text(json.dumps(doc))
    return tmp / "m.json"


def set_hio(doc, **params):
    next(n for n in doc["nodes"] if n["class"] == "HIO")["params"].update(params)


BAD = {
    # files
    "missing file": (lambda t, p, m: run_input(config(str(t / "nope.npy"))), DataFileError, "file not found"),
    "wrong format": (lambda t, p, m: run_input(config(str(t / "garbage.npy"))), DataFileError, "cannot read"),
    "npy needing pickle": (lambda t, p, m: run_input(config(str(t / "objects.npy"))), DataFileError, "pickle"),
    "bin without shape": (lambda t, p, m: run_input(config(str(t / "raw.bin"))), DataFileError, "shape is needed"),
    "h5 without dataset": (lambda t, p, m: run_input(config(str(t / "data.h5"))), DataFileError, "name the dataset"),
    "h5 missing dataset": (lambda t, p, m: run_input(config(str(t / "data.h5") + ":/nope")), DataFileError, "no dataset"),
    "mask of other shape": (lambda t, p, m: run_input(config(p, str(t / "small_mask.npy"))), ConfigError, "mask shape"),
    "model of other shape": (lambda t, p, m: run_input(config(p, initial_model=str(t / "model_small.npy"))), ConfigError, "initial_model shape"),
    "non-binary mask": (lambda t, p, m: run_input(config(p, str(t / "grey_mask.npy"))), ConfigError, "not binary"),
    # values
    "center outside": (lambda t, p, m: run_input(config(p, center=[99, 3])), ConfigError, "outside the pattern"),
    "negative radius": (lambda t, p, m: run_input(config(p, center_mask=-2)), ConfigError, "center_mask=-2"),
    "reversed ring": (lambda t, p, m: run_input(config(p, edge_mask=[9, 3])), ConfigError, "inner <= outer"),
    "support_size <= 0": (lambda t, p, m: phmodel.ERA(5, 0), ConfigError, "support_size=0"),
    "support_size too big": (lambda t, p, m: Runner([i := phmodel.pInput(config(p))], phmodel.pOutput().after(
        phmodel.ERA(2, 5000).after(i))).run(1), ConfigError, "larger than the 1024 pixels"),
    "iteration < 0": (lambda t, p, m: phmodel.HIO(-3, 5, 0.9), ConfigError, "iteration=-3"),
    "iteration not int": (lambda t, p, m: phmodel.HIO("100", 5, 0.9), ConfigError, "iteration='100'"),
    "beta out of range": (lambda t, p, m: phmodel.RAAR(5, 5, 1.2), ConfigError, "beta=1.2"),
    "gamma out of range": (lambda t, p, m: phmodel.HIO(5, 5, 0), ConfigError, "gamma=0"),
    "hprcoff out of range": (lambda t, p, m: phmodel.HPR(5, 5, 0.5, hprcoff=1.5), ConfigError, "hprcoff=1.5"),
    "all masked": (lambda t, p, m: run_input(config(p, str(t / "all_masked.npy"))), ConfigError, "every pixel is masked"),
    "unknown key": (lambda t, p, m: phmodel.pInput({"patern_path": p}), ConfigError, "unknown input config key"),
    # model files
    "malformed json": (lambda t, p, m: (t / "x.json").write_text("{") and Runner(loadfile=t / "x.json"), ModelFileError, "not valid JSON"),
    "unknown class": (lambda t, p, m: Runner(loadfile=model_file(t, lambda d: d["nodes"][1].update({"class": "HOI"}))), PluginError, "'HOI'.*Installed: DM, ERA, HIO"),
    "wrong parameter name": (lambda t, p, m: Runner(loadfile=model_file(t, lambda d: set_hio(d, gama=1))), ModelFileError, "wrong parameters"),
    "wrong parameter type": (lambda t, p, m: Runner(loadfile=model_file(t, lambda d: set_hio(d, gamma="high"))), ModelFileError, "gamma='high'"),
    "reload unknown input": (lambda t, p, m: Runner(loadfile=model_file(t, lambda d: None), reload_dataset={77: {"pattern_path": p}}), ConfigError, "not an input of this network"),
    "newer format": (lambda t, p, m: Runner(loadfile=model_file(t, lambda d: d.update(format_version=9))), ModelFileError, "newer than this PRNF"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_table(files, case):
    make, error, words = BAD[case]
    with pytest.raises(error, match=words):
        make(*files)


def test_nan_intensities_are_masked_with_a_count(files):
    tmp, pattern, _ = files
    data = np.load(pattern)
    data[:2, :3] = np.nan
    data[5, 5] = np.inf
    np.save(tmp / "nan.npy", data)
    with pytest.warns(UserWarning, match="7 NaN or infinite pixels"):
        run_input(config(str(tmp / "nan.npy")))


EMPTY = {
    "all zero": ({"pattern": np.zeros((16, 16))}, {}),
    "all negative": ({"pattern": -np.ones((16, 16))}, {}),
    "mask hides every non-zero pixel": (
        {"pattern": np.pad(np.ones((2, 2)), 7), "mask": np.pad(np.ones((2, 2)), 7)}, {}),
    "subtract_percentile 100": ({"pattern": np.arange(256.0).reshape(16, 16)},
                                {"subtract_percentile": 100}),
}


@pytest.mark.parametrize("case", sorted(EMPTY))
def test_data_with_nothing_measured_is_refused(case):
    # these used to phase to eMod 0.0, a 'perfect' fit of nothing
    arrays, extra = EMPTY[case]
    with _quiet(), pytest.raises(ConfigError, match="no measured pixel has a positive intensity"):
        phmodel.pInput({"pattern_path": "x.npy", **extra}, arrays=arrays).prepared()


@pytest.mark.parametrize("array,message", [
    (np.ones((16, 16), complex), "pattern is complex"),
    (np.array(["2020-01-01"] * 256, dtype="datetime64[D]").reshape(16, 16), "not numbers"),
])
def test_complex_and_non_numeric_patterns_are_refused(tmp_path, array, message):
    np.save(tmp_path / "p.npy", array)      # a complex one lost its imaginary part silently
    with pytest.raises(ConfigError, match=message):
        run_input(config(str(tmp_path / "p.npy")))


values = st.one_of(st.none(), st.booleans(), st.integers(-10, 200), st.floats(allow_nan=True),
                   st.text(max_size=5), st.lists(st.floats(-5, 80), max_size=3))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cfg=st.dictionaries(st.sampled_from(sorted(INPUT_DEFAULTS) + ["junk"]), values, max_size=5))
def test_random_configs_raise_only_library_errors(files, cfg):
    _, pattern, _ = files
    cfg = {"pattern_path": pattern, **cfg}
    try:
        with _quiet():                   # NaN/negative-value warnings are expected here
            run_input(cfg)
    except PRNFError:
        pass


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                           | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=20)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=json_values)
def test_random_json_model_files_raise_only_library_errors(tmp_path, doc):
    path = tmp_path / "random.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(PRNFError):
        Runner(loadfile=path)


def test_infinite_node_id_is_a_model_file_error(files):
    """Found by the fuzzing below: json.dumps writes Infinity, and int(inf) overflows."""
    def infinite_id(doc):
        doc["nodes"][0]["id"] = float("inf")
    with pytest.raises(ModelFileError, match="id inf is not an integer"):
        Runner(loadfile=model_file(files[0], infinite_id))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(where=st.integers(0, 10_000), value=json_values)
def test_mutated_model_files_raise_only_library_errors(files, where, value):
    tmp, pattern, _ = files
    path = model_file(tmp, lambda doc: _mutate(doc, where, value))
    try:
        Runner(loadfile=path).run(1, seed=0)
    except PRNFError:
        pass


def _mutate(doc, where, value):
    """Replace the ``where``-th value (in a walk of the document) by ``value``."""
    slots = []

    def walk(node):
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in list(items):
            slots.append((node, key))
            if isinstance(child, (dict, list)) and key != "zlib_base64":
                walk(child)

    walk(doc)
    node, key = slots[where % len(slots)]
    node[key] = value


class _quiet:
    def __enter__(self):
        import warnings
        self.ctx = warnings.catch_warnings()
        self.ctx.__enter__()
        warnings.simplefilter("ignore")

    def __exit__(self, *exc):
        return self.ctx.__exit__(*exc)


def run_with(pattern, **run):
    inp = phmodel.pInput(config(pattern))
    Runner([inp], phmodel.pOutput().after(phmodel.ERA(2, 20).after(inp)),
           **{k: run.pop(k) for k in ("threads", "precision", "progress") if k in run}).run(1, **run)


ARGUMENTS = {
    # raw ValueError / TypeError tracebacks from numpy or deep in the run before
    "seed -1": ({"seed": -1}, "seed=-1: give an integer >= 0"),
    "seed 1.5": ({"seed": 1.5}, "seed=1.5"),
    "seed 'abc'": ({"seed": "abc"}, "seed='abc'"),
    "threads 'two'": ({"threads": "two"}, "threads='two': give an integer >= 1"),
    "threads 0": ({"threads": 0}, "threads=0"),
    "progress 'yes'": ({"progress": "yes"}, "progress='yes': give a callable"),
}


def test_progress_false_means_no_progress_reports(files):
    # Runner(progress=False) failed in the first node: "'bool' object is not callable"
    run_with(files[1], progress=False)


@pytest.mark.parametrize("case", ARGUMENTS, ids=list(ARGUMENTS))
def test_bad_run_arguments_are_named(files, case):
    run, words = ARGUMENTS[case]
    with pytest.raises(ConfigError, match=words):
        run_with(files[1], **run)


def test_bad_prnf_threads_is_named(files, monkeypatch):
    monkeypatch.setenv("PRNF_THREADS", "abc")
    with pytest.raises(ConfigError, match="PRNF_THREADS='abc'"):
        run_with(files[1])


def test_a_folder_or_fifo_named_as_the_pattern_is_said_to_be_one(files):
    import os
    tmp = files[0]
    (tmp / "folder.npy").mkdir()
    os.mkfifo(tmp / "fifo.npy")       # reading it would block forever
    with pytest.raises(DataFileError, match="is a folder"):
        run_with(str(tmp / "folder.npy"))
    with pytest.raises(DataFileError, match="not a regular file"):
        run_with(str(tmp / "fifo.npy"))


def test_an_all_zero_initial_model_is_refused(files):
    # every repeat stayed zero: an all-zero object with a plausible eMod, no word
    tmp, pattern, _ = files
    np.save(tmp / "zero_model.npy", np.zeros((32, 32)))
    with pytest.raises(ConfigError, match="initial_model is zero everywhere"):
        run_input(config(pattern, initial_model=str(tmp / "zero_model.npy")))


def test_a_pattern_in_huge_units_phases_in_double_and_is_refused_in_single(files):
    # x 1e80 in double precision gave an all-zero object (eMod 0.146) without a warning: the
    # autocorrelation support cast amplitudes of 1e40 to float32 (infinite), so it was empty
    tmp, pattern, _ = files
    np.save(tmp / "huge.npy", np.load(pattern) * 1e80)
    results = {}
    for name, path in (("plain", pattern), ("huge", str(tmp / "huge.npy"))):
        inp = phmodel.pInput(config(path))
        results[name] = Runner([inp], phmodel.pOutput().after(phmodel.ERA(5, 20).after(inp)),
                               precision="double").run(1, seed=2)
    np.testing.assert_allclose(results["huge"]["sample_ret"], results["plain"]["sample_ret"] * 1e40,
                               rtol=1e-6, atol=1e-6 * np.abs(results["huge"]["sample_ret"]).max())
    with pytest.raises(ConfigError, match="beyond what single precision holds.*precision='double'"):
        run_with(str(tmp / "huge.npy"), precision="single")


def test_an_inverted_mask_is_reported_with_the_fix(files):
    # a mask of 1 = good masking 97% of the pattern was phased without a word
    tmp, pattern, _ = files
    inverted = np.ones((32, 32))
    inverted[14:19, 14:19] = 0
    np.save(tmp / "inverted.npy", inverted)
    with pytest.warns(UserWarning, match=r"marks 98% of the pixels as bad.*inverted.*1 - mask"):
        phmodel.pInput(config(pattern, str(tmp / "inverted.npy"))).prepared()
