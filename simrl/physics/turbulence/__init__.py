"""Forced two-dimensional (beta-plane) turbulence: a batched pseudo-spectral vorticity solver.

The building block of the multi-agent LES-closure environment after Mojgani et al. (SMARL,
arXiv 2312.00907; reference ``turbulence.md``). Organised like pyqg: parameters
(:mod:`.parameters`), numerics (:mod:`.grid`, :mod:`.model`), initial conditions
(:mod:`.initial_conditions`) and diagnostics (:mod:`.diagnostics`) are separate; nothing here
imports reinforcement-learning code.

Physical conventions (one convention everywhere; the reference codes use others, see
``turbulence.md`` sect. 1 "Signs")::

    u = -psi_y,   v = psi_x,   omega = curl u = v_x - u_y = lap(psi)
    J(a, b) = a_x b_y - a_y b_x,   so J(psi, omega) = u . grad(omega)

    d(omega)/dt + J(psi, omega) = nu lap(omega) - alpha omega + F - beta v + div(nu_e grad omega)

``-beta v`` is the planetary-vorticity advection ``-v d(beta y)/dy``: the beta-plane term of the
standard (physical-vorticity) barotropic equation. The reference's "+beta v" is the same term
written for ``-omega`` (RLonKorali's omega = -curl u). The sign is pinned by the Rossby-wave
dispersion relation ``w = -beta k_x / |k|^2`` (westward phase propagation), which the tests check.
``F = A [cos(k_f x) + cos(k_f y)]`` (A = k_f, the paper). The closure term
``div(nu_e grad omega)`` with a per-system eddy-viscosity field ``nu_e(x, y)`` dissipates
enstrophy where ``nu_e > 0`` (in the reference's notation it is ``-Pi``).

Modules: :mod:`.closures` (Smagorinsky/Leith, static and dynamic; the agents' lattice and its periodic
interpolation), :mod:`.invariants` (the agents' local observation features), :mod:`.reference` (reference
DNS statistics and filtered-DNS initial conditions, shipped in ``simrl/data/turbulence``) and
:mod:`.reference_generator` (``scripts/generate_turbulence_reference.py``).

Domain [0, 2 pi)^2, N x N points, 'ij' indexing (axis 0 = x), ``scipy.fft.rfft2`` layout and
normalisation (:mod:`.grid`).

Batch contract (what an environment relies on):

=================  ==============================  ===========================================
object             shape / dtype                   meaning
=================  ==============================  ===========================================
``omega_hat``      (B, N, N//2+1) complex128       rfft2 of each system's vorticity; zero outside
                                                   the kept modes (2/3 rule, Nyquist) and at k = 0
``time``           (B,) float64                    model time of each system
``steps``          (B,) int64                      steps taken since the state was made
``status``         (B,) int64                      0 ``STATUS_OK``; 2 ``STATUS_NONFINITE``: the
                                                   system stopped at its last finite state
``nu_e``           (B, N, N) float64 or None       eddy viscosity of each system for one call
=================  ==============================  ===========================================

``TurbulenceModel(params).advance(state, n_steps, nu_e)`` advances all B systems in place
(same fixed dt) and returns ``status``; it never raises on a blow-up. The status codes are
those of :mod:`simrl.physics.nbody` so that environments can share their handling.

>>> import numpy as np
>>> from simrl.physics.turbulence import TurbulenceModel, TurbulenceParameters, random_vorticity
>>> from simrl.physics.turbulence import diagnostics
>>> model = TurbulenceModel(TurbulenceParameters.paper("beta", n=32, dt=1e-3))
>>> state = model.initial_state(random_vorticity(model.grid, np.random.default_rng(1), batch_size=3))
>>> status = model.advance(state, 5, nu_e=np.full((3, 32, 32), 1e-4))
>>> status.tolist(), state.steps.tolist()
([0, 0, 0], [5, 5, 5])
>>> k, z_k = diagnostics.enstrophy_spectrum(model.grid, state.omega_hat)
>>> bool(np.allclose(z_k.sum(axis=-1), diagnostics.enstrophy(model.grid, state.omega_hat)))
True
"""

STATUS_OK = 0
STATUS_NONFINITE = 2

from simrl.physics.turbulence.grid import SpectralGrid  # noqa: E402
from simrl.physics.turbulence.parameters import PAPER_CASES, TurbulenceParameters, paper_case  # noqa: E402
from simrl.physics.turbulence.model import TurbulenceModel, TurbulenceState  # noqa: E402
from simrl.physics.turbulence.initial_conditions import random_vorticity  # noqa: E402
from simrl.physics.turbulence.closures import (  # noqa: E402
    CLOSURE_KINDS,
    CLOSURE_NAMES,
    INTERPOLATION_METHODS,
    STATIC_COEFFICIENTS,
    Closure,
    agent_points,
    dynamic_coefficient,
    eddy_viscosity,
    interpolate_periodic,
    lattice_indices,
    make_closure,
)
from simrl.physics.turbulence.invariants import INVARIANT_NAMES, local_invariants  # noqa: E402
from simrl.physics.turbulence.reference import (  # noqa: E402
    REFERENCE_CASES,
    LESReference,
    ReferenceCase,
    ReferenceData,
    ReferenceDataError,
    load_reference,
    reference_path,
)

__all__ = [
    "STATUS_OK",
    "STATUS_NONFINITE",
    "SpectralGrid",
    "TurbulenceParameters",
    "PAPER_CASES",
    "paper_case",
    "TurbulenceModel",
    "TurbulenceState",
    "random_vorticity",
    "CLOSURE_KINDS",
    "CLOSURE_NAMES",
    "INTERPOLATION_METHODS",
    "STATIC_COEFFICIENTS",
    "Closure",
    "agent_points",
    "dynamic_coefficient",
    "eddy_viscosity",
    "interpolate_periodic",
    "lattice_indices",
    "make_closure",
    "INVARIANT_NAMES",
    "local_invariants",
    "REFERENCE_CASES",
    "LESReference",
    "ReferenceCase",
    "ReferenceData",
    "ReferenceDataError",
    "load_reference",
    "reference_path",
]
