"""Mesa 3 versions of the two digital-twin ABMs (the form Mesa users read, extend and visualise).

* :class:`PredatorPreyMesa` -- NetLogo's Wolf Sheep Predation (sheep-wolves-grass), the same
  rules, order and parameters as the Numba core :mod:`simrl.physics.ecology.predator_prey`.
* :class:`MetabolicPathwayMesa` -- the toy metabolic pathway, the same rules as
  :mod:`simrl.physics.ecology.metabolic`, written as a direct transcription of the MATLAB
  script's loops (each enzyme tries the ligands on its patch in a random order and binds the
  first success), so it also checks the Numba core's equivalent "one success chosen
  uniformly" formulation.

Both are ordinary ``mesa.Model`` subclasses: agents are ``mesa.discrete_space.CellAgent``
instances on an ``OrthogonalMooreGrid`` torus whose cells are the patches; they also carry a
continuous position (``x``, ``y``) inside their cell, which is what the rules move. Grass is
a pair of ``PropertyLayer`` objects (``grass``, ``countdown``). A ``DataCollector`` records the
counts after setup and after every step. Randomness comes only from the model's own
generators (``model.random``, seeded by ``super().__init__(seed=seed)``), so a seed fixes a run.

They are reference implementations, not fast ones: they agree statistically with the Numba
cores (``tests/physics/test_mesa_models.py`` compares means over seeds) and are about two
orders of magnitude slower (``benchmarks/bench_ecology.py``).
"""

from __future__ import annotations

import math
from typing import Sequence

import mesa
import numpy as np
from mesa.discrete_space import CellAgent, OrthogonalMooreGrid

from simrl.physics.ecology.metabolic import (
    BINDER_ORDER,
    ENZYME_STATES,
    METABOLITES,
    SPECIES,
    MetabolicParams,
    _as_params as _as_metabolic_params,
    _BINDING,
    _SEPARATION,
)
from simrl.physics.ecology.predator_prey import PredatorPreyParams, _as_params as _as_pp_params

__all__ = ["MetabolicPathwayMesa", "PredatorPreyMesa", "Sheep", "Wolf", "Molecule", "Enzyme"]


def _check_removal(removal) -> tuple[float, float]:
    try:
        r = tuple(float(v) for v in removal)
    except (TypeError, ValueError):
        raise ValueError(f"removal must be probabilities (p_sheep, p_wolf) in [0, 1], got {removal!r}") from None
    if len(r) != 2 or not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in r):
        raise ValueError(f"removal must be probabilities (p_sheep, p_wolf) in [0, 1], got {removal!r}")
    return r


# --------------------------------------------------------------------------------------
# Sheep-wolves-grass
# --------------------------------------------------------------------------------------


class Animal(CellAgent):
    """A sheep or wolf: continuous position, heading (degrees clockwise from north), energy."""

    def __init__(self, model: "PredatorPreyMesa", x: float, y: float, heading: float, energy: float):
        super().__init__(model)
        self.x, self.y, self.heading, self.energy = x, y, heading, energy
        self.cell = model.patch_at(x, y)

    def _forward(self, distance: float = 1.0) -> None:
        m = self.model
        rad = math.radians(self.heading)
        self.x = m.wrap_x(self.x + distance * math.sin(rad))
        self.y = m.wrap_y(self.y + distance * math.cos(rad))
        self.cell = m.patch_at(self.x, self.y)

    def move(self) -> None:
        """``rt random 50  lt random 50  fd 1``."""
        r = self.random
        self.heading = (self.heading + r.randrange(50) - r.randrange(50)) % 360.0
        self._forward()

    def reproduce(self, probability: float) -> None:
        """With ``probability``: halve the energy and hatch one offspring (``rt random-float 360 fd 1``)."""
        if self.random.random() < probability:
            self.energy *= 0.5
            child = type(self)(self.model, self.x, self.y, self.heading, self.energy)
            child.heading = (child.heading + self.random.random() * 360.0) % 360.0
            child._forward()


class Sheep(Animal):
    def step(self) -> None:
        m = self.model
        self.move()
        self.energy -= 1.0
        if self.cell.grass:
            self.cell.grass = False
            self.energy += m.params.sheep_gain_from_food
        if self.energy < 0.0:
            self.remove()
            return
        self.reproduce(m.params.sheep_reproduce)


