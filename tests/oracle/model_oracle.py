#!/usr/bin/python3
"""Independent reference ("oracle") for the Pyro-Velocity log joint and guide density.

Contract: /work/shared/spec/MODEL.md, sections 2-4.  numpy + scipy (+ mpmath) only,
float64 throughout.  Run from the repository root:

    /usr/bin/python3 tests/oracle/model_oracle.py

It writes tests/oracle/model_oracle.txt (deterministic): lines `name count v1 v2 ...`,
arrays row-major ([C, G] cell-major), floats printed with repr() (exact round trip),
`#` lines are comments.  The inputs are in the file too.

What it computes
* log p(u, s, z) of the shared-time model (section 3) at fixed latents z, for every
  likelihood {poisson, nb} x include_prior {0,1} x add_offset {0,1} x
  correct_library_size {0,1} x k {marginal, sampled}:
  `logp.<suffix>` (1 value) and `parts.<suffix>` (4 values: gene + cell_time priors,
  read-depth priors, log-likelihood sum, total).
  - marginal: N[c] = sum_g E_{p(k)}[ut'] and per cell-gene
    logsumexp_k [log p(k) + log p(u|k) + log p(s|k)].
  - sampled: the given k; N[c] = sum_g ut'(k); per cell-gene
    log p(k) + log p(u|k) + log p(s|k).  The log p(k) terms are part of the
    "log-likelihood sum" part in both modes.
* The guide (section 4): log q at a point z and the entropy, for the gene-level
  low-rank MVN (offset0: 6 sites, offset1: 8 sites; rank 10) and the cell-level
  mean-field Normals, both in constrained space (exp transform on positive sites).

Decisions
* sd_u, sd_s use ddof = 1.  Latents are given in constrained space; the log joint has
  no Jacobian terms (those belong to the guide side).
* mrna_dynamics: the two-branch formula, gamma == beta (exact float equality) uses
  eq. 2.12; when 0 < |gamma - beta| < 1e-4 beta the general branch is evaluated in
  mpmath at 50 digits (float64 loses ~7 digits to cancellation there).  1 - exp(-x)
  is evaluated as -expm1(-x).  Checked against a numerical ODE solve.
* NB: scipy nbinom(n = exp(r), p = sigmoid(-logits)), logits = log(rate) - log(exp(r) + eps);
  its mean is rate * exp(r) / (exp(r) + eps) (asserted), and its logpmf is asserted
  against the lgamma / log_expit form.
* Guide parameters: loc ~ N(0, 0.5), raw = softplus^-1(0.1) + N(0, 0.1),
  F ~ N(0, 0.3); the point z is one reparameterised draw z = loc + d (F e1 + e2)
  (e1, e2 emitted).  Cell guide: cell_time loc ~ N(0, 0.5), read-depth locs
  log(lib) + N(0, 0.1), raw as above, z = loc + scale * e (e emitted).
* Extra outputs for debugging: `dyn.offset<o>.*` (u_inf, s_inf, switching, and
  ut/st per state after u_scale, before relu) and the section-2 golden value.
"""
import itertools
import os

import mpmath
import numpy as np
from scipy import integrate, special, stats
from scipy.stats import lognorm, multivariate_normal, nbinom, norm, poisson

EPS = 1e-6
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "model_oracle.txt")

# ----------------------------------------------------------------------------- inputs
C, G = 7, 5
u = np.array([[0, 3, 1, 12, 0],
              [2, 0, 4, 9, 1],
              [5, 1, 0, 17, 3],
              [0, 6, 2, 25, 0],
              [8, 2, 7, 40, 2],
              [1, 0, 3, 31, 6],
              [0, 4, 11, 22, 0]])
s = np.array([[1, 0, 2, 6, 4],
              [0, 2, 5, 14, 0],
              [7, 3, 1, 19, 2],
              [3, 9, 0, 28, 1],
              [12, 5, 6, 38, 0],
              [2, 1, 9, 27, 10],
              [0, 7, 13, 33, 3]])
u_lib = np.array([95.0, 60.0, 140.0, 210.0, 300.0, 180.0, 120.0])
s_lib = np.array([80.0, 110.0, 160.0, 250.0, 290.0, 200.0, 150.0])
assert np.all(u_lib > u.sum(1)) and np.all(s_lib > s.sum(1))

