"""simrl/Turbulence2D-v0 and simrl/Turbulence2DGlobal-v0: PettingZoo and Gymnasium APIs, whole-episode
determinism, vector/single equivalence, rewards, symmetries of the initial fields, blow-ups, bad input.

Everything runs at 16^2 on a small synthetic reference (:func:`synthetic_targets`), not the shipped DNS data.
"""

from __future__ import annotations

import warnings

import gymnasium as gym
import pettingzoo
import numpy as np
import pytest

import simrl  # noqa: F401  (registers the environments)
from simrl.envs import turbulence_v0
from simrl.envs.turbulence import Turbulence2DGlobalEnv, Turbulence2DGlobalVectorEnv, Turbulence2DParallelEnv
from simrl.envs.turbulence_core import (
    STATUS_ENSTROPHY,
    LESTargets,
    TurbulenceBatch,
    TurbulenceSettings,
    symmetry_transform,
    synthetic_targets,
)
from simrl.physics.turbulence import TurbulenceModel, diagnostics
from simrl.physics.turbulence.closures import STATIC_COEFFICIENTS, make_closure

N = 16


@pytest.fixture(scope="module")
def ref() -> LESTargets:
    return synthetic_targets(N)


def par_env(ref, **kwargs) -> Turbulence2DParallelEnv:
    kwargs.setdefault("episode_steps", 50)
    return Turbulence2DParallelEnv(reference=ref, n_les=N, **kwargs)


def global_env(ref, **kwargs) -> Turbulence2DGlobalEnv:
    kwargs.setdefault("episode_steps", 50)
    return Turbulence2DGlobalEnv(reference=ref, n_les=N, **kwargs)


# ----------------------------------------------------------------------------- APIs


def test_parallel_api_test(ref):
    from pettingzoo.test import parallel_api_test

    env = par_env(ref)
    parallel_api_test(env, num_cycles=20)
    assert env.possible_agents == [f"agent_{j}" for j in range(16)]
    assert env.metadata["name"] == "turbulence_v0" and env.metadata["is_parallelizable"]


def test_pettingzoo_seed_test(ref):
    from pettingzoo.test import parallel_seed_test

    # PettingZoo's own check compares only the first step (ecosystem.md sect. 2); the whole-episode test is below
    parallel_seed_test(lambda: par_env(ref), num_cycles=10)


def test_aec_api_test(ref):
    from pettingzoo.test import api_test
    from pettingzoo.utils import wrappers

    aec = turbulence_v0.env(reference=ref, n_les=N, episode_steps=30, agents_per_side=2)
    assert isinstance(aec, wrappers.OrderEnforcingWrapper)
    api_test(aec, num_cycles=10)


def test_pettingzoo_registry_builds_both_forms(ref):
    import pettingzoo

    par = pettingzoo.make("parallel", "simrl/Turbulence2D-v0", reference=ref, n_les=N, max_cycles=3)
    assert isinstance(par, Turbulence2DParallelEnv) and par.settings.episode_steps == 30
    obs, _ = par.reset(seed=0)
    assert set(obs) == set(par.possible_agents)
    aec = pettingzoo.make("aec", "simrl/Turbulence2D-v0", reference=ref, n_les=N, episode_steps=20)
    aec.reset(seed=0)
    assert aec.agent_selection == "agent_0"
    assert "simrl/Turbulence2D-v0" in simrl.list_environments("multi-agent")
    assert "simrl/Turbulence2DGlobal-v0" in simrl.list_environments("single-agent")


