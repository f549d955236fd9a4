"""Property-based (hypothesis) tests of simrl/ThreeBody-v0's input handling.

Every constructor argument's accepted domain is declared once, next to the validators, in
``simrl.envs.threebody_core.ARGUMENT_DOMAINS`` (``preset_kwargs``: ``PRESET_KWARGS_DOMAINS``);
the strategies below draw values inside and outside those domains from the declarations.

Properties:

* an invalid argument (wrong type or outside its domain) raises TypeError / ValueError at
  construction, and the message names the argument;
* valid arguments give an environment whose short rollout (reset plus a few steps, single and
  native vector env) has finite observations inside the observation space and finite rewards;
  a blow-up ends the episode truncated with ``info["blowup"]`` and reward ``-blowup_penalty``;
* initial conditions anywhere in double range are either refused at reset with a ValueError
  naming ``initial_conditions`` (the environment unchanged) or give such a rollout;
* no action outside the action space is silently reinterpreted: it raises ValueError (and
  changes nothing), and an accepted action uses exactly the parameter it denotes.

Default profile: 25 examples per property (a few seconds). Deeper runs:
``SIMRL_FUZZ_EXAMPLES=2000 pytest tests/envs/test_threebody_fuzz.py``.
"""

from __future__ import annotations

import math
import os
from dataclasses import fields

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simrl.envs.threebody import ThreeBodyEnv, ThreeBodyVectorEnv
from simrl.envs.threebody_core import (
    ARGUMENT_DOMAINS,
    PRESET_KWARGS_DOMAINS,
    Choice,
    Flag,
    Integer,
    LogRange,
    Number,
    Numbers,
    ThreeBodySettings,
)

