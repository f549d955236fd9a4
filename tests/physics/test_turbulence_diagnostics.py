"""Diagnostics of simrl.physics.turbulence: normalisations, sum rules, PDFs, filters, transfers, budgets."""

from __future__ import annotations

import doctest
import importlib

import numpy as np
import pytest

from simrl.physics.turbulence import TurbulenceModel, TurbulenceParameters, random_vorticity
from simrl.physics.turbulence import diagnostics as diag
from simrl.physics.turbulence.grid import SpectralGrid
from simrl.physics.turbulence.model import jacobian_hat, streamfunction_hat


def make_model(n=32, **kwargs) -> TurbulenceModel:
    return TurbulenceModel(TurbulenceParameters(n=n, **kwargs))


def random_hat(model, batch_size=2, seed=0, rms=3.0, k_peak=None):
    omega = random_vorticity(model.grid, np.random.default_rng(seed), batch_size=batch_size, rms=rms, k_peak=k_peak)
    return model.initial_state(omega).omega_hat


# ------------------------------------------------------------------------------------------
# (f) spectra and their sum rules
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n, dealias", [(32, True), (48, False), (64, True)])
def test_spectra_sum_to_the_domain_means(n, dealias):
    model = make_model(n=n, dealias=dealias, k_f=2)
    grid = model.grid
    w = random_hat(model, batch_size=3, seed=n, k_peak=grid.k_cut / 2)
    omega = model.vorticity(w)
    u, v = model.velocity(w)
    e_phys = 0.5 * np.mean(u**2 + v**2, axis=(-2, -1))
    z_phys = 0.5 * np.mean(omega**2, axis=(-2, -1))
    k, e_k = diag.energy_spectrum(grid, w)
    _, z_k = diag.enstrophy_spectrum(grid, w)
    assert e_k.shape == z_k.shape == (3, grid.n_shells) and k[0] == 0 and len(k) == grid.n_shells
    np.testing.assert_allclose(e_k.sum(-1), e_phys, rtol=1e-12)
    np.testing.assert_allclose(z_k.sum(-1), z_phys, rtol=1e-12)
    np.testing.assert_allclose(diag.energy(grid, w), e_phys, rtol=1e-12)
    np.testing.assert_allclose(diag.enstrophy(grid, w), z_phys, rtol=1e-12)
    # Z(k) = k^2 E(k) shell by shell only approximately (shells have width 1), but exactly in total:
    m, z_kx, z_ky = diag.directional_enstrophy_spectra(grid, w)
    assert len(m) == n // 2 + 1
    np.testing.assert_allclose(z_kx.sum(-1), z_phys, rtol=1e-12)
    np.testing.assert_allclose(z_ky.sum(-1), z_phys, rtol=1e-12)
    # Palinstrophy against physical gradients.
    wx, wy = grid.to_physical(grid.ikx * w), grid.to_physical(grid.iky * w)
    np.testing.assert_allclose(diag.palinstrophy(grid, w), 0.5 * np.mean(wx**2 + wy**2, axis=(-2, -1)), rtol=1e-12)
    # Leading axes (time, batch) pass through.
    stacked = np.stack([w, 2 * w])
    e_series, z_series = diag.energy_enstrophy_series(grid, stacked)
    assert e_series.shape == (2, 3)
    np.testing.assert_allclose(z_series[1], 4 * z_phys, rtol=1e-12)
    assert diag.enstrophy_spectrum(grid, stacked)[1].shape == (2, 3, grid.n_shells)


def test_single_mode_sits_in_its_shell_and_direction():
    model = make_model(n=32)
    grid = model.grid
    x, y = grid.meshgrid()
    w = model.initial_state(np.cos(3 * x + 4 * y)).omega_hat  # |k| = 5
    _, z_k = diag.enstrophy_spectrum(grid, w)
    assert np.flatnonzero(z_k[0] > 1e-14).tolist() == [5]
    np.testing.assert_allclose(z_k[0, 5], 0.25)  # <cos^2>/2
    _, e_k = diag.energy_spectrum(grid, w)
    np.testing.assert_allclose(e_k[0, 5], 0.25 / 25)
    _, z_kx, z_ky = diag.directional_enstrophy_spectra(grid, w)
    assert np.flatnonzero(z_kx[0] > 1e-14).tolist() == [3]
    assert np.flatnonzero(z_ky[0] > 1e-14).tolist() == [4]