def test_observation_layout_and_infos(ref):
    env = par_env(ref, agents_per_side=4)
    obs, infos = env.reset(seed=3)
    k_cut = ref.params.k_cut
    assert all(o.shape == (6 + k_cut,) and o.dtype == np.float32 for o in obs.values())
    assert all(env.observation_space(a).contains(obs[a]) for a in env.agents)
    # the global part (the normalised log spectrum) is the same for every agent, the local part is not
    spec = np.stack([o[6:] for o in obs.values()])
    assert np.all(spec == spec[0]) and not np.all(np.stack([o[:6] for o in obs.values()]) == obs["agent_0"][:6])
    core = env.core
    z = diagnostics.enstrophy_spectrum(core.grid, core.state.omega_hat)[1][0, 1 : k_cut + 1]
    np.testing.assert_allclose(obs["agent_0"][6:], (np.log(z) - ref.mean_log_z) / ref.std_log_z, rtol=1e-5, atol=1e-5)
    # agent j sits at lattice point (j // 4, j % 4): its omega feature is the vorticity there / its DNS RMS
    omega = core.vorticity(0)
    j = 6
    expected = omega[core.agent_ix[j], core.agent_iy[j]] / ref.invariant_scale[2]
    assert obs[f"agent_{j}"][2] == pytest.approx(expected, rel=1e-5, abs=1e-6)
    obs, rewards, _, _, infos = env.step({a: np.array([0.01], np.float32) for a in env.agents})
    info = infos["agent_0"]
    for key in ("time", "enstrophy", "energy", "spectrum_error", "cfl", "mean_nu_e", "blowup", "status", "coefficient"):
        assert key in info
    assert info["solver_steps"] == 10 and info["time"] == pytest.approx(10 * ref.params.dt)
    assert info["coefficient"] == pytest.approx(0.01) and info["mean_nu_e"] > 0 and not info["blowup"]
    assert info["enstrophy"] == pytest.approx(diagnostics.enstrophy(core.grid, core.state.omega_hat)[0])
    assert len(set(rewards.values())) == 1
    assert env.state().shape == env.state_space.shape


def test_global_env_passes_gymnasium_and_sb3_checks(ref):
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    check_env(global_env(ref), skip_render_check=True)
    sb3_check_env(global_env(ref, normalized_actions=True), warn=True, skip_render_check=True)
    env = gym.make("simrl/Turbulence2DGlobal-v0", reference=ref, n_les=N, episode_steps=20)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (7 + ref.params.k_cut,) and env.observation_space.contains(obs)


def test_render_shows_vorticity_and_eddy_viscosity(ref):
    env = par_env(ref, render_mode="rgb_array")
    env.reset(seed=0)
    env.step({a: 0.05 for a in env.agents})
    frame = env.render()
    assert frame.ndim == 3 and frame.shape[2] == 3 and frame.shape[1] > frame.shape[0]
    with pytest.warns(UserWarning, match="render_mode"):
        assert global_env(ref).render() is None


# ----------------------------------------------------------------------------- determinism


def rollout(env: Turbulence2DParallelEnv, actions: np.ndarray, seed: int):
    obs, _ = env.reset(seed=seed)
    trace = [(env.core.state.omega_hat.copy(), np.stack(list(obs.values())), 0.0, {})]
    for row in actions:
        if not env.agents:
            break
        obs, rewards, _, _, infos = env.step({a: row[j] for j, a in enumerate(env.agents)})
        trace.append((env.core.state.omega_hat.copy(), np.stack(list(obs.values())), rewards["agent_0"], infos["agent_0"]))
    return trace


def test_same_seed_and_actions_give_bit_identical_whole_episodes(ref):
    # 60 actions = 600 solver steps: the whole episode, well past PettingZoo's own first-step seed test
    actions = np.random.default_rng(9).uniform(0.0, 0.02, size=(70, 16))
    a = rollout(par_env(ref, episode_steps=600), actions, seed=11)
    b = rollout(par_env(ref, episode_steps=600), actions, seed=11)
    assert len(a) == len(b) == 61
    for (wa, oa, ra, ia), (wb, ob, rb, ib) in zip(a, b):
        np.testing.assert_array_equal(wa, wb)
        np.testing.assert_array_equal(oa, ob)
        assert ra == rb
        np.testing.assert_equal(ia, ib)
    c = rollout(par_env(ref, episode_steps=600), actions[:2], seed=12)
    assert not np.array_equal(a[0][0], c[0][0])


def test_unseeded_resets_continue_the_generator_and_global_numpy_state_is_untouched(ref):
    np.random.seed(0)
    before = np.random.get_state()[1].copy()
    env = par_env(ref)
    env.reset(seed=1)
    first = env.core.state.omega_hat.copy()
    env.step({a: 0.01 for a in env.agents})
    env.reset()
    assert not np.array_equal(first, env.core.state.omega_hat)
    assert np.array_equal(before, np.random.get_state()[1])