class Wolf(Animal):
    def step(self) -> None:
        m = self.model
        self.move()
        self.energy -= 1.0
        prey = [a for a in self.cell.agents if isinstance(a, Sheep)]
        if prey:
            self.random.choice(prey).remove()
            self.energy += m.params.wolf_gain_from_food
        if self.energy < 0.0:
            self.remove()
            return
        self.reproduce(m.params.wolf_reproduce)


class PredatorPreyMesa(mesa.Model):
    """NetLogo Wolf Sheep Predation in Mesa 3, with per-tick removal (the control input).

    >>> model = PredatorPreyMesa(PredatorPreyParams(width=21, height=21, initial_sheep=30,
    ...                                             initial_wolves=10), seed=1)
    >>> for _ in range(5):
    ...     model.step()
    >>> model.datacollector.get_model_vars_dataframe().shape
    (6, 3)

    ``params``: :class:`~simrl.physics.ecology.predator_prey.PredatorPreyParams` (or a dict),
    default the NetLogo big world. ``removal``: (p_sheep, p_wolf), each sheep / wolf removed
    independently with that probability after the wolves move (settable between steps via
    :attr:`removal`). Per tick: sheep (random order, newborns wait), wolves, removal, grass.
    """

    def __init__(self, params: PredatorPreyParams | dict | None = None, seed: int | None = None,
                 removal: Sequence[float] = (0.0, 0.0)):
        super().__init__(seed=seed)
        self.params = p = _as_pp_params(params)
        self.removal = _check_removal(removal)
        self.width, self.height = p.width, p.height
        self.grid = OrthogonalMooreGrid((p.width, p.height), torus=True, capacity=None, random=self.random)
        self.grid.create_property_layer("grass", default_value=False, dtype=bool)
        self.grid.create_property_layer("countdown", default_value=0, dtype=int)
        grass = self.grid._mesa_property_layers["grass"].data
        countdown = self.grid._mesa_property_layers["countdown"].data
        reg = p.grass_regrowth_time
        for ix in range(p.width):  # setup: each patch green or brown with probability 1/2
            for iy in range(p.height):
                g = self.random.random() < 0.5
                grass[ix, iy] = g
                countdown[ix, iy] = reg if g else self.random.randrange(reg) if reg > 0 else 0
        for cls, n, gain in ((Sheep, p.initial_sheep, p.sheep_gain_from_food),
                             (Wolf, p.initial_wolves, p.wolf_gain_from_food)):
            n_energy = int(math.floor(2.0 * gain))
            for _ in range(n):
                cls(self, self.random.random() * p.width, self.random.random() * p.height,
                    float(self.random.randrange(360)), float(self.random.randrange(n_energy) if n_energy > 0 else 0))
        self.datacollector = mesa.DataCollector(model_reporters={
            "grass": lambda m: m.grass_count, "sheep": lambda m: m.sheep_count, "wolves": lambda m: m.wolf_count})
        self.datacollector.collect(self)

    @classmethod
    def from_state(cls, state, seed: int | None = None, removal: Sequence[float] = (0.0, 0.0)) -> "PredatorPreyMesa":
        """A Mesa model holding the grass and animals of a Numba-core snapshot
        (:class:`~simrl.physics.ecology.predator_prey.PredatorPreyState`), e.g. a warmed-up
        steady state; it continues with the Mesa model's own random stream from ``seed``."""
        state.validate()
        model = cls(state.params.replace(initial_sheep=0, initial_wolves=0), seed=seed, removal=removal)
        model.grid._mesa_property_layers["grass"].data[:] = np.asarray(state.green, bool).T
        model.grid._mesa_property_layers["countdown"].data[:] = np.asarray(state.countdown).T
        for cls_, arr in ((Sheep, state.sheep), (Wolf, state.wolves)):
            for x, y, heading, energy in np.asarray(arr).T:
                cls_(model, float(x), float(y), float(heading), float(energy))
        model.datacollector = mesa.DataCollector(model_reporters={
            "grass": lambda m: m.grass_count, "sheep": lambda m: m.sheep_count, "wolves": lambda m: m.wolf_count})
        model.datacollector.collect(model)
        return model

    # ---- geometry helpers ---------------------------------------------------------------

    def wrap_x(self, x: float) -> float:
        x %= self.width
        return 0.0 if x >= self.width else x

    def wrap_y(self, y: float) -> float:
        y %= self.height
        return 0.0 if y >= self.height else y

    def patch_at(self, x: float, y: float):
        return self.grid[(min(int(x), self.width - 1), min(int(y), self.height - 1))]

    # ---- counts -------------------------------------------------------------------------

    @property
    def grass_count(self) -> int:
        return int(self.grid._mesa_property_layers["grass"].data.sum())

    @property
    def sheep_count(self) -> int:
        return len(self.agents_by_type[Sheep]) if Sheep in self.agents_by_type else 0

    @property
    def wolf_count(self) -> int:
        return len(self.agents_by_type[Wolf]) if Wolf in self.agents_by_type else 0

    def counts(self) -> np.ndarray:
        """Current (grass, sheep, wolves), the order of ``predator_prey.COUNT_FIELDS``."""
        return np.array([self.grass_count, self.sheep_count, self.wolf_count], np.int64)

    # ---- dynamics -----------------------------------------------------------------------

    def step(self) -> None:
        if Sheep in self.agents_by_type:
            self.agents_by_type[Sheep].shuffle_do("step")  # a snapshot: newborns do not act
        if Wolf in self.agents_by_type:
            self.agents_by_type[Wolf].shuffle_do("step")
        p_sheep, p_wolf = _check_removal(self.removal)
        for cls, prob in ((Sheep, p_sheep), (Wolf, p_wolf)):
            if prob > 0.0 and cls in self.agents_by_type:
                for agent in list(self.agents_by_type[cls]):
                    if prob >= 1.0 or self.random.random() < prob:
                        agent.remove()
        grass = self.grid._mesa_property_layers["grass"].data
        countdown = self.grid._mesa_property_layers["countdown"].data
        brown = ~grass
        regrow = brown & (countdown <= 0)
        countdown[brown & ~regrow] -= 1
        grass[regrow] = True
        countdown[regrow] = self.params.grass_regrowth_time
        self.datacollector.collect(self)


