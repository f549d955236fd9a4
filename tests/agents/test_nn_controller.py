"""Metamodels (simrl.agents.metamodels) and the dynamics-informed controller (simrl.agents.nn_controller):
identifiability of the fit, the ABM's steady state, the straight-through estimator, learning on the
metamodel, save/load, determinism, bad input. A 63 x 63 world keeps the ABM parts fast."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from simrl.agents.metamodels import (
    MichaelisMentenPathway,
    PredatorPreyCase1,
    fit,
    make_metamodel,
)
from simrl.agents.nn_controller import ControlLaw, NNController, PredatorPreyTask, rollout_cost, ste_round
from simrl.physics.ecology import PredatorPreyParams

SMALL = PredatorPreyParams(width=63, height=63, initial_sheep=152, initial_wolves=76)
TRUE_PP = dict(p1=0.12, p2=0.06, p3=0.05, p4=0.09, p5=0.03, p6=0.06, p7=0.04, p8=0.045)
TINY = dict(train_iterations=8, fit_iterations=30, batch_size=8, horizon_decisions=5, hidden=(8,))


@pytest.fixture(scope="module")
def snaps(tmp_path_factory):
    from simrl.envs.predator_prey import generate_snapshot_set

    path = tmp_path_factory.mktemp("pp_nn") / "small.npz"
    generate_snapshot_set(path, SMALL, count=8, ticks=300, seed=5)
    return str(path)


def small_env(snaps, n_envs=4, seed=0):
    from simrl.agents.sb3_vec_env import make_sb3_vec_env

    return make_sb3_vec_env("simrl/PredatorPrey-v0", n_envs, seed=seed, snapshots=snaps, episode_ticks=100)


def task(**changes) -> PredatorPreyTask:
    base = dict(reference=(24200.0, 4020.0, 1910.0), obs_scale=(65025.0, 4020.0, 1910.0),
                target=(22560.0, 4450.0, 795.0), weights=(1.0, 1.0, 1.0), effort_weight=1.0,
                max_removal=(0.05, 0.05), ticks_per_action=10, episode_ticks=400, extinction_cost=3.0)  # fmt: skip
    return PredatorPreyTask(**{**base, **changes})


# ---- metamodels ---------------------------------------------------------------------------------


def test_case1_equilibrium_is_a_fixed_point_and_long_runs_reach_it():
    model = PredatorPreyCase1(params=TRUE_PP)
    for u in ([0.0, 0.0, 0.0], [0.0, 0.01, 0.005]):
        eq = model.equilibrium(u)
        rhs = model.rhs(eq[None], torch.tensor([u], dtype=torch.float64))
        assert torch.allclose(rhs, torch.zeros_like(rhs), atol=1e-14)
        long_run = model.steady_state(torch.tensor([u], dtype=torch.float64), ticks=40_000)[0]
        assert torch.allclose(long_run, eq, rtol=1e-4)
    # Volterra's principle: culling wolves raises the sheep equilibrium, culling sheep does not change it.
    assert model.equilibrium([0, 0, 0.01])[1] > model.equilibrium([0, 0, 0])[1]
    assert torch.isclose(model.equilibrium([0, 0.01, 0])[1], model.equilibrium([0, 0, 0])[1])


def test_fit_recovers_known_predator_prey_parameters_from_its_own_trajectories():
    true = PredatorPreyCase1(params=TRUE_PP)
    gen = torch.Generator().manual_seed(0)
    x0 = 0.5 + torch.rand(6, 3, generator=gen, dtype=torch.float64)
    u = torch.zeros(6, 40, 3, dtype=torch.float64)
    u[:, :, 1:] = 0.02 * torch.rand(6, 1, 2, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        data = true.simulate(x0, u, dt=5.0)
    start = PredatorPreyCase1(params=TRUE_PP, jitter=0.3, seed=1)  # up to ~50 % off
    result = fit(start, data, u, dt=5.0, horizon=3, iterations=120)
    assert result.rmse < 1e-5
    for name, value in TRUE_PP.items():
        assert result.params[name] == pytest.approx(value, rel=1e-3), name


def test_fit_recovers_the_michaelis_menten_pathway_up_to_its_known_correlation():
    true = MichaelisMentenPathway(params=dict(VA=0.02, KA=0.5, KiA=1.0, VE=0.015, KE=0.3, KiE=0.8, VI=0.01,
                                              KI=0.4, KiI=1.5, VO=0.012, KO=0.6, KiO=0.7, aO=2.0, KaO=0.5))  # fmt: skip
    gen = torch.Generator().manual_seed(0)
    x0 = 0.2 + torch.rand(6, 5, generator=gen, dtype=torch.float64)
    u = (0.02 * torch.rand(6, 1, 1, generator=gen, dtype=torch.float64)).expand(6, 24, 1).clone()
    u[:, 12:] *= 0.3
    with torch.no_grad():
        data = true.simulate(x0, u, dt=20.0)
    result = fit(MichaelisMentenPathway(params=true.param_dict(), jitter=0.1, seed=1), data, u, dt=20.0,
                 horizon=3, iterations=120)  # fmt: skip
    assert result.rmse < 1e-3
    # The O branch's VO, aO, KaO trade off against each other when R >> KaO; the others are sharp.
    for name, value in true.param_dict().items():
        assert result.params[name] == pytest.approx(value, rel=0.15 if name in ("VO", "aO", "KaO") else 0.02), name


def test_fitted_case1_reproduces_the_abms_uncontrolled_steady_state():
    """Fit on the shipped big-world ABM runs (32 uncontrolled runs of 1,000 ticks from NetLogo's
    setup, every 10 ticks): the fitted equilibrium must be within 5 % of the ABM's mean over
    ticks 500-1000 of all 32 runs for grass, sheep and wolves (measured: within 1.5 %)."""
    from simrl.envs.predator_prey import load_snapshot_set
    from simrl.physics.ecology import NETLOGO_BIGWORLD_STEADY_STATE

    history = load_snapshot_set().history.astype(np.float64)  # (32, 1000, 3)
    scale = np.array(NETLOGO_BIGWORLD_STEADY_STATE)
    states = history[:16, 9::10] / scale  # ticks 10, 20, ..., 1000
    controls = np.zeros((16, states.shape[1] - 1, 3))
    model = PredatorPreyCase1()
    result = fit(model, states, controls, dt=10.0, horizon=3, substeps=2, iterations=80)
    abm = history[:, 500:].reshape(-1, 3).mean(axis=0)
    fitted = model.equilibrium([0.0, 0.0, 0.0]).detach().numpy() * scale
    assert result.rmse < 0.1
    np.testing.assert_allclose(fitted, abm, rtol=0.05)


def test_metamodel_bad_input_names_what_is_accepted():
    with pytest.raises(ValueError, match="accepted"):
        make_metamodel("sir")
    with pytest.raises(ValueError, match="positive"):
        PredatorPreyCase1(params=[0.1] * 7 + [-1.0])
    with pytest.raises(ValueError, match="missing"):
        PredatorPreyCase1(params={"p1": 1.0})
    model = PredatorPreyCase1()
    with pytest.raises(ValueError, match="space"):
        fit(model, np.ones((1, 8, 3)), np.zeros((1, 7, 3)), dt=1.0, space="sqrt")
    with pytest.raises(ValueError, match="controls must have shape"):
        fit(model, np.ones((1, 8, 3)), np.zeros((1, 8, 3)), dt=1.0)
    with pytest.raises(ValueError, match="too short"):
        fit(model, np.ones((1, 3, 3)), np.zeros((1, 2, 3)), dt=1.0, horizon=5)


# ---- the law, the STE and learning on the metamodel ------------------------------------------------


def test_straight_through_estimator_rounds_forward_and_passes_gradients():
    x = torch.tensor([0.2, 1.6, 2.5, 44.49], dtype=torch.float64, requires_grad=True)
    y = ste_round(x)
    assert y.tolist() == [0.0, 2.0, 2.0, 44.0]
    (y * torch.arange(4.0, dtype=torch.float64)).sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 2.0, 3.0]  # identity gradient
    # Through a whole integer-removal rollout the law still gets a gradient.
    law = ControlLaw(6, 2, (8,), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        law.head.weight.normal_(0.0, 0.5, generator=torch.Generator().manual_seed(1))
    t = task(reference=(1000.0, 200.0, 100.0))  # small populations: rounding matters
    x0 = torch.ones(4, 3, dtype=torch.float64)
    cost = rollout_cost(law, PredatorPreyCase1(params=TRUE_PP), t, x0, 10, integer_removals=True)
    cost.backward()
    grads = [p.grad for p in law.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0
    # and the rounded removals really are whole animals
    u = t.controls(torch.full((1, 2), 0.37, dtype=torch.float64), x0[:1], integer=True)
    counts = u[0, 1:] * torch.tensor([200.0, 100.0], dtype=torch.float64)
    assert torch.allclose(counts, torch.round(counts))


def test_controller_learns_on_the_metamodel():
    """The law's training lowers the metamodel objective well below the initial constant law's."""
    t = task()
    ctrl = NNController(task=t, seed=0, train_iterations=40, batch_size=16, horizon_decisions=20, hidden=(16,),
                        process_noise=False)  # fmt: skip
    ctrl.metamodel = PredatorPreyCase1(params=dict(p1=0.3, p2=0.2, p3=0.1, p4=0.07, p5=0.045, p6=0.02, p7=0.04, p8=0.04))
    ctrl._data.states = [np.ones((3, 3))]
    ctrl._data.actions = [np.zeros((2, 2))]
    x0 = torch.ones(8, 3, dtype=torch.float64)
    with torch.no_grad():
        before = float(rollout_cost(ctrl.law, ctrl.metamodel, t, x0, 20))
    ctrl._train_law()
    with torch.no_grad():
        after = float(rollout_cost(ctrl.law, ctrl.metamodel, t, x0, 20))
    losses = [h["loss"] for h in ctrl.train_history]
    assert after < 0.5 * before
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    # the trained law is a feedback law: different states, different actions
    a = ctrl.law(t.features(torch.tensor([[1.0, 1.0, 1.0], [0.9, 1.1, 0.4]], dtype=torch.float64)))
    assert not torch.allclose(a[0], a[1])


# ---- the agent on the ABM ----------------------------------------------------------------------------


def test_learn_predict_save_load_round_trip_and_determinism(snaps, tmp_path):
    env = small_env(snaps)
    a = NNController(env, seed=3, **TINY).learn(total_timesteps=160)
    assert a.num_timesteps == 160 and a.fit_results and np.isfinite(a.fit_results[0]["rmse"])
    obs = env.reset()
    actions, state = a.predict(obs)
    assert state is None and actions.shape == (4, 2) and actions.dtype == np.float32
    assert np.all((actions >= 0) & (actions <= 1))
    assert a.predict(obs[0])[0].shape == (2,)
    a.save(tmp_path / "ctrl")  # ".zip" appended, as in SB3
    b = NNController.load(tmp_path / "ctrl.zip")
    np.testing.assert_array_equal(b.predict(obs)[0], actions)
    for pa, pb in zip(a.law.parameters(), b.law.parameters()):
        assert torch.equal(pa, pb)
    assert torch.equal(a.metamodel.log_params, b.metamodel.log_params) and b.num_timesteps == 160
    # the same seed gives the same controller (data, fit and law)
    c = NNController(small_env(snaps), seed=3, **TINY).learn(total_timesteps=160)
    np.testing.assert_array_equal(c.predict(obs)[0], actions)
    assert c.fit_results[0]["params"] == a.fit_results[0]["params"]


def test_refit_round_collects_closed_loop_data(snaps):
    ctrl = NNController(small_env(snaps), seed=0, refit_rounds=1, **TINY).learn(total_timesteps=160)
    assert len(ctrl.fit_results) == 2 and ctrl.num_timesteps == 160


def test_controller_bad_input_names_what_is_accepted(snaps, tmp_path):
    env = small_env(snaps, n_envs=1)
    with pytest.raises(ValueError, match="explore_hold"):
        NNController(env, explore_hold=(5, 2))
    with pytest.raises(ValueError, match="batch_size"):
        NNController(env, batch_size=0)
    with pytest.raises(ValueError, match="callbacks"):
        NNController(env, **TINY).learn(10, callback=lambda *a: True)
    with pytest.raises(ValueError, match="accepted"):
        from stable_baselines3.common.env_util import make_vec_env

        NNController(make_vec_env("CartPole-v1", n_envs=1))
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not an NNController"):
        NNController.load(bad)


# ---- the metabolic pathway -----------------------------------------------------------------------


def test_metabolic_task_objective_is_minus_the_yield_and_the_controller_runs_on_the_abm():
    from simrl.agents.nn_controller import MetabolicTask
    from simrl.agents.sb3_vec_env import make_sb3_vec_env

    env = make_sb3_vec_env("simrl/MetabolicPathway-v0", 2, seed=0, episode_steps=1000)
    ctrl = NNController(env, seed=0, **{**TINY, "fit_horizon": 2})
    t = ctrl.task
    assert isinstance(t, MetabolicTask) and t.n_decisions == 4 and t.unit == t.reference[0]
    # A constant law: the objective is -(integral of F_O) / (stock + fed), computed by hand here.
    law = ControlLaw(t.n_features, 1, (4,))
    with torch.no_grad():
        law.head.bias.fill_(0.0)  # action 0.5 -> feed 2.5 molecules per step (full scale)
    model = t.make_metamodel()
    x0 = torch.ones(1, 5, dtype=torch.float64)
    with torch.no_grad():
        got = rollout_cost(law, model, t, x0, n_decisions=4, substeps=2)
        feed = (t.feed_min + 0.5 * (t.feed_max - t.feed_min)) * t.effective_scale / t.unit
        x, product, h = x0, 0.0, t.ticks_per_action / 2
        for _ in range(8):
            x_new = model.step(x, torch.tensor([[feed]], dtype=torch.float64), h)
            product += 0.5 * h * float(model.rates(x)[0, 3] + model.rates(x_new)[0, 3])
            x = x_new
    assert float(got) == pytest.approx(-product / (3.0 + feed * 8 * h), rel=1e-12)
    # The law sees the elapsed fraction of the episode (observation 12): the same state late in
    # the episode is a different input.
    obs = env.reset()
    late = obs.copy()
    late[:, 12] = 0.9
    early_x, late_x = (torch.as_tensor(t.state_from_obs(o)) for o in (obs, late))
    f0 = t.features(early_x, torch.as_tensor(t.progress_from_obs(obs)))
    f1 = t.features(late_x, torch.as_tensor(t.progress_from_obs(late)))
    assert f0.shape == (2, 6) and torch.equal(f0[:, :5], f1[:, :5]) and np.allclose(f1[:, 5], 0.9)
    ctrl.learn(total_timesteps=16)
    actions, _ = ctrl.predict(obs)
    assert actions.shape == (2, 1) and np.all((actions >= 0) & (actions <= 1))
