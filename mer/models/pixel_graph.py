"""Pixel graphs for p3 (TDSGCN): the stochastic p+q graph, Graclus-style coarsening with
the node permutation that makes graph pooling a plain 1-D max-pool, and the rescaled
Laplacians of every level. Everything here is numpy/scipy, computed once per graph
(PyG's ``graclus`` needs a compiled extension that this study does not install).

The p+q graph (paper section III-B, Algorithm 1), for pixel i of a side x side grid:
- candidates: every other pixel j with ||z_i - z_j|| <= T;
- the p nearest candidates are kept (ties broken by pixel index, so the pick is fixed),
  then q more are drawn at random from the remaining candidates with a seeded generator;
- weight a_ij = exp(-||z_i - z_j||^2 / sigma^2).
Reading where the paper is loose (each stated so a reader can change it):
- the paper says T = 2*sqrt(5) gives "24 potential neighbours", and its Fig. 3 draws them
  as the 5 x 5 window; a Euclidean radius of 2*sqrt(5) holds 68 pixels around an
  interior node. Both readings are here (``candidates``): ``"radius"`` (default; the
  stated T, METHODS.md's definition) keeps every pixel within T, so the stochastic edges
  reach up to 4.5 px; ``"window"`` keeps the 5 x 5 window of Fig. 3 (24 candidates, the q
  random edges within 2.8 px) whatever T.
- sigma, "the average distance between each vertex and the vertex that is the farthest
  from it", is read as the mean over nodes of the distance to the farthest *candidate*
  (within T), as Defferrard's grid graphs use the farthest kept neighbour; the distance
  to the farthest pixel of the whole image would make every weight about 1.
- the graph is undirected: j ~ i when i picked j or j picked i (A = max(S, S^T)).

Coarsening (Defferrard et al. 2016): at each level, nodes are visited in order of
increasing degree (ties by a seeded shuffle); an unmatched node is paired with the
unmatched neighbour that maximises the normalised cut w_ij (1/d_i + 1/d_j), or stays a
singleton. Cluster weights are summed, self-loops dropped. The permutation then orders
every level as a balanced binary tree: the children of parent k of level l+1 are nodes
2k and 2k+1 of level l, singletons get a fake partner. Fake nodes have no edges and are
masked out before each pool, so they can never win a max.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import ArpackNoConvergence, eigsh

PAPER_T = 2 * math.sqrt(5)
CANDIDATES = ("radius", "window")
WINDOW_HALF = 2  # Fig. 3's 5 x 5 window


@dataclass(frozen=True)
class PQGraph:
    side: int
    p: int
    q: int
    T: float
    seed: int
    neighbours: np.ndarray   # (N, p + q) int: row i = the p nearest, then the q random picks (-1 where short)
    adjacency: sp.csr_matrix  # (N, N) symmetric Gaussian weights
    sigma: float


def grid_coordinates(side: int) -> np.ndarray:
    """(side*side, 2) float (row, col) of each pixel, node index = row * side + col."""
    r, c = np.divmod(np.arange(side * side), side)
    return np.stack([r, c], axis=1).astype(np.float64)


def candidate_offsets(T: float = PAPER_T, candidates: str = "radius") -> np.ndarray:
    """(M, 2) (row, col) offsets of an interior pixel's candidates: within the Euclidean
    radius ``T`` (68 at 2*sqrt(5)), or the 5 x 5 window of the paper's Fig. 3 (24)."""
    if candidates == "window":
        reach = WINDOW_HALF
        return np.array([(dr, dc) for dr in range(-reach, reach + 1) for dc in range(-reach, reach + 1) if dr or dc])
    if candidates != "radius":
        raise ValueError(f"candidates must be one of {CANDIDATES}, got {candidates!r}")
    reach = int(math.floor(T))
    return np.array([(dr, dc) for dr in range(-reach, reach + 1) for dc in range(-reach, reach + 1)
                     if (dr or dc) and dr * dr + dc * dc <= T * T + 1e-9])


