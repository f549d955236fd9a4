"""NNController: a dynamics-informed neural-network controller for the digital-twin environments.

The method of Boettcher, Fonseca & Laubenbacher, "Control of Medical Digital Twins with
Artificial Neural Networks" (Phil. Trans. R. Soc. A 383:20240228, 2025; arXiv:2403.13851),
in the NODEC lineage (Asikis, Boettcher & Antulov-Fantulin, arXiv:2006.09773): the agent-based
model (ABM) has no gradients, so

1. **simulate the ABM** -- episodes of the environment under a spread of constant and random
   piecewise-constant controls (later rounds: the current controller plus exploration noise);
2. **fit an ODE metamodel** to the recorded trajectories (:mod:`simrl.agents.metamodels`:
   the companion paper's "mechanistic Case 1" for sheep-wolves-grass, Michaelis-Menten rate
   laws for the metabolic pathway) by least squares on short-horizon predictions;
3. **train a neural-network control law** ``u = u(x; theta)`` by back-propagating the
   environment's own objective through a differentiable RK4 rollout of the fitted metamodel
   (no adjoint equations, no ABM gradients). Optionally the removals are whole animals per
   tick, rounded in the forward pass with a straight-through estimator (identity gradient),
   as the paper does for its integer-valued controls; the rollout also carries multiplicative
   process noise with the size of the metamodel's one-interval residuals on the ABM data, so
   that the law learns to react to the fluctuations it will meet (a deterministic rollout
   from the steady state never leaves the nominal path);
4. **deploy**: :meth:`NNController.predict` maps the environment's observation to the state
   of the metamodel and returns the law's action.

Optional refinement (``refit_rounds``): collect closed-loop ABM data with the trained law
(plus exploration noise), refit the metamodel on all data and retrain the law -- a DAgger-like
loop that improves the metamodel where the controller actually operates.

Agent contract (:func:`simrl.agents.factory.build_agent` with ``policy: null``):
``NNController(env, seed=, device=, tensorboard_log=, verbose=, **kwargs)``, ``learn``,
``predict``, ``save``, ``load``, ``num_timesteps``. ``total_timesteps`` of :meth:`learn` is the
ABM budget: environment steps (summed over the vectorised copies) spent collecting data, split
evenly over the initial round and the refit rounds; the metamodel fit and the law's training
run on the metamodel and cost no environment steps. Deterministic for a seed (all randomness
comes from generators seeded by ``seed``; the environment is seeded once with ``env.seed``).

Supported environments: those whose settings object (``env.get_attr("settings")``) has a task
adapter in :data:`TASKS`: ``simrl/PredatorPrey-v0`` (:class:`PredatorPreyTask`, Case 1 metamodel,
removal rates of sheep and wolves) and ``simrl/MetabolicPathway-v0`` (:class:`MetabolicTask`,
Michaelis-Menten metamodel, substrate feed, product yield).

>>> import numpy as np, torch
>>> from simrl.agents.metamodels import PredatorPreyCase1
>>> task = PredatorPreyTask(reference=(1000.0, 200.0, 100.0), obs_scale=(1000.0, 200.0, 100.0),
...                         target=(900.0, 220.0, 40.0), weights=(1.0, 1.0, 1.0), effort_weight=1.0,
...                         max_removal=(0.05, 0.05), ticks_per_action=10, episode_ticks=200,
...                         extinction_cost=3.0)
>>> law = ControlLaw(task.n_features, task.action_dim, hidden=(16,), generator=torch.Generator().manual_seed(0))
>>> x0 = torch.ones(4, 3, dtype=torch.float64)
>>> cost = rollout_cost(law, PredatorPreyCase1(), task, x0, n_decisions=20)
>>> bool(torch.isfinite(cost)), cost.requires_grad
(True, True)
"""

from __future__ import annotations

import io
import math
import os
import zipfile
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from simrl.agents.metamodels import DTYPE, FitResult, ODEMetamodel, fit, make_metamodel, single_thread

__all__ = ["ControlLaw", "MetabolicTask", "NNController", "PredatorPreyTask", "TASKS", "rollout_cost", "ste_round"]

_SAVE_FORMAT = "simrl.agents.nn_controller.NNController"
_SAVE_VERSION = 2  # 2: MetabolicTask without feed_guard, time-aware law


# ---------------------------------------------------------------------------------------------
# 0. The straight-through estimator
# ---------------------------------------------------------------------------------------------
def ste_round(x: torch.Tensor) -> torch.Tensor:
    """``round(x)`` in the forward pass, identity in the backward pass (straight-through estimator)."""
    return x + (torch.round(x) - x).detach()


