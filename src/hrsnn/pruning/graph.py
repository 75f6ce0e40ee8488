r"""Graph measures used by LNP: betweenness centrality, path lengths and efficiency, localisation, degree heterogeneity.

A weight matrix W in the (post, pre) layout is read as a directed graph with an edge j → i for every
off-diagonal :math:`W_{ij} \ne 0`. Edge lengths are :math:`\ell_{ij} = 1/|W_{ij}|` ("inverse": strong synapses
are short) or 1 ("unweighted"). For an undirected graph the two directions merge into one edge of length
:math:`\min(\ell_{ij}, \ell_{ji})`.

* Betweenness (Brandes 2001): :math:`BC(v) = \sum_{s \ne v \ne t} \sigma_{st}(v) / \sigma_{st}`, with
  :math:`\sigma_{st}` the number of shortest s→t paths and :math:`\sigma_{st}(v)` those through v; ordered pairs
  for directed graphs, unordered pairs for undirected ones (no normalisation). With ``pivots = k`` only k
  random sources s are used and the sum is scaled by N/k (an unbiased estimate).
* Shortest-path lengths :math:`d_{ij}`, the least total length of a path j → i (∞ if there is none), and global
  efficiency (Latora & Marchiori 2001) :math:`E = \frac{1}{N(N-1)} \sum_{i \ne j} 1/d_{ij}` with 1/∞ = 0: 1 for a
  complete graph of unit lengths, 0 for a graph without edges.
* Inverse participation ratio of a vector: :math:`IPR(v) = \sum_i v_i^4 / (\sum_i v_i^2)^2`, from 1/N
  (uniform spread) to 1 (one site); computed by :func:`hrsnn.dynamics.noise.eigenvector_localization`.
* Local degree heterogeneity of a node set S: :math:`H(S) = \mathrm{std}(\deg(S)) / \mathrm{mean}(\deg(S))`
  (population std; 0 when the mean is 0).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType

import numpy as np
import torch
from torch import Tensor

from hrsnn._validate import (
    check_bool,
    check_choice,
    check_generator,
    check_int,
    check_tensor,
    float64_matrix,
    off_diagonal,
)
from hrsnn.errors import ConfigError
from hrsnn.pruning._optional import require

__all__ = [
    "BETWEENNESS_BACKENDS",
    "EDGE_LENGTHS",
    "IPR_MATRICES",
    "betweenness_centrality",
    "brandes_betweenness",
    "degree_heterogeneity",
    "edge_list",
    "global_efficiency",
    "localisation_scores",
    "shortest_path_lengths",
]


def _inverse_lengths(weights: np.ndarray) -> np.ndarray:
    return 1.0 / np.abs(weights)


def _unit_lengths(weights: np.ndarray) -> np.ndarray:
    return np.ones_like(weights)


EDGE_LENGTHS: Mapping[str, Callable[[np.ndarray], np.ndarray]] = MappingProxyType(
    {"inverse": _inverse_lengths, "unweighted": _unit_lengths}
)
"""Read-only map from an edge-length rule to ``rule(weights) -> lengths``."""


def edge_list(weight: Tensor, *, directed: bool = True, lengths: str = "inverse") -> tuple[np.ndarray, np.ndarray]:
    """Edges (source, target) and their lengths of the graph of ``weight`` (module docstring).

    Returns:
        ``(edges, length)``: int64 array (E, 2) of (pre j, post i) pairs, sorted, and float64 array (E,). For an
        undirected graph each pair appears once with source < target.
    """
    w = float64_matrix("weight", weight)
    check_bool("directed", directed)
    rule = EDGE_LENGTHS[check_choice("lengths", lengths, EDGE_LENGTHS)]
    present = (w != 0) & off_diagonal(w.shape[0])
    post, pre = torch.nonzero(present, as_tuple=True)
    length = rule(w[post, pre].numpy())
    if directed:
        edges = np.stack([pre.numpy(), post.numpy()], axis=1)
        return edges, length
    lo = torch.minimum(pre, post).numpy()
    hi = torch.maximum(pre, post).numpy()
    n = w.shape[0]
    key = lo * n + hi
    order = np.lexsort((length, key))
    key, length, lo, hi = key[order], length[order], lo[order], hi[order]
    first = np.ones(key.shape[0], dtype=bool)
    first[1:] = key[1:] != key[:-1]
    return np.stack([lo[first], hi[first]], axis=1), length[first]


def _adjacency(n: int, edges: np.ndarray, length: np.ndarray, directed: bool) -> list[list[tuple[int, float]]]:
    adj: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    for (a, b), ell in zip(edges.tolist(), length.tolist(), strict=True):
        adj[a].append((b, ell))
        if not directed:
            adj[b].append((a, ell))
    return adj


def _single_source(adj: list[list[tuple[int, float]]], s: int, bc: list[float]) -> None:
    """Add source ``s``'s dependencies δ_s(v) = Σ_t σ_st(v)/σ_st to ``bc`` (Dijkstra + back-propagation)."""
    n = len(adj)
    dist = [math.inf] * n
    sigma = [0.0] * n
    preds: list[list[int]] = [[] for _ in range(n)]
    done = [False] * n
    order: list[int] = []
    dist[s] = 0.0
    sigma[s] = 1.0
    heap = [(0.0, s)]
    while heap:
        d, v = heapq.heappop(heap)
        if done[v]:
            continue
        done[v] = True
        order.append(v)
        for w, ell in adj[v]:
            nd = d + ell
            if nd < dist[w]:
                dist[w] = nd
                sigma[w] = sigma[v]
                preds[w] = [v]
                heapq.heappush(heap, (nd, w))
            elif nd == dist[w] and not done[w]:
                sigma[w] += sigma[v]
                preds[w].append(v)
    delta = [0.0] * n
    for w in reversed(order):
        coeff = (1.0 + delta[w]) / sigma[w]
        for v in preds[w]:
            delta[v] += sigma[v] * coeff
        if w != s:
            bc[w] += delta[w]


