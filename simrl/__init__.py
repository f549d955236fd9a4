"""simrl: reinforcement-learning environments for controlling scientific simulations.

``import simrl`` registers every environment with Gymnasium under the ``simrl/`` namespace:

>>> import gymnasium as gym, simrl
>>> "simrl/ThreeBody-v0" in simrl.list_environments()
True
>>> env = gym.make("simrl/ThreeBody-v0")
"""

from simrl.registry import ENVIRONMENTS, environment_entry, list_environments, register_environments

__version__ = "0.1.0"

register_environments()

__all__ = ["ENVIRONMENTS", "environment_entry", "list_environments", "register_environments", "__version__"]
