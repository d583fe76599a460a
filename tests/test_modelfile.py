"""Model files: full and skeleton round trips, dumped twice, the reference system's file."""
import json
import tracemalloc

import numpy as np
import pytest

from prnf_core import ModelFileError, PluginError, Runner, phmodel
from prnf_core.modelfile import encode_array, run_options

from helpers import config, write_pattern


def small_network(cfg):
    a, b = phmodel.pInput(cfg), phmodel.pInput(cfg)
    hio = phmodel.HIO(5, 30, 0.9).after(a)
    raar = phmodel.RAAR(5, 30, 0.8, name="relaxed").after(b)
    merge = phmodel.pMerge().after(hio).after(raar)
    out = phmodel.pOutput().after(phmodel.HPR(5, 30, 0.5, hprcoff=0.7).after(merge))
    return [a, b], out


@pytest.fixture
def network(tmp_path):
    pattern, mask, _ = write_pattern(tmp_path)
    return small_network(config(pattern, mask)), pattern, mask


def structure(runner):
    return [(type(n).__name__, n.name, n.params.get("iteration"), n.params.get("gamma"),
             n.params.get("hprcoff"), [f.id for f in n.fathers]) for n in runner.order]


def test_full_round_trip_dumped_twice(tmp_path, network):
    (inputs, out), _, _ = network
    runner = Runner(inputs, out)
    first = runner.run(1, seed=5)
    path = tmp_path / "model.json"
    runner.dump_model(path)
    runner.dump_model(path)            # the reference system crashed here
    doc = json.loads(path.read_text())
    assert doc["format"] == "prnf-model" and doc["skeleton"] is False
    assert {n["class"] for n in doc["nodes"]} == {"pInput", "HIO", "RAAR", "pMerge", "HPR", "pOutput"}
    assert all(n["distribution"] == "prnf" for n in doc["nodes"])
    (tmp_path / "pattern.npy").unlink()          # the data must come from the file itself
    loaded = Runner(loadfile=path)
    assert structure(loaded) == structure(runner)
    assert [n.id for n in loaded.inputs] == [n.id for n in inputs]
    again = loaded.run(1, seed=5)
    np.testing.assert_allclose(again["sample_ret"], first["sample_ret"], atol=1e-5)


def test_skeleton_needs_and_takes_reload_dataset(tmp_path, network):
    (inputs, out), pattern, mask = network
    runner = Runner(inputs, out)
    path = tmp_path / "skeleton.json"
    runner.dump_model(path, skeleton=True)
    assert "data" not in json.loads(path.read_text())
    reload = {inp.id: {"pattern_path": pattern, "mask_path": mask, "initial_model": None}
              for inp in inputs}
    result = Runner(loadfile=path, reload_dataset=reload).run(1, seed=1)
    assert result["sample_ret"].shape == (32, 32)


def test_reload_dataset_naming_no_input(tmp_path, network):
    (inputs, out), pattern, _ = network
    Runner(inputs, out).dump_model(tmp_path / "m.json")
    with pytest.raises(Exception, match="not an input of this network; inputs:"):
        Runner(loadfile=tmp_path / "m.json", reload_dataset={12345: {"pattern_path": pattern}})


def test_reference_model_file_loads_and_runs(spipy_data):
    runner = Runner(loadfile=spipy_data / "temp_model_v32_demo.json")
    names = sorted(type(n).__name__ for n in runner.order)
    assert names == ["DM", "ERA", "HIO", "HPR", "RAAR", "pInput", "pInput", "pMerge", "pOutput"]
    hpr = next(n for n in runner.order if type(n).__name__ == "HPR")
    assert hpr.params == {"iteration": 200, "support_size": 85, "gamma": 0.1, "hprcoff": 0.5}
    assert runner.inputs[0].params["config_dict"]["edge_mask"] == [64, 70]
    pattern = np.load(spipy_data / "pattern.npy")
    np.testing.assert_array_equal(runner.inputs[0].load()["pattern"], pattern)
    out = runner.run(1, seed=0)
    assert out["final_eMod"][0] < 0.2


@pytest.mark.parametrize("text,words", [
    ("{not json", "not valid JSON"),
    ('{"format": "something-else"}', "not a PRNF model file"),
    ('{"format": "prnf-model", "format_version": 99}', "newer than this PRNF reads"),
    ('[1, 2]', "spipy's"),
])
def test_malformed_model_files(tmp_path, text, words):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ModelFileError, match=words):
        Runner(loadfile=path)


