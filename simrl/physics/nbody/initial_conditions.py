"""Initial conditions for few-body problems in N-body units (G = 1).

Every function returns ``(pos (n, 3), vel (n, 3), mass (n,))`` float64 arrays in the
centre-of-mass frame. All randomness comes from a caller-owned
:class:`numpy.random.Generator`; numpy's global random state is never touched (the
paper's code seeded the global RNG, which made every training episode after the first
reuse one seed: reference ``threebody.md`` sect. 2, bug 2).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from numbers import Integral, Real

import numpy as np

from simrl.physics.nbody.forces import move_to_center_of_mass
from simrl.physics.nbody.units import PAPER_UNITS

FIGURE8_PERIOD = 6.32591398
"""Period of the Chenciner & Montgomery (2000) figure-eight orbit (Simo's values)."""

PAPER_VELOCITY_KMS = 10.0
"""Speed of bodies 0 and 1 in the paper's set-up, km/s."""


def _check_rng(rng) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng must be a numpy.random.Generator (e.g. numpy.random.default_rng(seed)), got {type(rng).__name__}"
        )
    return rng


def _finish(pos: np.ndarray, vel: np.ndarray, mass: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shift to the centre-of-mass frame and return contiguous float64 copies."""
    pos, vel = move_to_center_of_mass(pos, vel, mass)
    return (
        np.ascontiguousarray(pos, dtype=np.float64),
        np.ascontiguousarray(vel, dtype=np.float64),
        np.ascontiguousarray(mass, dtype=np.float64),
    )


def paper_initial_conditions(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The set-up of Saz Ulibarrena & Portegies Zwart (2025), in :data:`PAPER_UNITS`.

    Three 1 MSun bodies in the plane z = 0 (reference ``threebody.md`` sect. 2,
    ``_initial_conditions`` of the paper's code), in units of 3 MSun and 1 au (so each
    mass is 1/3 and positions are in au):

    * body 0 at (0, 0) au with v = (0, 10) km/s;
    * body 1 at x ~ U[5, 20], y ~ U[0, 10] au with v = (-10, 0) km/s;
    * body 2 at x ~ U[-10, 0], y ~ U[5, 20] au, at rest.

    The four uniforms are drawn from ``rng`` in the order x1, y1, x2, y2. The result is
    moved to the centre-of-mass frame (the paper's ``move_to_center()``).
    """
    rng = _check_rng(rng)
    x1 = rng.uniform(5.0, 20.0)
    y1 = rng.uniform(0.0, 10.0)
    x2 = rng.uniform(-10.0, 0.0)
    y2 = rng.uniform(5.0, 20.0)
    speed = PAPER_UNITS.kms_to_nbody(PAPER_VELOCITY_KMS)
    # PAPER_UNITS.length_au == 1, so positions in au are already in N-body length units.
    length = 1.0 / PAPER_UNITS.length_au
    pos = np.array([[0.0, 0.0, 0.0], [x1, y1, 0.0], [x2, y2, 0.0]]) * length
    vel = np.array([[0.0, speed, 0.0], [-speed, 0.0, 0.0], [0.0, 0.0, 0.0]])
    mass = np.full(3, 1.0 / PAPER_UNITS.mass_msun)
    return _finish(pos, vel, mass)


def pythagorean_initial_conditions() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Burrau's Pythagorean three-body problem (Szebehely & Peters 1967).

    Masses 3, 4, 5 at rest at (1, 3), (-2, -1), (1, -1), opposite the sides of a 3-4-5
    right triangle. Total energy -769/60; the centre of mass is already at the origin.
    """
    pos = np.array([[1.0, 3.0, 0.0], [-2.0, -1.0, 0.0], [1.0, -1.0, 0.0]])
    vel = np.zeros((3, 3))
    mass = np.array([3.0, 4.0, 5.0])
    return _finish(pos, vel, mass)


def figure8_initial_conditions() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Chenciner & Montgomery (2000) figure-eight choreography, three unit masses.

    Initial values of Simo (as quoted by Chenciner & Montgomery 2000):
    x1 = -x2 = (0.97000436, -0.24308753), x3 = 0, v3 = (-0.93240737, -0.86473146),
    v1 = v2 = -v3/2; period :data:`FIGURE8_PERIOD`.
    """
    x1 = np.array([0.97000436, -0.24308753, 0.0])
    v3 = np.array([-0.93240737, -0.86473146, 0.0])
    pos = np.stack([x1, -x1, np.zeros(3)])
    vel = np.stack([-0.5 * v3, -0.5 * v3, v3])
    mass = np.ones(3)
    return _finish(pos, vel, mass)


def random_initial_conditions(
    rng: np.random.Generator,
    n_bodies: int = 3,
    mass_range: tuple[float, float] = (0.5, 2.0),
    virial_ratio: float = 0.5,
    planar: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random few-body system with a prescribed virial ratio, in standard N-body scaling.

    Construction:

    1. masses ~ U[mass_range] (relative masses; rescaled below);
    2. positions uniform in the unit disc (``planar``, z = 0) or the unit ball;
    3. velocities in uniformly random directions (in the plane when ``planar``) with
       speeds ~ U[0, 1];
    4. move to the centre-of-mass frame, then rescale:

       * masses so that the total mass is M = 1;
       * lengths so that the potential energy is W = -1/2 (virial radius
         R_v = M^2 / (2|W|) = 1, as in Henon / Heggie-Mathieu standard units);
       * velocities so that T / |W| = ``virial_ratio``.

    Hence E = T + W = -(1 - virial_ratio) / 2: bound for ``virial_ratio < 1`` and
    exactly Henon's E = -1/4 at the virial-equilibrium default 0.5; ``virial_ratio = 0``
    gives a cold (at rest) start. The rescaling is a change of units, so the shape of the
    configuration is the drawn one.

    Raises ``ValueError`` for ``n_bodies`` < 2, a ``mass_range`` that is not two finite
    numbers 0 < low <= high, or a ``virial_ratio`` that is negative or not finite.
    """
    rng = _check_rng(rng)
    if isinstance(n_bodies, bool) or not isinstance(n_bodies, Integral) or n_bodies < 2:
        raise ValueError(f"n_bodies must be an integer >= 2, got {n_bodies!r}")
    n = int(n_bodies)
    try:
        low, high = (float(v) for v in mass_range)
    except (TypeError, ValueError):
        raise ValueError(f"mass_range must be a pair (low, high) of numbers, got {mass_range!r}") from None
    if not (math.isfinite(low) and math.isfinite(high) and 0.0 < low <= high):
        raise ValueError(f"mass_range must satisfy 0 < low <= high (finite), got {mass_range!r}")
    if isinstance(virial_ratio, bool) or not isinstance(virial_ratio, Real):
        raise ValueError(f"virial_ratio must be a finite number >= 0, got {virial_ratio!r}")
    q = float(virial_ratio)
    if not (math.isfinite(q) and q >= 0.0):
        raise ValueError(f"virial_ratio must be a finite number >= 0 (< 1 for a bound system), got {virial_ratio!r}")
    if not isinstance(planar, (bool, np.bool_)):
        raise ValueError(f"planar must be True or False, got {planar!r}")

    mass = rng.uniform(low, high, size=n)
    pos = np.zeros((n, 3))
    vel = np.zeros((n, 3))
    if planar:
        # Uniform in the unit disc: r = sqrt(U) makes the area density uniform.
        r = np.sqrt(rng.uniform(0.0, 1.0, size=n))
        phi = rng.uniform(0.0, 2.0 * math.pi, size=n)
        pos[:, 0] = r * np.cos(phi)
        pos[:, 1] = r * np.sin(phi)
        speed = rng.uniform(0.0, 1.0, size=n)
        psi = rng.uniform(0.0, 2.0 * math.pi, size=n)
        vel[:, 0] = speed * np.cos(psi)
        vel[:, 1] = speed * np.sin(psi)
    else:
        # Uniform in the unit ball: isotropic direction (normalised Gaussian), r = U^(1/3).
        direction = rng.normal(size=(n, 3))
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        pos = direction * np.cbrt(rng.uniform(0.0, 1.0, size=n))[:, None]
        vdir = rng.normal(size=(n, 3))
        vdir /= np.linalg.norm(vdir, axis=1, keepdims=True)
        vel = vdir * rng.uniform(0.0, 1.0, size=n)[:, None]

    mass = mass / mass.sum()
    pos, vel = move_to_center_of_mass(pos, vel, mass)

    # Potential energy of the drawn configuration; scaling lengths by s scales W by 1/s.
    i, j = np.triu_indices(n, k=1)
    potential = -np.sum(mass[i] * mass[j] / np.linalg.norm(pos[i] - pos[j], axis=1))
    pos = pos * (potential / -0.5)  # now W = -1/2
    kinetic = 0.5 * np.sum(mass * np.sum(vel * vel, axis=1))
    target_kinetic = 0.5 * q
    if target_kinetic == 0.0:
        vel = np.zeros_like(vel)
    else:
        vel = vel * math.sqrt(target_kinetic / kinetic)
    return _finish(pos, vel, mass)


def _paper_preset(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return paper_initial_conditions(rng)


def _pythagorean_preset(rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return pythagorean_initial_conditions()


def _figure8_preset(rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return figure8_initial_conditions()


PRESETS: dict[str, Callable[..., tuple[np.ndarray, np.ndarray, np.ndarray]]] = {
    "paper": _paper_preset,
    "pythagorean": _pythagorean_preset,
    "figure8": _figure8_preset,
    "random": random_initial_conditions,
}
"""Preset name -> ``callable(rng, **kwargs)``; deterministic presets ignore ``rng``."""


def sample_initial_conditions(
    preset: str, rng: np.random.Generator | None = None, **kwargs
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Initial conditions of the named preset (see :data:`PRESETS`), drawn with ``rng``.

    ``kwargs`` go to the preset (only ``"random"`` takes any). Raises ``ValueError`` for
    an unknown preset name.
    """
    try:
        factory = PRESETS[preset]
    except (KeyError, TypeError):
        raise ValueError(f"unknown preset {preset!r}; accepted: {', '.join(sorted(PRESETS))}") from None
    return factory(rng, **kwargs)