# --------------------------------------------------------------------------------------
# Toy metabolic pathway
# --------------------------------------------------------------------------------------


class _Particle(CellAgent):
    """Something with a continuous position on the metabolic torus."""

    def __init__(self, model: "MetabolicPathwayMesa", x: float, y: float):
        super().__init__(model)
        self.x, self.y = x, y
        self.fresh = False  # created or changed in the current step (acts no more in it)
        self.cell = model.patch_at(x, y)

    def move(self, distance: float) -> None:
        m = self.model
        angle = self.random.random() * 2.0 * math.pi
        self.x = m.wrap(self.x + distance * math.cos(angle))
        self.y = m.wrap(self.y + distance * math.sin(angle))
        self.cell = m.patch_at(self.x, self.y)


class Molecule(_Particle):
    """A free metabolite; ``species`` is one of ``METABOLITES``."""

    def __init__(self, model, x, y, species: str):
        super().__init__(model, x, y)
        self.species = species


class Enzyme(_Particle):
    """An enzyme unit; ``state`` is one of ``ENZYME_STATES`` (free enzyme or complex)."""

    def __init__(self, model, x, y, state: str):
        super().__init__(model, x, y)
        self.state = state

    def bind(self) -> None:
        """Try the ligands on this patch in a random order; bind the first success."""
        table = self.model.binding[self.state]
        ligands = [a for a in self.cell.agents if isinstance(a, Molecule) and a.species in table]
        self.random.shuffle(ligands)
        for mol in ligands:
            prob, complex_state = table[mol.species]
            if self.random.random() < prob:
                mol.remove()
                self.state = complex_state
                self.fresh = True
                return

    def separate(self) -> None:
        """Release the ligand, catalyse, or stay (one draw against the cumulative exits)."""
        exits = self.model.separation.get(self.state)
        if not exits:
            return
        d = self.random.random()
        acc = 0.0
        for prob, new_state, released in exits:
            acc += prob
            if d < acc:
                self.state = new_state
                self.fresh = True
                if released is not None:
                    Molecule(self.model, self.x, self.y, released).fresh = True
                return