def test_vector_env_matches_single_envs_over_whole_episodes_and_autoresets(ref):
    num_envs, steps = 3, 8  # 5-action episodes: covers the same-step autoreset
    actions = np.random.default_rng(2).uniform(0.0, 0.03, size=(steps, num_envs, 1)).astype(np.float32)
    venv = gym.make_vec(
        "simrl/Turbulence2DGlobal-v0", num_envs=num_envs, vectorization_mode="vector_entry_point",
        reference=ref, n_les=N, episode_steps=50,
    )  # fmt: skip
    assert isinstance(venv, Turbulence2DGlobalVectorEnv)
    obs, _ = venv.reset(seed=40)
    singles = [global_env(ref) for _ in range(num_envs)]
    np.testing.assert_array_equal(obs, np.stack([env.reset(seed=40 + i)[0] for i, env in enumerate(singles)]))
    autoresets = 0
    for t in range(steps):
        obs, rewards, term, trunc, info = venv.step(actions[t])
        for i, env in enumerate(singles):
            o, r, te, tr, inf = env.step(actions[t, i])
            assert r == rewards[i] and te == term[i] and tr == trunc[i]
            last_info = info["final_info"] if te or tr else info
            assert inf["enstrophy"] == last_info["enstrophy"][i] and inf["spectrum_error"] == last_info["spectrum_error"][i]
            if te or tr:
                np.testing.assert_array_equal(info["final_obs"][i], o)
                autoresets += 1
                o, _ = env.reset()
            np.testing.assert_array_equal(obs[i], o)
    assert autoresets == num_envs


def test_vector_env_disabled_autoreset_freezes_finished_copies(ref):
    venv = Turbulence2DGlobalVectorEnv(num_envs=2, autoreset_mode="Disabled", reference=ref, n_les=N, episode_steps=20)
    venv.reset(seed=[1, 2], options={"snapshot_index": [0, 1]})
    assert venv.core.snapshot.tolist() == [0, 1]
    for _ in range(2):
        _, _, term, trunc, info = venv.step(np.full((2, 1), 0.01, np.float32))
    assert trunc.all() and not term.any()
    frozen = venv.core.state.omega_hat.copy()
    _, rewards, _, trunc2, info = venv.step(np.full((2, 1), 0.01, np.float32))
    np.testing.assert_array_equal(venv.core.state.omega_hat, frozen)
    assert not rewards.any() and trunc2.all()


# ----------------------------------------------------------------------------- rewards and actions


def test_log_spectrum_reward_is_the_window_mean_of_the_normalised_error(ref):
    env = global_env(ref, steps_per_action=5, reward_clip=1e6)
    env.reset(seed=5)
    core = env.core
    # replay the window by hand on a copy of the field with the same closure
    model = TurbulenceModel(ref.params)
    state = model.state_from_spectral(core.state.omega_hat.copy())
    c = float(np.float32(0.02))  # the action arrives as float32
    errors = []
    for _ in range(5):
        nu = make_closure("leith", coefficient=c).eddy_viscosity(model.grid, state.omega_hat)
        model.advance(state, 1, nu)
        z = diagnostics.enstrophy_spectrum(model.grid, state.omega_hat)[1][0, 1 : ref.params.k_cut + 1]
        errors.append(np.mean(((np.log(z) - ref.mean_log_z) / ref.std_log_z) ** 2))
    _, reward, _, _, info = env.step(np.array([c], np.float32))
    np.testing.assert_array_equal(core.state.omega_hat, state.omega_hat)
    assert reward == pytest.approx(-np.mean(errors), rel=1e-8)
    assert info["spectrum_error"] == pytest.approx(np.mean(errors), rel=1e-8)
    assert core.spectrum_error_of(state.omega_hat)[0] == pytest.approx(errors[-1], rel=1e-12)
    clipped = global_env(ref, reward_clip=0.5)
    clipped.reset(seed=5)
    assert clipped.step(np.array([0.125], np.float32))[1] >= -0.5