# ---------------------------------------------------------------------------------------------
# 1. Task adapters: the environment's observation, action and objective in metamodel units
# ---------------------------------------------------------------------------------------------
@dataclass
class PredatorPreyTask:
    """``simrl/PredatorPrey-v0`` seen by the metamodel (numbers copied from the env's settings).

    Metamodel state ``x = counts / reference`` (grass, sheep, wolves); the env's per-tick cost
    (``PredatorPreyEnv``, "Reward") in these units is
    ``c = sum_j w_j (x_j - x*_j)^2 + lambda (p_s x_S + p_w x_W)``, and an action ``a`` in
    [0, 1]^2 is the removal ``p = a * max_removal``, i.e. the metamodel's ``u = (0, p_s, p_w)``.
    """

    reference: tuple[float, float, float]
    obs_scale: tuple[float, float, float]
    target: tuple[float, float, float]
    weights: tuple[float, float, float]
    effort_weight: float
    max_removal: tuple[float, float]
    ticks_per_action: int
    episode_ticks: int
    extinction_cost: float
    #: below this fraction of its reference a population is treated as on the way to extinction
    #: (a soft stand-in for the env's extinction penalty, which a deterministic ODE never triggers).
    extinction_margin: float = 0.05
    metamodel: str = "predator_prey_case1"
    action_dim: int = 2
    n_states: int = 3

    @classmethod
    def from_settings(cls, s: Any) -> "PredatorPreyTask":
        return cls(reference=tuple(map(float, s.reference)), obs_scale=tuple(map(float, s.obs_scale)),
                   target=tuple(map(float, s.target)), weights=tuple(map(float, s.weights)),
                   effort_weight=float(s.effort_weight), max_removal=tuple(map(float, s.max_removal)),
                   ticks_per_action=int(s.ticks_per_action), episode_ticks=int(s.episode_ticks),
                   extinction_cost=float(s.extinction_cost))  # fmt: skip

    @property
    def n_features(self) -> int:
        return 2 * self.n_states

    def make_metamodel(self) -> ODEMetamodel:
        return make_metamodel(self.metamodel)

    @property
    def n_decisions(self) -> int:
        return self.episode_ticks // self.ticks_per_action

    def state_from_obs(self, obs: np.ndarray) -> np.ndarray:
        """Observations (B, 9) -> metamodel states (B, 3): counts / reference."""
        return np.asarray(obs, dtype=np.float64)[:, :3] * np.asarray(self.obs_scale) / np.asarray(self.reference)

    def progress_from_obs(self, obs: np.ndarray) -> np.ndarray:
        """Elapsed fraction of the episode (unused: this task's law is autonomous state feedback)."""
        return np.zeros(np.shape(obs)[0])

    def features(self, x: torch.Tensor, progress: torch.Tensor | None = None) -> torch.Tensor:
        """The law's input: the state and its offset from the target (both in reference units);
        ``progress`` is ignored (a steady-state target needs no clock)."""
        target = torch.as_tensor(self.target, dtype=x.dtype) / torch.as_tensor(self.reference, dtype=x.dtype)
        return torch.cat([x, x - target], dim=-1)

    def controls(self, action: torch.Tensor, x: torch.Tensor, integer: bool = False) -> torch.Tensor:
        """Metamodel removal rates ``(0, p_s, p_w)`` for actions (B, 2) in [0, 1] at states x (B, 3).

        ``integer=True``: the expected removals per tick ``p * count`` are rounded to whole
        animals with the straight-through estimator, i.e. the rate is ``round(p n) / n``.
        """
        p = action * torch.as_tensor(self.max_removal, dtype=action.dtype)
        if integer:
            n = (x[:, 1:] * torch.as_tensor(self.reference[1:], dtype=x.dtype)).clamp(min=1.0)
            p = ste_round(p * n) / n
        return torch.cat([torch.zeros_like(p[:, :1]), p], dim=1)

    def tick_cost(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """The env's per-tick cost c (B,) at states x (B, 3) under removal rates u (B, 3), plus the
        soft extinction penalty ``extinction_cost * clamp(1 - x_j / margin, 0, 1)`` for sheep, wolves."""
        ref = torch.as_tensor(self.reference, dtype=x.dtype)
        target = torch.as_tensor(self.target, dtype=x.dtype) / ref
        w = torch.as_tensor(self.weights, dtype=x.dtype)
        dist = (w * (x - target) ** 2).sum(-1)
        effort = u[:, 1] * x[:, 1] + u[:, 2] * x[:, 2]
        extinct = (1.0 - x[:, 1:] / self.extinction_margin).clamp(0.0, 1.0).amax(-1)
        return dist + self.effort_weight * effort + self.extinction_cost * extinct

    def new_accumulator(self, x0: torch.Tensor) -> tuple[torch.Tensor, int]:
        return torch.zeros((), dtype=x0.dtype), 0

    def accumulate(self, acc, model, coeffs, x, x_new, u, h):
        """Add the batch-mean cost at the end of one RK4 step (the env averages c_t over ticks)."""
        return acc[0] + self.tick_cost(x_new, u).mean(), acc[1] + 1

    def objective(self, acc, ticks: float) -> torch.Tensor:
        return acc[0] / max(acc[1], 1)

    def valid_rows(self, x: np.ndarray) -> np.ndarray:
        """Observed states usable for fitting: no extinct population (an absorbing state the
        metamodel's log-space fit cannot represent; the env ends the episode there)."""
        return np.all(x[:, 1:] > 0, axis=1)


@dataclass
class MetabolicTask:
    """``simrl/MetabolicPathway-v0`` seen by the metamodel (numbers copied from the env's settings).

    Metamodel state ``x = free (S, P, Q, R, T) / unit`` with ONE unit for all species (the
    published steady-state S at this scale), so the pathway's stoichiometry stays 1:1; an
    action ``a`` is the feed ``(feed_min + a * (feed_max - feed_min)) * effective_scale / unit``
    per step. The objective is the env's: minus the overall yield ``product formed / (substrate
    stock at the start + substrate fed)`` over the rollout, with the product formed = the time
    integral of its Michaelis-Menten flux (F_O for T, F_I for R) and the stock = free S + P + Q
    of the start state (the metamodel has no enzyme complexes; in the shipped ABM start states
    3 % of the stock is bound). The yield rewards a time-varying feed (stop feeding before the end to convert the
    stock), so the law also sees the elapsed fraction of the episode (the env's observation 12).
    Removals are not integers here: ``integer`` is ignored (the ABM carries fractional feed over).
    """

    reference: tuple[float, ...]
    feed_max: float
    feed_min: float
    effective_scale: float
    product: str
    dilution: float
    ticks_per_action: int
    episode_ticks: int
    metamodel: str = "michaelis_menten"
    action_dim: int = 1
    n_states: int = 5

    @classmethod
    def from_settings(cls, s: Any) -> "MetabolicTask":
        return cls(reference=tuple(map(float, s.reference)), feed_max=float(s.feed_max), feed_min=float(s.feed_min),
                   effective_scale=float(s.params.effective_scale), product=str(s.product), dilution=float(s.params.dilution),
                   ticks_per_action=int(s.steps_per_action), episode_ticks=int(s.episode_steps))  # fmt: skip

    @property
    def unit(self) -> float:
        return self.reference[0]

    @property
    def n_features(self) -> int:
        return self.n_states + 1

    @property
    def n_decisions(self) -> int:
        return self.episode_ticks // self.ticks_per_action

    def make_metamodel(self) -> ODEMetamodel:
        # Starting guess in these units: fluxes of order the feed (about 1 / 1246 per step).
        return make_metamodel(self.metamodel, params=[2e-3, 1.0, 1.0] * 3 + [2e-3, 1.0, 1.0, 1.0, 1.0],
                              dilution=self.dilution)  # fmt: skip

    def state_from_obs(self, obs: np.ndarray) -> np.ndarray:
        """Observations (B, 14) -> metamodel states (B, 5): free counts / unit."""
        return np.asarray(obs, dtype=np.float64)[:, :5] * np.asarray(self.reference) / self.unit

    def progress_from_obs(self, obs: np.ndarray) -> np.ndarray:
        """Elapsed fraction of the episode: the env's observation 12."""
        return np.asarray(obs, dtype=np.float64)[:, 12]

    def features(self, x: torch.Tensor, progress: torch.Tensor | None = None) -> torch.Tensor:
        """The law's input: each species relative to its reference steady state (the env's
        levels) and the elapsed fraction of the episode (0 when not given)."""
        level = x * (self.unit / torch.as_tensor(self.reference, dtype=x.dtype))
        clock = torch.zeros(x.shape[:-1], dtype=x.dtype) if progress is None else progress.to(x.dtype)
        return torch.cat([level, clock.expand(x.shape[:-1]).unsqueeze(-1)], dim=-1)

    def controls(self, action: torch.Tensor, x: torch.Tensor, integer: bool = False) -> torch.Tensor:
        return (self.feed_min + action * (self.feed_max - self.feed_min)) * (self.effective_scale / self.unit)

    def new_accumulator(self, x0: torch.Tensor):
        """(product formed, substrate fed, last product flux, substrate stock at the start)."""
        zero = torch.zeros(x0.shape[0], dtype=x0.dtype)
        return zero, zero, None, x0[:, :3].sum(dim=1)

    def accumulate(self, acc, model, coeffs, x, x_new, u, h):
        """Trapezoidal product formation and the substrate fed over one RK4 step (the flux at the
        step's end is carried to the next step; process noise between decisions is ignored there)."""
        j = 3 if self.product == "T" else 2  # F_O forms T, F_I forms R
        before = model.rates(x, coeffs)[:, j] if acc[2] is None else acc[2]
        after = model.rates(x_new, coeffs)[:, j]
        return acc[0] + 0.5 * h * (before + after), acc[1] + h * u[:, 0], after, acc[3]

    def objective(self, acc, ticks: float) -> torch.Tensor:
        supplied = torch.clamp(acc[3] + acc[1], min=1.0 / self.unit)  # at least one molecule
        return -(acc[0] / supplied).mean()

    def valid_rows(self, x: np.ndarray) -> np.ndarray:
        return np.all(np.isfinite(x), axis=1)


#: Task adapters by the class name of the environment's settings object.
TASKS: dict[str, Callable[[Any], Any]] = {
    "PredatorPreySettings": PredatorPreyTask.from_settings,
    "MetabolicSettings": MetabolicTask.from_settings,
}

_TASK_CLASSES = {"PredatorPreyTask": PredatorPreyTask, "MetabolicTask": MetabolicTask}


def make_task(env: Any) -> Any:
    """The task adapter of an SB3 VecEnv (or Gymnasium env) from its ``settings`` object."""
    try:
        settings = env.get_attr("settings")[0] if hasattr(env, "get_attr") else getattr(env, "settings")
    except AttributeError:
        settings = None
    name = type(settings).__name__
    if name not in TASKS:
        raise ValueError(f"NNController has no task adapter for environments with settings {name}; "
                         f"accepted: {sorted(TASKS)}")
    return TASKS[name](settings)


# ---------------------------------------------------------------------------------------------
# 2. The control law and its differentiable rollout through the metamodel
# ---------------------------------------------------------------------------------------------
class ControlLaw(nn.Module):
    """MLP ``features -> tanh hidden layers -> sigmoid`` giving actions in (0, 1)^action_dim.

    The last layer starts at zero weight, so the initial law is a constant (its bias), which
    :meth:`NNController.learn` first fits as the metamodel's best constant action.
    """

    def __init__(self, n_features: int, action_dim: int, hidden: tuple[int, ...] = (32, 32),
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        if any(int(h) < 1 for h in hidden):
            raise ValueError(f"hidden layer widths must be >= 1, got {hidden!r}")
        sizes = [int(n_features), *map(int, hidden)]
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b, dtype=DTYPE), nn.Tanh()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(sizes[-1], int(action_dim), dtype=DTYPE)
        with torch.no_grad():  # initialised from `generator`, never from torch's global RNG
            for layer in self.body:
                if isinstance(layer, nn.Linear):
                    bound = 1.0 / math.sqrt(layer.in_features)
                    layer.weight.uniform_(-bound, bound, generator=generator)
                    layer.bias.uniform_(-bound, bound, generator=generator)
            self.head.weight.zero_()
            self.head.bias.zero_()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.head(self.body(features)))


