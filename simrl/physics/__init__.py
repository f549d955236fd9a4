"""Simulation kernels: pure NumPy/Numba, no reinforcement-learning imports.

Each sub-package holds one family of simulations:

* :mod:`simrl.physics.nbody` -- gravitational N-body integrators (Hermite, IAS15, leapfrog).
"""