def test_paper_reward_follows_the_formula(ref):
    env = global_env(ref, reward="paper")
    env.reset(seed=1)
    _, reward, _, _, _ = env.step(np.array([0.01], np.float32))
    grid, w = env.core.grid, env.core.state.omega_hat
    m, zx = diagnostics.paper_enstrophy_spectrum(grid, w, "x")
    _, zy = diagnostics.paper_enstrophy_spectrum(grid, w, "y")
    expected = 1.0 / np.sum(m**2 * ((zx[0] - ref.paper_x) ** 2 + (zy[0] - ref.paper_y) ** 2))
    assert reward == pytest.approx(expected, rel=1e-10) and reward > 0


def test_out_of_box_actions_are_clipped_and_one_agent_field_equals_the_static_closure(ref):
    high = par_env(ref)
    over = par_env(ref)
    high.reset(seed=4)
    over.reset(seed=4)
    _, r_high, *_ = high.step({a: 0.125 for a in high.agents})
    _, r_over, *_, infos = over.step({a: 7.0 for a in over.agents})
    assert r_high == r_over and infos["agent_0"]["coefficient"] == 0.125
    np.testing.assert_array_equal(high.core.state.omega_hat, over.core.state.omega_hat)
    # every agent at the static Leith value == the static Leith baseline through step_with_closure
    agents = par_env(ref)
    baseline = TurbulenceBatch(TurbulenceSettings(n_les=N, episode_steps=50), 1, ref)
    agents.reset(seed=8)
    baseline.reset_system(0, np.random.default_rng(0), omega_hat=agents.core.state.omega_hat[0].copy())
    c = STATIC_COEFFICIENTS["leith"]
    _, rewards, *_ = agents.step({a: c for a in agents.agents})
    result = baseline.step_with_closure(make_closure("leith"))
    np.testing.assert_allclose(agents.core.state.omega_hat, baseline.state.omega_hat, rtol=1e-9, atol=1e-9)
    assert rewards["agent_0"] == pytest.approx(result["reward"][0], rel=1e-8)


def test_symmetry_transforms_commute_with_the_les(ref):
    # shifts by forcing periods, the 90-degree rotation and the reflection (omega -> -omega, half-period
    # shift) map LES solutions onto LES solutions (here with a uniform-coefficient Leith closure)
    model = TurbulenceModel(ref.params)
    grid = model.grid
    closure = make_closure("leith")
    half = N // 8  # half a forcing period (k_f = 4)

    def run(omega):
        state = model.initial_state(omega)
        for _ in range(10):
            model.advance(state, 1, closure.eddy_viscosity(grid, state.omega_hat))
        return model.vorticity(state)[0]

    omega0 = model.vorticity(ref.snapshots[0][None])[0]
    after = run(omega0)
    for shift, rot, refl in [((4, 8), 0, False), ((0, 0), 1, False), ((0, 0), 3, False), ((4, 0), 2, True)]:
        transformed = symmetry_transform(omega0, shift, rot, refl, half)
        assert not np.allclose(transformed, omega0)
        np.testing.assert_allclose(run(transformed), symmetry_transform(after, shift, rot, refl, half), atol=1e-9)
    # beta breaks rotations and reflections: the core then only draws shifts
    beta = LESTargets(**{**ref.__dict__, "params": type(ref.params)(**{**ref.params.__dict__, "beta": 5.0})})
    core = TurbulenceBatch(TurbulenceSettings(n_les=N), 1, beta)
    assert not core._isotropic and core._shifts == [0, 4, 8, 12]


def test_augmented_resets_draw_distinct_fields_with_the_snapshot_spectrum(ref):
    env = par_env(ref, snapshot_indices=[2])
    fields = []
    for seed in range(6):
        env.reset(seed=seed)
        fields.append(env.core.state.omega_hat[0].copy())
    grid = env.core.grid
    spectra = diagnostics.enstrophy_spectrum(grid, np.stack(fields))[1]
    np.testing.assert_allclose(spectra, np.broadcast_to(spectra[0], spectra.shape), rtol=1e-10)
    assert len({f.tobytes() for f in fields}) > 1
    plain = par_env(ref, augment=False)
    plain.reset(seed=0, options={"snapshot_index": 3})
    np.testing.assert_allclose(plain.core.state.omega_hat[0], np.where(plain.core.model.kept, ref.snapshots[3], 0))


