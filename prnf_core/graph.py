"""Validation and topological order of a phasing network."""
from __future__ import annotations

from .errors import GraphError


def _names(nodes):
    return ", ".join(repr(n) for n in nodes)


def collect(inputs, output):
    """All nodes reachable from ``inputs`` through ``children``, in topological order.

    Raises :class:`GraphError` naming the nodes for every structural mistake.
    """
    inputs = list(inputs or [])
    if not inputs:
        raise GraphError("the network has no input node; pass inputnodes=[pInput(...), ...]")
    for node in inputs:
        if getattr(node, "kind", None) != "input":
            raise GraphError(f"{node!r} is listed as an input but is not a pInput node")
    if output is None or getattr(output, "kind", None) != "output":
        raise GraphError(f"the network needs one pOutput node as outputnode, got {output!r}")
    if output.children:
        raise GraphError(f"the output {output!r} has children {_names(output.children)}; "
                         "an output node must be last")
    order = _topological(inputs)
    _check_reachability(order, inputs, output)
    return order


def _topological(inputs):
    """Depth-first topological sort with an explicit stack (a recursive one hit Python's
    recursion limit on a chain of 1,500 nodes); a cycle is reported with the nodes on it."""
    order, state = [], {}
    for root in inputs:
        if state.get(root.id) == "done":
            continue
        trail, stack = [], [(root, iter(root.children))]   # trail: the open nodes, in order
        state[root.id] = "open"
        trail.append(root)
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                trail.pop()
                state[node.id] = "done"
                order.append(node)
                continue
            mark = state.get(child.id)
            if mark == "open":
                cycle = trail[trail.index(child):] + [child]
                raise GraphError(f"the network has a cycle: {' -> '.join(repr(n) for n in cycle)}")
            if mark is None:
                state[child.id] = "open"
                trail.append(child)
                stack.append((child, iter(child.children)))
    return order[::-1]


def _check_reachability(order, inputs, output):
    known = {n.id for n in order}
    outputs = [n for n in order if n.kind == "output"]
    if len(outputs) > 1:
        raise GraphError(f"the network has several outputs: {_names(outputs)}; keep exactly one")
    if output.id not in known:
        raise GraphError(f"the output {output!r} is not reachable from the inputs {_names(inputs)}")
    listed = {n.id for n in inputs}
    for node in order:
        if node.kind == "input" and node.id not in listed:
            raise GraphError(f"{node!r} feeds the network but is not in inputnodes")
        stray = [f for f in node.fathers if f.id not in known]
        if stray:
            raise GraphError(f"{node!r} has fathers {_names(stray)} that no listed input reaches; "
                             "add their inputs to inputnodes or remove the edge")
    leads_to_output = {output.id}
    for node in reversed(order):
        if any(c.id in leads_to_output for c in node.children):
            leads_to_output.add(node.id)
    dead = [n for n in order if n.id not in leads_to_output]
    if dead:
        raise GraphError(f"node(s) {_names(dead)} lead nowhere: no path from them reaches the "
                         f"output {output!r}")


def check_shapes(order):
    """Every node's fathers must carry streams of one shape; returns {node id: shape}."""
    shapes = {}
    for node in order:
        if node.kind == "input":
            shapes[node.id] = node.prepared().shape
            continue
        father_shapes = {shapes[f.id] for f in node.fathers}
        if len(father_shapes) > 1:
            detail = ", ".join(f"{f!r}: {shapes[f.id]}" for f in node.fathers)
            raise GraphError(f"{node!r} merges branches of different shapes ({detail}); "
                             "merged branches must come from patterns of one shape")
        shapes[node.id] = father_shapes.pop()
    return shapes
