"""Property tests (hypothesis) of simrl/PredatorPrey-v0 and simrl/MetabolicPathway-v0, single and vector.

Every constructor argument's valid domain is stated once, in the environment module's
``ARGUMENTS`` table (and :data:`~simrl.envs.digital_twin_core.FACE_ARGUMENTS` for
``render_mode``, ``num_envs``, ``autoreset_mode``); the strategies below draw values inside and
outside each :class:`~simrl.envs.digital_twin_core.Arg` from its fields, plus the few relations
between arguments the tables name (a multiple of the action length, grass within the world,
``feed_min < feed_max``, parameters that fit the stored states). Properties:

* an invalid argument raises ValueError/TypeError at construction, naming the argument;
* valid arguments give an environment whose short rollout has finite float32 observations and
  finite rewards, or ends the episode with ``info["blowup"]``;
* an action is either stepped exactly as its clip to [0, 1] (the documented reading of a real
  array of the action shape) or refused with an error that leaves the environment untouched --
  never reinterpreted otherwise (strings, complex numbers, None, NaN, wrong shapes);
* reset options are None or a dict of the accepted keys with valid values; anything else is refused.

Small worlds keep it fast: the 63 x 63 predator-prey set of ``tests/conftest.py`` and a
scale-0.05 (22 x 22) metabolic set made here. ``SIMRL_FUZZ_EXAMPLES`` (default 25) sets the
examples per property, e.g. ``SIMRL_FUZZ_EXAMPLES=500 pytest tests/envs/test_digital_twin_fuzz.py``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pytest
from gymnasium.vector import AutoresetMode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simrl.envs import metabolic, predator_prey
from simrl.envs.digital_twin_core import FACE_ARGUMENTS, Arg

EXAMPLES = int(os.environ.get("SIMRL_FUZZ_EXAMPLES", "25"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# --------------------------------------------------------------------------------------
# The two environments: their tables, cheap sub-ranges for rollouts, relations
# --------------------------------------------------------------------------------------


@dataclass
class Family:
    """One environment as the properties see it."""

    name: str
    single: Callable[..., Any]
    vector: Callable[..., Any]
    arguments: dict[str, Arg]
    action_dim: int
    obs_dim: int
    step_arg: str  # the action length (cheap values drawn for rollouts)
    episode_arg: str  # a multiple of it
    cheap_step: int  # largest action length drawn for rollouts
    cheap: dict[str, float]  # largest values drawn for rollouts where the domain is wider


FAMILIES = {
    "predator_prey": Family("predator_prey", predator_prey.PredatorPreyEnv, predator_prey.PredatorPreyVectorEnv,
                            predator_prey.ARGUMENTS, 2, 9, "ticks_per_action", "episode_ticks", 12, {}),
    "metabolic": Family("metabolic", metabolic.MetabolicPathwayEnv, metabolic.MetabolicPathwayVectorEnv,
                        metabolic.ARGUMENTS, 1, 14, "steps_per_action", "episode_steps", 150,
                        {"feed_max": 50.0, "feed_min": 50.0}),
}
#: Arguments drawn by the relation-aware code below rather than from the table alone.
SPECIAL = {"params", "snapshots", "ticks_per_action", "episode_ticks", "steps_per_action", "episode_steps",
           "target", "feed_min", "feed_max"}


@pytest.fixture(scope="module")
def sets(small_predator_prey_snapshots, tmp_path_factory):
    """The snapshot set of each family and the facts the relations need."""
    from simrl.physics.ecology.metabolic import MetabolicParams

    met_path = tmp_path_factory.mktemp("fuzz_metabolic") / "small.npz"
    metabolic.generate_snapshot_set(met_path, MetabolicParams(scale=0.05), count=4, steps=1000, seed=3)
    pp_set = predator_prey.load_snapshot_set(small_predator_prey_snapshots)
    met_set = metabolic.load_snapshot_set(met_path)
    p = pp_set.params
    return {
        "predator_prey": {
            "path": small_predator_prey_snapshots,
            "n_patches": p.n_patches,
            "longest_countdown": max(int(s.countdown.max()) for s in pp_set.states),
            "population_needed": max([p.initial_sheep, p.initial_wolves]
                                     + [s.sheep.shape[1] for s in pp_set.states]
                                     + [s.wolves.shape[1] for s in pp_set.states]),
            "train": len(pp_set.splits["train"]),
        },
        "metabolic": {
            "path": str(met_path),
            "molecules_needed": max([int(met_set.params.initial_counts()[:5].sum())]
                                    + [s.molecules.shape[1] for s in met_set.states]),
            "train": len(met_set.splits["train"]),
        },
    }


# --------------------------------------------------------------------------------------
# Values inside and outside an Arg's domain
# --------------------------------------------------------------------------------------


def _not_number() -> st.SearchStrategy:
    return st.one_of(st.text(max_size=4), st.sampled_from(["1", "0.5", "nan"]), st.complex_numbers(allow_nan=False).filter(
        lambda z: z.imag != 0), st.just([1]), st.just(object()))


def inside(arg: Arg, cheap_high: float | None = None) -> st.SearchStrategy:
    """Values in ``arg``'s domain (numbers up to ``cheap_high`` where given)."""
    high = arg.high if cheap_high is None else min(arg.high, cheap_high)
    if arg.kind == "int":
        s = st.integers(int(arg.low), int(high)) | st.integers(int(arg.low), int(high)).map(np.int64)
    elif arg.kind == "real":
        s = st.floats(arg.low, high, exclude_min=arg.low_open, allow_nan=False) | st.just(high)
        if not arg.low_open:
            s = s | st.just(arg.low) | st.integers(math.ceil(arg.low), math.floor(high))
    elif arg.kind == "reals":
        comp = st.floats(arg.low, high, exclude_min=arg.low_open, allow_nan=False)
        s = st.tuples(*[comp] * arg.size)
        s = s | s.map(list) | s.map(np.array)
    elif arg.kind == "choice":
        s = st.sampled_from(arg.choices)
    elif arg.kind == "bool":
        s = st.booleans() | st.booleans().map(np.bool_)
    elif arg.kind == "autoreset":
        s = st.sampled_from([AutoresetMode.SAME_STEP, AutoresetMode.DISABLED, "SameStep", "Disabled"])
    else:
        raise AssertionError(arg.kind)
    return s | st.none() if arg.optional else s