# ----------------------------------------------------------------------------- blow-ups


def test_forced_blowup_truncates_with_penalty_and_finite_observations(ref):
    env = par_env(ref, backscatter=True, coefficient_range=(-50.0, 0.125), episode_steps=200)
    env.reset(seed=0)
    for _ in range(20):
        obs, rewards, terms, truncs, infos = env.step({a: -50.0 for a in env.agents})
        if truncs["agent_0"]:
            break
    info = infos["agent_0"]
    assert truncs["agent_0"] and info["blowup"] and info["status"] != 0 and not terms["agent_0"]
    assert rewards["agent_0"] == -env.settings.penalty == -10.0 * 20
    assert all(np.all(np.isfinite(o)) for o in obs.values()) and env.agents == []
    assert np.all(np.isfinite(env.core.state.omega_hat))
    with pytest.raises(RuntimeError, match="reset"):
        env.step({})


def test_enstrophy_bound_blowup_and_vector_autoreset_after_it(ref):
    venv = Turbulence2DGlobalVectorEnv(
        num_envs=2, reference=ref, n_les=N, backscatter=True, coefficient_range=(-5.0, 0.125), enstrophy_limit=1.5,
        episode_steps=100, blowup_penalty=3.0,
    )  # fmt: skip
    venv.reset(seed=0)
    for _ in range(10):
        obs, rewards, term, trunc, info = venv.step(np.array([[-5.0], [0.01]], np.float32))
        if trunc[0]:
            break
    assert trunc[0] and not trunc[1] and rewards[0] == -3.0
    assert info["final_info"]["blowup"][0] and info["final_info"]["status"][0] == STATUS_ENSTROPHY
    assert not info["blowup"][0] and info["action_index"][0] == 0  # already reset (same step)
    assert np.all(np.isfinite(obs))


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"action": "dynamic"}, "accepted: \\['smagorinsky', 'leith'\\]"),
        ({"reward": "z1"}, "accepted: \\['log_spectrum', 'paper'\\]"),
        ({"interpolation": "cubic"}, "accepted: \\['fourier'"),
        ({"scale": "domain"}, "accepted: \\['local', 'global'\\]"),
        ({"agents_per_side": 3}, "accepted agents_per_side for n_les=16: \\[1, 2, 4, 8, 16\\]"),
        ({"dt": 0.0}, "dt .* > 0"),
        ({"dt": -1e-3}, "dt .* > 0"),
        ({"steps_per_action": 0}, "steps_per_action"),
        ({"episode_steps": 55}, "multiple of steps_per_action"),
        ({"coefficient_range": (-0.1, 0.1)}, "backscatter=True"),
        ({"coefficient_range": (0.1, 0.0)}, "low < high"),
        ({"n_les": 32}, "accepted: \\[16\\]"),
        ({"snapshot_indices": [99]}, "out of range"),
        ({"enstrophy_limit": 0}, "enstrophy_limit"),
    ],
)
def test_bad_arguments_raise_naming_what_is_accepted(ref, kwargs, match):
    kwargs = {"n_les": N, **kwargs}
    with pytest.raises(ValueError, match=match):
        Turbulence2DParallelEnv(reference=ref, **kwargs)


def test_unknown_case_names_the_accepted_cases():
    with pytest.raises(ValueError, match="case"):
        Turbulence2DParallelEnv(case="kolmogorov_flow", n_les=16)


