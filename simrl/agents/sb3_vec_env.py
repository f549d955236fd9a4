"""Stable-Baselines3 ``VecEnv`` adapter for simrl's native batched Gymnasium vector environments.

SB3 does not accept Gymnasium ``VectorEnv`` objects. :class:`GymnasiumVecEnvAdapter` turns
any Gymnasium vector environment that resets finished sub-environments in the same step
(``AutoresetMode.SAME_STEP``) into an SB3 ``VecEnv`` without copying the physics into
sub-processes: one ``step_wait`` is one batched kernel call.

SB3 semantics honoured: ``dones = terminated | truncated``; ``infos[i]["terminal_observation"]``
holds the last observation of a finished episode (the returned observation already belongs
to the next one); ``infos[i]["TimeLimit.truncated"] = truncated and not terminated`` and not a
blow-up (``info["blowup"]``: the penalty is final, so SB3 must not bootstrap past it).
"""

from __future__ import annotations

import importlib
from typing import Any, Sequence

import gymnasium
import numpy as np
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.vec_env import VecEnv, VecMonitor


def _split_infos(infos: dict[str, Any], num_envs: int) -> list[dict[str, Any]]:
    """Turn Gymnasium's dict of arrays (with ``_key`` masks) into SB3's list of dicts."""
    out: list[dict[str, Any]] = [{} for _ in range(num_envs)]
    for key, values in infos.items():
        if key.startswith("_") or key in ("final_obs", "final_info"):
            continue
        mask = infos.get(f"_{key}", np.ones(num_envs, dtype=bool))
        for i in np.flatnonzero(mask):
            value = values[i]
            out[i][key] = value.item() if isinstance(value, np.generic) else value
    return out


class GymnasiumVecEnvAdapter(VecEnv):
    """Expose a SAME_STEP-autoreset Gymnasium ``VectorEnv`` as an SB3 ``VecEnv``.

    >>> import gymnasium as gym, simrl
    >>> from simrl.agents.sb3_vec_env import GymnasiumVecEnvAdapter
    >>> venv = GymnasiumVecEnvAdapter(gym.make_vec("simrl/ThreeBody-v0", num_envs=4))
    >>> venv.reset().shape
    (4, 28)
    """

    def __init__(self, vector_env: gymnasium.vector.VectorEnv, reset_seed: int | None = None) -> None:
        mode = vector_env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
        if AutoresetMode(mode) != AutoresetMode.SAME_STEP:
            raise ValueError(
                f"GymnasiumVecEnvAdapter needs a vector env with autoreset_mode SAME_STEP, got {mode!r}"
            )
        self.vector_env = vector_env
        # With ``reset_seed`` every reset() restarts sub-environment i from seed reset_seed + i, so
        # that repeated evaluations (SB3's EvalCallback) compare policies on the same initial conditions.
        self.reset_seed = reset_seed
        self._actions: np.ndarray | None = None
        # VecEnv.__init__ calls get_attr("render_mode"), which reads self.vector_env: set it first.
        super().__init__(vector_env.num_envs, vector_env.single_observation_space, vector_env.single_action_space)

    def reset(self) -> np.ndarray:
        # SB3's VecEnv.seed()/set_options() store per-env values that apply at the next reset.
        seeds = self._seeds if any(s is not None for s in self._seeds) else None
        if seeds is None and self.reset_seed is not None:
            seeds = [self.reset_seed + i for i in range(self.num_envs)]
        options = self._options[0] if self._options and self._options[0] else None
        obs, infos = self.vector_env.reset(seed=seeds, options=options)
        self.reset_infos = _split_infos(infos, self.num_envs)
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        if actions is None:
            raise ValueError(f"step_async(actions): actions must be an array of {self.num_envs} actions, got None")
        self._actions = actions

    def step_wait(self):
        if self._actions is None:
            raise RuntimeError("step_async() must be called before step_wait()")
        obs, rewards, terminated, truncated, infos = self.vector_env.step(self._actions)
        self._actions = None
        dones = np.logical_or(terminated, truncated)
        info_list = _split_infos(infos, self.num_envs)
        final_obs = infos.get("final_obs")
        final_infos = _split_infos(infos["final_info"], self.num_envs) if "final_info" in infos else None
        for i in np.flatnonzero(dones):
            if final_infos is not None:
                # The episode's last info describes the finished episode, not the fresh one.
                info_list[i].update(final_infos[i])
            info_list[i]["terminal_observation"] = final_obs[i]
            # A blow-up ends the episode as truncated, but its penalty is final: SB3 must not
            # bootstrap a value past it (only a time limit is a cut-off episode).
            time_limit = truncated[i] and not terminated[i] and not info_list[i].get("blowup", False)
            info_list[i]["TimeLimit.truncated"] = bool(time_limit)
        return obs, np.asarray(rewards, dtype=np.float32), dones, info_list

    def close(self) -> None:
        self.vector_env.close()

    def render(self, mode: str | None = None):
        frames = self.vector_env.render()
        return None if frames is None else frames[0]

    def get_images(self) -> Sequence[np.ndarray | None]:
        frames = self.vector_env.render()
        return [None] * self.num_envs if frames is None else list(frames)

    def _indices_list(self, indices) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        if isinstance(indices, int):
            return [indices]
        return list(indices)

    def _all_indices(self, indices, what: str) -> list[int]:
        chosen = self._indices_list(indices)
        if sorted(chosen) != list(range(self.num_envs)):
            # The sub-environments share one batched core and one settings object.
            raise NotImplementedError(f"{what} on a subset of sub-environments is not supported by a batched env")
        return chosen

    def _owner(self, attr_name: str) -> Any:
        """Environment settings (e.g. ``cost_weight``) live on ``vector_env.settings``."""
        settings = getattr(self.vector_env, "settings", None)
        if settings is not None and hasattr(settings, attr_name):
            return settings
        return self.vector_env

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        value = getattr(self._owner(attr_name), attr_name)
        return [value for _ in self._indices_list(indices)]

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        self._all_indices(indices, "set_attr")
        owner = self._owner(attr_name)
        if not hasattr(owner, attr_name):
            raise AttributeError(f"the vector env has no attribute {attr_name!r} to set")
        setattr(owner, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs) -> list[Any]:
        self._all_indices(indices, "env_method")
        result = getattr(self.vector_env, method_name)(*method_args, **method_kwargs)
        return [result for _ in range(self.num_envs)]

    def env_is_wrapped(self, wrapper_class: type, indices=None) -> list[bool]:
        return [False for _ in self._indices_list(indices)]


