"""Simulation kernels: pure NumPy/Numba, no reinforcement-learning imports.

Each sub-package holds one family of simulations:

* :mod:`simrl.physics.nbody` -- gravitational N-body integrators (Hermite, IAS15, leapfrog).
* :mod:`simrl.physics.turbulence` -- batched pseudo-spectral 2D / beta-plane vorticity solver
  and its diagnostics (spectra, vorticity PDFs, subgrid transfer).
* :mod:`simrl.physics.ecology` -- agent-based sheep-wolves-grass model (NetLogo's Wolf Sheep
  Predation) with per-model random streams and per-tick removal control.

:mod:`simrl.physics.compile` builds the serial and ``prange``-parallel Numba variants of a
batched kernel without letting them share a cache entry.
"""