def brandes_betweenness(
    n: int, edges: np.ndarray, length: np.ndarray, *, directed: bool = True, sources: Sequence[int] | None = None
) -> np.ndarray:
    """Betweenness by Brandes' algorithm (pure Python, exact; module docstring for the definition).

    Args:
        n: number of nodes.
        edges: (E, 2) int array of (source, target) pairs.
        length: (E,) positive edge lengths.
        directed: treat edges as directed; otherwise each unordered pair is counted once.
        sources: sources s to sum over (default: all nodes); no rescaling is applied here.

    Returns:
        float64 array (n,).
    """
    adj = _adjacency(n, edges, length, directed)
    bc = [0.0] * n
    for s in range(n) if sources is None else sources:
        _single_source(adj, int(s), bc)
    out = np.asarray(bc, dtype=np.float64)
    return out if directed else out / 2.0


def _pivot_sources(n: int, pivots: int | None, generator: torch.Generator | None) -> list[int] | None:
    if pivots is None or pivots >= n:
        return None
    if generator is None:
        raise ConfigError("generator", None, "is required when pivots is set (the pivots are drawn at random)")
    return sorted(torch.randperm(n, generator=generator)[:pivots].tolist())


def _bc_brandes(
    n: int, edges: np.ndarray, length: np.ndarray, directed: bool, pivots: int | None, gen: torch.Generator | None
) -> np.ndarray:
    sources = _pivot_sources(n, pivots, gen)
    bc = brandes_betweenness(n, edges, length, directed=directed, sources=sources)
    return bc if sources is None else bc * (n / len(sources))


def _bc_igraph(
    n: int, edges: np.ndarray, length: np.ndarray, directed: bool, pivots: int | None, gen: torch.Generator | None
) -> np.ndarray:
    del gen
    if pivots is not None:
        raise ConfigError("pivots", pivots, "is not supported by the igraph backend (exact only); use None")
    ig = require("igraph", "betweenness_backend", "igraph")
    graph = ig.Graph(n=n, edges=edges.tolist(), directed=directed)
    return np.asarray(graph.betweenness(directed=directed, weights=length.tolist()), dtype=np.float64)


def _bc_networkx(
    n: int, edges: np.ndarray, length: np.ndarray, directed: bool, pivots: int | None, gen: torch.Generator | None
) -> np.ndarray:
    nx = require("networkx", "betweenness_backend", "networkx", extra="networkx")
    graph = nx.DiGraph() if directed else nx.Graph()
    graph.add_nodes_from(range(n))
    graph.add_weighted_edges_from(
        ((int(a), int(b), float(ell)) for (a, b), ell in zip(edges, length, strict=True)), weight="length"
    )
    k = None if pivots is None or pivots >= n else pivots
    seed = None
    if k is not None:
        if gen is None:
            raise ConfigError("generator", None, "is required when pivots is set (the pivots are drawn at random)")
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=gen))
    bc = nx.betweenness_centrality(graph, k=k, normalized=False, weight="length", seed=seed)
    return np.asarray([bc[i] for i in range(n)], dtype=np.float64)


_Backend = Callable[[int, np.ndarray, np.ndarray, bool, "int | None", "torch.Generator | None"], np.ndarray]

BETWEENNESS_BACKENDS: Mapping[str, _Backend] = MappingProxyType(
    {"brandes": _bc_brandes, "igraph": _bc_igraph, "networkx": _bc_networkx}
)
"""Read-only map from a backend name to its betweenness function.

"brandes": own pure-Python Brandes (exact, or sampled with ``pivots``; no extra package, slow for N ≳ 500);
"igraph": python-igraph (C, exact; the fast choice for N = 1000); "networkx": networkx (exact, or sampled
with ``pivots``; the optional extra ``hrsnn[networkx]``).
"""