def make_sb3_vec_env(
    env_id: str,
    num_envs: int,
    seed: int | None = None,
    monitor: bool = True,
    fixed_reset_seeds: bool = False,
    **env_kwargs: Any,
):
    """simrl's native batched form of ``env_id`` as an SB3 ``VecEnv``, wrapped in ``VecMonitor``.

    Environments whose catalogue entry names an ``sb3_vec_env_entry_point`` (e.g. a multi-agent
    env whose (copies x agents) rows share one policy) are built by that callable, with
    ``num_envs`` copies; the others by ``gymnasium.make_vec`` with the native vector entry
    point and :class:`GymnasiumVecEnvAdapter`. ``VecMonitor`` adds ``info["episode"]`` so that
    ``evaluate_policy`` and ``EvalCallback`` see episode returns. ``fixed_reset_seeds=True``
    makes every ``reset()`` restart from ``seed + i`` (for evaluation environments).
    """
    import simrl  # noqa: F401  (registers the environments)
    from simrl.registry import environment_entry

    for name, flag in (("monitor", monitor), ("fixed_reset_seeds", fixed_reset_seeds)):
        if not isinstance(flag, (bool, np.bool_)):
            raise TypeError(f"{name} must be True or False, got {flag!r}")
    if seed is not None:
        if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be None or an integer >= 0, got {seed!r}")
        seed = int(seed)  # numpy integers -> Python int (Gymnasium refuses numpy seeds)
    if isinstance(num_envs, (bool, np.bool_)) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
        raise ValueError(f"num_envs must be an integer >= 1, got {num_envs!r}")
    num_envs = int(num_envs)
    if fixed_reset_seeds and seed is None:
        raise ValueError("fixed_reset_seeds=True needs a seed")
    entry = environment_entry(env_id)
    venv: VecEnv
    if entry.sb3_vec_env_entry_point is not None:
        module_name, _, attr = entry.sb3_vec_env_entry_point.partition(":")
        factory = getattr(importlib.import_module(module_name), attr)
        # the catalogue's kwargs (e.g. the -v1 reference case) under the caller's, as gymnasium.make does
        venv = factory(num_envs=num_envs, seed=seed, fixed_reset_seeds=fixed_reset_seeds, **{**entry.kwargs, **env_kwargs})
    elif entry.kind == "multi-agent":
        raise ValueError(f"{env_id} is multi-agent and names no sb3_vec_env_entry_point in simrl/registry.py")
    else:
        vector_env = gymnasium.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **env_kwargs)
        venv = GymnasiumVecEnvAdapter(vector_env, reset_seed=seed if fixed_reset_seeds else None)
        if seed is not None:
            venv.seed(seed)
    return VecMonitor(venv) if monitor else venv
