"""Command-line front doors: `wisp` and `wisp-opt`.

Importing this package (which happens before either CLI module, hence before numpy) makes BLAS
single-threaded by default. wisp's matrices are small (one token block, one layer), and on a 2-core
machine multi-threaded OpenBLAS spends far longer synchronising than computing: `wisp eval digits-vit`
took 17 s with it and 1.6 s without. An already-set variable wins, so users can still choose.
"""

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
