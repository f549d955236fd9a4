"""Unit conversions between N-body units (G = 1) and astrophysical units.

Kernels work in N-body units. A :class:`UnitSystem` fixes the mass and length
units; the time and velocity units follow from G = 1. The three-body paper
(Saz Ulibarrena & Portegies Zwart 2025) used AMUSE's ``nbody_to_si(3 MSun, 1 au)``,
available here as :data:`PAPER_UNITS` (1 time unit = 0.0919 yr, 1 velocity unit = 51.6 km/s).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# IAU 2015 nominal solar mass parameter and IAU 2012 astronomical unit.
GM_SUN_M3_S2 = 1.3271244e20
AU_M = 1.495978707e11
JULIAN_YEAR_S = 365.25 * 86400.0


@dataclass(frozen=True)
class UnitSystem:
    """N-body units with the given mass (solar masses) and length (au) units."""

    mass_msun: float
    length_au: float

    def __post_init__(self) -> None:
        if not (self.mass_msun > 0 and self.length_au > 0):
            raise ValueError(
                f"UnitSystem needs positive mass_msun and length_au, got {self.mass_msun}, {self.length_au}"
            )

    @property
    def time_s(self) -> float:
        """One N-body time unit in seconds: sqrt(L^3 / (G M))."""
        length_m = self.length_au * AU_M
        return math.sqrt(length_m**3 / (GM_SUN_M3_S2 * self.mass_msun))

    @property
    def time_yr(self) -> float:
        """One N-body time unit in Julian years."""
        return self.time_s / JULIAN_YEAR_S

    @property
    def velocity_kms(self) -> float:
        """One N-body velocity unit in km/s."""
        return self.length_au * AU_M / self.time_s / 1e3

    def years_to_nbody(self, t_yr: float) -> float:
        return t_yr / self.time_yr

    def nbody_to_years(self, t: float) -> float:
        return t * self.time_yr

    def kms_to_nbody(self, v_kms: float) -> float:
        return v_kms / self.velocity_kms


PAPER_UNITS = UnitSystem(mass_msun=3.0, length_au=1.0)
