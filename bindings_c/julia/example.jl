# PvEngine from Julia: transcription dynamics, then a fit of counts simulated here from the model's
# generative process, so the recovered cell times can be compared with the true ones. Exits
# non-zero when a check fails (the CTest test julia_binding runs it).
#
#     julia --startup-file=no bindings_c/julia/example.jl [path/to/libpvengine.so]
#
# Without an argument the library comes from ENV["PVENGINE_LIB"], else the loader's search path.

using Random

include(joinpath(@__DIR__, "PvEngine.jl"))
using .PvEngine

isempty(ARGS) || PvEngine.load_library(ARGS[1])
println("libpvengine ", PvEngine.version(), " | ", PvEngine.build_info())

failures = String[]
function expect(ok::Bool, what::AbstractString)
    ok && return
    push!(failures, what)
    println("FAIL: ", what)
end

# ---- Transcription dynamics: the golden value of tests/test_ctypes.py ----
u, s = PvEngine.mrna_dynamics([2.0, 1.0, 0.0], [1.0, 0.0, 3.0], [0.5, 0.0, 1.0], [0.5, 1.0, 1.0],
                              [0.4, 0.7, 0.7], [0.3, 0.7, 0.2])
println("mrna_dynamics: u = ", u, ", s = ", s)
expect(round(u[1]; digits = 4) == 1.1377 && round(s[1]; digits = 4) == 0.9269, "golden value of mrna_dynamics")
expect(u[3] == 3.0 && s[3] == 1.0, "tau = 0 keeps the initial state")

# ---- Simulated counts (cells x genes) with known cell times ----
softplus(x) = log1p(exp(-abs(x))) + max(x, 0.0)
logistic(x) = 1 / (1 + exp(-x))

function dynamics(tau, u0, s0, alpha, beta, gamma)
    eb, eg = exp(-beta * tau), exp(-gamma * tau)
    u = u0 * eb + alpha / beta * (1 - eb)
    s = s0 * eg + alpha / gamma * (1 - eg) + (alpha - beta * u0) / (gamma - beta) * (eg - eb)
    return u, s
end

# Knuth's method; counts here stay far below where exp(-rate) underflows.
function poisson(rng, rate)
    rate > 500 && return max(0, round(Int, rate + sqrt(rate) * randn(rng)))
    limit, k, p = exp(-rate), 0, rand(rng)
    while p > limit
        k += 1
        p *= rand(rng)
    end
    return k
end

# Genes switch on at t0 and off at t0 + dt; each cell-gene is repressed with probability
# logistic(t - switch); counts are Poisson around each cell's shares of fixed library sizes.
function simulate(cells, genes; seed = 1, mean_spliced = 10.0, mean_unspliced = 5.0)
    rng = MersenneTwister(seed)
    alpha, gamma = exp.(randn(rng, genes)), exp.(randn(rng, genes))
    beta = exp.(0.25 .* randn(rng, genes))
    t0, dt = randn(rng, genes), exp.(randn(rng, genes))
    cell_time = exp.(randn(rng, cells))
    U, S = zeros(cells, genes), zeros(cells, genes)
    for g in 1:genes, c in 1:cells
        u_switch, s_switch = dynamics(dt[g], 0.0, 0.0, alpha[g], beta[g], gamma[g])
        if rand(rng) < logistic(cell_time[c] - (t0[g] + dt[g]))
            uc, sc = dynamics(softplus(cell_time[c] - t0[g] - dt[g]), u_switch, s_switch, 0.0, beta[g], gamma[g])
        else
            uc, sc = dynamics(softplus(cell_time[c] - t0[g]), 0.0, 0.0, alpha[g], beta[g], gamma[g])
        end
        U[c, g], S[c, g] = max(uc, 0.0) + 1e-6, max(sc, 0.0) + 1e-6
    end
    U .*= mean_unspliced * genes ./ sum(U; dims = 2)
    S .*= mean_spliced * genes ./ sum(S; dims = 2)
    unspliced = [poisson(rng, r) for r in U]
    spliced = [poisson(rng, r) for r in S]
    return cell_time, spliced, unspliced