def test_unknown_class_names_distribution_and_installed(tmp_path, network):
    (inputs, out), _, _ = network
    Runner(inputs, out).dump_model(tmp_path / "m.json")
    doc = json.loads((tmp_path / "m.json").read_text())
    doc["nodes"][2]["class"], doc["nodes"][2]["distribution"] = "OSSX", "prnf-ossx"
    (tmp_path / "m.json").write_text(json.dumps(doc))
    with pytest.raises(PluginError, match=r"'OSSX'.*pip install prnf-ossx.*Installed: DM, ERA"):
        Runner(loadfile=tmp_path / "m.json")


def test_wrong_parameter_names(tmp_path, network):
    (inputs, out), _, _ = network
    Runner(inputs, out).dump_model(tmp_path / "m.json")
    doc = json.loads((tmp_path / "m.json").read_text())
    hio = next(n for n in doc["nodes"] if n["class"] == "HIO")
    hio["params"]["gama"] = hio["params"].pop("gamma")
    (tmp_path / "m.json").write_text(json.dumps(doc))
    with pytest.raises(ModelFileError, match="HIO.*wrong parameters"):
        Runner(loadfile=tmp_path / "m.json")


def test_a_mask_given_as_an_array_is_kept_in_skeleton_files(tmp_path, network):
    # it was written as null, and the reloaded network phased without its mask
    _, pattern, mask = network
    mask_array = np.load(mask)
    inp = phmodel.pInput({**config(pattern), "mask_path": mask_array})
    Runner([inp], phmodel.pOutput().after(phmodel.ERA(2, 20).after(inp))).dump_model(
        tmp_path / "skel.json", skeleton=True)
    loaded = Runner(loadfile=tmp_path / "skel.json")
    np.testing.assert_array_equal(loaded.inputs[0].params["config_dict"]["mask_path"], mask_array)
    np.testing.assert_array_equal(loaded.inputs[0].prepared().measured,
                                  inp.prepared().measured)


def test_a_value_json_cannot_hold_is_refused(tmp_path, network):
    (inputs, out), _, _ = network
    runner = Runner(inputs, out)
    runner.order[-2].params["odd"] = object()        # e.g. a plugin parameter of its own type
    with pytest.raises(ModelFileError, match="cannot be written to a model file"):
        runner.dump_model(tmp_path / "m.json")
    assert not (tmp_path / "m.json").exists()


def test_an_array_is_checked_against_its_declared_size_before_inflating(tmp_path, network):
    (inputs, out), _, _ = network
    Runner(inputs, out).dump_model(tmp_path / "m.json")
    doc = json.loads((tmp_path / "m.json").read_text())
    bomb = encode_array(np.zeros(64 * 1024 * 1024, np.uint8))      # 64 MiB of zeros, 65 KB packed
    spec = next(iter(doc["data"].values()))["pattern"]
    spec["zlib_base64"] = bomb["zlib_base64"]                          # declared: 32 x 32 float64
    (tmp_path / "m.json").write_text(json.dumps(doc))
    tracemalloc.start()
    with pytest.raises(ModelFileError, match=r"does not match its declared shape \[32, 32\]"):
        Runner(loadfile=tmp_path / "m.json")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 8 * 1024 * 1024, peak


def test_relative_paths_in_a_model_file_resolve_against_its_folder(tmp_path, monkeypatch):
    folder = tmp_path / "project"
    folder.mkdir()
    write_pattern(folder)
    inp = phmodel.pInput(config("pattern.npy", "mask.npy"))
    runner = Runner([inp], phmodel.pOutput().after(phmodel.ERA(2, 20).after(inp)))
    runner.dump_model(folder / "m.json", skeleton=True)
    monkeypatch.chdir(tmp_path)                  # not the model file's folder
    loaded = Runner(loadfile="project/m.json")
    assert loaded.inputs[0].params["config_dict"]["pattern_path"] == str(folder / "pattern.npy")
    assert loaded.run(1, seed=0)["final_eMod"].size == 1


def _edited(tmp_path, network, edit):
    (inputs, out), _, _ = network
    Runner(inputs, out).dump_model(tmp_path / "m.json", skeleton=True)
    doc = json.loads((tmp_path / "m.json").read_text())
    edit(doc)
    (tmp_path / "m.json").write_text(json.dumps(doc))
    return tmp_path / "m.json"


def _hio(doc):
    return next(n for n in doc["nodes"] if n["class"] == "HIO")


def _set(doc, k, **changes):
    doc["nodes"][k].update(changes)