alpha = np.array([1.5, 2.2, 0.8, 0.4, 3.0])
beta = np.array([1.2, 0.9, 1.1, 0.7, 1.3])
gamma = np.array([0.8, 0.9, 1.1 * (1 + 1e-7), 2.0, 0.35])   # g1: == beta, g2: beta (1 + 1e-7)
u_offset = np.array([0.3, 0.5, 0.2, 1.1, 0.7])
s_offset = np.array([0.4, 0.2, 0.9, 0.6, 1.5])
t0 = np.array([-0.5, 0.2, 0.0, 1.3, -1.1])
u_scale = np.array([1.05, 0.95, 1.0, 1.1, 0.9])
dt_switching = np.array([1.2, 0.6, 2.0, 0.9, 3.5])
r_u = np.array([0.0, 0.5, -0.3, 1.2, 2.0])
r_s = np.array([0.3, -0.2, 1.0, 0.7, 2.5])
cell_time = np.array([0.2, 0.7, 1.1, 1.8, 2.6, 3.3, 4.5])
u_read_depth = np.array([97.5, 58.0, 143.0, 205.0, 310.0, 176.0, 123.0])
s_read_depth = np.array([82.0, 113.0, 155.0, 258.0, 284.0, 204.0, 147.0])
k_fixed = np.array([[0, 0, 1, 0, 0],
                    [0, 1, 0, 0, 0],
                    [1, 0, 0, 0, 0],
                    [0, 1, 0, 1, 0],
                    [1, 1, 0, 0, 0],
                    [1, 0, 1, 1, 0],
                    [1, 1, 1, 1, 1]])
assert gamma[1] == beta[1] and gamma[2] != beta[2]

lu, ls = np.log(u_lib + EPS), np.log(s_lib + EPS)
sd_u, sd_s = np.std(lu, ddof=1), np.std(ls, ddof=1)


# ----------------------------------------------------------------------------- dynamics
def _s_general_mp(tau, u0, s0, alpha, beta, gamma):
    with mpmath.workdps(50):
        tau, u0, s0, a, b, g = map(mpmath.mpf, (tau, u0, s0, alpha, beta, gamma))
        eu, es = mpmath.exp(-b * tau), mpmath.exp(-g * tau)
        return float(s0 * es + a / g * (1 - es) + (a - b * u0) / (g - b) * (es - eu))


def mrna_dynamics(tau, u0, s0, alpha, beta, gamma):
    """(u(tau), s(tau)) of du/dt = alpha - beta u, ds/dt = beta u - gamma s (broadcasting)."""
    tau, u0, s0, alpha, beta, gamma = np.broadcast_arrays(
        *[np.asarray(x, dtype=np.float64) for x in (tau, u0, s0, alpha, beta, gamma)])
    eu, es = np.exp(-beta * tau), np.exp(-gamma * tau)
    ut = u0 * eu + alpha / beta * -np.expm1(-beta * tau)
    with np.errstate(divide="ignore", invalid="ignore"):
        s_gen = (s0 * es + alpha / gamma * -np.expm1(-gamma * tau)
                 + (alpha - beta * u0) / (gamma - beta) * (es - eu))
    s_eq = s0 * eu + alpha / beta * -np.expm1(-beta * tau) - (alpha - beta * u0) * tau * eu
    st = np.where(gamma == beta, s_eq, s_gen)
    near = (gamma != beta) & (np.abs(gamma - beta) < 1e-4 * beta)
    for i in zip(*np.nonzero(near)):
        st[i] = _s_general_mp(tau[i], u0[i], s0[i], alpha[i], beta[i], gamma[i])
    return ut, st


def check_dynamics():
    ug, sg = mrna_dynamics(2.0, 1.0, 0.5, 0.5, 0.4, 0.3)
    assert abs(ug - 1.1377) < 5e-5 and abs(sg - 0.9269) < 5e-5, (ug, sg)
    for g in range(G):
        for a, u0, s0 in ((alpha[g], 0.0, 0.0), (alpha[g], u_offset[g], s_offset[g]),
                          (0.0, u_offset[g], s_offset[g])):
            b, gm = beta[g], gamma[g]
            sol = integrate.solve_ivp(lambda t, y: [a - b * y[0], b * y[0] - gm * y[1]],
                                      (0.0, 3.0), [u0, s0], method="DOP853",
                                      rtol=1e-13, atol=1e-14, t_eval=[0.5, 3.0])
            ut, st = mrna_dynamics(np.array([0.5, 3.0]), u0, s0, a, b, gm)
            assert np.allclose(ut, sol.y[0], rtol=1e-10, atol=1e-12), (g, ut, sol.y[0])
            assert np.allclose(st, sol.y[1], rtol=1e-10, atol=1e-12), (g, st, sol.y[1])
    return ug, sg


