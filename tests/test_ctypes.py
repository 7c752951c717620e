"""libpvengine from Python through ctypes (standard library only): golden value and bad inputs."""
import ctypes
import math
import sys

lib = ctypes.CDLL(sys.argv[1])
lib.pv_mrna_dynamics.restype = ctypes.c_int32
lib.pv_mrna_dynamics.argtypes = [ctypes.c_int64] + [ctypes.POINTER(ctypes.c_double)] * 8
lib.pv_last_error.restype = ctypes.c_char_p
lib.pv_status_string.restype = ctypes.c_char_p
lib.pv_status_string.argtypes = [ctypes.c_int32]
lib.pv_build_info.restype = ctypes.c_char_p

Array = ctypes.c_double * 3


def dynamics(tau, u0, s0, alpha, beta, gamma):
    n = len(tau)
    args = [Array(*v) for v in (tau, u0, s0, alpha, beta, gamma)]
    u, s = Array(), Array()
    status = lib.pv_mrna_dynamics(n, *args, u, s)
    return status, list(u)[:n], list(s)[:n]


failures = []
status, u, s = dynamics([2.0, 1.0, 0.0], [1.0, 0.0, 3.0], [0.5, 0.0, 1.0],
                        [0.5, 1.0, 1.0], [0.4, 0.7, 0.7], [0.3, 0.7, 0.2])
if status != 0 or round(u[0], 4) != 1.1377 or round(s[0], 4) != 0.9269:
    failures.append(f"golden value: status {status}, ({u[0]}, {s[0]})")
if s[2] != 1.0 or u[2] != 3.0:  # tau = 0 keeps the initial state
    failures.append(f"tau=0 should return the start, got ({u[2]}, {s[2]})")

for name, bad in (("tau", [math.nan] * 3), ("gamma", [-0.1] * 3), ("alpha", [math.inf] * 3)):
    args = {"tau": [1.0] * 3, "u0": [0.0] * 3, "s0": [0.0] * 3, "alpha": [1.0] * 3, "beta": [1.0] * 3,
            "gamma": [1.0] * 3}
    args[name] = bad
    status, _, _ = dynamics(**args)
    message = lib.pv_last_error().decode()
    if status != 1 or f"{name}[0]" not in message:
        failures.append(f"bad {name} accepted or badly reported: status {status}, '{message}'")

if lib.pv_mrna_dynamics(-1, *([None] * 8)) != 1:
    failures.append("n < 0 accepted")
if lib.pv_mrna_dynamics(3, *([None] * 8)) != 1 or b"NULL" not in lib.pv_last_error():
    failures.append("NULL pointers accepted")

print(lib.pv_build_info().decode())
if failures:
    print("\n".join("FAIL: " + f for f in failures))
    sys.exit(1)
print("ctypes test passed")