def pq_graph(side: int, p: int, q: int, T: float = PAPER_T, seed: int = 0, candidates: str = "radius") -> PQGraph:
    """The stochastic p+q graph over a side x side pixel grid (see the module docstring).
    Nodes near the border have fewer candidates: they keep as many as exist."""
    if side < 2 or p < 0 or q < 0 or p + q == 0:
        raise ValueError(f"need side >= 2 and p + q >= 1 (p, q >= 0), got side={side}, p={p}, q={q}")
    z = grid_coordinates(side)
    n = len(z)
    rng = np.random.default_rng([seed, side, p, q])
    offsets = candidate_offsets(T, candidates)
    if len(offsets) < p + q:
        where = f"T = {T:.3f}" if candidates == "radius" else "the 5 x 5 window"
        raise ValueError(f"{where} leaves {len(offsets)} candidates per interior node; p + q = {p + q} is more")
    dist_off = np.hypot(offsets[:, 0], offsets[:, 1])
    neighbours = np.full((n, p + q), -1, dtype=np.int64)
    farthest = np.zeros(n)
    rows, cols = [], []
    for i in range(n):
        r, c = divmod(i, side)
        rr, cc = r + offsets[:, 0], c + offsets[:, 1]
        inside = (rr >= 0) & (rr < side) & (cc >= 0) & (cc < side)
        cand = (rr * side + cc)[inside]
        d = dist_off[inside]
        order = np.lexsort((cand, d))  # nearest first, ties by node index
        cand, d = cand[order], d[order]
        farthest[i] = d[-1]
        fixed = cand[:p]
        rest = cand[p:]
        drawn = rng.choice(rest, size=min(q, len(rest)), replace=False) if q and len(rest) else rest[:0]
        picked = np.concatenate([fixed, drawn])
        neighbours[i, :len(picked)] = picked
        rows += [i] * len(picked)
        cols += picked.tolist()
    sigma = float(farthest.mean())
    rows, cols = np.array(rows), np.array(cols)
    d2 = ((z[rows] - z[cols]) ** 2).sum(1)
    s = sp.csr_matrix((np.exp(-d2 / sigma ** 2), (rows, cols)), shape=(n, n))
    adjacency = s.maximum(s.T).tocsr()
    return PQGraph(side, p, q, float(T), seed, neighbours, adjacency, sigma)


# ----------------------------------------------------------------------------- coarsening

def graclus_level(w: sp.csr_matrix, rng: np.random.Generator) -> np.ndarray:
    """One level of greedy normalised-cut matching: the cluster id of every node
    (clusters of one or two nodes, numbered in order of creation)."""
    w = w.tocsr()
    n = w.shape[0]
    degree = np.asarray(w.sum(axis=1)).ravel()
    shuffle = rng.permutation(n)
    visit = shuffle[np.argsort(degree[shuffle], kind="stable")]
    cluster = np.full(n, -1, dtype=np.int64)
    next_id = 0
    for i in visit:
        if cluster[i] >= 0:
            continue
        lo, hi = w.indptr[i], w.indptr[i + 1]
        nbrs, weights = w.indices[lo:hi], w.data[lo:hi]
        best, best_score = -1, 0.0
        for j, wij in zip(nbrs, weights):
            if j == i or cluster[j] >= 0 or wij <= 0:
                continue
            score = wij * (1.0 / degree[i] + 1.0 / degree[j])
            if score > best_score:
                best, best_score = j, score
        cluster[i] = next_id
        if best >= 0:
            cluster[best] = next_id
        next_id += 1
    return cluster


def _coarse_graph(w: sp.csr_matrix, cluster: np.ndarray) -> sp.csr_matrix:
    m = int(cluster.max()) + 1
    proj = sp.csr_matrix((np.ones(len(cluster)), (np.arange(len(cluster)), cluster)), shape=(len(cluster), m))
    coarse = (proj.T @ w @ proj).tolil()
    coarse.setdiag(0)
    coarse = coarse.tocsr()
    coarse.eliminate_zeros()
    return coarse


