"""Work that cannot fit in memory is refused before anything is allocated, naming what it
needs and what is available (a 4 GiB pattern was read whole, then a float64 copy attempted:
a raw MemoryError after 93 s)."""
import os

import numpy as np
import pytest

from prnf_core import ResourceError, Runner, memory, phmodel
from prnf_core.cli import main

from helpers import config, write_pattern

MiB = 1024 ** 2


@pytest.fixture
def little_memory(monkeypatch):
    """A machine with 1 MiB available; what reads a file's data must never run."""
    monkeypatch.setattr(memory, "available", lambda: MiB)
    monkeypatch.delenv(memory.CHECK_ENV, raising=False)


def _network(pattern, **run):
    inp = phmodel.pInput(config(pattern))
    return Runner([inp], phmodel.pOutput().after(phmodel.ERA(2, 20).after(inp)), **run)


def test_a_big_npy_is_refused_from_its_header(tmp_path, little_memory, monkeypatch):
    big = np.lib.format.open_memmap(tmp_path / "big.npy", mode="w+", dtype=np.float32,
                                    shape=(256, 256, 64))        # 16 MiB, sparse on disk
    del big
    from prnf_core.io import load_array
    monkeypatch.setattr(np, "load", _header_only(np.load))   # the data itself must not be read
    with pytest.raises(ResourceError, match=r"shape \(256, 256, 64\), float32\) needs at least "
                                            r"48 MiB of memory, but 1 MiB is available"):
        load_array(tmp_path / "big.npy")
    with pytest.raises(ResourceError, match=r"single-precision run of shape \(256, 256, 64\)"):
        _network(str(tmp_path / "big.npy")).run(1, seed=0)      # the run's own floor first


def _header_only(load):
    def guarded(*args, mmap_mode=None, **kwargs):
        assert mmap_mode == "r", "the array was read before the memory check"
        return load(*args, mmap_mode=mmap_mode, **kwargs)
    return guarded


def test_a_run_that_cannot_fit_is_refused_before_its_data_is_read(tmp_path, monkeypatch):
    pattern, _, _ = write_pattern(tmp_path, shape=(64, 64))
    monkeypatch.setattr(memory, "available", lambda: 100 * 1024)   # the file itself fits
    runner = _network(pattern, precision="double")
    read = []
    monkeypatch.setattr(runner.inputs[0], "prepared", lambda: read.append(1))
    with pytest.raises(ResourceError, match=r"double-precision run of shape \(64, 64\) needs "
                                            r"at least 384 KiB|double-precision run of shape"):
        runner.run(1, seed=0)
    assert read == []


@pytest.mark.parametrize("shape,prep,expected", [
    ((64, 64), {"bin": 2}, (32, 32)), ((67, 67), {"fft_size": "pad"}, (70, 70)),
    ((134, 134), {"bin": 2, "fft_size": "pad"}, (70, 70)), ((67, 67), {"fft_size": "crop"}, (66, 66))])
def test_the_memory_check_sees_the_prepared_shape(tmp_path, monkeypatch, shape, prep, expected):
    # it saw the file's shape: a run binned to a quarter was judged at its full size
    pattern, _, _ = write_pattern(tmp_path, shape=shape)
    inp = phmodel.pInput({**config(pattern), **prep})
    assert inp.peek_shape() == expected
    runner = Runner([inp], phmodel.pOutput().after(phmodel.ERA(2, 20).after(inp)))
    monkeypatch.setattr(memory, "available", lambda: 1024)
    with pytest.raises(ResourceError, match=rf"run of shape \({expected[0]}, {expected[1]}\)"):
        runner.run(1, seed=0)
    monkeypatch.undo()
    assert inp.prepared().shape == expected           # the run's own shape, as predicted


def test_keep_best_counts_the_repeats_it_holds(tmp_path, monkeypatch):
    pattern, _, _ = write_pattern(tmp_path, shape=(64, 64))
    volume = 64 * 64 * 8
    # enough for the run and 4 repeats held (3 kept, 1 being phased), not for 5 (4 kept in
    # memory, the rest on disk, and 1 being phased)
    monkeypatch.setattr(memory, "available", lambda: int(volume * (memory.RUN_VOLUMES + 4.5 * 1.125)))
    _network(pattern).run(4, seed=0, keep_best=3)
    with pytest.raises(ResourceError, match="keeping 5 repeats for keep_best.*lower keep_best"):
        _network(pattern).run(40, seed=0, keep_best=0.5)


