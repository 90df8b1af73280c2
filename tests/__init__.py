"""signwire's tests and benchmarks.

Importing ``server`` first gives the tests and the benchmarks the server's own BLAS setting
(one OpenBLAS thread, set in ``server/__init__`` before numpy loads); without it, a benchmark
that imports numpy first measures helper threads the server never has.
"""

import server  # noqa: F401