STRUCTURE = {
    # each was "KeyError: 2" or similar, naming nothing
    "duplicate ids": (lambda d: _set(d, 1, id=d["nodes"][0]["id"]), r"node id \d+ appears twice"),
    "a missing father": (lambda d: _hio(d).update(fathers=[999]), r"node \d+ \('HIO'\) names father\(s\) \[999\]"),
    "fathers as text": (lambda d: _hio(d).update(fathers="11"), r"fathers '11' must be a list of node ids"),
    "nodes as a dict": (lambda d: d.update(nodes={str(n["id"]): n for n in d["nodes"]}), "'nodes' must be a non-empty list"),
    "a record without params": (lambda d: d["nodes"][1].pop("params"), r"lacks \['params'\]"),
    "an unknown output": (lambda d: d.update(output=12345), "'output' 12345"),
}


@pytest.mark.parametrize("case", STRUCTURE, ids=list(STRUCTURE))
def test_structural_mistakes_name_the_node(tmp_path, network, case):
    edit, words = STRUCTURE[case]
    with pytest.raises(ModelFileError, match=words):
        Runner(loadfile=_edited(tmp_path, network, edit))


def test_json_nested_100000_deep_is_a_model_file_error(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ModelFileError, match="nested too deeply"):
        Runner(loadfile=path)


def test_an_absurd_iteration_count_is_refused_up_front(tmp_path, network):
    # 10^12 iterations allocated 7 TiB of error curves before failing
    def huge(doc):
        next(n for n in doc["nodes"] if n["class"] == "HIO")["params"]["iteration"] = 10 ** 12
    with pytest.raises(ModelFileError, match=r"iteration=1000000000000: give an integer in \[0, 100000000\]"):
        Runner(loadfile=_edited(tmp_path, network, huge))


def test_a_chain_of_1500_nodes_in_a_model_file_loads(tmp_path, network):
    # RecursionError: the topological sort was recursive
    (_, _), pattern, mask = network
    inp = node = phmodel.pInput(config(pattern, mask))
    for _ in range(1500):
        node = phmodel.ERA(1, 30).after(node)
    Runner([inp], phmodel.pOutput().after(node)).dump_model(tmp_path / "chain.json", skeleton=True)
    runner = Runner(loadfile=tmp_path / "chain.json")
    assert len(runner.order) == 1502 and runner.iterations_per_repeat() == 1500


def test_dump_model_writes_the_model_document(tmp_path, network):
    (inputs, out), _, _ = network
    runner = Runner(inputs, out)
    runner.dump_model(tmp_path / "m.json", skeleton=True)
    assert json.loads((tmp_path / "m.json").read_text()) == runner.model_document(skeleton=True)
    document = runner.model_document
    runner.model_document = lambda skeleton: {**document(skeleton), "meta": {"note": 1}}
    runner.dump_model(tmp_path / "m.json")       # one description of the network, not two
    assert json.loads((tmp_path / "m.json").read_text())["meta"] == {"note": 1}


def test_files_without_run_options_record_none(tmp_path, network):
    (inputs, out), _, _ = network
    Runner(inputs, out).dump_model(tmp_path / "m.json")
    assert run_options(tmp_path / "m.json") == {}


def test_spipys_model_files_record_no_run_options(spipy_data):
    assert run_options(spipy_data / "temp_model_v32_demo.json") == {}


def _with_run_options(tmp_path, network, options):
    (inputs, out), _, _ = network
    doc = Runner(inputs, out).model_document(skeleton=True)
    doc["meta"]["run_options"] = options
    (tmp_path / "m.json").write_text(json.dumps(doc))
    return tmp_path / "m.json"


def test_run_options_are_read_and_the_network_loads_as_before(tmp_path, network):
    options = {"repeat": 8, "keep_best": 0.5, "match": None, "precision": "double", "seed": 0}
    path = _with_run_options(tmp_path, network, options)
    assert run_options(path) == options
    assert len(Runner(loadfile=path).order) == 7


@pytest.mark.parametrize("options,words", [
    ({"repeat": 0}, '"repeat": 0 is not valid; give an integer >= 1'),
    ({"repeat": True}, '"repeat": true is not valid'),
    ({"keep_best": 1.5}, r'"keep_best": 1.5 is not valid; give a count >= 1, a fraction in \(0, 1\]'),
    ({"match": -0.1}, '"match": -0.1 is not valid; give a fraction >= 0'),
    ({"precision": "half"}, r'"precision": "half" is not valid; give "single" or "double"'),
    ({"seed": -1}, '"seed": -1 is not valid; give an integer >= 0 or null'),
    ({"repeats": 8}, r"unknown key\(s\) \['repeats'\]; accepted: \['keep_best', 'match'"),
    ([8], "meta.run_options is list, not an object"),
])
def test_a_bad_run_option_is_named_with_its_fix(tmp_path, network, options, words):
    with pytest.raises(ModelFileError, match=words):
        run_options(_with_run_options(tmp_path, network, options))
