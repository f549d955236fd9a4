"""Property-based (hypothesis) tests of the turbulence environments' input handling.

Faces: :class:`Turbulence2DParallelEnv` (simrl/Turbulence2D-v0/-v1), :class:`Turbulence2DGlobalEnv` and its
vector env, all at 16^2 on the small synthetic reference (:func:`synthetic_targets`, not the shipped DNS).

Every constructor argument's accepted domain is declared once below (:data:`DOMAINS`: a strategy of valid
values and one of invalid values, per argument); the properties:

* an invalid argument raises ValueError / TypeError at construction, and the message names the argument;
* valid arguments give an environment whose short rollout (reset plus a few steps) has finite observations
  and rewards, or ends the episode ``truncated`` with ``info["blowup"]``;
* no action is silently reinterpreted: values that only look numeric (strings, complex numbers, booleans,
  None) are refused, and an out-of-box number steps exactly like its value clipped to the box (the
  documented contract of these envs: coefficients are clipped to ``coefficient_range``).

Default profile: 25 examples per property (seconds). Deeper: ``SIMRL_FUZZ_EXAMPLES=500 pytest tests/envs/test_turbulence_fuzz.py``.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simrl.envs.turbulence import Turbulence2DGlobalEnv, Turbulence2DGlobalVectorEnv, Turbulence2DParallelEnv
from simrl.envs.turbulence_core import REWARDS, synthetic_targets
from simrl.physics.turbulence.closures import CLOSURE_KINDS, INTERPOLATION_METHODS, SCALES

EXAMPLES = int(os.environ.get("SIMRL_FUZZ_EXAMPLES", "25"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)
N = 16
ROLLOUT_STEPS = 3


@pytest.fixture(scope="module")
def ref():
    return synthetic_targets(N)


def _not_in(accepted):
    return st.one_of(st.text(max_size=8), st.integers(), st.none(), st.booleans()).filter(lambda v: v not in accepted)


_non_numbers = st.one_of(st.text(max_size=4), st.just([1.0]), st.just(1j))
_bad_positive = st.one_of(  # (None is valid where the argument has a default it stands for, e.g. dt)
    st.floats(max_value=0.0, allow_nan=False), st.just(math.nan), st.just(math.inf), st.booleans(), _non_numbers
)
_bad_count = st.one_of(st.integers(max_value=0), st.floats(allow_nan=True), st.booleans(), st.none(), _non_numbers)
_bad_flag = st.one_of(st.integers(), st.text(max_size=3), st.none(), st.floats())

#: argument -> (valid values, invalid values). The episode length is drawn as a multiple of steps_per_action
#: (a relation, checked separately); a valid dt keeps the grid CFL number of the reference fields below the limit.
DOMAINS: dict[str, tuple[st.SearchStrategy, st.SearchStrategy]] = {
    "agents_per_side": (st.sampled_from([1, 2, 4, 8, 16]), st.one_of(st.sampled_from([3, 5, 6, 7, 32]), _bad_count)),
    "action": (st.sampled_from(CLOSURE_KINDS), _not_in(CLOSURE_KINDS)),
    "interpolation": (st.sampled_from(INTERPOLATION_METHODS), _not_in(INTERPOLATION_METHODS)),
    "scale": (st.sampled_from(SCALES), _not_in(SCALES)),
    "reward": (st.sampled_from(REWARDS), _not_in(REWARDS)),
    "steps_per_action": (st.integers(1, 4), _bad_count),
    "dt": (st.one_of(st.none(), st.floats(1e-4, 0.01)), st.one_of(_bad_positive, st.floats(1.0, 1e300))),
    "reward_clip": (st.floats(1e-3, 1e3), st.one_of(_bad_positive, st.none())),
    "obs_clip": (st.floats(1e-2, 1e3), st.one_of(_bad_positive, st.none())),
    "enstrophy_limit": (st.floats(1.5, 1e3), st.one_of(_bad_positive, st.none())),
    "blowup_penalty": (
        st.one_of(st.none(), st.floats(0.0, 1e6)),
        st.one_of(st.floats(max_value=-1e-9, allow_nan=False), st.just(math.nan), st.just(math.inf), st.booleans(), st.text(max_size=3)),
    ),
    "coefficient_range": (
        st.tuples(st.just(0.0), st.floats(1e-4, 1.0)),
        st.one_of(
            st.tuples(st.floats(0.1, 1.0), st.floats(0.0, 0.09)),  # reversed
            st.tuples(st.just(0.0), st.sampled_from([math.nan, math.inf, 1e300])),
            st.tuples(st.floats(-1.0, -1e-6), st.floats(0.01, 1.0)),  # backscatter not allowed by default
            st.just((0.1,)), st.just("ab"), st.just(None).map(lambda _: (None, 1.0)),
        ),
    ),
    "backscatter": (st.just(False), _bad_flag),
    "normalized_actions": (st.booleans(), _bad_flag),
    "augment": (st.booleans(), _bad_flag),
    "snapshot_indices": (
        st.one_of(st.none(), st.lists(st.integers(0, 11), min_size=1, max_size=5)),
        st.one_of(st.just([]), st.lists(st.integers(12, 100), min_size=1, max_size=3), st.just([-1]), st.just(["a"])),
    ),
    "threads": (st.integers(1, 2), _bad_count),
}


@st.composite
def valid_kwargs(draw) -> dict:
    kwargs = {name: draw(valid) for name, (valid, _) in DOMAINS.items() if draw(st.booleans())}
    spa = kwargs.get("steps_per_action", 10)
    kwargs["episode_steps"] = spa * draw(st.integers(1, 3))
    return kwargs


@FUZZ
@given(data=st.data())
def test_an_invalid_argument_is_refused_at_construction_naming_it(ref, data):
    name = data.draw(st.sampled_from(sorted(DOMAINS)))
    value = data.draw(DOMAINS[name][1])
    kwargs = data.draw(valid_kwargs())
    kwargs[name] = value
    face = data.draw(st.sampled_from(["parallel", "global"]))
    if face == "global" and name == "agents_per_side":
        kwargs.pop(name)
        return
    make = Turbulence2DParallelEnv if face == "parallel" else Turbulence2DGlobalEnv
    if face == "global":
        kwargs.pop("agents_per_side", None)
    with pytest.raises((ValueError, TypeError)) as info:
        make(reference=ref, n_les=N, **kwargs)
    assert name in str(info.value) or (name == "dt" and "dt=" in str(info.value)), (name, value, str(info.value))


def _finite_or_blowup(obs, rewards, info_blowup: bool) -> None:
    assert np.all(np.isfinite(obs)) and np.all(np.isfinite(rewards)) or info_blowup


@FUZZ
@given(kwargs=valid_kwargs(), seed=st.integers(0, 2**31 - 1), actions=st.lists(st.floats(-2.0, 2.0), min_size=ROLLOUT_STEPS, max_size=ROLLOUT_STEPS))
def test_valid_arguments_give_finite_rollouts_or_a_flagged_blowup(ref, kwargs, seed, actions):
    par = Turbulence2DParallelEnv(reference=ref, n_les=N, **kwargs)
    obs, _ = par.reset(seed=seed)
    assert all(np.all(np.isfinite(o)) for o in obs.values())
    for a in actions:
        obs, rewards, terms, truncs, infos = par.step({agent: np.float32(a) for agent in par.agents})
        blew = any(i["blowup"] for i in infos.values())
        _finite_or_blowup(np.concatenate(list(obs.values())), np.array(list(rewards.values())), blew)
        if any(truncs.values()) or any(terms.values()):
            break
    kwargs.pop("agents_per_side", None)
    venv = Turbulence2DGlobalVectorEnv(num_envs=2, reference=ref, n_les=N, **kwargs)
    obs, _ = venv.reset(seed=seed)
    for a in actions:
        obs, rewards, terms, truncs, infos = venv.step(np.full((2, 1), a, dtype=np.float32))
        assert np.all(np.isfinite(obs)) and np.all(np.isfinite(rewards))  # blown-up copies are reset (autoreset)


@FUZZ
@given(kwargs=valid_kwargs(), action=st.floats(-1e6, 1e6), bad=st.one_of(st.text(max_size=4), st.none(), st.booleans(), st.complex_numbers(max_magnitude=1.0)))
def test_no_action_is_silently_reinterpreted(ref, kwargs, action, bad):
    kwargs.pop("agents_per_side", None)
    kwargs["episode_steps"] = kwargs.get("steps_per_action", 10) * 2
    env = Turbulence2DGlobalEnv(reference=ref, n_les=N, **kwargs)
    twin = Turbulence2DGlobalEnv(reference=ref, n_les=N, **kwargs)
    env.reset(seed=0)
    twin.reset(seed=0)
    with pytest.raises(ValueError, match="real numbers"):
        env.step(bad)
    # a refused action changed nothing; an out-of-box number steps exactly like its clipped value
    low, high = env.settings.action_bounds  # coefficient_range (or [-1, 1]) in float64; the float32 box rounds it
    a = env.step(np.array([action], dtype=np.float64))
    b = twin.step(np.array([np.clip(action, low, high)], dtype=np.float64))
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1] == b[1] or (math.isnan(a[1]) and math.isnan(b[1]))
