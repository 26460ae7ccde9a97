"""Bridges of the bus graph against networkx's (the reference), and the buses a bridge cuts off
against a connected-components search of the grid without it."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from hai.grid.bridges import BridgeCuts, bridges


def networkx_bridges(f: np.ndarray, t: np.ndarray, n: int) -> np.ndarray:
    graph = nx.MultiGraph()
    graph.add_nodes_from(range(n))
    graph.add_edges_from(zip(f.tolist(), t.tolist(), strict=True))
    simple = nx.Graph(graph)  # nx.bridges takes simple graphs: parallel branches are never bridges
    simple.remove_edges_from(nx.selfloop_edges(simple))
    found = {frozenset(e) for e in nx.bridges(simple)}
    return np.array(
        [
            a != b and graph.number_of_edges(a, b) == 1 and frozenset((a, b)) in found
            for a, b in zip(f, t, strict=True)
        ],
        dtype=bool,
    )


def random_graph(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
    n = int(rng.integers(1, 40))
    m = int(rng.integers(0, 2 * n + 3))
    return rng.integers(0, n, m), rng.integers(0, n, m), n


@pytest.mark.parametrize("seed", range(5))
def test_bridges_agree_with_networkx_on_random_graphs(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(60):  # forests, cycles, parallel branches, self-loops, several components
        f, t, n = random_graph(rng)
        np.testing.assert_array_equal(bridges(f, t, n), networkx_bridges(f, t, n))


def test_bridges_of_a_long_path_and_a_ring() -> None:
    n = 5000  # deep depth-first trees: nothing recursive
    path = np.arange(n - 1)
    assert bridges(path, path + 1, n).all()
    ring_f, ring_t = np.arange(n), (np.arange(n) + 1) % n
    assert not bridges(ring_f, ring_t, n).any()


@pytest.mark.parametrize("seed", range(3))
def test_bridge_cuts_match_a_component_search(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    for _ in range(40):
        f, t, n = random_graph(rng)
        ref = rng.choice(n, size=min(n, int(rng.integers(1, 3))), replace=False)
        bridge = bridges(f, t, n)
        cuts = BridgeCuts(f, t, n, ref, bridge)
        for k in np.nonzero(bridge)[0]:
            keep = np.arange(len(f)) != k
            graph = sp.coo_matrix((np.ones(int(keep.sum())), (f[keep], t[keep])), shape=(n, n))
            _, labels = connected_components(graph, directed=False)
            np.testing.assert_array_equal(cuts(int(k)), ~np.isin(labels, labels[ref]))
