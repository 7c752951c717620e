# Julia interface to libpvengine (bindings_c/include/pvengine.h) through ccall. Standard library
# only (Libdl); Julia 1.6 or newer.
#
#     include("bindings_c/julia/PvEngine.jl"); using .PvEngine
#     PvEngine.load_library("build/bindings_c/libpvengine.so")   # or ENV["PVENGINE_LIB"]
#     result = PvEngine.fit(spliced, unspliced; max_epochs = 1000)   # cells x genes matrices
#
# Handles (Dataset, Options, Model, Posterior) free themselves when garbage-collected; close(x)
# frees one at once. Every failing call throws a PvError with the library's message.
module PvEngine

using Libdl

export PvError, Dataset, Options, Model, Posterior, fit, train!, sample, loss_history, posterior_keys,
       posterior_array, mrna_dynamics, version, build_info

# Status codes of pvengine.h that this module treats specially.
const PV_OK = Int32(0)
const PV_ERR_CANCELLED = Int32(9)
# The ABI this file was written against (PV_VERSION_NUMBER of pvengine.h: major 0, minor 1).
const ABI_MAJOR = 0
const ABI_MINOR = 1

# ---- Loading the library ----------------------------------------------------------------------

const LIBRARY = Ref{Ptr{Cvoid}}(C_NULL)
const SYMBOLS = Dict{Symbol,Ptr{Cvoid}}()

"""
    load_library(path = get(ENV, "PVENGINE_LIB", "libpvengine"))

Opens libpvengine (once; later calls return the library already open) and checks that it speaks
the ABI this module was written for.
"""
function load_library(path::AbstractString = get(ENV, "PVENGINE_LIB", "libpvengine"))
    LIBRARY[] != C_NULL && return LIBRARY[]
    handle = Libdl.dlopen(path)
    version_fn = Libdl.dlsym(handle, :pv_version_number)
    number = ccall(version_fn, Int32, ())
    if div(number, 10000) != ABI_MAJOR || div(number, 100) % 100 < ABI_MINOR
        Libdl.dlclose(handle)
        error("PvEngine: $(path) is libpvengine $(version_text(number)); this module needs $(ABI_MAJOR).$(ABI_MINOR).x or a later $(ABI_MAJOR).x")
    end
    LIBRARY[] = handle
    return handle
end

# The address of an exported function, opening the library on first use.
function sym(name::Symbol)
    get!(SYMBOLS, name) do
        Libdl.dlsym(load_library(), name)
    end
end

version_text(number::Integer) = string(div(number, 10000), ".", div(number, 100) % 100, ".", number % 100)

# ---- Errors -----------------------------------------------------------------------------------

"""A failed libpvengine call: the status code of pvengine.h and the library's message."""
struct PvError <: Exception
    status::Int32
    message::String
end
Base.showerror(io::IO, e::PvError) = print(io, "PvError(", e.status, "): ", e.message)

function last_error_message(status::Int32)
    f = sym(:pv_last_error)
    message = unsafe_string(ccall(f, Cstring, ()))
    if isempty(message)
        g = sym(:pv_status_string)
        message = unsafe_string(ccall(g, Cstring, (Int32,), status))
    end
    return message
end

check(status::Int32) = status == PV_OK ? nothing : throw(PvError(status, last_error_message(status)))

# ---- Version and dynamics ---------------------------------------------------------------------

"""The version of the loaded libpvengine, e.g. v"0.1.0"."""
function version()
    f = sym(:pv_version_number)
    return VersionNumber(version_text(ccall(f, Int32, ())))
end

"""Build facts of the loaded libpvengine ("version=0.1.0 commit=... cuda=off hdf5=1.10.8 ...")."""
function build_info()
    f = sym(:pv_build_info)
    return unsafe_string(ccall(f, Cstring, ()))
end