@pytest.mark.parametrize("direction, dirs", [("x", (2, 0)), ("y", (0, 2)), ("xy", (1, 1))])
def test_paper_spectrum_equals_the_reference_formula(direction, dirs):
    # turb.enstrophy_spectrum of RLonKorali, on the full fft2 with 'ij' indexing.
    model = make_model(n=32, beta=20.0)
    grid = model.grid
    w = random_hat(model, batch_size=1, seed=4)
    omega = model.vorticity(w)[0]
    signal = np.abs(np.fft.fft2(omega)) ** 2 / 2
    spec_x, spec_y = np.mean(signal, axis=0), np.mean(signal, axis=1)
    expected = ((dirs[0] * spec_x + dirs[1] * spec_y) / 2 / 32**2 / 32)[:16]
    m, got = diag.paper_enstrophy_spectrum(grid, w, direction)
    assert m.tolist() == list(range(16))
    np.testing.assert_allclose(got[0], expected, rtol=1e-12, atol=1e-14 * expected.max())
    with pytest.raises(ValueError, match=r"direction must be one of \['x', 'xy', 'y'\]"):
        diag.paper_enstrophy_spectrum(grid, w, "circle")


def test_transfer_spectrum_sums_to_the_mean_product():
    model = make_model(n=32)
    grid = model.grid
    a, b = random_hat(model, seed=1), random_hat(model, seed=2)
    _, t_k = diag.transfer_spectrum(grid, a, b)
    expected = np.mean(model.vorticity(a) * model.vorticity(b), axis=(-2, -1))
    np.testing.assert_allclose(t_k.sum(-1), expected, rtol=1e-12)


# ------------------------------------------------------------------------------------------
# Vorticity PDF
# ------------------------------------------------------------------------------------------


