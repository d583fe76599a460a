"""Graph validation: every structural mistake names the nodes involved."""
import pytest

from prnf_core import GraphError, Runner, phmodel

from helpers import config, write_pattern


@pytest.fixture
def cfg(tmp_path):
    pattern, mask, _ = write_pattern(tmp_path)
    return config(pattern, mask)


def test_ids_are_unique_and_after_chains(cfg):
    a, b = phmodel.pInput(cfg), phmodel.pInput(cfg)
    era = phmodel.ERA(5, 20)
    assert era.after(a) is era and era.after(b) is era
    assert era.fathers == [a, b]
    assert len({a.id, b.id, era.id}) == 3
    assert "ERA(id=" in repr(era) and "support_size=20" in repr(era)


def test_cycle_is_named(cfg):
    inp = phmodel.pInput(cfg)
    e1 = phmodel.ERA(1, 20).after(inp)
    e2 = phmodel.ERA(1, 20, name="loop").after(e1)
    e1.after(e2)
    out = phmodel.pOutput().after(e2)
    with pytest.raises(GraphError, match="cycle.*loop"):
        Runner([inp], out)


def test_output_with_children_and_several_outputs(cfg):
    inp = phmodel.pInput(cfg)
    out = phmodel.pOutput(name="first").after(inp)
    phmodel.ERA(1, 20).after(out)
    with pytest.raises(GraphError, match="output.*first.*children"):
        Runner([inp], out)
    inp = phmodel.pInput(cfg)
    o1 = phmodel.pOutput(name="o1").after(inp)
    phmodel.pOutput(name="o2").after(inp)
    with pytest.raises(GraphError, match="several outputs"):
        Runner([inp], o1)


def test_no_output_and_non_input(cfg):
    inp = phmodel.pInput(cfg)
    era = phmodel.ERA(1, 20).after(inp)
    with pytest.raises(GraphError, match="one pOutput"):
        Runner([inp], era)
    with pytest.raises(GraphError, match="not a pInput"):
        Runner([era], phmodel.pOutput().after(era))
    with pytest.raises(GraphError, match="no input"):
        Runner([], phmodel.pOutput())


def test_input_cannot_have_fathers(cfg):
    with pytest.raises(Exception, match="input node"):
        phmodel.pInput(cfg).after(phmodel.pInput(cfg))


def test_dead_end_is_named(cfg):
    inp = phmodel.pInput(cfg)
    era = phmodel.ERA(1, 20).after(inp)
    phmodel.HIO(1, 20, 0.9, name="dangling").after(inp)
    with pytest.raises(GraphError, match="dangling.*lead nowhere"):
        Runner([inp], phmodel.pOutput().after(era))


def test_unlisted_input_is_named(cfg):
    a, b = phmodel.pInput(cfg, name="listed"), phmodel.pInput(cfg, name="forgotten")
    merge = phmodel.pMerge().after(a).after(b)
    with pytest.raises(GraphError, match="forgotten"):
        Runner([a], phmodel.pOutput().after(merge))


def test_merged_branches_of_different_shapes(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    p1, m1, _ = write_pattern(tmp_path / "a", shape=(32, 32))
    p2, m2, _ = write_pattern(tmp_path / "b", shape=(24, 24))
    a, b = phmodel.pInput(config(p1, m1)), phmodel.pInput(config(p2, m2))
    merge = phmodel.pMerge(name="joiner").after(phmodel.ERA(1, 20).after(a)).after(
        phmodel.ERA(1, 20).after(b))
    runner = Runner([a, b], phmodel.pOutput().after(merge))
    with pytest.raises(GraphError, match=r"joiner.*different shapes.*\(32, 32\).*\(24, 24\)"):
        runner.run(1, seed=0)


def test_a_chain_of_1500_nodes_is_sorted_without_recursion(cfg):
    # RecursionError: the topological sort was recursive
    from prnf_core import graph
    inp = node = phmodel.pInput(cfg)
    chain = []
    for _ in range(1500):
        node = phmodel.ERA(1, 30).after(node)
        chain.append(node)
    out = phmodel.pOutput().after(node)
    assert graph.collect([inp], out) == [inp, *chain, out]