def rollout_cost(law: nn.Module, model: ODEMetamodel, task: Any, x0: torch.Tensor, n_decisions: int,
                 substeps: int = 2, integer_removals: bool = False,
                 noise: torch.Tensor | None = None) -> torch.Tensor:
    """The env's objective for the closed loop ``law`` + ``model`` from states ``x0`` (B, n_states).

    Every ``task.ticks_per_action`` ticks the law picks an action from the current state and the
    elapsed fraction ``k / task.n_decisions`` of an episode (rollouts start at an episode start); the
    metamodel advances with ``substeps`` RK4 steps per decision, and after each RK4 step the
    task accumulates its objective (:meth:`PredatorPreyTask.accumulate`: the mean per-tick cost,
    sampled every ``ticks_per_action / substeps`` ticks; :meth:`MetabolicTask.accumulate`: product
    formed and substrate fed, whose ratio is the yield). ``noise`` (B, n_decisions, n_states),
    optional: the state is multiplied by ``exp(noise)`` after each decision interval (process noise).
    """
    h = task.ticks_per_action / substeps
    x = x0
    n_episode = max(task.n_decisions, 1)
    coeffs = model.coefficients()  # once per rollout: the parameters do not change within it
    acc = task.new_accumulator(x0)
    for k in range(n_decisions):
        progress = torch.full((x.shape[0],), min(k / n_episode, 1.0), dtype=x.dtype)
        action = law(task.features(x, progress))
        u = task.controls(action, x, integer_removals)
        for s in range(substeps):
            if integer_removals and s:
                u = task.controls(action, x, True)  # whole animals of the current populations
            x_new = model.step(x, u, h, 1, coeffs)
            acc = task.accumulate(acc, model, coeffs, x, x_new, u, h)
            x = x_new
        if noise is not None:
            x = x * torch.exp(noise[:, k])
    return task.objective(acc, n_decisions * substeps * h)