def test_a_kept_repeat_is_let_go_once_merged(tmp_path, monkeypatch):
    # every kept repeat and the PRTF's reference stayed in memory through the whole merge:
    # 3 volumes of 16.5 at the peak of prnf phase at 160^3
    import gc
    import weakref
    from prnf_core import merge
    pattern, _, _ = write_pattern(tmp_path, shape=(64, 64))
    merged, add = [], merge.MergeAccumulator.add

    def watching(self, stream, *args, **kwargs):
        if not self.phasor_only:
            gc.collect()
            assert all(ref() is None for ref in merged), "a merged repeat is still held"
            merged.append(weakref.ref(stream.x))
        return add(self, stream, *args, **kwargs)

    monkeypatch.setattr(merge.MergeAccumulator, "add", watching)
    _network(pattern).run(4, seed=0, keep_best=3)
    assert len(merged) == 3


def test_keep_best_holds_at_most_a_few_repeats_in_memory(tmp_path):
    # keep_best=0.5 of 40 repeats at 128^3 held 20 objects in memory (+442 MiB), on every rank
    from prnf_core.kept import IN_MEMORY, KeptRepeats
    from prnf_core.stream import Stream
    rng = np.random.default_rng(0)
    kept, pushed = KeptRepeats(10), {}
    for i, error in enumerate(rng.permutation(25) / 25):
        x = rng.random((8, 8)).astype(np.complex64)
        pushed[i] = (error, x.copy())
        kept.push(error, i, Stream(data=None, x=x, support=np.abs(x) > 0.5, background=np.zeros(1)))
        assert kept.in_memory() <= IN_MEMORY
    best = sorted(pushed, key=lambda i: pushed[i][0])[:10]
    assert sorted(i for _, i, _ in kept.items()) == sorted(best)
    for error, i, stream in kept.items():          # spilled ones read back as they were
        assert error == pushed[i][0]
        np.testing.assert_array_equal(stream.x, pushed[i][1])
    folder = kept._folder
    assert len(os.listdir(folder)) == 2 * (10 - kept.in_memory())   # x and support each
    kept.close()
    assert not os.path.exists(folder)


def test_spilled_repeats_merge_as_if_held_in_memory(tmp_path, monkeypatch):
    from prnf_core import kept
    pattern, _, _ = write_pattern(tmp_path, shape=(32, 32))
    spilled = _network(pattern).run(7, seed=2, keep_best=6)
    monkeypatch.setattr(kept, "IN_MEMORY", 100)
    held = _network(pattern).run(7, seed=2, keep_best=6)
    np.testing.assert_array_equal(spilled["sample_ret"], held["sample_ret"])
    assert list(spilled["repeat_ids"]) == list(held["repeat_ids"])


def test_the_check_can_be_switched_off(tmp_path, monkeypatch):
    pattern, _, _ = write_pattern(tmp_path)
    monkeypatch.setattr(memory, "available", lambda: 1)
    monkeypatch.setenv(memory.CHECK_ENV, "0")
    _network(pattern).run(1, seed=0)


def test_simulate_refuses_a_shape_that_cannot_fit(tmp_path, capsys, little_memory):
    out = tmp_path / "p.npy"
    assert main(["simulate", "--shape", "4096,4096,4096", "--out", str(out),
                 "--mask", str(tmp_path / "m.npy")]) == 1
    err = capsys.readouterr().err
    assert "needs at least 3072.0 GiB of memory, but 1 MiB is available" in err
    assert "give a smaller --shape" in err and not out.exists()


@pytest.mark.parametrize("argv,words", [
    (["--shape", "0,0"], "--shape '0,0': give 2 or 3 sizes"),
    (["--radius", "-3"], "--radius -3"),
    (["--photons", "-1"], "--photons -1"),
    (["--seed", "-1"], "--seed -1"),
])
def test_simulate_refuses_bad_values_in_one_line(tmp_path, capsys, argv, words):
    assert main(["simulate", *argv, "--out", str(tmp_path / "p.npy"),
                 "--mask", str(tmp_path / "m.npy")]) == 1
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1, err


def test_available_memory_is_read_from_proc_meminfo():
    have = memory.available()
    assert have is None or have > 16 * MiB