def test_bad_actions_raise(ref):
    env = par_env(ref)
    env.reset(seed=0)
    good = {a: 0.01 for a in env.agents}
    with pytest.raises(ValueError, match="missing \\['agent_15'\\]"):
        env.step({a: 0.01 for a in env.agents[:-1]})
    with pytest.raises(ValueError, match="unknown \\['agent_99'\\]"):
        env.step({**good, "agent_99": 0.0})
    with pytest.raises(ValueError, match="shape \\(2,\\)"):
        env.step({**good, "agent_3": np.zeros(2)})
    with pytest.raises(ValueError, match="finite"):
        env.step({**good, "agent_3": np.nan})
    with pytest.raises(ValueError, match="accepted: agent_0 .. agent_15"):
        env.action_space("agent_16")
    genv = global_env(ref)
    genv.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        genv.step(np.zeros(3))
    with pytest.raises(ValueError, match="agents_per_side must be 1"):
        Turbulence2DGlobalEnv(reference=ref, n_les=N, agents_per_side=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        genv.step(np.array([0.2], np.float32))  # clipped, silently


def test_reset_with_a_given_field_and_bad_fields(ref):
    env = par_env(ref)
    omega = np.zeros((N, N))
    omega[3, 5] = 1.0
    env.reset(seed=0, options={"initial_field": omega})
    assert env.core.snapshot[0] == -1
    with pytest.raises(ValueError, match="spectral"):
        env.reset(options={"initial_field": np.zeros((N + 1, N))})
    with pytest.raises(ValueError, match="snapshot_index"):
        env.reset(options={"snapshot_index": 10_000})


# ----------------------------------------------------------------------------- reference data


def fake_reference_data(ref: LESTargets):
    """A ReferenceData (the shipped data's type) holding the synthetic 16^2 statistics."""
    from simrl.physics.turbulence.reference import LESReference, PDFReference, ReferenceData

    grid = TurbulenceModel(ref.params).grid
    z = diagnostics.enstrophy_spectrum(grid, ref.snapshots)[1].mean(axis=0)
    e = diagnostics.energy_spectrum(grid, ref.snapshots)[1].mean(axis=0)
    paper = {"x": ref.paper_x, "y": ref.paper_y, "xy": ref.paper_x}
    pdf = PDFReference(np.linspace(-5, 5, 101), np.zeros(100), ref.sigma_omega, ref.sigma_omega, 3.0, {})
    les = LESReference(
        n=N, k=np.arange(z.size), enstrophy_spectrum=z, energy_spectrum=e, dns_enstrophy_spectrum=z[:6],
        dns_energy_spectrum=e[:6], paper_spectrum=paper, dns_paper_spectrum=paper, log_k=ref.k,
        log_enstrophy_mean=ref.mean_log_z, log_enstrophy_var=ref.std_log_z**2, pdf=pdf, sigma_omega=ref.sigma_omega,
        snapshots=ref.snapshots, snapshot_times=np.arange(len(ref.snapshots), dtype=float),
    )  # fmt: skip
    p = ref.params
    return ReferenceData(
        case="fake", parameters={"n": 64, "nu": p.nu, "alpha": p.alpha, "beta": p.beta, "k_f": p.k_f, "dt": p.dt},
        les_resolutions=(N,), k=les.k, enstrophy_spectrum=z, energy_spectrum=e, paper_spectrum=paper, log_k=ref.k,
        log_enstrophy_mean=ref.mean_log_z, log_enstrophy_var=ref.std_log_z**2, pdf=pdf, sigma_omega=ref.sigma_omega,
        les={N: les},
    )  # fmt: skip


def test_reference_data_is_adapted_to_the_same_targets(ref):
    data = fake_reference_data(ref)
    a, b = par_env(ref), par_env(data)
    oa, _ = a.reset(seed=2)
    ob, _ = b.reset(seed=2)
    for agent in a.possible_agents:
        np.testing.assert_allclose(oa[agent], ob[agent], rtol=1e-6, atol=1e-6)
    assert b.core.targets.params == ref.params and b.core.targets.case == "fake"
    with pytest.raises(ValueError, match="available: \\[16\\]"):
        Turbulence2DParallelEnv(reference=data, n_les=32)


def test_shipped_reference_default_case():
    from simrl.physics.turbulence import reference

    if not reference.reference_path("fhit_cpu").is_file():
        pytest.skip("the shipped fhit_cpu reference is not generated yet (scripts/generate_turbulence_reference.py)")
    env = Turbulence2DParallelEnv(n_les=32, episode_steps=20)
    obs, infos = env.reset(seed=0)
    # a filtered-DNS snapshot is a typical sample of the statistics it is compared with
    assert 0.05 < infos["agent_0"]["spectrum_error"] < 10.0
    assert all(np.all(np.abs(o) < env.settings.obs_clip) for o in obs.values())
    _, rewards, _, _, infos = env.step({a: STATIC_COEFFICIENTS["leith"] for a in env.agents})
    assert not infos["agent_0"]["blowup"] and -10.0 <= rewards["agent_0"] < 0
    with pytest.raises(ValueError, match="accepted: \\[16, 32, 64, 128\\]"):
        Turbulence2DParallelEnv(n_les=48)


def test_v1_ids_use_the_paper_reynolds_number_reference_and_v0_is_unchanged():
    from simrl.agents.sb3_vec_env import make_sb3_vec_env
    from simrl.envs import turbulence_v1
    from simrl.physics.turbulence.reference import REFERENCE_CASES

    par = pettingzoo.make("parallel", "simrl/Turbulence2D-v1", n_les=32, episode_steps=20)
    assert par.core.settings.case == "fhit_paper"
    paper = REFERENCE_CASES["fhit_paper"]
    # nu = 5e-5 on the LES grid, with the case's LES time step (the DNS step at the same CFL, halved)
    assert par.core.targets.params.nu == pytest.approx(5e-5)
    assert par.core.targets.params.dt == pytest.approx(0.5 * paper.dt * paper.n / 32) == pytest.approx(6.4e-3)
    obs, infos = par.reset(seed=0)
    _, rewards, _, truncs, infos = par.step({a: STATIC_COEFFICIENTS["leith"] for a in par.agents})
    assert not infos["agent_0"]["blowup"] and np.isfinite(rewards["agent_0"])
    assert turbulence_v1.parallel_env(n_les=32).core.settings.case == "fhit_paper"
    assert turbulence_v1.raw_env(n_les=32).env.env.core.settings.case == "fhit_paper"  # order enforcing > parallel_to_aec
    env = gym.make("simrl/Turbulence2DGlobal-v1", n_les=32, episode_steps=20)
    assert env.unwrapped.core.settings.case == "fhit_paper"
    venv = make_sb3_vec_env("simrl/Turbulence2D-v1", num_envs=1, seed=0, n_les=32, episode_steps=20)
    assert venv.get_attr("case") == ["fhit_paper"] * venv.num_envs
    venv.close()
    # -v0 keeps the viscous CPU reference and the DNS step
    v0 = pettingzoo.make("parallel", "simrl/Turbulence2D-v0", n_les=32, episode_steps=20)
    assert v0.core.settings.case == "fhit_cpu" and v0.core.targets.params.dt == REFERENCE_CASES["fhit_cpu"].dt


# ----------------------------------------------------------------------------- reliability (bad input found by fuzzing)


def test_time_steps_the_solver_cannot_take_and_float32_overflowing_ranges_are_refused(ref):
    # dt = 1e300 used to damp every field to zero in one step with no blow-up flag
    with pytest.raises(ValueError, match=r"dt=1e\+300 gives a grid CFL number .* accepted: dt <= "):
        par_env(ref, dt=1e300)
    with pytest.raises(ValueError, match=r"dt=0.5 gives a grid CFL number"):
        global_env(ref, dt=0.5)
    # coefficient_range = (0, 1e300) used to make the float32 action space's high inf
    with pytest.raises(ValueError, match=r"coefficient_range .* outside \[-1e\+06, 1e\+06\]"):
        par_env(ref, coefficient_range=(0.0, 1e300))
    env = par_env(ref, coefficient_range=(0.0, 1e3))
    assert np.isfinite(env.action_space("agent_0").high).all()


def test_reset_options_and_seeds_are_checked(ref):
    env = global_env(ref)
    with pytest.raises(TypeError, match=r"reset\(options=...\) must be None or a dict with keys from \['initial_field', 'snapshot_index'\]"):
        env.reset(seed=0, options="abc")
    with pytest.raises(ValueError, match=r"unknown reset option\(s\) \['snapshot'\]; accepted"):
        env.reset(seed=0, options={"snapshot": 1})
    par = par_env(ref)
    with pytest.warns(UserWarning, match=r"unknown reset option\(s\) \['nope'\]"):
        par.reset(seed=0, options={"nope": 1})  # PettingZoo's API test passes arbitrary options: warned, dropped
    venv = Turbulence2DGlobalVectorEnv(num_envs=2, reference=ref, n_les=N, episode_steps=20)
    with pytest.raises(ValueError, match=r"reset\(seed=...\) must be None, an integer >= 0, or a list of 2"):
        venv.reset(seed=1.5)
    with pytest.raises(ValueError, match=r"reset\(seed=...\) must be"):
        venv.reset(seed=True)
    with pytest.raises(ValueError, match=r"options\['reset_mask'\] must be a boolean array of shape \(2,\)"):
        venv.reset(seed=0, options={"reset_mask": [1, 0]})
    obs_np, _ = venv.reset(seed=[np.int64(3), None])  # numpy integers are accepted as seeds
    obs_py, _ = Turbulence2DGlobalVectorEnv(num_envs=2, reference=ref, n_les=N, episode_steps=20).reset(seed=[3, 4])
    np.testing.assert_array_equal(obs_np[0], obs_py[0])
    with pytest.raises(ValueError, match=r"unknown autoreset_mode 'junk'; accepted: AutoresetMode.SAME_STEP"):
        Turbulence2DGlobalVectorEnv(num_envs=2, reference=ref, n_les=N, autoreset_mode="junk")
    with pytest.raises(ValueError, match="num_envs must be a positive integer, got True"):
        Turbulence2DGlobalVectorEnv(num_envs=True, reference=ref, n_les=N)


@pytest.mark.parametrize("bad", ["0.001", 0.001 + 0.0j, True, None, [object()]])
def test_actions_that_only_look_numeric_are_refused_by_every_face(ref, bad):
    par = par_env(ref)
    par.reset(seed=0)
    with pytest.raises(ValueError, match=r"action of agent_0 must be real numbers"):
        par.step({a: bad for a in par.agents})
    env = global_env(ref)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action must be real numbers"):
        env.step(bad)
    venv = Turbulence2DGlobalVectorEnv(num_envs=1, reference=ref, n_les=N, episode_steps=20)
    venv.reset(seed=0)
    with pytest.raises(ValueError, match=r"actions must be real numbers"):
        venv.step([bad])


def test_sb3_faces_check_seeds_flags_and_options(ref):
    from simrl.agents.sb3_vec_env import make_sb3_vec_env

    kw = dict(reference=ref, n_les=N, episode_steps=20)
    # a numpy integer seed used to fail at reset with Gymnasium's "Seed must be a python integer"
    a = make_sb3_vec_env("simrl/Turbulence2DGlobal-v0", num_envs=2, seed=np.int64(4), **kw).reset()
    b = make_sb3_vec_env("simrl/Turbulence2DGlobal-v0", num_envs=2, seed=4, **kw).reset()
    np.testing.assert_array_equal(a, b)
    for name in ("monitor", "fixed_reset_seeds"):
        with pytest.raises(TypeError, match=f"{name} must be True or False, got 'yes'"):
            make_sb3_vec_env("simrl/Turbulence2DGlobal-v0", num_envs=1, seed=0, **{name: "yes"}, **kw)
    with pytest.raises(ValueError, match="num_envs must be an integer >= 1, got True"):
        make_sb3_vec_env("simrl/Turbulence2DGlobal-v0", num_envs=True, **kw)
    venv = make_sb3_vec_env("simrl/Turbulence2D-v0", num_envs=1, seed=0, **kw)
    venv.reset()
    with pytest.raises(ValueError, match="actions must be an array of shape"):
        venv.step_async(None)
    venv.venv.set_options({"reset_mask": [True]})
    with pytest.raises(ValueError, match=r"unknown reset option\(s\) \['reset_mask'\]"):
        venv.reset()
    single = make_sb3_vec_env("simrl/Turbulence2DGlobal-v0", num_envs=1, seed=0, **kw)
    single.reset()
    with pytest.raises(ValueError, match="actions must be an array of 1 actions, got None"):
        single.step_async(None)