# ---------------------------------------------------------------------------------------------
# 3. The agent
# ---------------------------------------------------------------------------------------------
@dataclass
class _Data:
    """ABM trajectories at decision times: states (N, T + 1, d) and actions (N, T, m) per segment."""

    states: list[np.ndarray] = field(default_factory=list)
    actions: list[np.ndarray] = field(default_factory=list)


class NNController:
    """Dynamics-informed neural-network controller (module docstring); SB3-like API.

    Keyword arguments (``configs/agent/nn_controller.yaml``):

    ==================== ======== ===========================================================
    hidden               (32, 32) widths of the law's hidden tanh layers
    refit_rounds         0        closed-loop collect -> refit -> retrain rounds after the first
    explore_hold         (3, 15)  decisions a random exploration action is held (min, max)
    explore_noise        0.1      std of the Gaussian action noise in closed-loop rounds
    fit_horizon          5        decision intervals per fitted prediction window
    fit_iterations       200      L-BFGS loss evaluations of the metamodel fit
    substeps             2        RK4 steps per decision interval
    train_iterations     200      Adam steps of the law (the first quarter: constant law only)
    batch_size           32       start states per training rollout
    horizon_decisions    40       rollout length in decisions (None: one episode)
    learning_rate        0.01     Adam learning rate of the law
    process_noise        True     multiplicative noise of the metamodel residuals' size
    integer_removals     False    whole animals per tick through the straight-through estimator
    max_env_steps        None     cap on the ABM steps of ``learn`` (an env's ``total_timesteps``
                                  is sized for RL; this method needs far fewer)
    ==================== ======== ===========================================================
    """

    def __init__(self, env: Any = None, seed: int | None = None, device: str = "cpu",
                 tensorboard_log: str | None = None, verbose: int = 0, *,
                 hidden: tuple[int, ...] | list[int] = (32, 32), refit_rounds: int = 0,
                 explore_hold: tuple[int, int] | list[int] = (3, 15), explore_noise: float = 0.1,
                 fit_horizon: int = 5, fit_iterations: int = 200, substeps: int = 2,
                 train_iterations: int = 200, batch_size: int = 32, horizon_decisions: int | None = 40,
                 learning_rate: float = 0.01, process_noise: bool = True,
                 integer_removals: bool = False, max_env_steps: int | None = None, task: Any = None) -> None:
        self.kwargs = dict(hidden=tuple(int(h) for h in hidden), refit_rounds=int(refit_rounds),
                           explore_hold=tuple(int(v) for v in explore_hold), explore_noise=float(explore_noise),
                           fit_horizon=int(fit_horizon), fit_iterations=int(fit_iterations),
                           substeps=int(substeps), train_iterations=int(train_iterations),
                           batch_size=int(batch_size),
                           horizon_decisions=None if horizon_decisions is None else int(horizon_decisions),
                           learning_rate=float(learning_rate), process_noise=bool(process_noise),
                           integer_removals=bool(integer_removals),
                           max_env_steps=None if max_env_steps is None else int(max_env_steps))  # fmt: skip
        self._check_kwargs()
        self.seed = seed
        self.device = "cpu"  # a few thousand tiny ops per rollout: the CPU is faster than a GPU here
        self.verbose = int(verbose)
        self.tensorboard_log = tensorboard_log
        self.env = env
        if task is None:
            if env is None:
                raise ValueError("NNController needs an env (or a task when loading)")
            task = make_task(env)
        self.task = task
        gen = torch.Generator().manual_seed(0 if seed is None else int(seed))
        self._torch_gen = gen
        self._rng = np.random.default_rng(seed)
        self.law = ControlLaw(task.n_features, task.action_dim, self.kwargs["hidden"], generator=gen)
        self.metamodel: ODEMetamodel = task.make_metamodel()
        self.noise_std = np.zeros(task.n_states)
        self.fit_results: list[dict[str, Any]] = []
        self.train_history: list[dict[str, float]] = []
        self.num_timesteps = 0
        self._data = _Data()
        if env is not None and seed is not None:
            env.seed(int(seed))

    def _check_kwargs(self) -> None:
        k = self.kwargs
        for name in ("refit_rounds", "fit_iterations", "train_iterations"):
            if k[name] < 0:
                raise ValueError(f"{name} must be >= 0, got {k[name]}")
        for name in ("fit_horizon", "substeps", "batch_size"):
            if k[name] < 1:
                raise ValueError(f"{name} must be >= 1, got {k[name]}")
        lo, hi = k["explore_hold"] if len(k["explore_hold"]) == 2 else (0, -1)
        if not 1 <= lo <= hi:
            raise ValueError(f"explore_hold must be (min, max) decisions with 1 <= min <= max, got {k['explore_hold']}")
        if k["max_env_steps"] is not None and k["max_env_steps"] < 1:
            raise ValueError(f"max_env_steps must be >= 1 or None, got {k['max_env_steps']}")
        if k["horizon_decisions"] is not None and k["horizon_decisions"] < 1:
            raise ValueError(f"horizon_decisions must be >= 1 or None, got {k['horizon_decisions']}")
        if not (k["learning_rate"] > 0 and k["explore_noise"] >= 0):
            raise ValueError("learning_rate must be > 0 and explore_noise >= 0")

    # ---- 1. ABM data --------------------------------------------------------------------------
    def _collect(self, n_steps: int, closed_loop: bool) -> None:
        """Run the env for ``n_steps`` vector steps; append the finished segments to the data.

        Open loop: each episode of each copy alternates random actions ``U(0, 1)^2`` held for a
        random number of decisions (``explore_hold``) -- constant rates (long holds) and random
        switching both occur. Closed loop: the current law plus Gaussian noise.
        """
        env, task, rng = self.env, self.task, self._rng
        n_envs = env.num_envs
        lo, hi = self.kwargs["explore_hold"]
        obs = env.reset()
        states = [[task.state_from_obs(obs)[i]] for i in range(n_envs)]
        actions: list[list[np.ndarray]] = [[] for _ in range(n_envs)]
        current = rng.uniform(0.0, 1.0, size=(n_envs, task.action_dim)) ** 2
        hold = rng.integers(lo, hi + 1, size=n_envs)
        for _ in range(n_steps):
            if closed_loop:
                act = self.predict(obs)[0].astype(np.float64)
                act = np.clip(act + self.kwargs["explore_noise"] * rng.standard_normal(act.shape), 0.0, 1.0)
            else:
                expired = hold <= 0
                # Squared uniform draws: half of the actions below 0.25, where the populations
                # survive (at action 1, 5 % culling per tick, the wolves die out within ~100 ticks).
                current[expired] = rng.uniform(0.0, 1.0, size=(int(expired.sum()), task.action_dim)) ** 2
                hold[expired] = rng.integers(lo, hi + 1, size=int(expired.sum()))
                hold -= 1
                act = current.copy()
            obs, _, dones, infos = env.step(act.astype(np.float32))
            self.num_timesteps += n_envs
            for i in range(n_envs):
                actions[i].append(act[i])
                last = infos[i]["terminal_observation"] if dones[i] else obs[i]
                states[i].append(task.state_from_obs(np.asarray(last)[None])[0])
                if dones[i]:
                    self._store(states[i], actions[i])
                    states[i], actions[i] = [task.state_from_obs(obs)[i]], []
        for i in range(n_envs):  # unfinished episodes are data too
            self._store(states[i], actions[i])

    def _store(self, states: list[np.ndarray], actions: list[np.ndarray]) -> None:
        x = np.asarray(states)
        valid = self.task.valid_rows(x)
        n = int(np.argmin(valid)) if not valid.all() else len(x)  # cut at the first extinct state
        if n >= 2:
            self._data.states.append(x[:n])
            self._data.actions.append(np.asarray(actions)[: n - 1])

    # ---- 2. the metamodel ---------------------------------------------------------------------
    def _fit_metamodel(self) -> FitResult:
        """Fit the metamodel on all data so far (windows of equal length across segments)."""
        task, k = self.task, self.kwargs
        horizon = k["fit_horizon"]
        xs, us = [], []
        for x, a in zip(self._data.states, self._data.actions):
            u = self._controls_np(a, x[:-1])
            for s in range(0, len(a) - horizon + 1, horizon):  # non-overlapping chunks, fit() windows inside
                xs.append(x[s:s + horizon + 1])
                us.append(u[s:s + horizon])
        if not xs:
            raise RuntimeError("no usable ABM segment to fit the metamodel on: collect more steps "
                               f"(each needs > fit_horizon = {horizon} decisions before an extinction)")
        states, controls = np.stack(xs), np.stack(us)
        result = fit(self.metamodel, states, controls, dt=float(task.ticks_per_action), horizon=horizon,
                     substeps=k["substeps"], iterations=k["fit_iterations"])  # fmt: skip
        # One-interval log residuals: the size of the process noise in the training rollouts.
        with torch.no_grad():
            x0 = torch.as_tensor(states[:, :-1].reshape(-1, task.n_states))
            u0 = torch.as_tensor(controls.reshape(-1, controls.shape[-1]))
            pred = self.metamodel.step(x0, u0, float(task.ticks_per_action), k["substeps"])
            obs = torch.as_tensor(states[:, 1:].reshape(-1, task.n_states))
            resid = torch.log(obs + 1e-3) - torch.log(pred + 1e-3)
        # A non-positive prediction (a metamodel blow-up) gives a NaN residual: no noise rather than NaN weights later.
        self.noise_std = np.nan_to_num(resid.std(dim=0).numpy(), nan=0.0, posinf=0.0, neginf=0.0)
        self.fit_results.append({**asdict(result), "history": [], "noise_std": self.noise_std.tolist(),
                                 "windows": int(len(states))})
        if self.verbose:
            print(f"metamodel fit: rmse {result.rmse:.4f} {result.rmse_by_state} params {result.params}")
        return result

    def _controls_np(self, actions: np.ndarray, states: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.task.controls(torch.as_tensor(actions, dtype=DTYPE), torch.as_tensor(states, dtype=DTYPE)).numpy()

    # ---- 3. the law ---------------------------------------------------------------------------
    def _start_states(self, n: int) -> torch.Tensor:
        """Training start states: half episode starts (the env's start distribution), half any visited state."""
        starts = np.stack([x[0] for x in self._data.states])
        visited = np.concatenate(self._data.states)
        g = self._torch_gen
        i = torch.randint(len(starts), (n - n // 2,), generator=g)
        j = torch.randint(len(visited), (n // 2,), generator=g)
        return torch.cat([torch.as_tensor(starts)[i], torch.as_tensor(visited)[j]])

    def _train_law(self, writer: Any = None) -> None:
        k, task = self.kwargs, self.task
        n_dec = k["horizon_decisions"] or task.n_decisions
        iters = k["train_iterations"]
        for p in self.metamodel.parameters():
            p.requires_grad_(False)
        # Phase A (first quarter): the best constant action on the metamodel (head bias only);
        # phase B: the whole network, i.e. state feedback around that constant.
        phases = [([self.law.head.bias], iters // 4), (list(self.law.parameters()), iters - iters // 4)]
        step = len(self.train_history)
        with single_thread():  # tiny tensors: one torch thread (see metamodels.single_thread)
            self._optimise_law(phases, n_dec, step, writer)
        for p in self.metamodel.parameters():
            p.requires_grad_(True)

    def _optimise_law(self, phases, n_dec: int, step: int, writer: Any) -> None:
        k, task = self.kwargs, self.task
        for params, n_iter in phases:
            opt = torch.optim.Adam(params, lr=k["learning_rate"] * (5.0 if len(params) == 1 else 1.0))
            for _ in range(n_iter):
                x0 = self._start_states(k["batch_size"])
                noise = None
                if k["process_noise"]:
                    std = torch.as_tensor(self.noise_std, dtype=DTYPE)
                    noise = std * torch.randn(k["batch_size"], n_dec, task.n_states, generator=self._torch_gen, dtype=DTYPE)
                opt.zero_grad()
                loss = rollout_cost(self.law, self.metamodel, task, x0, n_dec, k["substeps"],
                                    k["integer_removals"], noise)  # fmt: skip
                if not torch.isfinite(loss):
                    # A rollout that blew up (RK4 on a stiff draw) would turn every weight into NaN:
                    # skip this batch, record it, keep the law.
                    self.train_history.append({"step": step, "loss": float("nan"), "skipped": True})
                    step += 1
                    continue
                loss.backward()
                nn.utils.clip_grad_norm_(params, 1.0)
                opt.step()
                self.train_history.append({"step": step, "loss": loss.item()})
                if writer is not None:
                    writer.add_scalar("train/metamodel_objective", loss.item(), step)
                step += 1

    def learn(self, total_timesteps: int, callback: Any = None, progress_bar: bool = False, **_: Any) -> "NNController":
        """Collect ABM data (``total_timesteps`` env steps over all rounds), fit, train; see the module docstring."""
        if callback is not None:
            raise ValueError("NNController takes no SB3 callbacks; set sb3_callbacks: false in its agent config")
        if self.env is None:
            raise ValueError("learn() needs an env: NNController.load(path, env=env) or NNController(env, ...)")
        rounds = 1 + self.kwargs["refit_rounds"]
        n_envs = self.env.num_envs
        budget = int(total_timesteps)
        if self.kwargs["max_env_steps"] is not None:
            budget = min(budget, self.kwargs["max_env_steps"])
        per_round = max(budget // (rounds * n_envs), self.kwargs["fit_horizon"] + 1)
        writer = _summary_writer(self.tensorboard_log)
        try:
            for r in range(rounds):
                self._collect(per_round, closed_loop=r > 0)
                result = self._fit_metamodel()
                if writer is not None:
                    writer.add_scalar("metamodel/rmse", result.rmse, r)
                self._train_law(writer)
                if self.verbose:
                    print(f"round {r}: metamodel objective {self.train_history[-1]['loss']:.4g}")
        finally:
            if writer is not None:
                writer.close()
        return self

    # ---- 4. deployment ------------------------------------------------------------------------
    def predict(self, observation: np.ndarray, state: Any = None, episode_start: Any = None,
                deterministic: bool = True) -> tuple[np.ndarray, None]:
        """Actions (B, action_dim) float32 for observations (B, obs_dim); a single obs gives (action_dim,)."""
        obs = np.asarray(observation, dtype=np.float64)
        single = obs.ndim == 1
        obs = obs[None] if single else obs
        with torch.no_grad():
            x = torch.as_tensor(self.task.state_from_obs(obs), dtype=DTYPE)
            progress = torch.as_tensor(self.task.progress_from_obs(obs), dtype=DTYPE)
            actions = self.law(self.task.features(x, progress)).numpy().astype(np.float32)
        return (actions[0] if single else actions), None

    # ---- persistence --------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Write everything needed to predict (and to continue learning) to a ``.zip`` (torch.save)."""
        path = str(path)
        if not path.endswith(".zip"):
            path += ".zip"
        payload = {
            "format": _SAVE_FORMAT,
            "version": _SAVE_VERSION,
            "kwargs": self.kwargs,
            "seed": self.seed,
            "task_class": type(self.task).__name__,
            "task": asdict(self.task),
            "law": self.law.state_dict(),
            "metamodel": {"name": self.task.metamodel, "log_params": self.metamodel.log_params.detach().clone()},
            "noise_std": self.noise_std.tolist(),
            "fit_results": self.fit_results,
            "train_history": self.train_history,
            "num_timesteps": self.num_timesteps,
        }
        torch.save(payload, path)

    @classmethod
    def load(cls, path: str | os.PathLike, env: Any = None, device: str = "auto", **_: Any) -> "NNController":
        """The controller saved at ``path`` (``.zip`` appended when missing); ``env`` to continue learning."""
        path = str(path)
        if not os.path.exists(path) and os.path.exists(path + ".zip"):
            path += ".zip"
        if not zipfile.is_zipfile(path):
            raise ValueError(f"{path} is not an NNController file (not a zip archive)")
        with open(path, "rb") as f:
            payload = torch.load(io.BytesIO(f.read()), map_location="cpu", weights_only=True)
        if not isinstance(payload, dict) or payload.get("format") != _SAVE_FORMAT:
            raise ValueError(f"{path} is not an NNController file")
        if payload["version"] != _SAVE_VERSION:
            raise ValueError(f"{path} has NNController save version {payload['version']}, this code reads {_SAVE_VERSION}")
        task_cls = _TASK_CLASSES[payload["task_class"]]
        task = task_cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in payload["task"].items()})
        self = cls(env=env, seed=payload["seed"], task=task, **payload["kwargs"])
        self.law.load_state_dict(payload["law"])
        with torch.no_grad():
            self.metamodel.log_params.copy_(payload["metamodel"]["log_params"])
        self.noise_std = np.asarray(payload["noise_std"], dtype=np.float64)
        self.fit_results = payload["fit_results"]
        self.train_history = payload["train_history"]
        self.num_timesteps = int(payload["num_timesteps"])
        return self

    def get_env(self) -> Any:
        return self.env

    def set_env(self, env: Any) -> None:
        self.env = env


def _summary_writer(log_dir: str | None):
    """A TensorBoard writer in ``<log_dir>/nn_controller_<n>`` (SB3's naming), or None."""
    if not log_dir:
        return None
    from stable_baselines3.common.utils import get_latest_run_id
    from torch.utils.tensorboard import SummaryWriter

    run = get_latest_run_id(log_dir, "nn_controller") + 1
    return SummaryWriter(os.path.join(log_dir, f"nn_controller_{run}"))
