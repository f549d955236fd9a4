#!/usr/bin/env bash
# Optional set-up of the peer of benchmarks/bench_turbulence.py: build pyqg 0.7.2 into the
# CURRENT Python environment (activate the project's venv first). pyqg is never a dependency of
# simrl; only the benchmark's pyqg rows need it (they are skipped, with the reason, without it).
#
#   . .venv/bin/activate
#   bash benchmarks/setup_pyqg.sh              # pyqg with pyfftw (the fast build, recommended)
#   PYQG_FFTW=0 bash benchmarks/setup_pyqg.sh  # pyqg on numpy.fft (pyqg warns and is slower)
#
# Why the patch (reference turbulence.md sect. 6): pyqg 0.7.2 ships only an sdist whose
# pyqg/kernel.pyx does not compile with Cython 3 ("Cannot assign type 'double' to 'int'" at
# `nx/2 + 1` and `nl/num_threads`: Cython 3 follows Python 3 true division), and Cython 0.29
# cannot build against NumPy 2 (C-level `npy_float64 _Complex` typedef). So: Cython 3.x, the
# two divisions made integer divisions (`//`), and no build isolation (pip would otherwise pull
# its own Cython and NumPy). Upstream master has an equivalent `int()` fix, unreleased
# (pyqg issues #324, #328). pyqg decides at BUILD time whether to use pyfftw (it tries to
# import pyfftw in setup.py), so pyfftw is installed first when PYQG_FFTW=1.
set -euo pipefail

PYQG_VERSION=0.7.2
PYFFTW_VERSION=0.15.1
CYTHON_SPEC="cython>=3.0,<4"
PYQG_FFTW="${PYQG_FFTW:-1}"

if [[ -z "${VIRTUAL_ENV:-}" ]]; then
    echo "setup_pyqg.sh: activate the project's virtual environment first (. .venv/bin/activate)" >&2
    exit 2
fi
PY="${VIRTUAL_ENV}/bin/python"
echo "setup_pyqg.sh: building pyqg ${PYQG_VERSION} into ${VIRTUAL_ENV} (pyfftw: ${PYQG_FFTW})"

# 1. Build tools into the venv.
"$PY" -m pip install --quiet "$CYTHON_SPEC" setuptools_scm wheel
if [[ "$PYQG_FFTW" == "1" ]]; then
    "$PY" -m pip install --quiet "pyfftw==${PYFFTW_VERSION}"
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/simrl-pyqg-XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

# 2. The sdist (the only distribution of 0.7.2). `pip download` of an sdist always prepares its
#    metadata, and pyqg's setup.py cythonizes kernel.pyx while doing so, which Cython 3 rejects
#    before we can patch (and pip keeps no file when that fails). With build isolation and
#    --no-binary :all: pip would also compile NumPy and Cython from source first. So the
#    metadata step runs without isolation against a throwaway Cython 0.29 (it only cythonizes,
#    it does not compile C, so NumPy 2 does not matter there), put first on PYTHONPATH from a
#    --target folder inside $WORK: the venv keeps Cython 3.
"$PY" -m pip install --quiet --target "$WORK/cython029" "cython==0.29.37"
PYTHONPATH="$WORK/cython029" SETUPTOOLS_SCM_PRETEND_VERSION="$PYQG_VERSION" \
    "$PY" -m pip download "pyqg==${PYQG_VERSION}" --no-deps --no-binary :all: --no-build-isolation -d . --quiet
tar xzf "pyqg-${PYQG_VERSION}.tar.gz"
SRC="$WORK/pyqg-${PYQG_VERSION}"

# 3. Patch kernel.pyx: true division -> integer division at the two known lines, and check
#    that exactly those two expressions changed (fail loudly on an unexpected source).
KERNEL="$SRC/pyqg/kernel.pyx"
for expr in 'nx/2 + 1' 'self.nl/self.num_threads'; do
    if [[ "$(grep -c -F "$expr" "$KERNEL")" != 1 ]]; then
        echo "setup_pyqg.sh: expected exactly one '$expr' in $KERNEL (not the pyqg 0.7.2 sdist?)" >&2
        exit 3
    fi
done
sed -i -e 's#nx/2 + 1#nx//2 + 1#' -e 's#self\.nl/self\.num_threads#self.nl//self.num_threads#' "$KERNEL"
echo "setup_pyqg.sh: patched lines:"
grep -n -F -e 'nx//2 + 1' -e 'self.nl//self.num_threads' "$KERNEL"

# 4. Build and install into the venv, no build isolation, version pinned for setuptools_scm.
SETUPTOOLS_SCM_PRETEND_VERSION="$PYQG_VERSION" \
    "$PY" -m pip install --no-build-isolation --no-deps "$SRC"

# 5. Smoke test: a few BTModel steps, and report which FFT pyqg was built with.
cd /
"$PY" - <<'EOF'
import pyqg
import numpy as np
# diagnostics_list must stay 'all' in 0.7.2 ('none' or a list call the missing
# set_active_diagnostics); a huge taveint keeps them from ever being accumulated.
m = pyqg.BTModel(nx=32, L=2 * np.pi, dt=1e-3, tmax=1e-2, taveint=1e9, twrite=10**9,
                 beta=0.0, rek=0.0, rd=0.0, log_level=0)
m.set_q(np.random.default_rng(0).standard_normal((1, 32, 32)))
m.run()
assert np.isfinite(m.q).all() and m.tc == 10, (m.tc,)
import pyqg.kernel
# kernel.pyx imports pyfftw when it was compiled with PYQG_USE_PYFFTW, else numpy.fft as npfft.
print(f"setup_pyqg.sh: pyqg {pyqg.__version__} OK; FFT of the kernel: {'pyfftw' if hasattr(pyqg.kernel, 'pyfftw') else 'numpy.fft'}")
EOF