"""
    mrna_dynamics(tau, u0, s0, alpha, beta, gamma) -> (u, s)

Transcription dynamics (MODEL.md section 2), element-wise over vectors of one length (or scalars,
broadcast to it).
"""
function mrna_dynamics(tau, u0, s0, alpha, beta, gamma)
    inputs = (tau, u0, s0, alpha, beta, gamma)
    n = maximum(length, inputs)
    columns = map(inputs) do x
        v = x isa Number ? fill(Float64(x), n) : Vector{Float64}(vec(collect(x)))
        length(v) == n || throw(ArgumentError("mrna_dynamics: inputs must have one length or be scalars"))
        v
    end
    u = Vector{Float64}(undef, n)
    s = Vector{Float64}(undef, n)
    f = sym(:pv_mrna_dynamics)
    check(ccall(f, Int32,
                (Int64, Ptr{Float64}, Ptr{Float64}, Ptr{Float64}, Ptr{Float64}, Ptr{Float64}, Ptr{Float64},
                 Ptr{Float64}, Ptr{Float64}),
                n, columns[1], columns[2], columns[3], columns[4], columns[5], columns[6], u, s))
    return u, s
end

# ---- Handles ----------------------------------------------------------------------------------

# Each handle owns one library object; finalizers and close() free it exactly once. The free
# function's address is looked up when the handle is made, so a finalizer only makes one ccall.
for (T, free_fn) in ((:Dataset, :pv_dataset_free), (:Options, :pv_options_free), (:Model, :pv_model_free),
                     (:Posterior, :pv_posterior_free))
    @eval begin
        mutable struct $T
            ptr::Ptr{Cvoid}
            free::Ptr{Cvoid}
            function $T(ptr::Ptr{Cvoid})
                handle = new(ptr, sym($(QuoteNode(free_fn))))
                finalizer(close, handle)
                return handle
            end
        end
        function Base.close(handle::$T)
            ptr = handle.ptr
            if ptr != C_NULL
                handle.ptr = C_NULL
                free_fn = handle.free
                ccall(free_fn, Cvoid, (Ptr{Cvoid},), ptr)
            end
            return nothing
        end
        Base.unsafe_convert(::Type{Ptr{Cvoid}}, handle::$T) = live(handle)
    end
end

function live(handle)
    handle.ptr == C_NULL && throw(ArgumentError("PvEngine: this $(typeof(handle)) has been closed"))
    return handle.ptr
end

# ---- Datasets ---------------------------------------------------------------------------------

"""
    Dataset(spliced, unspliced)

Counts as two cells x genes matrices (whole, non-negative numbers). Julia stores matrices by
column and the C ABI takes them by row, so the matrices are transposed on the way in.
"""
function Dataset(spliced::AbstractMatrix{<:Real}, unspliced::AbstractMatrix{<:Real})
    size(spliced) == size(unspliced) ||
        throw(DimensionMismatch("spliced is $(size(spliced)) but unspliced is $(size(unspliced))"))
    cells, genes = size(spliced)
    # permutedims of a cells x genes matrix is genes x cells; its column-major memory is the
    # row-major cells x genes layout the C ABI reads.
    s = Matrix{Float64}(permutedims(spliced))
    u = Matrix{Float64}(permutedims(unspliced))
    out = Ref{Ptr{Cvoid}}(C_NULL)
    f = sym(:pv_dataset_from_dense)
    check(ccall(f, Int32, (Int64, Int64, Ptr{Float64}, Ptr{Float64}, Ptr{Ptr{Cvoid}}), cells, genes, s, u, out))
    return Dataset(out[])
end

"""
    Dataset(path; spliced_layer = nothing, unspliced_layer = nothing)

Reads an .h5ad file; `nothing` takes raw_spliced/raw_unspliced when both exist, else
spliced/unspliced.
"""
function Dataset(path::AbstractString; spliced_layer = nothing, unspliced_layer = nothing)
    out = Ref{Ptr{Cvoid}}(C_NULL)
    f = sym(:pv_dataset_open_h5ad)
    # A layer is NULL (the library's choice) or a string; Ptr{UInt8} takes both (Cstring takes no NULL).
    s_layer = spliced_layer === nothing ? Ptr{UInt8}(C_NULL) : String(spliced_layer)
    u_layer = unspliced_layer === nothing ? Ptr{UInt8}(C_NULL) : String(unspliced_layer)
    check(ccall(f, Int32, (Cstring, Ptr{UInt8}, Ptr{UInt8}, Ptr{Ptr{Cvoid}}), String(path), s_layer, u_layer, out))
    return Dataset(out[])