# ----------------------------------------------------------------------------- log joint
def softplus(x):
    return np.logaddexp(0.0, x)


def count_logpmf(x, rate, r, lik):
    if lik == "poisson":
        return poisson.logpmf(x, rate)
    n = np.exp(r)
    logits = np.log(rate) - np.log(n + EPS)
    p = special.expit(-logits)              # scipy's success prob = 1 - Pyro's probs
    lp = nbinom.logpmf(x, n, p)
    assert np.allclose(nbinom.mean(n, p), rate * n / (n + EPS), rtol=1e-9)
    assert np.allclose(nbinom.mean(n, p), rate, rtol=1e-5)
    direct = (special.gammaln(x + n) - special.gammaln(n) - special.gammaln(x + 1.0)
              + n * special.log_expit(-logits) + x * special.log_expit(logits))
    assert np.allclose(lp, direct, rtol=1e-9, atol=1e-9), np.max(np.abs(lp - direct))
    return lp


def dynamics(offset):
    u0 = u_offset if offset else np.zeros(G)
    s0 = s_offset if offset else np.zeros(G)
    u_inf, s_inf = mrna_dynamics(dt_switching, u0, s0, alpha, beta, gamma)
    switching = t0 + dt_switching
    tau0 = softplus(cell_time[:, None] - t0[None, :])
    tau1 = softplus(cell_time[:, None] - switching[None, :])
    ut0, st0 = mrna_dynamics(tau0, u0, s0, alpha, beta, gamma)
    ut1, st1 = mrna_dynamics(tau1, u_inf, s_inf, 0.0, beta, gamma)
    logit1 = cell_time[:, None] - switching[None, :]
    return dict(u_inf=u_inf, s_inf=s_inf, switching=switching,
                ut=(ut0 * u_scale, ut1 * u_scale), st=(st0, st1),
                logpk=(special.log_expit(-logit1), special.log_expit(logit1)),
                p1=special.expit(logit1))


def cellgene_terms(dyn, kk, Nu, Ns, lik, lib):
    """log p(k) + log p(u|k) + log p(s|k) per cell-gene for the state array kk (0/1)."""
    up = np.where(kk == 1, np.maximum(dyn["ut"][1], 0) + EPS, np.maximum(dyn["ut"][0], 0) + EPS)
    sp = np.where(kk == 1, np.maximum(dyn["st"][1], 0) + EPS, np.maximum(dyn["st"][0], 0) + EPS)
    if lib:
        rate_u = (up / Nu[:, None] + EPS) * u_read_depth[:, None]
        rate_s = (sp / Ns[:, None] + EPS) * s_read_depth[:, None]
    else:
        rate_u, rate_s = up, sp
    logpk = np.where(kk == 1, dyn["logpk"][1], dyn["logpk"][0])
    return (logpk + count_logpmf(u, rate_u, r_u[None, :], lik)
            + count_logpmf(s, rate_s, r_s[None, :], lik))


def expected_N(dyn):
    p1 = dyn["p1"]
    up = [np.maximum(x, 0) + EPS for x in dyn["ut"]]
    sp = [np.maximum(x, 0) + EPS for x in dyn["st"]]
    return ((1 - p1) * up[0] + p1 * up[1]).sum(1), ((1 - p1) * sp[0] + p1 * sp[1]).sum(1)