def outside(arg: Arg) -> st.SearchStrategy:
    """Values outside ``arg``'s domain (wrong type, NaN/inf, beyond a bound, wrong size)."""
    none = st.nothing() if arg.optional else st.none()
    if arg.kind == "int":
        beyond = st.integers(max_value=int(arg.low) - 1) | st.integers(int(arg.high) + 1, 10 * int(arg.high) + 10**7)
        return beyond | st.booleans() | st.floats(allow_nan=True) | _not_number() | none
    if arg.kind == "real":
        low = st.floats(max_value=arg.low, exclude_max=not arg.low_open, allow_nan=False)
        high = st.floats(min_value=arg.high, exclude_min=True, allow_nan=False)
        return low | high | st.sampled_from([math.nan, math.inf, -math.inf]) | st.booleans() | _not_number() | none
    if arg.kind == "reals":
        good = st.floats(arg.low, arg.high, exclude_min=arg.low_open, allow_nan=False)
        bad = (st.floats(max_value=arg.low, exclude_max=not arg.low_open, allow_nan=False)
               | st.floats(min_value=arg.high, exclude_min=True, allow_nan=False)
               | st.sampled_from([math.nan, math.inf, True, None, "1"]) | st.complex_numbers().filter(lambda z: z.imag != 0))
        one_bad = st.tuples(st.lists(good, min_size=arg.size - 1, max_size=arg.size - 1), bad,
                            st.integers(0, arg.size - 1)).map(lambda t: tuple(t[0][:t[2]] + [t[1]] + t[0][t[2]:]))
        wrong_size = st.integers(0, arg.size + 2).filter(lambda n: n != arg.size).flatmap(
            lambda n: st.lists(good, min_size=n, max_size=n).map(tuple))
        return one_bad | wrong_size | st.floats(arg.low, arg.high) | st.text(max_size=3) | none
    if arg.kind == "choice":
        return st.text(max_size=6).filter(lambda t: t not in arg.choices) | st.integers() | st.just(["train"]) | none
    if arg.kind == "bool":
        return st.integers() | st.sampled_from(["no", "True", 0.0]) | none
    if arg.kind == "autoreset":
        return st.sampled_from(["NextStep", AutoresetMode.NEXT_STEP, "same_step", 1, None]) | st.text(max_size=5).filter(
            lambda t: t not in ("SameStep", "Disabled"))
    raise AssertionError(arg.kind)