def tree_permutations(clusters: list[np.ndarray]) -> list[np.ndarray]:
    """Per level 0..L, the order of its nodes as a balanced binary tree (values >= the
    level's real node count are fake nodes). ``clusters[l]`` maps level-l nodes to level
    l+1 nodes. Level L's order is its own nodes; then each parent's children, in the
    parent's order, padded to two with fake nodes (a fake parent has two fake children)."""
    n_levels = len(clusters)
    sizes = [len(c) for c in clusters] + [int(clusters[-1].max()) + 1]
    perms = [None] * (n_levels + 1)
    perms[n_levels] = np.arange(sizes[n_levels])
    for level in range(n_levels - 1, -1, -1):
        children: dict[int, list[int]] = {}
        for node, parent in enumerate(clusters[level]):
            children.setdefault(int(parent), []).append(node)
        fake = sizes[level]
        order = []
        for parent in perms[level + 1]:
            kids = list(children.get(int(parent), [])) if parent < sizes[level + 1] else []
            if len(kids) > 2:
                raise AssertionError("a cluster of more than two nodes")
            while len(kids) < 2:
                kids.append(fake)
                fake += 1
            order += kids
        perms[level] = np.array(order, dtype=np.int64)
    return perms


def permute_graph(w: sp.csr_matrix, perm: np.ndarray) -> sp.csr_matrix:
    """``w`` re-indexed by ``perm`` (position k holds node perm[k]); fake nodes isolated."""
    n = w.shape[0]
    m = len(perm)
    real = perm < n
    pos = np.full(n, -1, dtype=np.int64)
    pos[perm[real]] = np.flatnonzero(real)
    coo = w.tocoo()
    return sp.csr_matrix((coo.data, (pos[coo.row], pos[coo.col])), shape=(m, m))


@dataclass(frozen=True)
class Coarsening:
    graphs: list[sp.csr_matrix]   # level 0..L, each in tree order (fake nodes isolated)
    perms: list[np.ndarray]       # level 0..L: tree position -> node of that level (>= n_real: fake)
    n_real: list[int]             # real nodes per level

    def real_mask(self, level: int) -> np.ndarray:
        return self.perms[level] < self.n_real[level]


def coarsen(w: sp.csr_matrix, levels: int, seed: int = 0) -> Coarsening:
    """``levels`` rounds of Graclus-style matching of the symmetric graph ``w``."""
    rng = np.random.default_rng([seed, 4099])
    graphs, clusters = [w.tocsr()], []
    for _ in range(levels):
        cluster = graclus_level(graphs[-1], rng)
        clusters.append(cluster)
        graphs.append(_coarse_graph(graphs[-1], cluster))
    if not levels:
        return Coarsening([graphs[0]], [np.arange(w.shape[0])], [w.shape[0]])
    perms = tree_permutations(clusters)
    return Coarsening([permute_graph(g, p) for g, p in zip(graphs, perms)], perms, [g.shape[0] for g in graphs])


def rescaled_laplacian(w: sp.csr_matrix) -> sp.csr_matrix:
    """2 L / lambda_max - I with L = I - D^-1/2 W D^-1/2 (isolated nodes: L_ii = 1)."""
    n = w.shape[0]
    degree = np.asarray(w.sum(axis=1)).ravel()
    inv_sqrt = np.zeros(n)
    inv_sqrt[degree > 0] = degree[degree > 0] ** -0.5
    d = sp.diags(inv_sqrt)
    lap = (sp.identity(n) - d @ w @ d).tocsr()
    try:
        lmax = float(eigsh(lap, k=1, which="LM", return_eigenvectors=False, tol=1e-4, maxiter=5000,
                           v0=np.ones(n))[0]) if n > 2 else float(np.linalg.eigvalsh(lap.toarray()).max())
    except ArpackNoConvergence:
        lmax = 2.0  # the normalised Laplacian's bound
    return (2.0 / lmax * lap - sp.identity(n)).tocsr()