end

"""(n_cells, n_genes) of a dataset."""
function Base.size(data::Dataset)
    cells = Ref{Int64}(0)
    genes = Ref{Int64}(0)
    f = sym(:pv_dataset_shape)
    check(ccall(f, Int32, (Ptr{Cvoid}, Ref{Int64}, Ref{Int64}), data, cells, genes))
    return (Int(cells[]), Int(genes[]))
end

# ---- Options ----------------------------------------------------------------------------------

# A value as Python writes it, which is how pvengine reads options.
option_text(x::Bool) = x ? "True" : "False"
option_text(::Nothing) = "None"
option_text(x::Integer) = string(x)
option_text(x::AbstractFloat) = isinteger(x) && abs(x) < 1e15 ? string(round(Int64, x)) : string(x)
option_text(x::AbstractString) = String(x)
option_text(x::Symbol) = String(x)

# key => value pairs from a Dict, a NamedTuple, or any collection of pairs.
option_pairs(x::AbstractDict) = [string(k) => v for (k, v) in x]
option_pairs(x::NamedTuple) = [string(k) => v for (k, v) in pairs(x)]
option_pairs(x) = [string(p.first) => p.second for p in x]

"""
    Options(pairs)

Options as key => value pairs (a Dict, a NamedTuple or pairs): true -> "True", nothing -> "None",
numbers and strings as Python writes them.
"""
function Options(entries = ())
    out = Ref{Ptr{Cvoid}}(C_NULL)
    f = sym(:pv_options_create)
    check(ccall(f, Int32, (Ptr{Ptr{Cvoid}},), out))
    options = Options(out[])
    set = sym(:pv_options_set)
    for (key, value) in option_pairs(entries)
        check(ccall(set, Int32, (Ptr{Cvoid}, Cstring, Cstring), options, key, option_text(value)))
    end
    return options
end

# ---- Models -----------------------------------------------------------------------------------

"""
    Model(data, options = Options())

The model and guide bound to a dataset (the model keeps the dataset alive: it may be closed).
"""
function Model(data::Dataset, options::Options = Options())
    out = Ref{Ptr{Cvoid}}(C_NULL)
    f = sym(:pv_model_create)
    check(ccall(f, Int32, (Ptr{Cvoid}, Ptr{Cvoid}, Ptr{Ptr{Cvoid}}), data, options, out))
    return Model(out[])
end

mutable struct TrainState
    every::Int          # print the loss every this many epochs; 0: never
    interrupted::Bool   # Ctrl-C arrived during training
    error::Any          # another exception thrown in the callback, rethrown by train!
end

# Called by the library after every epoch. No exception may unwind through the library's C++
# frames, so the body catches everything and cancels training instead (non-zero return); train!
# then rethrows. GC.safepoint() is where a pending Ctrl-C (InterruptException) is delivered.
function on_epoch(user_data::Ptr{Cvoid}, epoch::Int64, max_epochs::Int64, loss::Float64,
                  validation_loss::Float64)::Int32
    try
        state = unsafe_pointer_to_objref(user_data)::TrainState
        try
            if state.every > 0 && ((epoch + 1) % state.every == 0 || epoch + 1 == max_epochs)
                if isnan(validation_loss)
                    println("epoch ", epoch + 1, "/", max_epochs, "  loss ", loss)
                else
                    println("epoch ", epoch + 1, "/", max_epochs, "  loss ", loss, "  validation ", validation_loss)
                end
            end
            GC.safepoint()
        catch e
            if e isa InterruptException
                state.interrupted = true
            else
                state.error = e
            end
            return Int32(1)
        end
        return Int32(0)
    catch
        return Int32(1)
    end
