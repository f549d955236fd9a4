"""Serial and parallel kernel variants must stay distinct in Numba's on-disk cache (numba#6845)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

SNIPPET = """
import json, numpy as np, numba
from simrl.physics.nbody.integrators import get_kernel

def args():
    b = 4
    pos = np.array([[[1.0, 3.0, 0.0], [-2.0, -1.0, 0.0], [1.0, -1.0, 0.0]]] * b)
    return (pos, np.zeros((b, 3, 3)), np.array([[3.0, 4.0, 5.0]] * b), np.zeros(b), np.full(b, 0.01),
            np.full(b, 0.03), np.zeros(b), 10**6, np.zeros(b, np.int64), np.zeros(b, np.int64))

def parallel_region_has_run():
    try:
        numba.threading_layer()  # set only once a parallel region has run
        return True
    except ValueError:
        return False

seen = {}
for variant in ORDER:
    get_kernel("NAME", parallel=(variant == "parallel"))(*args())
    seen[variant] = parallel_region_has_run()
print(json.dumps(seen))
"""


def _run(code, order, cache_dir):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache_dir)}
    proc = subprocess.run([sys.executable, "-c", code.replace("ORDER", json.dumps(order))],
                          env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("name", ["hermite", "leapfrog"])
def test_serial_kernel_runs_serial_code_and_parallel_kernel_parallel_code(tmp_path, name):
    code = SNIPPET.replace("NAME", name)
    # Serial first into an empty cache, then parallel in the same process.
    assert _run(code, ["serial", "parallel"], tmp_path / "a") == {"serial": False, "parallel": True}
    # Parallel first into an empty cache; a later process loading the serial kernel gets serial code.
    assert _run(code, ["parallel"], tmp_path / "b") == {"parallel": True}
    assert _run(code, ["serial"], tmp_path / "b") == {"serial": False}