EXAMPLES = int(os.environ.get("SIMRL_FUZZ_EXAMPLES", "25"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # nothing written into the repository; a failure prints its reproduction blob
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)

#: Bounds that keep a rollout short (they narrow the valid domain; they never widen it): the
#: integrator's step cap bounds the work per environment step, whatever the other arguments.
FAST = {"max_integrator_steps": 1000, "n_bodies": 5, "n_actions": 50}
ROLLOUT_STEPS = 3

_NOT_A_NUMBER = [None, "1", "0.5", "abc", b"1", 1 + 0j, 0.5j, object(), [], {}, True, False, np.True_]


# ----------------------------------------------------------------------------- valid values


def valid(domain, cap: float | None = None) -> st.SearchStrategy:
    """Values inside ``domain`` (at most ``cap`` for numbers), in the types a caller may pass."""
    if isinstance(domain, Choice):
        return st.sampled_from(domain.choices)
    if isinstance(domain, Flag):
        return st.sampled_from([True, False, np.True_, np.False_])
    if isinstance(domain, Integer):
        ints = st.integers(domain.low, domain.high if cap is None else min(domain.high, int(cap)))
        return st.one_of(ints, ints.map(np.int64), ints.map(float))
    if isinstance(domain, LogRange):
        item = domain.item
        lows = st.floats(item.low, item.high, exclude_min=item.low_open, allow_nan=False, allow_infinity=False)
        ratios = st.floats(domain.min_ratio if domain.ordered == "strict" else 1.0, 1e8)
        pairs = st.tuples(lows, ratios).map(lambda t: (t[0], t[0] * t[1])).filter(lambda p: p[1] <= item.high)
        pairs = st.one_of(pairs, pairs.map(list), pairs.map(np.array))
        return st.one_of(st.none(), pairs) if domain.optional else pairs
    if isinstance(domain, Numbers):
        return st.lists(valid(domain.item), min_size=domain.length, max_size=domain.length).flatmap(
            lambda v: st.sampled_from([tuple(v), list(v), np.array(v)])
        )
    if isinstance(domain, Number):
        high = domain.high if cap is None else min(domain.high, cap)
        floats = st.floats(domain.low, high, exclude_min=domain.low_open, allow_nan=False, allow_infinity=False)
        floats = floats.filter(domain.contains)
        return st.one_of(floats, floats.map(np.float64))
    raise AssertionError(f"no strategy for {domain!r}")


@st.composite
def preset_kwargs(draw, preset: str, fast: bool, n_bodies: int | None = None) -> dict:
    domains = PRESET_KWARGS_DOMAINS[preset]
    keys = draw(st.lists(st.sampled_from(sorted(domains)), unique=True)) if domains else []
    out = {k: draw(valid(domains[k], FAST.get(k) if fast else None)) for k in keys}
    if n_bodies is not None and preset == "random":
        out["n_bodies"] = n_bodies
    return out


@st.composite
def valid_configs(draw, fast: bool = True) -> dict:
    """A full, consistent set of ``ThreeBodyEnv`` arguments inside every declared domain."""
    cfg = {name: draw(valid(domain, FAST.get(name) if fast else None)) for name, domain in ARGUMENT_DOMAINS.items()}
    # obs_mode="paper" describes exactly 3 bodies (a cross-argument rule of ThreeBodySettings).
    cfg["preset_kwargs"] = draw(preset_kwargs(cfg["preset"], fast, 3 if cfg["obs_mode"] == "paper" else None))
    return cfg


# ----------------------------------------------------------------------------- invalid values


def invalid(domain) -> st.SearchStrategy:
    """``(value, expected exception type)`` pairs outside ``domain``."""
    if isinstance(domain, Choice):
        return st.one_of(
            st.text(max_size=12).filter(lambda v: v not in domain.choices).map(lambda v: (v, ValueError)),
            st.sampled_from([None, 1, 1.5, b"hermite", ["hermite"], True]).map(lambda v: (v, TypeError)),
        )
    if isinstance(domain, Flag):
        return st.one_of(
            st.sampled_from([None, 0, 1, 0.0, 1.0, "True", "no", "", [], [True], np.int64(1)]),
            st.integers(),
            st.floats(),
        ).map(lambda v: (v, TypeError))
    if isinstance(domain, Integer):
        out_of_range = st.one_of(st.integers(max_value=domain.low - 1), st.integers(min_value=domain.high + 1))
        return st.one_of(
            out_of_range.map(lambda v: (v, ValueError)),
            out_of_range.map(lambda v: (float(v), ValueError)),
            st.floats().filter(lambda v: not (math.isfinite(v) and v.is_integer())).map(lambda v: (v, ValueError)),
            st.sampled_from(_NOT_A_NUMBER + [str(domain.low)]).map(lambda v: (v, TypeError)),
        )
    if isinstance(domain, LogRange):
        item = domain.item
        lows = st.floats(item.low, item.high, exclude_min=item.low_open, allow_nan=False, allow_infinity=False)
        ratio = domain.min_ratio if domain.ordered == "strict" else 1.0
        ordered = st.tuples(lows, st.floats(0.0, ratio, exclude_max=True)).map(lambda t: (t[0], t[0] * t[1]))
        return st.one_of(
            ordered.filter(lambda p: p[1] < ratio * p[0]).map(lambda p: (p, ValueError)),  # high < min_ratio * low
            st.tuples(invalid(item), valid(item)).map(lambda t: ((t[0][0], t[1]), t[0][1])),
            st.tuples(valid(item), invalid(item)).map(lambda t: ((t[0], t[1][0]), t[1][1])),
            st.lists(valid(item), max_size=4).filter(lambda v: len(v) != 2).map(lambda v: (tuple(v), ValueError)),
            st.sampled_from(["ab", "1,2", 1.0, 3, {1: 2}, {1.0, 2.0}, object(), b"12"]).map(lambda v: (v, TypeError)),
        )
    if isinstance(domain, Numbers):
        n = domain.length
        good = st.lists(valid(domain.item), min_size=n, max_size=n)
        return st.one_of(
            st.tuples(good, st.integers(0, n - 1), invalid(domain.item)).map(
                lambda t: (tuple(t[0][: t[1]] + [t[2][0]] + t[0][t[1] + 1 :]), t[2][1])
            ),
            st.lists(valid(domain.item), max_size=n + 2).filter(lambda v: len(v) != n).map(lambda v: (v, ValueError)),
            st.sampled_from(["abc", "300004", None, 4.0, {0: 1}, object()]).map(lambda v: (v, TypeError)),
        )
    if isinstance(domain, Number):
        below = st.floats(max_value=domain.low, exclude_max=not domain.low_open, allow_nan=False)
        strategies = [below, st.sampled_from([math.nan, math.inf, -math.inf])]
        if math.isfinite(domain.high):
            strategies.append(st.floats(min_value=domain.high, exclude_min=True))
        if domain.exclude is not None:
            w = domain.exclude_width
            strategies.append(st.floats(domain.exclude - w, domain.exclude + w, exclude_min=True, exclude_max=True))
        values = st.one_of(*strategies).filter(lambda v: not domain.contains(v))
        return st.one_of(
            values.map(lambda v: (v, ValueError)),
            values.map(lambda v: (np.float64(v), ValueError)),
            st.sampled_from(_NOT_A_NUMBER).map(lambda v: (v, TypeError)),
        )
    raise AssertionError(f"no strategy for {domain!r}")


@st.composite
def invalid_preset_kwargs(draw, preset: str) -> tuple[object, type, str]:
    """``(preset_kwargs, exception type, name the message must contain)``."""
    domains = PRESET_KWARGS_DOMAINS[preset]
    kind = draw(st.sampled_from(["type", "key"] + (["value"] if domains else [])))
    if kind == "type":
        return draw(st.sampled_from(["x", "n_bodies=3", 3, None, [("n_bodies", 3)], ("planar",)])), TypeError, "preset_kwargs"
    if kind == "key":
        key = draw(st.text(min_size=1, max_size=10).filter(lambda k: k not in domains))
        return {key: 1}, ValueError, "preset_kwargs"
    key = draw(st.sampled_from(sorted(domains)))
    value, error = draw(invalid(domains[key]))
    return {key: value}, error, key


# ----------------------------------------------------------------------------- properties


@FUZZ
@given(data=st.data())
def test_invalid_argument_raises_at_construction_naming_it(data):
    cfg = data.draw(valid_configs(fast=False), label="valid base")
    name = data.draw(st.sampled_from(sorted(ARGUMENT_DOMAINS) + ["preset_kwargs", "<unknown>"]), label="argument")
    if name == "preset_kwargs":
        cfg["preset_kwargs"], error, expected = data.draw(invalid_preset_kwargs(cfg["preset"]), label="preset_kwargs")
    elif name == "<unknown>":
        accepted = {f.name for f in fields(ThreeBodySettings)} | {"render_mode"}
        expected = data.draw(st.from_regex(r"[a-z_][a-z0-9_]{0,15}", fullmatch=True).filter(lambda k: k not in accepted))
        cfg[expected], error = 1, TypeError
    else:
        cfg[name], error = data.draw(invalid(ARGUMENT_DOMAINS[name]), label=name)
        expected = name
    with pytest.raises((TypeError, ValueError)) as caught:
        ThreeBodyEnv(**cfg)
    assert type(caught.value) is error, f"{type(caught.value).__name__} ({caught.value}) instead of {error.__name__}"
    assert expected in str(caught.value), str(caught.value)


def _check_single_rollout(env, actions) -> None:
    penalty = env.settings.blowup_penalty
    obs, _ = env.reset(seed=0)
    assert np.isfinite(obs).all() and env.observation_space.contains(obs), obs
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        assert np.isfinite(obs).all() and env.observation_space.contains(obs), obs
        assert math.isfinite(reward) and not (terminated and truncated)
        if info["blowup"]:
            assert truncated and reward == -penalty
        if terminated or truncated:
            break


def _check_vector_rollout(venv, actions) -> None:
    penalty = venv.settings.blowup_penalty
    obs, _ = venv.reset(seed=0)
    assert np.isfinite(obs).all() and venv.observation_space.contains(obs), obs
    for action in actions:
        obs, reward, terminated, truncated, info = venv.step(action)
        assert np.isfinite(obs).all() and venv.observation_space.contains(obs), obs
        assert np.isfinite(reward).all() and not (terminated & truncated).any()
        done = terminated | truncated
        blowup = info["blowup"]
        if done.any():  # same-step autoreset: the finished step's own values are in final_obs / final_info
            assert np.isfinite(info["final_obs"]).all()
            assert all(venv.single_observation_space.contains(row) for row in info["final_obs"][done])
            blowup = np.where(done, info["final_info"]["blowup"], blowup)
        assert truncated[blowup].all() and (reward[blowup] == -penalty).all()


@FUZZ
@given(cfg=valid_configs(fast=True), data=st.data())
def test_valid_arguments_give_a_finite_rollout_or_a_flagged_blowup(cfg, data):
    env = ThreeBodyEnv(**cfg)
    space = env.action_space
    action = (
        st.integers(0, space.n - 1)
        if env.settings.action_type == "discrete"
        else st.floats(float(space.low[0]), float(space.high[0]), width=32).map(lambda v: np.array([v], dtype=np.float32))
    )
    actions = data.draw(st.lists(action, min_size=ROLLOUT_STEPS, max_size=ROLLOUT_STEPS), label="actions")
    _check_single_rollout(env, actions)
    venv = ThreeBodyVectorEnv(num_envs=2, **cfg)
    _check_vector_rollout(venv, [np.stack([np.asarray(a), np.asarray(a)]) for a in actions])


_MAGNITUDE = st.one_of(
    st.just(0.0),
    st.tuples(st.sampled_from([-1.0, 1.0]), st.floats(-320, 308)).map(lambda t: t[0] * 10.0 ** t[1]),
    st.floats(-10, 10),
)


@st.composite
def initial_conditions(draw):
    pos = np.array(draw(st.lists(_MAGNITUDE, min_size=9, max_size=9))).reshape(3, 3)
    vel = np.array(draw(st.lists(_MAGNITUDE, min_size=9, max_size=9))).reshape(3, 3)
    mass = np.array(draw(st.lists(st.one_of(_MAGNITUDE, st.floats(0.1, 10)), min_size=3, max_size=3)))
    return pos, vel, mass


@FUZZ
@given(ic=initial_conditions(), obs_mode=st.sampled_from(["markov", "paper"]), data=st.data())
def test_initial_conditions_are_refused_at_reset_or_give_a_finite_rollout(ic, obs_mode, data):
    env = ThreeBodyEnv(obs_mode=obs_mode, max_integrator_steps=FAST["max_integrator_steps"])
    env.reset(seed=0)
    before = env.state
    try:
        obs, _ = env.reset(options={"initial_conditions": ic})
    except ValueError as err:
        assert str(err).startswith("initial_conditions"), str(err)
        assert all(np.array_equal(before[k], env.state[k]) for k in before)
        return
    assert np.isfinite(obs).all() and env.observation_space.contains(obs)
    for action in data.draw(st.lists(st.integers(0, 9), min_size=ROLLOUT_STEPS, max_size=ROLLOUT_STEPS)):
        obs, reward, terminated, truncated, info = env.step(action)
        assert np.isfinite(obs).all() and env.observation_space.contains(obs) and math.isfinite(reward)
        if info["blowup"]:
            assert truncated and reward == -env.settings.blowup_penalty
        if terminated or truncated:
            break


# ----------------------------------------------------------------------------- actions

_SCALARS = st.one_of(
    st.integers(-3, 60),
    st.integers(-(2**70), 2**70),
    st.integers(-3, 60).map(np.int64),
    st.integers(0, 60).map(np.uint8),
    st.floats(),
    st.floats(-6, 1),
    st.floats(-6, 1, width=32).map(np.float32),
    st.integers(-3, 12).map(float),
    st.integers(-3, 12).map(str),
    st.floats(-6, 1).map(str),
    st.builds(complex, st.integers(-3, 12), st.sampled_from([0, 0, 1])),
    st.sampled_from([True, False, np.True_, None, object(), b"5", "five"]),
)


def _actions(shape_hint: int) -> st.SearchStrategy:
    """Arbitrary objects, in and out of any action space: scalars, lists and arrays of them."""
    lists = st.lists(_SCALARS, min_size=0, max_size=shape_hint + 1)
    return st.one_of(_SCALARS, lists, lists.map(lambda v: np.array(v, dtype=object)), lists.map(_try_array))


def _try_array(values):
    try:
        return np.array(values)
    except (TypeError, ValueError, OverflowError):
        return values


def _real_array(action):
    """The action as an array of real numbers, or None when it is not one (strings, bools, complex, objects)."""
    try:
        arr = np.asarray(action)
    except (TypeError, ValueError, OverflowError):
        return None
    return arr if arr.dtype.kind in "iuf" else None


def _meaning(env, action, batch: int | None):
    """The parameters an action denotes when it lies in the action space (None when it does not).

    Discrete: integer values 0..n-1 (integral floats included), shape () (``(batch,)`` batched).
    Box: real values whose float32 cast lies in the Box (batched: within 1e-6 of its bounds, the
    vector env's float32 round-off tolerance), shape (1,) (``(batch, 1)``); the parameter is
    10 ** clip(value, log10 low, log10 high).
    """
    s = env.settings
    arr = _real_array(action)
    if arr is None:
        return None
    discrete = s.action_type == "discrete"
    shape = (() if discrete else (1,)) if batch is None else ((batch,) if discrete else (batch, 1))
    if arr.shape != shape:
        return None
    values = arr.astype(np.float64).reshape(-1)
    if discrete:
        if not all(math.isfinite(v) and v.is_integer() and 0 <= v < s.n_actions for v in values):
            return None
        return s.parameter_values[[int(v) for v in values]]
    low, high = (math.log10(v) for v in s.action_range)
    if batch is None:
        space = env.action_space
        with np.errstate(over="ignore", invalid="ignore"):
            if not space.contains(arr.astype(np.float32)):
                return None
    elif not all(math.isfinite(v) and low - 1e-6 <= v <= high + 1e-6 for v in values):
        return None
    return 10.0 ** np.clip(values, low, high)


@FUZZ
@given(
    action_type=st.sampled_from(["discrete", "continuous"]),
    n_actions=st.integers(2, 50),
    batch=st.sampled_from([None, 2]),
    data=st.data(),
)
def test_no_action_outside_the_space_is_reinterpreted(action_type, n_actions, batch, data):
    kwargs = {"action_type": action_type, "n_actions": n_actions, "episode_steps": 50}
    env = ThreeBodyEnv(**kwargs) if batch is None else ThreeBodyVectorEnv(num_envs=batch, autoreset_mode="Disabled", **kwargs)
    env.reset(seed=0)
    action = data.draw(_actions(2 if batch else 1), label="action")
    expected = _meaning(env, action, batch)
    pos_before = env._batch.pos.copy()
    steps_before = env._batch.step_index.copy()
    try:
        _, _, _, _, info = env.step(action)
    except ValueError as err:
        assert expected is None, f"refused an action inside the space: {err}"
        assert "action" in str(err)
        assert np.array_equal(env._batch.pos, pos_before) and np.array_equal(env._batch.step_index, steps_before)
        return
    assert expected is not None, f"accepted {action!r}, which lies outside {env.action_space}"
    np.testing.assert_array_equal(np.atleast_1d(info["parameter"]), expected)