end

"""
    train!(model, options = Options(); progress_every = 0)

Trains from the model's current parameters (training keys of pvengine.h: method, max_epochs, lr,
batch_size, ...). Ctrl-C stops at the end of the current epoch and throws InterruptException; the
model keeps the parameters of the last completed epoch.
"""
function train!(model::Model, options::Options = Options(); progress_every::Integer = 0)
    state = TrainState(progress_every, false, nothing)
    callback = @cfunction(on_epoch, Int32, (Ptr{Cvoid}, Int64, Int64, Float64, Float64))
    f = sym(:pv_model_train)
    status = GC.@preserve state ccall(f, Int32, (Ptr{Cvoid}, Ptr{Cvoid}, Ptr{Cvoid}, Ptr{Cvoid}),
                                      model, options, callback, pointer_from_objref(state))
    status == PV_ERR_CANCELLED && state.interrupted && throw(InterruptException())
    status == PV_ERR_CANCELLED && state.error !== nothing && throw(state.error)
    check(status)
    return model
end

"""The training (kind = 0) or validation (kind = 1) loss of every epoch so far."""
function loss_history(model::Model, kind::Integer = 0)
    count = Ref{Int64}(0)
    f = sym(:pv_model_loss_history)
    check(ccall(f, Int32, (Ptr{Cvoid}, Int32, Ptr{Float64}, Int64, Ref{Int64}), model, kind, C_NULL, 0, count))
    out = Vector{Float64}(undef, count[])
    if count[] > 0
        check(ccall(f, Int32, (Ptr{Cvoid}, Int32, Ptr{Float64}, Int64, Ref{Int64}), model, kind, out, count[], count))
    end
    return out
end

# ---- Posterior samples ------------------------------------------------------------------------

"""
    sample(model, num_samples = 30; seed = 0, batch_size = 0) -> Posterior

Draws posterior samples for every cell (batch_size cells at a time; 0: all at once).
"""
function sample(model::Model, num_samples::Integer = 30; seed::Integer = 0, batch_size::Integer = 0)
    out = Ref{Ptr{Cvoid}}(C_NULL)
    f = sym(:pv_model_sample)
    check(ccall(f, Int32, (Ptr{Cvoid}, Int64, UInt64, Ptr{Int64}, Int64, Int64, Ptr{Ptr{Cvoid}}),
                model, num_samples, seed, C_NULL, 0, batch_size, out))
    return Posterior(out[])
end

"""The sample sites a posterior holds."""
function posterior_keys(posterior::Posterior)
    count_fn = sym(:pv_posterior_key_count)
    key_fn = sym(:pv_posterior_key)
    n = ccall(count_fn, Int64, (Ptr{Cvoid},), posterior)
    return [unsafe_string(ccall(key_fn, Cstring, (Ptr{Cvoid}, Int64), posterior, i)) for i in 0:n-1]
end

"""
    posterior_array(posterior, key) -> Array{Float32,3}

A site's samples with size (S, C, G) (gene sites have C = 1, cell sites G = 1). The library
writes them by row, so they are read as (G, C, S) and permuted.
"""
function posterior_array(posterior::Posterior, site::AbstractString)
    key = String(site)
    shape = zeros(Int64, 3)
    shape_fn = sym(:pv_posterior_shape)
    check(ccall(shape_fn, Int32, (Ptr{Cvoid}, Cstring, Ptr{Int64}), posterior, key, shape))
    values = Vector{Float32}(undef, prod(shape))
    copy_fn = sym(:pv_posterior_copy)
    check(ccall(copy_fn, Int32, (Ptr{Cvoid}, Cstring, Ptr{Float32}, Int64), posterior, key, values, length(values)))
    return permutedims(reshape(values, shape[3], shape[2], shape[1]), (3, 2, 1))
end

# ---- The whole fit ----------------------------------------------------------------------------

