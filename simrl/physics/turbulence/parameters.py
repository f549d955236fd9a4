"""Physical and numerical parameters of the forced beta-plane vorticity equation, and the paper presets.

The equation (conventions in :mod:`simrl.physics.turbulence`)::

    d(omega)/dt + J(psi, omega) = nu lap(omega) - alpha omega + F - beta v + div(nu_e grad omega)

with the steady Kolmogorov-type forcing of Mojgani et al. (arXiv 2312.00907; reference
``turbulence.md`` sect. 1) ``F = A [cos(k_f x) + cos(k_f y)]``, amplitude ``A = k_f`` by
default (the paper's choice).

Paper cases (reference ``turbulence.md`` sect. 1; Re = 1/nu = 20,000, alpha = 0.1; the
code's ``case`` numbers differ from the README's):

=============  ===========  =====  =====  ==================================
preset         code case    k_f    beta   DNS sigma_omega (PDF normalisation)
=============  ===========  =====  =====  ==================================
``"fhit"``     ``'1'``      4      0      6.0705
``"beta"``     ``'2'``      4      20     10.3789
``"fhit_kf25"`` ``'4'``     25     0      12.85
=============  ===========  =====  =====  ==================================

The paper's LES step is dt = 5e-4 (AB2/CN); the integrating-factor RK3 used here is stable at
larger steps (see :func:`simrl.physics.turbulence.model.TurbulenceModel.cfl`), but the preset
keeps 5e-4 so that "10 solver steps per action" means the paper's Delta t_RL = 5e-3.
With the 2/3 rule the k_f = 25 case needs N >= 78 (N = 96 or 128): at N = 64 the forcing
mode would be removed by the dealiasing mask, which :class:`TurbulenceParameters` rejects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real

from simrl.physics.turbulence.grid import dealiased_cutoff

PAPER_NU = 1.0 / 20_000.0
"""Kinematic viscosity of the paper's runs (Re = 20,000)."""

PAPER_ALPHA = 0.1
"""Rayleigh drag coefficient of the paper's runs."""

PAPER_DT = 5e-4
"""The paper's LES time step."""


@dataclass(frozen=True)
class PaperCase:
    """One flow of Mojgani et al. (2023): forcing wavenumber, beta and the DNS vorticity std."""

    name: str
    code_case: str
    k_f: int
    beta: float
    sigma_omega_dns: float
    description: str


PAPER_CASES: dict[str, PaperCase] = {
    "fhit": PaperCase("fhit", "1", 4, 0.0, 6.0705, "2D forced homogeneous isotropic turbulence, k_f = 4"),
    "beta": PaperCase("beta", "2", 4, 20.0, 10.3789, "beta-plane turbulence (zonal jets), k_f = 4, beta = 20"),
    "fhit_kf25": PaperCase("fhit_kf25", "4", 25, 0.0, 12.85, "2D FHIT forced at high wavenumber, k_f = 25"),
}


def paper_case(name: str) -> PaperCase:
    """The :class:`PaperCase` called ``name``, or a ValueError naming the accepted ones."""
    try:
        return PAPER_CASES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown paper case {name!r}; accepted: {sorted(PAPER_CASES)}") from None


def _finite_real(name: str, value, low: float | None = None, low_open: bool = False) -> float:
    """Validate a real parameter; the message names the accepted range."""
    if low is None:
        accepted = "a finite real number"
    else:
        accepted = f"a finite real number {'>' if low_open else '>='} {low:g}"
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
        raise ValueError(f"{name} must be {accepted}, got {value!r}")
    value = float(value)
    if low is not None and (value <= low if low_open else value < low):
        raise ValueError(f"{name} must be {accepted}, got {value!r}")
    return value