def log_joint(lik, prior, offset, lib, mode):
    dyn = dynamics(offset)
    lp_prior = 0.0
    if prior:
        for x, sig in ((alpha, 1.0), (gamma, 1.0), (beta, 0.25), (u_scale, 0.1),
                       (dt_switching, 1.0), (cell_time, 1.0)):
            lp_prior += lognorm.logpdf(x, sig, scale=1.0).sum()
        if offset:
            lp_prior += (lognorm.logpdf(u_offset, 1.0).sum() + lognorm.logpdf(s_offset, 1.0).sum())
        lp_prior += norm.logpdf(t0).sum()
    lp_depth = (lognorm.logpdf(u_read_depth, sd_u, scale=np.exp(lu)).sum()
                + lognorm.logpdf(s_read_depth, sd_s, scale=np.exp(ls)).sum())
    if mode == "marginal":
        Nu, Ns = expected_N(dyn)
        T0 = cellgene_terms(dyn, np.zeros((C, G), int), Nu, Ns, lik, lib)
        T1 = cellgene_terms(dyn, np.ones((C, G), int), Nu, Ns, lik, lib)
        per_cell = special.logsumexp(np.stack([T0, T1]), axis=0).sum(1)
        # check: with N held fixed, sum over all 2^G joint states of each cell == product of
        # per-gene sums; and N equals the expectation over the joint states.
        confs = list(itertools.product((0, 1), repeat=G))
        tot = np.stack([cellgene_terms(dyn, np.tile(cf, (C, 1)), Nu, Ns, lik, lib).sum(1)
                        for cf in confs])
        assert np.allclose(special.logsumexp(tot, axis=0), per_cell, rtol=1e-12, atol=1e-10)
        logw = np.stack([np.where(np.array(cf)[None] == 1, dyn["logpk"][1], dyn["logpk"][0]).sum(1)
                         for cf in confs])
        Nu_enum = sum(np.exp(logw[i]) * np.where(np.array(cf)[None] == 1, np.maximum(dyn["ut"][1], 0),
                                                  np.maximum(dyn["ut"][0], 0)).sum(1)
                      for i, cf in enumerate(confs)) + G * EPS
        assert np.allclose(Nu_enum, Nu, rtol=1e-12)
        ll = per_cell.sum()
    else:
        up = np.where(k_fixed == 1, dyn["ut"][1], dyn["ut"][0])
        sp = np.where(k_fixed == 1, dyn["st"][1], dyn["st"][0])
        Nu, Ns = (np.maximum(up, 0) + EPS).sum(1), (np.maximum(sp, 0) + EPS).sum(1)
        ll = cellgene_terms(dyn, k_fixed, Nu, Ns, lik, lib).sum()
    total = lp_prior + lp_depth + ll
    return np.array([lp_prior, lp_depth, ll, total])


# ----------------------------------------------------------------------------- guide
R = 10


def gene_guide(n_sites, rng):
    D = n_sites * G
    t0_site = n_sites - 3                   # order: alpha gamma beta [u_off s_off] t0 u_scale dt
    positive = np.ones(D, bool)
    positive[t0_site * G:(t0_site + 1) * G] = False
    loc = rng.normal(0.0, 0.5, D)
    raw = np.log(np.expm1(0.1)) + rng.normal(0.0, 0.1, D)
    F = rng.normal(0.0, 0.3, (D, R))
    e1, e2 = rng.normal(size=R), rng.normal(size=D)
    d = softplus(raw)
    z = loc + d * (F @ e1 + e2)
    W = d[:, None] * F
    cov = W @ W.T + np.diag(d ** 2)
    mvn = multivariate_normal(loc, cov)
    logq = mvn.logpdf(z) - z[positive].sum()
    sign, logdet = np.linalg.slogdet(cov)
    assert sign > 0
    entropy = 0.5 * D * np.log(2 * np.pi * np.e) + 0.5 * logdet + loc[positive].sum()
    assert np.isclose(entropy, mvn.entropy() + loc[positive].sum(), rtol=1e-12)
    lemma = (0.5 * D * np.log(2 * np.pi * np.e) + np.log(d).sum()
             + 0.5 * np.linalg.slogdet(np.eye(R) + F.T @ F)[1] + loc[positive].sum())
    assert np.isclose(entropy, lemma, rtol=1e-12)
    # Monte-Carlo: E_q[-log q(x)] over constrained x = exp(z) matches the entropy
    zs = mvn.rvs(size=20000, random_state=rng)
    neg = -(mvn.logpdf(zs) - zs[:, positive].sum(1))
    se = neg.std(ddof=1) / np.sqrt(len(neg))
    assert abs(neg.mean() - entropy) < 3 * se, (neg.mean(), entropy, se)
    return dict(loc=loc, raw=raw, F=F, e1=e1, e2=e2, z=z, logq_gene=logq, entropy_gene=entropy)