# --------------------------------------------------------------------------------------
# Whole argument sets
# --------------------------------------------------------------------------------------


@st.composite
def valid_kwargs(draw, fam: Family, facts: dict[str, Any]) -> dict[str, Any]:
    """A valid argument set (each argument drawn or left at its default), relations respected."""
    kwargs: dict[str, Any] = {"snapshots": facts["path"]}
    for name, arg in fam.arguments.items():
        if name not in SPECIAL and draw(st.booleans()):
            kwargs[name] = draw(inside(arg))
    k = draw(st.integers(1, fam.cheap_step))
    kwargs[fam.step_arg] = k
    kwargs[fam.episode_arg] = k * draw(st.integers(1, 4))
    if fam.name == "predator_prey":
        if draw(st.booleans()):
            pop = st.floats(0.0, predator_prey.MAX_TARGET_POPULATION)
            kwargs["target"] = (draw(st.floats(0.0, facts["n_patches"])), draw(pop), draw(pop))
        kwargs["params"] = draw(st.one_of(
            st.none(),
            st.integers(facts["longest_countdown"], 200).map(lambda g: {"grass_regrowth_time": g}),
            st.integers(facts["population_needed"], 10**6).map(lambda m: {"max_population": m})))
    else:
        feed_max = draw(inside(fam.arguments["feed_max"], fam.cheap["feed_max"]))
        kwargs["feed_max"] = feed_max
        if draw(st.booleans()):
            kwargs["feed_min"] = draw(st.floats(0.0, feed_max, exclude_max=True))
        else:
            kwargs["feed_min"] = min(0.5, feed_max / 2)
        kwargs["params"] = draw(st.one_of(
            st.none(), st.integers(facts["molecules_needed"], 10**6).map(lambda m: {"max_molecules": m})))
    return kwargs