@dataclass(frozen=True)
class TurbulenceParameters:
    """Parameters of one forced beta-plane turbulence configuration (all systems of a batch share them).

    ``n``
        grid points per direction N (even, >= 8).
    ``nu``
        kinematic viscosity (>= 0); the paper: 1/Re = 5e-5.
    ``alpha``
        Rayleigh (linear) drag coefficient (>= 0); the paper: 0.1.
    ``beta``
        planetary vorticity gradient (any finite value); the paper: 0 or 20.
    ``k_f``
        forcing wavenumber (integer, 0 <= k_f <= the largest kept wavenumber ``k_cut`` of
        the grid); 0 switches the forcing off.
    ``dt``
        time step (> 0).
    ``dealias``
        2/3-rule dealiasing (True, recommended) or only the Nyquist modes removed (False,
        the reference code's setting).
    ``forcing_amplitude``
        A in ``F = A [cos(k_f x) + cos(k_f y)]``; None means A = k_f (the paper).
    """

    n: int = 64
    nu: float = PAPER_NU
    alpha: float = PAPER_ALPHA
    beta: float = 0.0
    k_f: int = 4
    dt: float = PAPER_DT
    dealias: bool = True
    forcing_amplitude: float | None = None

    def __post_init__(self) -> None:
        n = self.n
        if isinstance(n, bool) or not isinstance(n, Integral) or n < 8 or n % 2:
            raise ValueError(f"n (grid points per direction) must be an even integer >= 8, got {n!r}")
        if not isinstance(self.dealias, bool):
            raise ValueError(f"dealias must be True or False, got {self.dealias!r}")
        object.__setattr__(self, "n", int(n))
        object.__setattr__(self, "nu", _finite_real("nu (viscosity)", self.nu, 0.0))
        object.__setattr__(self, "alpha", _finite_real("alpha (linear drag)", self.alpha, 0.0))
        object.__setattr__(self, "beta", _finite_real("beta", self.beta))
        object.__setattr__(self, "dt", _finite_real("dt (time step)", self.dt, 0.0, low_open=True))
        k_cut = self.k_cut
        k_f = self.k_f
        if isinstance(k_f, bool) or not isinstance(k_f, Integral) or not 0 <= k_f <= k_cut:
            rule = "2/3-rule cutoff floor((n-1)/3)" if self.dealias else "n/2 - 1"
            raise ValueError(
                f"k_f (forcing wavenumber) must be an integer in [0, {k_cut}] for n={n}, "
                f"dealias={self.dealias} (the largest kept wavenumber is the {rule}), got {k_f!r}"
            )
        object.__setattr__(self, "k_f", int(k_f))
        if self.forcing_amplitude is not None:
            amp = _finite_real("forcing_amplitude", self.forcing_amplitude)
            object.__setattr__(self, "forcing_amplitude", amp)

    @property
    def k_cut(self) -> int:
        """Largest kept wavenumber component of the grid (see :class:`~.grid.SpectralGrid`)."""
        return dealiased_cutoff(self.n) if self.dealias else self.n // 2 - 1

    @property
    def amplitude(self) -> float:
        """The forcing amplitude A actually used (``k_f`` unless ``forcing_amplitude`` is set)."""
        return float(self.k_f) if self.forcing_amplitude is None else self.forcing_amplitude

    @classmethod
    def paper(cls, case: str, n: int = 64, dt: float = PAPER_DT, dealias: bool = True) -> "TurbulenceParameters":
        """Preset for a paper case (``"fhit"``, ``"beta"``, ``"fhit_kf25"``): nu = 5e-5, alpha = 0.1.

        >>> p = TurbulenceParameters.paper("beta")
        >>> p.n, p.nu, p.alpha, p.beta, p.k_f, p.dt, p.dealias
        (64, 5e-05, 0.1, 20.0, 4, 0.0005, True)
        """
        c = paper_case(case)
        return cls(n=n, nu=PAPER_NU, alpha=PAPER_ALPHA, beta=c.beta, k_f=c.k_f, dt=dt, dealias=dealias)
