"""The time stepper's FFT libraries (FFTW via pyfftw, numpy.fft) and the reference generator's solvers.

* both FFT paths integrate the same solution (to round-off) over 100 forced steps with a non-uniform ``nu_e``;
* FFTW results are bitwise reproducible within a process, in a fresh process, and with ``threads=2``;
* the choice (``fft=`` / ``$SIMRL_FFT`` / default) and the fallback when pyfftw is missing;
* the generator's torch backend (CPU, float64) records the same statistics as the NumPy one.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from simrl.physics.turbulence import TurbulenceParameters, random_vorticity
from simrl.physics.turbulence import model as model_module
from simrl.physics.turbulence.model import TurbulenceModel, resolve_fft_backend

HAVE_PYFFTW = model_module._import_pyfftw() is not None
needs_pyfftw = pytest.mark.skipif(not HAVE_PYFFTW, reason="pyfftw not installed")
REPO = Path(__file__).resolve().parents[2]


def _run(fft: str, n: int = 32, steps: int = 100, batch: int = 3, threads: int = 1, chunk: int = 10) -> np.ndarray:
    """``omega_hat`` after ``steps`` forced beta-plane steps with a non-uniform, per-system ``nu_e``."""
    params = TurbulenceParameters.paper("beta", n=n, dt=2e-3)
    model = TurbulenceModel(params, threads=threads, fft=fft)
    state = model.initial_state(random_vorticity(model.grid, np.random.default_rng(7), batch_size=batch, rms=10.0))
    x, y = model.grid.meshgrid()
    # a smooth positive field with a different pattern per system (and one uniform system: nu -> nu + nu_e)
    nu_e = np.stack([2e-3 * (1.0 + 0.5 * np.sin(x + b) * np.cos(2 * y)) for b in range(batch)])
    nu_e[-1] = 1e-3
    try:
        for _ in range(steps // chunk):
            status = model.advance(state, chunk, nu_e=nu_e)
            assert (status == 0).all()
    finally:
        model.close()
    assert (state.steps == steps).all()
    return state.omega_hat


@needs_pyfftw
def test_fftw_and_numpy_paths_give_the_same_solution():
    a, b = _run("fftw"), _run("numpy")
    assert np.abs(a).max() > 1.0
    assert np.abs(a - b).max() <= 1e-12 * np.abs(a).max()


@needs_pyfftw
def test_fftw_is_bitwise_reproducible_in_process_across_threads_and_in_a_fresh_process(tmp_path):
    a = _run("fftw")
    assert np.array_equal(a, _run("fftw"))
    assert np.array_equal(a, _run("fftw", threads=2))  # per-thread plans and buffers, same numbers
    # foreign measured (FFTW_PATIENT) wisdom for the very same transforms must not change our plans
    import pyfftw

    real = pyfftw.empty_aligned((4, 32, 32), "float64")
    comp = pyfftw.empty_aligned((4, 32, 17), "complex128")
    pyfftw.FFTW(real, comp, axes=(-2, -1), flags=("FFTW_PATIENT", "FFTW_DESTROY_INPUT"))
    pyfftw.FFTW(comp, real, axes=(-2, -1), direction="FFTW_BACKWARD", flags=("FFTW_PATIENT", "FFTW_DESTROY_INPUT"))
    assert np.array_equal(a, _run("fftw"))

    out = tmp_path / "fresh.npy"
    code = textwrap.dedent(
        f"""
        import sys, numpy as np
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_turbulence_fft import _run
        np.save({str(out)!r}, _run("fftw"))
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("SIMRL_FFT", None)
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=REPO, timeout=300)
    assert np.array_equal(a, np.load(out))


def test_numpy_path_threads_equal_one_thread():
    assert np.array_equal(_run("numpy", steps=20), _run("numpy", steps=20, threads=2))


def test_choice_argument_environment_and_errors(monkeypatch):
    monkeypatch.delenv("SIMRL_FFT", raising=False)
    params = TurbulenceParameters.paper("fhit", n=16, dt=1e-3)
    assert resolve_fft_backend() == ("fftw" if HAVE_PYFFTW else "numpy")
    assert TurbulenceModel(params, fft="numpy").fft == "numpy"
    monkeypatch.setenv("SIMRL_FFT", "NumPy")
    assert TurbulenceModel(params).fft == "numpy"
    monkeypatch.setenv("SIMRL_FFT", "cufft")
    with pytest.raises(ValueError, match="SIMRL_FFT must be one of"):
        TurbulenceModel(params)
    monkeypatch.delenv("SIMRL_FFT")
    with pytest.raises(ValueError, match="fft must be one of"):
        TurbulenceModel(params, fft="mkl")


