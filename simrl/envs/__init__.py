"""Gymnasium and PettingZoo faces of the simulations in :mod:`simrl.physics`."""