@st.composite
def invalid_kwargs(draw, fam: Family, facts: dict[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """A valid argument set with one argument (or one relation) broken, and the names an error may give."""
    kwargs = draw(valid_kwargs(fam, facts))
    relations = [fam.episode_arg, "params", "snapshots"] + (["target"] if fam.name == "predator_prey" else ["feed_min"])
    name = draw(st.sampled_from(sorted(fam.arguments) + relations))
    if name in fam.arguments and name not in ("params", "snapshots") and draw(st.booleans()):
        kwargs[name] = draw(outside(fam.arguments[name]))
        return kwargs, (name,)
    if name == fam.episode_arg:  # not a multiple of the action length
        k = draw(st.integers(2, fam.cheap_step))
        kwargs[fam.step_arg], kwargs[fam.episode_arg] = k, k * draw(st.integers(1, 4)) + draw(st.integers(1, k - 1))
        return kwargs, (fam.episode_arg, fam.step_arg)
    if name == "target":  # more grass than patches
        kwargs["target"] = (draw(st.floats(facts["n_patches"], 1e6, exclude_min=True)), 10.0, 10.0)
        return kwargs, ("target",)
    if name == "feed_min":  # not below feed_max
        kwargs["feed_min"] = draw(st.floats(kwargs["feed_max"], metabolic.MAX_ENV_FEED))
        return kwargs, ("feed_min",)
    if name == "snapshots":
        kwargs["snapshots"] = draw(st.sampled_from([5, 1.5, b"x.npz", ["a.npz"], True]))
        return kwargs, ("snapshots",)
    if name == "params":  # a field out of its range, an unknown one, or one no stored state fits
        if fam.name == "predator_prey":
            kwargs["params"] = draw(st.one_of(
                st.integers(0, facts["longest_countdown"] - 1).map(lambda g: {"grass_regrowth_time": g}),
                st.integers(1, facts["population_needed"] - 1).map(lambda m: {"max_population": m}),
                st.just({"wolves": 3}), st.just({"width": 64}), st.just("big"), st.just(3)))
        else:
            kwargs["params"] = draw(st.one_of(
                st.integers(1, facts["molecules_needed"] - 1).map(lambda m: {"max_molecules": m}),
                st.just({"mode": "batch"}), st.just({"scale": 0.5}), st.just({"colour": 1}), st.just([0.1])))
        return kwargs, ("params", "snapshot set")
    kwargs[name] = draw(outside(fam.arguments[name]))
    return kwargs, (name,)


def _face_kwargs(draw, vector: bool) -> dict[str, Any]:
    out = {"render_mode": draw(inside(FACE_ARGUMENTS["render_mode"]))}
    if vector:
        out["num_envs"] = draw(st.integers(1, 3))
        out["autoreset_mode"] = draw(inside(FACE_ARGUMENTS["autoreset_mode"]))
    return out


def _build(fam: Family, vector: bool, kwargs: dict[str, Any]):
    return (fam.vector if vector else fam.single)(**kwargs)


def _short_episode_kwargs(fam: Family, snapshot_set: dict, vector: bool) -> dict[str, Any]:
    """A small env of ``fam`` on the test snapshot set: 5 ticks per action, 50 per episode, 2 copies if vector."""
    kwargs = {"snapshots": snapshot_set["path"], fam.step_arg: 5, fam.episode_arg: 50}
    return {**kwargs, "num_envs": 2} if vector else kwargs


# --------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------


FAMILY_NAMES = sorted(FAMILIES)


@pytest.mark.parametrize("family", FAMILY_NAMES)
@FUZZ
@given(data=st.data())
def test_invalid_arguments_are_refused_at_construction_naming_the_argument(sets, family, data):
    fam = FAMILIES[family]
    vector = data.draw(st.booleans(), label="vector")
    kwargs, names = data.draw(invalid_kwargs(fam, sets[family]), label="kwargs")
    face = _face_kwargs(data.draw, vector)
    if data.draw(st.booleans(), label="break a face argument instead"):
        kwargs = data.draw(valid_kwargs(fam, sets[family]))
        face_name = data.draw(st.sampled_from(["num_envs", "autoreset_mode", "render_mode"] if vector else ["render_mode"]))
        face[face_name] = data.draw(outside(FACE_ARGUMENTS[face_name]))
        names = (face_name,)
    with pytest.raises((ValueError, TypeError)) as err:
        _build(fam, vector, {**kwargs, **face})
    assert any(n in str(err.value) for n in names), (names, str(err.value))


def _finite_or_blowup(obs, reward, done, info, vector: bool) -> None:
    obs = np.asarray(obs)
    assert obs.dtype == np.float32
    if vector:
        for i in range(obs.shape[0]):
            if not (np.all(np.isfinite(obs[i])) and np.isfinite(reward[i])):
                assert done[i] and info["blowup"][i]
    elif not (np.all(np.isfinite(obs)) and np.isfinite(reward)):
        assert done and info["blowup"]


@st.composite
def box_actions(draw, shape: tuple[int, ...]) -> np.ndarray:
    """Real actions of the right shape, some outside [0, 1] (clipped by the environment)."""
    values = st.floats(-1.0, 2.0, allow_nan=False) | st.sampled_from([0.0, 1.0])
    flat = draw(st.lists(values, min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    return np.asarray(flat, dtype).reshape(shape)


@pytest.mark.parametrize("family", FAMILY_NAMES)
@FUZZ
@given(data=st.data())
def test_valid_arguments_give_finite_rollouts_or_a_blowup(sets, family, data):
    fam = FAMILIES[family]
    vector = data.draw(st.booleans(), label="vector")
    kwargs = data.draw(valid_kwargs(fam, sets[family]), label="kwargs")
    face = _face_kwargs(data.draw, vector)
    env = _build(fam, vector, {**kwargs, **face})
    n = face.get("num_envs", 1)
    shape = (n, fam.action_dim) if vector else (fam.action_dim,)
    assert env.action_space.shape == shape and env.observation_space.shape == ((n, fam.obs_dim) if vector else (fam.obs_dim,))
    obs, info = env.reset(seed=data.draw(st.integers(0, 2**32 - 1), label="seed"))
    assert obs.dtype == np.float32 and np.all(np.isfinite(obs))
    for _ in range(3):
        obs, reward, terminated, truncated, info = env.step(data.draw(box_actions(shape), label="action"))
        done = np.logical_or(terminated, truncated)
        _finite_or_blowup(obs, reward, done, info, vector)
        if not vector and done:
            break
    if face.get("render_mode") == "rgb_array":
        frames = env.render()
        frame = frames[0] if vector else frames
        assert frame.dtype == np.uint8 and frame.ndim == 3


@st.composite
def any_action(draw, shape: tuple[int, ...]) -> tuple[Any, bool]:
    """``(action, accepted?)``: real arrays of the action shape are accepted (and clipped);
    everything else -- other shapes, NaN/inf, None, strings, complex numbers, booleans, other
    objects -- is not."""
    size = int(np.prod(shape))
    real = st.floats(-3.0, 3.0, allow_nan=False)
    good = box_actions(shape)
    choice = draw(st.integers(0, 11))
    if choice == 0:
        return draw(good), True
    if choice == 1:  # nested Python lists and integer arrays are real arrays too
        return draw(good).tolist(), True
    if choice == 2:
        return np.asarray(draw(st.lists(st.integers(-2, 3), min_size=size, max_size=size))).reshape(shape), True
    if choice == 3:  # booleans are flags, not rates
        return np.asarray(draw(st.lists(st.booleans(), min_size=size, max_size=size))).reshape(shape), False
    if choice == 4:  # wrong shape
        other = draw(st.lists(st.integers(1, 3), min_size=0, max_size=3).map(tuple).filter(lambda s: s != shape))
        return np.asarray(draw(st.lists(real, min_size=int(np.prod(other)), max_size=int(np.prod(other))))).reshape(other), False
    if choice == 5:  # a NaN or inf somewhere
        a = draw(good).astype(np.float64)
        a.reshape(-1)[draw(st.integers(0, size - 1))] = draw(st.sampled_from([math.nan, math.inf, -math.inf]))
        return a, False
    if choice == 6:  # numeric strings
        return draw(good).astype(str), False
    if choice == 7:  # complex, even with a zero imaginary part
        return draw(good) + 1j * draw(st.sampled_from([0.0, 0.5])), False
    if choice == 8:
        return None, False
    if choice == 9:  # a list holding None or a string
        flat = draw(good).reshape(-1).tolist()
        flat[draw(st.integers(0, size - 1))] = draw(st.sampled_from([None, "0.5", object()]))
        return np.asarray(flat, dtype=object).reshape(shape).tolist() if len(shape) == 2 else flat, False
    if choice == 10:
        return draw(st.sampled_from(["0.5", b"\x00\x01", 0.5, {"a": 1}])), False
    return draw(good).astype(object), True  # an object array of real numbers


@pytest.mark.parametrize("family", FAMILY_NAMES)
@FUZZ
@given(data=st.data())
def test_no_action_outside_the_space_is_silently_reinterpreted(sets, family, data):
    fam = FAMILIES[family]
    vector = data.draw(st.booleans(), label="vector")
    kwargs = _short_episode_kwargs(fam, sets[family], vector)
    env, twin = _build(fam, vector, kwargs), _build(fam, vector, kwargs)
    shape = env.action_space.shape
    seed = data.draw(st.integers(0, 1000), label="seed")
    env.reset(seed=seed)
    twin.reset(seed=seed)
    action, accepted = data.draw(any_action(shape), label="action")
    if accepted:
        out = env.step(action)
        clipped = np.clip(np.asarray(np.asarray(action).tolist(), np.float64), 0.0, 1.0)
        ref = twin.step(clipped)
    else:
        with pytest.raises((ValueError, TypeError), match="action"):
            env.step(action)
        step = data.draw(box_actions(shape), label="next action")
        out, ref = env.step(step), twin.step(step)  # the refused action changed nothing
    np.testing.assert_array_equal(out[0], ref[0])
    np.testing.assert_array_equal(out[1], ref[1])
    for key, value in out[4].items():
        if not key.startswith("_") and key not in ("final_obs", "final_info"):
            np.testing.assert_array_equal(value, ref[4][key])


@st.composite
def any_options(draw, n_train: int, num_envs: int | None) -> tuple[Any, bool, str]:
    """``(options, accepted?, a word the error names)`` for ``reset(options=...)``."""
    choice = draw(st.integers(0, 7 if num_envs else 5))
    if choice == 0:
        return draw(st.sampled_from([None, {}])), True, ""
    if choice == 1:
        return {"snapshot": draw(st.integers(0, n_train - 1) | st.none())}, True, ""
    if choice == 2:  # an index outside the split, or not an integer
        bad = draw(st.integers(n_train, 10**6) | st.integers(max_value=-1) | st.sampled_from([True, 1.0, "0", [0]]))
        return {"snapshot": bad}, False, "snapshot"
    if choice == 3:
        key = draw(st.text(min_size=1, max_size=8).filter(lambda k: k not in ("snapshot", "reset_mask")))
        return {key: 1}, False, "option"
    if choice == 4:
        return draw(st.sampled_from(["abc", 5, ["snapshot"], ("snapshot", 1), 0.0])), False, "options"
    if choice == 5:
        return {"snapshot": draw(st.integers(0, n_train - 1)), "seed": 1}, False, "option"
    if choice == 6:
        mask = np.asarray(draw(st.lists(st.booleans(), min_size=num_envs, max_size=num_envs)))
        return {"reset_mask": mask}, True, ""
    bad_mask = draw(st.sampled_from([np.ones(num_envs + 1, bool), np.ones(num_envs, int), "all"]))
    return {"reset_mask": bad_mask}, False, "reset_mask"


@pytest.mark.parametrize("family", FAMILY_NAMES)
@FUZZ
@given(data=st.data())
def test_reset_options_are_a_dict_of_the_accepted_keys(sets, family, data):
    fam = FAMILIES[family]
    vector = data.draw(st.booleans(), label="vector")
    kwargs = _short_episode_kwargs(fam, sets[family], vector)
    env = _build(fam, vector, kwargs)
    options, accepted, word = data.draw(any_options(sets[family]["train"], 2 if vector else None), label="options")
    if accepted:
        obs, info = env.reset(seed=0, options=options)
        assert np.all(np.isfinite(obs))
        if isinstance(options, dict) and options.get("snapshot") is not None:
            split = env.settings.split_indices
            assert np.all(np.asarray(info["snapshot"]) == split[options["snapshot"]])
    else:
        with pytest.raises((ValueError, TypeError), match=word):
            env.reset(seed=0, options=options)


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_the_bounds_of_every_numeric_argument_are_accepted_and_stay_finite(sets, family):
    """Each domain's edges at once (deterministic): construction succeeds and a step is finite."""
    fam = FAMILIES[family]
    kwargs: dict[str, Any] = {"snapshots": sets[family]["path"]}
    for name, arg in fam.arguments.items():
        if arg.kind == "reals":
            kwargs[name] = (arg.high,) * arg.size
        elif arg.kind == "real" and name != "feed_min":
            kwargs[name] = arg.high
    kwargs[fam.step_arg], kwargs[fam.episode_arg] = 1, int(fam.arguments[fam.episode_arg].high)
    if family == "predator_prey":
        kwargs["target"] = (sets[family]["n_patches"],) + (predator_prey.MAX_TARGET_POPULATION,) * 2
        low = dict(kwargs, reference=(fam.arguments["reference"].low,) * 3, extinction_cost=None)
        variants = [kwargs, low]
    else:
        kwargs["feed_min"] = np.nextafter(kwargs["feed_max"], 0.0)
        variants = [kwargs, dict(kwargs, reward="linearised", yield_reference=5e-324)]
    for kw in variants:
        env = fam.single(**kw)
        obs, _ = env.reset(seed=0)
        obs2, reward, terminated, truncated, info = env.step(np.ones(fam.action_dim, np.float32))
        assert np.all(np.isfinite(obs)) and np.all(np.isfinite(obs2)) and np.isfinite(reward)
        assert np.isfinite(np.float32(reward))  # SB3 casts rewards to float32
    ticks = int(fam.arguments[fam.step_arg].high)
    fam.single(snapshots=sets[family]["path"], **{fam.step_arg: ticks, fam.episode_arg: ticks})
