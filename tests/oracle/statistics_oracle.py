#!/usr/bin/python3
"""Independent reference ("oracle") for the posterior statistics (engine/statistics.h).

Contract: /work/shared/spec/STATISTICS.md (kNN, velocity graph, transition probabilities,
embedded velocity, Rayleigh, Benjamini-Hochberg).  numpy only, float64 throughout, written from
the spec's formulas (dense matrices, no sparse bookkeeping), not from scVelo's code.  Run from the
repository root:

    /usr/bin/python3 tests/oracle/statistics_oracle.py

It writes tests/oracle/statistics_oracle.txt (deterministic): lines `name count v1 v2 ...`,
arrays row-major (cell-major), floats printed with repr() (exact round trip, `nan` for NaN),
`#` lines are comments.  The inputs are in the file too.

Fixture: 40 cells, 12 genes on a noisy one-dimensional trajectory; X (spliced) and V (velocity)
are float32 values; cells 3 and 17 have an exactly zero velocity, cell 25 a constant one (zero
after centring), gene 5 has one NaN velocity (so it is dropped from the graph).  X_pca = the
first 5 principal-component scores of log1p(X); the 2-D embedding = the first two scores plus
noise.  kNN with k = 8 (self first, ties by index).

Decisions
* Candidates of i = (kNN(i) union kNN(kNN(i))) minus i, ascending; every candidate is an entry
  of the graph, its cosine 0 when a norm is exactly 0.
* Transition row: W_ij over candidates, W_ii = expm1(10 s_i); divided by sum_j |W_ij| (incl.
  the diagonal); the diagonal then dropped; the row's entries are the non-zero p_ij; no entries
  -> NaN.
* Autoscale: mean over non-NaN rows, N = all cells (spec).
* PCA projection: V restricted to the finite genes, PCs = the loadings (first 5 right singular
  vectors) of the centred log1p(X) over those genes.
"""
import os

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "statistics_oracle.txt")
SCALE = 10.0
ASPECT = 0.745161

rng = np.random.default_rng(20261125)
C, G, P, K = 40, 12, 5, 8

# ----------------------------------------------------------------------------- inputs
time = np.sort(rng.uniform(0.0, 1.0, C))
slope = rng.normal(0.0, 2.0, G)
level = rng.uniform(0.5, 2.0, G)
X = np.exp(level[None, :] + slope[None, :] * time[:, None] + rng.normal(0, 0.3, (C, G)))
X = X.astype(np.float32).astype(np.float64)
V = slope[None, :] * X * 0.2 + rng.normal(0, 0.5, (C, G))
V = V.astype(np.float32).astype(np.float64)
V[3, :] = 0.0
V[17, :] = 0.0
V[25, :] = 0.5
V[7, 5] = np.nan

logX = np.log1p(X)
centred_log = logX - logX.mean(axis=0)
u_svd, s_svd, vt_svd = np.linalg.svd(centred_log, full_matrices=False)
X_pca = centred_log @ vt_svd[:P].T
embedding = X_pca[:, :2] + rng.normal(0, 0.05, (C, 2))

# ----------------------------------------------------------------------------- kNN
distance = np.sqrt(((X_pca[:, None, :] - X_pca[None, :, :]) ** 2).sum(axis=2))
knn_index = np.zeros((C, K), dtype=np.int64)
knn_distance = np.zeros((C, K))
for i in range(C):
    others = np.array([j for j in range(C) if j != i])
    order = np.lexsort((others, distance[i, others]))  # by distance, then index
    chosen = others[order[: K - 1]]
    knn_index[i] = np.concatenate([[i], chosen])
    knn_distance[i] = np.concatenate([[0.0], distance[i, chosen]])

# ----------------------------------------------------------------------------- connectivities
# UMAP's fuzzy simplicial set over the kNN (spec): per cell, rho = smallest non-zero distance,
# sigma solving sum_{j != i} exp(-max(0, d_ij - rho)/sigma) = log2(K), here by 200 bisection steps
# on log(sigma) (umap's own search stops within 1e-5 of the target; the test allows for that), and
# umap's floor of 1e-3 x the mean kNN distance of the cell (self included).  Dense matrices.
def psum(i, sigma, rho):
    d = knn_distance[i, 1:] - rho
    return np.where(d > 0, np.exp(-np.maximum(d, 0) / sigma), 1.0).sum()


W = np.zeros((C, C))
target = np.log2(K)
for i in range(C):
    positive = knn_distance[i][knn_distance[i] > 0]
    rho = positive.min() if positive.size else 0.0
    lo, hi = np.log(1e-12), np.log(1e6)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if psum(i, np.exp(mid), rho) > target:
            hi = mid
        else:
            lo = mid
    sigma = max(np.exp(0.5 * (lo + hi)), 1e-3 * knn_distance[i].mean())
    for j, d in zip(knn_index[i, 1:], knn_distance[i, 1:]):
        W[i, j] = 1.0 if d - rho <= 0 else np.exp(-(d - rho) / sigma)
connectivities = W + W.T - W * W.T

# ----------------------------------------------------------------------------- velocity graph
finite_genes = np.where(~np.isnan(V).any(axis=0))[0]