end

ranks(x) = invperm(sortperm(x))  # continuous values: no ties
function spearman(x, y)
    rx, ry = ranks(x) .- (length(x) + 1) / 2, ranks(y) .- (length(y) + 1) / 2
    return sum(rx .* ry) / sqrt(sum(abs2, rx) * sum(abs2, ry))
end

cells, genes = 200, 20
true_time, spliced, unspliced = simulate(cells, genes)

# ---- The whole fit in one call ----
started = time()
result = PvEngine.fit(spliced, unspliced; max_epochs = 1000, seed = 0, num_samples = 30,
                      train_options = (improvement = 1e-4,), progress_every = 250)
elapsed = time() - started
rho = spearman(result.cell_time, true_time)
println("fit: $cells cells x $genes genes, $(length(result.loss)) epochs in $(round(elapsed; digits = 1)) s; ",
        "Spearman(cell_time, true time) = $(round(rho; digits = 3))")
expect(length(result.cell_time) == cells && all(isfinite, result.cell_time), "one finite cell time per cell")
expect(length(result.cell_time_sd) == cells && all(x -> isfinite(x) && x >= 0, result.cell_time_sd), "cell_time_sd")
expect(all(length(v) == genes && all(x -> isfinite(x) && x > 0, v) for v in (result.alpha, result.beta, result.gamma)),
       "one positive posterior mean of alpha, beta and gamma per gene")
expect(1 <= length(result.loss) <= 1000 && all(isfinite, result.loss), "loss history")
# The same process simulated in R (tests/r/test_pvengine.R) gives 0.95 to 0.98; Julia draws other
# numbers, so the bar is lower.
expect(rho > 0.8, "Spearman(cell_time, true time) = $rho, expected > 0.8")

# ---- Step by step, with the handles ----
data = PvEngine.Dataset(spliced, unspliced)
expect(size(data) == (cells, genes), "Dataset size")
model = PvEngine.Model(data, PvEngine.Options(Dict("likelihood" => "Poisson", "seed" => 1)))
close(data)  # the model keeps its data alive
PvEngine.train!(model, PvEngine.Options((max_epochs = 20, lr = 0.01)))
expect(length(PvEngine.loss_history(model)) == 20, "20 epochs of loss history")
posterior = PvEngine.sample(model, 4; seed = 7)
sites = PvEngine.posterior_keys(posterior)
expect(all(k -> k in sites, ("cell_time", "alpha", "beta", "gamma", "ut", "st")), "posterior sites: $sites")
expect(size(PvEngine.posterior_array(posterior, "cell_time")) == (4, cells, 1), "cell_time is (S, C, 1)")
expect(size(PvEngine.posterior_array(posterior, "alpha")) == (4, 1, genes), "alpha is (S, 1, G)")
ut = PvEngine.posterior_array(posterior, "ut")
expect(size(ut) == (4, cells, genes) && all(isfinite, ut), "ut is (S, C, G)")
close(posterior)
close(model)

# ---- Errors come back as PvError with the library's message ----
negative = copy(spliced)
negative[4, 3] = -2
message = try
    PvEngine.fit(negative, unspliced; max_epochs = 2)
    ""
catch e
    e isa PvEngine.PvError ? e.message : sprint(showerror, e)
end
println("negative counts: ", message)
expect(occursin("spliced", message) && occursin("cell 3, gene 2", message) && occursin(">= 0", message),
       "negative counts are refused with a message naming the entry")
message = try
    PvEngine.Model(PvEngine.Dataset(spliced, unspliced), PvEngine.Options(Dict("no_such_option" => true)))
    ""
catch e
    e isa PvEngine.PvError ? e.message : sprint(showerror, e)
end
expect(occursin("no_such_option", message), "an unknown option is named: '$message'")

if !isempty(failures)
    println(length(failures), " failure(s)")
    exit(1)
end
println("Julia example passed")