def test_vorticity_pdf_of_a_gaussian_sample():
    rng = np.random.default_rng(0)
    sample = 2.0 * rng.standard_normal((8, 256, 256))  # 524,288 values, std 2
    pdf = diag.vorticity_pdf(sample, n_bins=100)
    assert pdf.n_samples == sample.size
    np.testing.assert_allclose(pdf.sigma, 2.0, rtol=5e-3)
    np.testing.assert_allclose(pdf.kurtosis, 3.0, atol=0.03)
    # P(|z| > 3) = 2.70e-3, P(|z| > 4) = 6.3e-5 for a standard normal.
    np.testing.assert_allclose(pdf.tail_fractions[3.0], 2.70e-3, rtol=0.1)
    assert pdf.tail_fractions[4.0] < 2e-4 and pdf.tail_fractions[5.0] < 2e-5
    width = pdf.bin_edges[1] - pdf.bin_edges[0]
    np.testing.assert_allclose(pdf.density.sum() * width, 1 - pdf.outside_fraction, rtol=1e-12)
    centre = pdf.density[len(pdf.density) // 2 - 1 : len(pdf.density) // 2 + 1].mean()
    np.testing.assert_allclose(centre, 1 / np.sqrt(2 * np.pi), rtol=0.02)
    # A given sigma (e.g. the DNS one) rescales the bins and the thresholds.
    wide = diag.vorticity_pdf(sample, sigma=1.0)
    np.testing.assert_allclose(wide.tail_fractions[4.0], 0.0455, rtol=0.05)  # P(|z| > 2)
    assert wide.kurtosis == pdf.kurtosis


def test_vorticity_pdf_kurtosis_of_a_heavy_tailed_sample_and_bad_input():
    sample = np.random.default_rng(1).laplace(size=400_000)
    np.testing.assert_allclose(diag.vorticity_pdf(sample).kurtosis, 6.0, rtol=0.05)
    with pytest.raises(ValueError, match="finite values"):
        diag.vorticity_pdf(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match=r"sigma must be a finite real number > 0"):
        diag.vorticity_pdf(sample, sigma=0.0)


# ------------------------------------------------------------------------------------------
# Filters, coarse-graining, subgrid transfer
# ------------------------------------------------------------------------------------------


def test_coarse_graining_by_truncation_matches_the_fine_field_at_coarse_points():
    fine = SpectralGrid(64)
    x, y = fine.meshgrid()
    resolved = np.sin(3 * x - 2 * y) + 0.5 * np.cos(7 * y) + np.cos(5 * x + 6 * y)  # |k_i| < 16/2 = 8
    unresolved = 0.3 * np.cos(12 * x + y)
    coarse_hat = diag.coarse_grain(fine.to_spectral(resolved + unresolved), 16)
    assert coarse_hat.shape == (16, 9)
    coarse = SpectralGrid(16).to_physical(coarse_hat)
    np.testing.assert_allclose(coarse, resolved[::4, ::4], atol=1e-13)
    with pytest.raises(ValueError, match=r"n_les must be an even integer in \[2, 64\]"):
        diag.coarse_grain(fine.to_spectral(resolved), 15)


def test_spectral_refinement_is_the_trigonometric_interpolant_and_inverts_coarse_graining():
    coarse = SpectralGrid(16)
    x, y = coarse.meshgrid()
    field = np.sin(3 * x - 2 * y) + 0.5 * np.cos(7 * y) + np.cos(5 * x + 6 * y)  # all |k_i| < 8
    fine_hat = diag.spectral_refine(coarse.to_spectral(field), 64)
    assert fine_hat.shape == (64, 33)
    fine = SpectralGrid(64)
    xf, yf = fine.meshgrid()
    # the refined field is the same trigonometric polynomial, evaluated on the fine grid
    np.testing.assert_allclose(fine.to_physical(fine_hat), np.sin(3 * xf - 2 * yf) + 0.5 * np.cos(7 * yf)
                               + np.cos(5 * xf + 6 * yf), atol=1e-13)  # fmt: skip
    np.testing.assert_allclose(diag.coarse_grain(fine_hat, 16), coarse.to_spectral(field), atol=1e-12)
    # the enstrophy (a mean over the domain) is unchanged
    assert diag.enstrophy(fine, fine_hat) == pytest.approx(diag.enstrophy(coarse, coarse.to_spectral(field)), rel=1e-12)
    with pytest.raises(ValueError, match=r"n_fine must be an even integer >= 16"):
        diag.spectral_refine(coarse.to_spectral(field), 8)


def test_sharp_and_gaussian_filters():
    grid = SpectralGrid(32)
    circ = diag.sharp_cutoff_filter(grid, 5)
    square = diag.sharp_cutoff_filter(grid, 5, shape="square")
    assert circ[3, 4] == 1 and circ[4, 4] == 0 and square[4, 4] == 1 and square[6, 0] == 0
    assert circ.shape == square.shape == grid.spectral_shape
    g = diag.gaussian_filter(grid, 2 * grid.dx)
    assert g[0, 0] == 1 and np.all(np.diff(g[0, :]) < 0)
    with pytest.raises(ValueError, match=r"shape must be 'circular' or 'square'"):
        diag.sharp_cutoff_filter(grid, 5, shape="disc")


def test_subgrid_transfer_vanishes_for_a_resolved_field_and_obeys_its_sum_rules():
    model = make_model(n=64)
    grid = model.grid
    cutoff = diag.sharp_cutoff_filter(grid, 10)
    # Band-limited to |k| <= 5: every product stays within |k| <= 10, so filt(J) = J(bar).
    small = random_hat(model, seed=5, k_peak=2.0) * diag.sharp_cutoff_filter(grid, 5)
    res = diag.subgrid_transfer(grid, small, cutoff)
    assert np.abs(res.pi_hat).max() < 1e-12 * np.abs(jacobian_hat(grid, small)).max()
    # A broadband field: Pi is non-trivial and its co-spectra sum to the physical means.
    w = random_hat(model, seed=6, rms=5.0, k_peak=8.0)
    res = diag.subgrid_transfer(grid, w, cutoff)
    omega_bar = grid.to_physical(res.omega_bar_hat)
    psi_bar = grid.to_physical(streamfunction_hat(grid, res.omega_bar_hat))
    pi = grid.to_physical(res.pi_hat)
    assert np.abs(pi).max() > 1e-3 * np.abs(grid.to_physical(jacobian_hat(grid, w))).max()
    np.testing.assert_allclose(res.mean_enstrophy_transfer, np.mean(omega_bar * pi, axis=(-2, -1)), rtol=1e-10)
    np.testing.assert_allclose(res.mean_energy_transfer, -np.mean(psi_bar * pi, axis=(-2, -1)), rtol=1e-10)
    assert np.all(res.enstrophy_transfer[:, 11:] == 0)  # the filtered field has nothing above the cutoff
    assert np.all((res.backscatter_fraction > 0) & (res.backscatter_fraction < 1))
    # The filtered-DNS tendency identity: filt(-J(psi, omega)) = -J(psi_bar, omega_bar) - Pi.
    np.testing.assert_allclose(
        cutoff * -jacobian_hat(grid, w), -jacobian_hat(grid, res.omega_bar_hat) - res.pi_hat, atol=1e-10
    )


# ------------------------------------------------------------------------------------------
# Budgets and time series
# ------------------------------------------------------------------------------------------


def test_budgets_close_against_the_tendency_and_the_integration():
    nu, alpha = 2e-3, 0.1
    model = make_model(n=32, nu=nu, alpha=alpha, beta=20.0, k_f=4, dt=1e-4)
    grid = model.grid
    w = random_hat(model, seed=7, rms=6.0)
    x, y = grid.meshgrid()
    nu_e = 3e-3 * (1 + 0.8 * np.cos(x) * np.sin(2 * y))[None].repeat(2, axis=0)
    b = diag.budgets(model, w, nu_e)
    z, e = b["enstrophy"], b["energy"]
    tend = model.tendency(w, nu_e)
    np.testing.assert_allclose(z["total"], grid.mean_product(w, tend), rtol=1e-12)
    np.testing.assert_allclose(e["total"], -grid.mean_product(streamfunction_hat(grid, w), tend), rtol=1e-12)
    scale_z = np.abs(z["forcing"]) + np.abs(z["drag"])
    assert np.all(np.abs(z["advection"]) < 1e-12 * scale_z)
    assert np.all(np.abs(z["beta"]) < 1e-12 * scale_z) and np.all(np.abs(e["beta"]) < 1e-12 * np.abs(e["drag"]))
    np.testing.assert_allclose(z["viscous"], -2 * nu * diag.palinstrophy(grid, w), rtol=1e-12)
    np.testing.assert_allclose(z["drag"], -2 * alpha * diag.enstrophy(grid, w), rtol=1e-12)
    np.testing.assert_allclose(e["viscous"], -2 * nu * diag.enstrophy(grid, w), rtol=1e-12)
    np.testing.assert_allclose(e["drag"], -2 * alpha * diag.energy(grid, w), rtol=1e-12)
    wx, wy = grid.to_physical(grid.ikx * w), grid.to_physical(grid.iky * w)
    np.testing.assert_allclose(z["closure"], -np.mean(nu_e * (wx**2 + wy**2), axis=(-2, -1)), rtol=1e-12)
    # The integrated enstrophy changes at the budgeted rate (central difference over +-dt).
    state = model.state_from_spectral(w)
    z_series = [diag.enstrophy(grid, state.omega_hat)]
    e_series = [diag.energy(grid, state.omega_hat)]
    for _ in range(2):
        model.advance(state, 1, nu_e=nu_e)
        z_series.append(diag.enstrophy(grid, state.omega_hat))
        e_series.append(diag.energy(grid, state.omega_hat))
    mid = diag.budgets(model, _one_step(model, w, nu_e), nu_e)
    two_dt = 2 * model.params.dt
    np.testing.assert_allclose((z_series[2] - z_series[0]) / two_dt, mid["enstrophy"]["total"], rtol=1e-6)
    np.testing.assert_allclose((e_series[2] - e_series[0]) / two_dt, mid["energy"]["total"], rtol=1e-6)


def _one_step(model, w, nu_e):
    state = model.state_from_spectral(w)
    model.advance(state, 1, nu_e=nu_e)
    return state.omega_hat


def test_energy_enstrophy_recorder():
    model = make_model(n=16, k_f=2, dt=1e-2)
    state = model.initial_state(random_vorticity(model.grid, np.random.default_rng(0), batch_size=3))
    rec = diag.EnergyEnstrophyRecorder(model.grid)
    for _ in range(4):
        rec.record(state)
        model.advance(state, 2)
    out = rec.arrays()
    assert out["time"].shape == out["energy"].shape == out["enstrophy"].shape == (4, 3)
    np.testing.assert_allclose(out["time"][:, 0], [0.0, 0.02, 0.04, 0.06])
    first = model.initial_state(random_vorticity(model.grid, np.random.default_rng(0), batch_size=3))
    np.testing.assert_allclose(out["energy"][0], diag.energy(model.grid, first.omega_hat), rtol=1e-15)


# ------------------------------------------------------------------------------------------
# Docstring examples
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "simrl.physics.turbulence",
        "simrl.physics.turbulence.model",
        "simrl.physics.turbulence.parameters",
        "simrl.physics.turbulence.diagnostics",
    ],
)
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