def graph_of(sqrt_transform):
    transform = (lambda a: np.sign(a) * np.sqrt(np.abs(a))) if sqrt_transform else (lambda a: a)
    Xf, Vf = X[:, finite_genes], transform(V[:, finite_genes])
    indptr, indices, cosines = [0], [], []
    dense = np.zeros((C, C))
    is_entry = np.zeros((C, C), dtype=bool)
    for i in range(C):
        cand = set(knn_index[i].tolist())
        for n in knn_index[i]:
            cand |= set(knn_index[n].tolist())
        cand.discard(i)
        cand = sorted(cand)
        v = Vf[i] - Vf[i].mean()
        for j in cand:
            d = transform(Xf[j] - Xf[i])
            d = d - d.mean()
            nd, nv = np.linalg.norm(d), np.linalg.norm(v)
            pi = float(d @ v / (nd * nv)) if nd > 0 and nv > 0 else 0.0
            indices.append(j)
            cosines.append(pi)
            dense[i, j] = pi
            is_entry[i, j] = True
        indptr.append(len(indices))
    confidence = np.clip(dense, 0, 1).max(axis=1)
    self_transition = np.clip(np.percentile(confidence, 98) - confidence, 0, 1)
    return np.array(indptr), np.array(indices), np.array(cosines), dense, is_entry, self_transition


indptr, indices, cosines, dense, is_entry, self_transition = graph_of(False)
_, _, sqrt_cosines, _, _, sqrt_self_transition = graph_of(True)

# ----------------------------------------------------------------------------- embedding
W = np.where(dense > 0, np.expm1(SCALE * dense), 0.0) - np.where(dense < 0, np.expm1(SCALE * np.abs(dense)), 0.0)
W[np.arange(C), np.arange(C)] = np.expm1(SCALE * self_transition)
row_sum = np.abs(W).sum(axis=1)
T = W / np.where(row_sum > 0, row_sum, 1.0)[:, None]
T[np.arange(C), np.arange(C)] = 0.0

emb_raw = np.zeros((C, 2))
for i in range(C):
    cols = np.nonzero(T[i])[0]
    if cols.size == 0:
        emb_raw[i] = np.nan
        continue
    dE = embedding[cols] - embedding[i]
    norms = np.linalg.norm(dE, axis=1)
    dE = np.where(norms[:, None] > 0, dE / np.where(norms > 0, norms, 1.0)[:, None], 0.0)
    p = T[i, cols]
    emb_raw[i] = ((p - p.mean())[:, None] * dE).sum(axis=0)

ranges = embedding[:, :2].max(axis=0) - embedding[:, :2].min(axis=0)
lengths = np.sqrt((emb_raw[:, 0] / ranges[0]) ** 2 + (ASPECT * emb_raw[:, 1] / ranges[1]) ** 2)
q = 1.8 * max(10.0, np.sqrt(C)) / 1.1 * np.nanmean(lengths)
emb_scaled = emb_raw / (3.0 * q)

# ----------------------------------------------------------------------------- PCA projection
logXf = np.log1p(X[:, finite_genes])
_, _, vt_f = np.linalg.svd(logXf - logXf.mean(axis=0), full_matrices=False)
pcs = vt_f[:P].T  # finite genes x P
Vf = V[:, finite_genes]
projection = (Vf - Vf.mean(axis=0)) @ pcs

# ----------------------------------------------------------------------------- Rayleigh and BH
angle_sets = [rng.uniform(-np.pi, np.pi, n) + (0.8 if n % 2 else 0.0) * rng.normal(0, 1, n)
              for n in (3, 7, 20, 49, 50, 120)]
angle_sets[3] = rng.vonmises(1.0, 2.0, 49)
angle_sets[4] = rng.vonmises(-2.0, 0.3, 50)
rayleigh = []
for a in angle_sets:
    n = a.size
    R2 = np.cos(a).mean() ** 2 + np.sin(a).mean() ** 2
    z = n * R2
    t = 1.0
    if n < 50:
        t = 1 + (2 * z - z ** 2) / (4 * n) - (24 * z - 132 * z ** 2 + 76 * z ** 3 - 9 * z ** 4) / (288 * n ** 2)
    rayleigh.append(np.exp(-z) * t)
rayleigh = np.array(rayleigh)

bh_input = np.concatenate([rayleigh, [0.2, 0.2, 1.3, 0.001]])
m = bh_input.size
order = np.argsort(bh_input, kind="stable")
scaled = bh_input[order] * m / np.arange(1, m + 1)
q_sorted = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
bh = np.empty(m)
bh[order] = q_sorted

# ----------------------------------------------------------------------------- write
def line(name, values):
    values = np.asarray(values, dtype=np.float64).ravel()
    return f"{name} {values.size} " + " ".join(repr(float(v)) for v in values)


lines = [
    "# Statistics oracle, generated by tests/oracle/statistics_oracle.py (do not edit).",
    "# Format: name count v1 v2 ... (row-major, cell-major); nan is NaN.",
    "# Graph: CSR over cells, candidates = kNN and kNN of kNN minus self, ascending.",
    "# ---- inputs",
    line("C", [C]), line("G", [G]), line("P", [P]), line("K", [K]),
    line("X", X), line("V", V), line("X_pca", X_pca), line("embedding", embedding),
    line("finite_genes", finite_genes), line("pcs", pcs),
    *[line(f"angles.{s}", a) for s, a in enumerate(angle_sets)],
    line("bh_input", bh_input),
    "# ---- outputs",
    line("knn_index", knn_index), line("knn_distance", knn_distance), line("connectivities", connectivities),
    line("graph_indptr", indptr), line("graph_indices", indices), line("graph_cosine", cosines),
    line("self_transition", self_transition),
    line("sqrt_graph_cosine", sqrt_cosines), line("sqrt_self_transition", sqrt_self_transition),
    line("embedded_raw", emb_raw), line("embedded", emb_scaled),
    line("pca_projection", projection),
    line("rayleigh", rayleigh), line("bh", bh),
]
with open(OUT, "w") as f:
    f.write("\n".join(lines) + "\n")
print(f"wrote {OUT}: {len(indices)} graph entries, {int(np.isnan(emb_raw[:, 0]).sum())} NaN rows, "
      f"rayleigh {rayleigh}")