def cell_guide(rng):
    loc = np.concatenate([rng.normal(0.0, 0.5, C), lu + rng.normal(0.0, 0.1, C),
                          ls + rng.normal(0.0, 0.1, C)])
    raw = np.log(np.expm1(0.1)) + rng.normal(0.0, 0.1, 3 * C)
    scale = softplus(raw)
    e = rng.normal(size=3 * C)
    z = loc + scale * e
    logq = (norm.logpdf(z, loc, scale) - z).sum()
    # same thing as a LogNormal density of the constrained value
    assert np.isclose(logq, lognorm.logpdf(np.exp(z), scale, scale=np.exp(loc)).sum(), rtol=1e-12)
    entropy = (0.5 * np.log(2 * np.pi * np.e) + np.log(scale) + loc).sum()
    zs = loc + scale * rng.normal(size=(20000, 3 * C))
    neg = -(norm.logpdf(zs, loc, scale) - zs).sum(1)
    se = neg.std(ddof=1) / np.sqrt(len(neg))
    assert abs(neg.mean() - entropy) < 3 * se, (neg.mean(), entropy, se)
    return dict(loc=loc, raw=raw, e=e, z=z, logq=logq, entropy=entropy)


# ----------------------------------------------------------------------------- output
def main():
    lines = ["# Pyro-Velocity model oracle, generated by tests/oracle/model_oracle.py (do not edit).",
             "# Format: name count v1 v2 ... (row-major; [C, G] arrays are cell-major).",
             "# Decisions: sd over cells with ddof=1; mpmath for 0 < |gamma-beta| < 1e-4 beta;",
             "# parts = [gene+cell_time priors, read-depth priors, loglik incl. log p(k), total];",
             "# guide vectors are site-major (index = site*G + g), cell vectors block-major",
             "# (cell_time, u_read_depth, s_read_depth); guide densities in constrained space."]

    def emit(name, values):
        a = np.atleast_1d(np.asarray(values)).ravel()
        if np.issubdtype(a.dtype, np.integer):
            txt = [str(int(v)) for v in a]
        else:
            txt = [repr(float(v)) for v in a]
        lines.append(" ".join([name, str(a.size)] + txt))

    lines.append("# ---- inputs")
    for name, v in (("C", C), ("G", G), ("eps", EPS), ("u", u), ("s", s), ("u_lib", u_lib),
                    ("s_lib", s_lib), ("alpha", alpha), ("gamma", gamma), ("beta", beta),
                    ("u_offset", u_offset), ("s_offset", s_offset), ("t0", t0),
                    ("u_scale", u_scale), ("dt_switching", dt_switching), ("r_u", r_u),
                    ("r_s", r_s), ("cell_time", cell_time), ("u_read_depth", u_read_depth),
                    ("s_read_depth", s_read_depth), ("k", k_fixed)):
        emit(name, v)

    lines.append("# ---- dynamics (section 2 golden value; per-offset intermediates)")
    emit("mrna_golden", check_dynamics())
    emit("sd_lib", [sd_u, sd_s])
    for offset in (0, 1):
        dyn = dynamics(offset)
        pre = "dyn.offset%d." % offset
        for key in ("u_inf", "s_inf", "switching"):
            emit(pre + key, dyn[key])
        emit(pre + "ut0", dyn["ut"][0]); emit(pre + "st0", dyn["st"][0])
        emit(pre + "ut1", dyn["ut"][1]); emit(pre + "st1", dyn["st"][1])

    lines.append("# ---- log joint")
    for lik, prior, offset, lib, mode in itertools.product(
            ("poisson", "nb"), (0, 1), (0, 1), (0, 1), ("marginal", "sampled")):
        suffix = "%s.prior%d.offset%d.lib%d.%s" % (lik, prior, offset, lib, mode)
        parts = log_joint(lik, prior, offset, lib, mode)
        assert np.all(np.isfinite(parts))
        emit("logp." + suffix, parts[3])
        emit("parts." + suffix, parts)

    lines.append("# ---- guide")
    rng = np.random.default_rng(20240611)
    for offset, n_sites in ((0, 6), (1, 8)):
        gg = gene_guide(n_sites, rng)
        for key in ("loc", "raw", "F", "e1", "e2", "z", "logq_gene", "entropy_gene"):
            emit("guide.offset%d.%s" % (offset, key), gg[key])
    cg = cell_guide(rng)
    for key in ("loc", "raw", "e", "z", "logq", "entropy"):
        emit("guide.cell_" + key, cg[key])

    with open(OUT, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote", OUT, len(lines), "lines")


if __name__ == "__main__":
    main()