def betweenness_centrality(
    weight: Tensor,
    *,
    directed: bool = True,
    lengths: str = "inverse",
    backend: str = "brandes",
    pivots: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Betweenness :math:`BC(v) = \\sum_{s\\ne v\\ne t} \\sigma_{st}(v)/\\sigma_{st}` of the graph of ``weight``.

    Args:
        weight: (N, N) weights, (post, pre) layout.
        directed: directed graph (edge j → i) or undirected.
        lengths: edge-length rule, a key of :data:`EDGE_LENGTHS`.
        backend: a key of :data:`BETWEENNESS_BACKENDS`.
        pivots: number of sampled sources (None = exact); sampled sums are scaled by N/pivots.
        generator: draws the pivots (required with ``pivots``).

    Returns:
        float64 tensor (N,).
    """
    impl = BETWEENNESS_BACKENDS[check_choice("backend", backend, BETWEENNESS_BACKENDS)]
    if pivots is not None:
        check_int("pivots", pivots, 1)
    if generator is not None:
        check_generator("generator", generator)
    edges, length = edge_list(weight, directed=directed, lengths=lengths)
    n = weight.shape[0]
    return torch.from_numpy(np.ascontiguousarray(impl(n, edges, length, directed, pivots, generator)))


def shortest_path_lengths(weight: Tensor, *, directed: bool = True, lengths: str = "inverse") -> Tensor:
    """All shortest-path lengths of the graph of ``weight`` (module docstring), by igraph's Dijkstra.

    Args:
        weight: (N, N) weights, (post, pre) layout.
        directed: directed graph (edge j → i) or undirected.
        lengths: edge-length rule, a key of :data:`EDGE_LENGTHS`.

    Returns:
        float64 tensor (N, N) in the same (post, pre) layout: entry (i, j) is :math:`d_{ij}`, the length of the
        shortest path j → i; 0 on the diagonal, ``inf`` where i cannot be reached from j.
    """
    edges, length = edge_list(weight, directed=directed, lengths=lengths)
    ig = require("igraph", "shortest_path_lengths", "igraph")
    graph = ig.Graph(n=weight.shape[0], edges=edges.tolist(), directed=directed)
    source_major = np.asarray(graph.distances(weights=length.tolist(), mode="out"), dtype=np.float64)
    return torch.from_numpy(np.ascontiguousarray(source_major.T))


def global_efficiency(weight: Tensor, *, directed: bool = True, lengths: str = "inverse") -> float:
    """Global efficiency :math:`E = \\frac{1}{N(N-1)} \\sum_{i \\ne j} 1/d_{ij}` (1/∞ = 0) of the graph of ``weight``.

    Args:
        weight: (N, N) weights, (post, pre) layout, N >= 2.
        directed: directed graph (edge j → i; ordered pairs) or undirected.
        lengths: edge-length rule, a key of :data:`EDGE_LENGTHS` (:func:`shortest_path_lengths`).
    """
    n = float64_matrix("weight", weight).shape[0]
    if n < 2:
        raise ConfigError("weight", (n, n), "needs at least 2 nodes for an efficiency (a mean over node pairs)")
    dist = shortest_path_lengths(weight, directed=directed, lengths=lengths)
    inverse = 1.0 / dist[off_diagonal(n)]  # 1/inf = 0
    return float(inverse.sum()) / (n * (n - 1))


# ---------------------------------------------------------------------------------------------- localisation


IPR_MATRICES: Mapping[str, str] = MappingProxyType({"sym_abs": "symmetric", "laplacian": "laplacian"})
"""Read-only map from LNP's name of the matrix whose eigenvectors the IPR is taken of to the operator of
:data:`hrsnn.dynamics.noise.LOCALIZATION_OPERATORS`. "sym_abs": :math:`S = (|W| + |W|^T)/2` off the diagonal;
"laplacian": :math:`\\mathrm{diag}(S\\mathbf 1) - S`."""


def localisation_scores(ipr: Tensor, vectors: Tensor, q_loc: float) -> Tensor:
    """Node localisation :math:`\\ell_i = \\sum_{k \\in K} v_k(i)^2`, K = the ⌈q_loc·N⌉ eigenvectors of largest IPR."""
    n = vectors.shape[1]
    count = max(1, math.ceil(q_loc * n))
    top = torch.topk(ipr, min(count, n)).indices
    return (vectors[:, top] ** 2).sum(1)


def degree_heterogeneity(degrees: Tensor) -> float:
    """:math:`H = \\mathrm{std}(d)/\\mathrm{mean}(d)` with the population std (0 when the mean is 0)."""
    d = check_tensor("degrees", degrees, dim=1).detach().to(torch.float64)
    if d.numel() == 0:
        raise ConfigError("degrees", tuple(d.shape), "must not be empty")
    mean = float(d.mean())
    return 0.0 if mean == 0.0 else float(d.std(correction=0)) / mean