class MetabolicPathwayMesa(mesa.Model):
    """The toy metabolic pathway in Mesa 3 (same rules as :class:`~simrl.physics.ecology.metabolic.MetabolicModel`).

    >>> model = MetabolicPathwayMesa(MetabolicParams(scale=0.005), seed=3)
    >>> model.step()
    >>> sorted(model.counts_dict())[:3]
    ['A', 'AP', 'AR']

    ``params``: :class:`~simrl.physics.ecology.metabolic.MetabolicParams` (scale, mode, rates
    ...). ``feed`` (continuous mode) is settable between steps: S molecules per step of the
    full-scale model, multiplied by ``params.effective_scale``.
    """

    def __init__(self, params: MetabolicParams | dict | None = None, seed: int | None = None):
        super().__init__(seed=seed)
        self.params = p = _as_metabolic_params(params)
        self.side = p.side
        self.feed = p.feed
        self.feed_carry = 0.0
        self.grid = OrthogonalMooreGrid((p.side, p.side), torus=True, capacity=None, random=self.random)
        self.binding: dict[str, dict[str, tuple[float, str]]] = {s: {} for s in ENZYME_STATES}
        for enz, lig, cplx, f in _BINDING:
            self.binding[enz][lig] = (getattr(p, f) / 100.0, cplx)
        self.separation = {c: [(getattr(p, f) / 100.0, new, mol) for f, new, mol, _ in outs]
                           for c, outs in _SEPARATION.items()}
        init = p.initial_counts()
        for name, n in zip(SPECIES, init):
            for _ in range(int(n)):
                x, y = self.random.random() * p.side, self.random.random() * p.side
                if name in METABOLITES:
                    Molecule(self, x, y, name)
                else:
                    Enzyme(self, x, y, name)
        self.datacollector = mesa.DataCollector(
            model_reporters={name: (lambda m, k=k: int(m.counts()[k])) for k, name in enumerate(SPECIES)})
        self.datacollector.collect(self)

    def wrap(self, v: float) -> float:
        v %= self.side
        return 0.0 if v >= self.side else v

    def patch_at(self, x: float, y: float):
        return self.grid[(min(int(x), self.side - 1), min(int(y), self.side - 1))]

    def _agents_of(self, cls) -> list:
        return list(self.agents_by_type[cls]) if cls in self.agents_by_type else []

    def counts(self) -> np.ndarray:
        """(len(SPECIES),) counts in :data:`~simrl.physics.ecology.metabolic.SPECIES` order."""
        index = {name: k for k, name in enumerate(SPECIES)}
        c = np.zeros(len(SPECIES), np.int64)
        for a in self._agents_of(Molecule):
            c[index[a.species]] += 1
        for a in self._agents_of(Enzyme):
            c[index[a.state]] += 1
        return c

    def counts_dict(self) -> dict[str, int]:
        return dict(zip(SPECIES, self.counts().tolist()))

    def step(self) -> None:
        p = self.params
        molecules, enzymes = self._agents_of(Molecule), self._agents_of(Enzyme)
        for a in molecules:
            a.move(p.mol_speed)
        for a in enzymes:
            a.move(p.enz_speed)
        # Binding: type by type in the script's order, each type in a random order.
        for state in BINDER_ORDER:
            units = [e for e in enzymes if e.state == state and not e.fresh]
            self.random.shuffle(units)
            for e in units:
                e.bind()
        for e in enzymes:
            if not e.fresh:
                e.separate()
        if p.mode == "continuous":
            amount = self.feed * p.effective_scale + self.feed_carry
            n_feed = int(math.floor(amount))
            self.feed_carry = amount - n_feed
            for _ in range(n_feed):
                Molecule(self, self.random.random() * p.side, self.random.random() * p.side, "S").fresh = True
            if p.dilution > 0.0:
                for a in self._agents_of(Molecule):
                    if not a.fresh and self.random.random() < p.dilution:
                        a.remove()
        for a in self.agents:
            a.fresh = False
        self.datacollector.collect(self)