# Mean and (n - 1) standard deviation of each column of an S x N matrix.
function column_mean_sd(x::AbstractMatrix)
    samples = size(x, 1)
    mean = vec(sum(x; dims = 1)) ./ samples
    if samples < 2
        return mean, zeros(length(mean))
    end
    sd = [sqrt(sum(abs2, x[:, j] .- mean[j]) / (samples - 1)) for j in 1:size(x, 2)]
    return mean, sd
end

"""
    fit(spliced, unspliced; kwargs...) -> NamedTuple
    fit(path::AbstractString; spliced_layer, unspliced_layer, kwargs...)

Fits the model and summarises `num_samples` posterior samples. Keywords: max_epochs, lr,
batch_size, method (training options), likelihood (a model option), seed (both, and the
sampling seed), num_samples (30), model_options and train_options (any other keys, as a Dict or
NamedTuple), progress_every, return_posterior. `nothing` leaves the engine's default.

Returns (cell_time, cell_time_sd, alpha, beta, gamma, loss, validation_loss, posterior), where
posterior is a Dict of (S, C, G) arrays when return_posterior is true, else nothing.
"""
function fit(spliced::AbstractMatrix{<:Real}, unspliced::AbstractMatrix{<:Real}; kwargs...)
    data = Dataset(spliced, unspliced)
    try
        return fit(data; kwargs...)
    finally
        close(data)
    end
end

function fit(path::AbstractString; spliced_layer = nothing, unspliced_layer = nothing, kwargs...)
    data = Dataset(path; spliced_layer = spliced_layer, unspliced_layer = unspliced_layer)
    try
        return fit(data; kwargs...)
    finally
        close(data)
    end
end

function fit(data::Dataset; max_epochs = nothing, lr = nothing, batch_size = nothing, method = nothing,
             likelihood = nothing, seed = nothing, num_samples::Integer = 30, model_options = (),
             train_options = (), progress_every::Integer = 0, return_posterior::Bool = false)
    model_entries = merge_options("model_options", model_options, (likelihood = likelihood, seed = seed))
    train_entries = merge_options("train_options", train_options,
                                  (method = method, max_epochs = max_epochs, lr = lr, batch_size = batch_size,
                                   seed = seed))
    handles = Any[]
    try
        model_opts = Options(model_entries); push!(handles, model_opts)
        train_opts = Options(train_entries); push!(handles, train_opts)
        model = Model(data, model_opts); push!(handles, model)
        train!(model, train_opts; progress_every = progress_every)
        posterior = sample(model, num_samples; seed = seed === nothing ? 0 : seed); push!(handles, posterior)
        sites = return_posterior ? posterior_keys(posterior) : ["cell_time", "alpha", "beta", "gamma"]
        arrays = Dict(site => posterior_array(posterior, site) for site in sites)
        # (S, C, 1) and (S, 1, G) as S x C and S x G matrices.
        per_sample(key) = reshape(arrays[key], size(arrays[key], 1), :)
        cell_time, cell_time_sd = column_mean_sd(per_sample("cell_time"))
        return (cell_time = cell_time, cell_time_sd = cell_time_sd,
                alpha = column_mean_sd(per_sample("alpha"))[1], beta = column_mean_sd(per_sample("beta"))[1],
                gamma = column_mean_sd(per_sample("gamma"))[1], loss = loss_history(model, 0),
                validation_loss = loss_history(model, 1), posterior = return_posterior ? arrays : nothing)
    finally
        foreach(close, handles)
    end
end

# Explicit keywords (nothing: not given) joined with a user's entries; a key given both ways is an
# error rather than a silent choice.
function merge_options(what::String, user, explicit::NamedTuple)
    entries = Pair{String,Any}[string(k) => v for (k, v) in pairs(explicit) if v !== nothing]
    for (key, v) in option_pairs(user)
        any(e -> e.first == key, entries) && throw(ArgumentError("fit: $key given both as a keyword and in $what"))
        push!(entries, key => v)
    end
    return entries
end

end # module