def test_fallback_to_numpy_without_pyfftw(monkeypatch):
    monkeypatch.delenv("SIMRL_FFT", raising=False)
    monkeypatch.setitem(sys.modules, "pyfftw", None)  # "import pyfftw" now raises ImportError
    assert model_module._import_pyfftw() is None
    params = TurbulenceParameters.paper("beta", n=16, dt=1e-3)
    model = TurbulenceModel(params)
    assert model.fft == "numpy"
    state = model.initial_state(random_vorticity(model.grid, np.random.default_rng(0)))
    assert model.advance(state, 5)[0] == 0
    with pytest.raises(ImportError, match="needs pyfftw"):
        TurbulenceModel(params, fft="fftw")
    monkeypatch.setenv("SIMRL_FFT", "fftw")
    with pytest.raises(ImportError, match="SIMRL_FFT='fftw' needs pyfftw"):
        TurbulenceModel(params)


@pytest.mark.parametrize("fft", [pytest.param("fftw", marks=needs_pyfftw), "numpy"])
def test_model_pickles_and_copies_after_stepping(fft):
    """Workspaces (FFTW plans, buffers) are per process: a copy makes its own and continues identically."""
    params = TurbulenceParameters.paper("beta", n=16, dt=1e-3)
    model = TurbulenceModel(params, fft=fft, threads=2)
    state = model.initial_state(random_vorticity(model.grid, np.random.default_rng(0), batch_size=2))
    model.advance(state, 3)
    twin, clone = pickle.loads(pickle.dumps(model)), copy.deepcopy(model)
    s1, s2, s3 = state.copy(), state.copy(), state.copy()
    for m, s in ((model, s1), (twin, s2), (clone, s3)):
        m.advance(s, 4)
        m.close()
    assert np.array_equal(s1.omega_hat, s2.omega_hat) and np.array_equal(s1.omega_hat, s3.omega_hat)


# --------------------------------------------------------------------------- reference generator backends
def test_reference_generator_torch_backend_matches_numpy(tmp_path):
    pytest.importorskip("torch")
    from simrl.physics.turbulence.reference import REFERENCE_CASES
    from simrl.physics.turbulence.reference_generator import generate_reference

    tiny = dataclasses.replace(
        REFERENCE_CASES["fhit_cpu"], n=32, dt=0.01, les_resolutions=(16,), spinup_time=0.2,
        averaging_time=0.4, sample_interval=0.05, n_snapshots=2,
    )
    quiet = dict(progress=False, log=lambda s: None)
    man_np = generate_reference(tiny, tmp_path / "np", **quiet)
    man_t = generate_reference(tiny, tmp_path / "t", backend="torch", device="cpu", **quiet)
    assert man_np["solver"].startswith("numpy/") and man_t["solver"] == "torch/cpu/float64"
    assert man_t["command"].endswith("--backend torch --device cpu") and "--backend" not in man_np["command"]
    with np.load(tmp_path / "np" / "fhit_cpu.npz") as za, np.load(tmp_path / "t" / "fhit_cpu.npz") as zb:
        a, b = {k: za[k] for k in za.files}, {k: zb[k] for k in zb.files}
    assert a.keys() == b.keys()
    for key in a:
        x, y = a[key].astype(np.complex128 if np.iscomplexobj(a[key]) else np.float64), b[key]
        scale = max(float(np.abs(x).max()), 1e-300) if x.size else 1.0
        tol = 1e-6 if np.iscomplexobj(a[key]) and a[key].dtype == np.complex64 else 1e-10  # complex64 snapshots
        assert np.abs(x - y).max(initial=0.0) <= tol * scale, key
    # a checkpoint of the other solver is not resumed
    part = tmp_path / "part"
    assert generate_reference(tiny, part, max_chunks=3, **quiet) is None
    msgs: list[str] = []
    generate_reference(tiny, part, backend="torch", device="cpu", progress=False, log=msgs.append)
    assert any("made by the solver" in m for m in msgs)
    assert json.loads((part / "fhit_cpu.json").read_text())["solver"] == "torch/cpu/float64"


def test_reference_generator_rejects_bad_backend_and_device(tmp_path):
    from simrl.physics.turbulence.reference import REFERENCE_CASES
    from simrl.physics.turbulence.reference_generator import generate_reference

    tiny = dataclasses.replace(REFERENCE_CASES["fhit_cpu"], n=32, dt=0.01, les_resolutions=(16,),
                               spinup_time=0.0, averaging_time=0.2, sample_interval=0.05, n_snapshots=1)
    with pytest.raises(ValueError, match="backend must be one of"):
        generate_reference(tiny, tmp_path, progress=False, backend="jax")
    with pytest.raises(ValueError, match="device must be None or 'cpu' with backend='numpy'"):
        generate_reference(tiny, tmp_path, progress=False, device="cuda")
