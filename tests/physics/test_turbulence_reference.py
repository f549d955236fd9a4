"""Reference DNS data: the shipped artefacts (resolution, stationarity, normalisation, snapshots) and the
generator (end to end on a tiny case, resume after an interruption, atomic files, clear errors)."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from simrl.physics.turbulence import diagnostics
from simrl.physics.turbulence.closures import dynamic_coefficient
from simrl.physics.turbulence.grid import SpectralGrid
from simrl.physics.turbulence.reference import (
    DATA_DIR,
    REFERENCE_CASES,
    ReferenceDataError,
    load_reference,
    manifest_path,
    reference_path,
)
from simrl.physics.turbulence.reference_generator import generate_reference

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ("fhit_cpu", "beta_cpu", "fhit_paper")
PAPER_SHIPPED = tuple(c for c in SHIPPED if c.endswith("_paper"))

#: Known shortfalls of the shipped paper-case data, measured when it was generated (README, "Turbulence"). The
#: tests still run and must fail (strict xfail): regenerating with a longer window must make them pass.
KNOWN_SHORTFALLS = {
    ("fhit_paper", "resolved"): "1024^2 at nu = 5e-5 with the 2/3 rule is marginal: Z(341)/Z(170) = 0.07, the "
    "dissipation spectrum at the cutoff is 16 % of its peak (the shells an LES <= 128^2 sees agree with the 512^2 "
    "run within 0.07 decades: test_paper_case_dns_agrees_with_its_coarse_run_and_the_paper)",
    ("fhit_paper", "stationary"): "the 20-unit averaging window is 2 drag times: mean E differs by 15 %, Z by 23 % "
    "between its halves",
}


def _known_shortfall(request, case: str, what: str) -> None:
    reason = KNOWN_SHORTFALLS.get((case, what))
    if reason:
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))

TINY = dataclasses.replace(
    REFERENCE_CASES["fhit_cpu"],
    n=32,
    dt=0.01,
    les_resolutions=(16,),
    spinup_time=0.2,
    averaging_time=0.4,
    sample_interval=0.05,
    n_snapshots=2,
)


# ----------------------------------------------------------------------------------------- shipped data


@pytest.fixture(scope="module", params=SHIPPED)
def shipped(request):
    return load_reference(request.param)


def test_shipped_files_load_with_checksums_and_shapes(shipped):
    case = REFERENCE_CASES[shipped.case]
    man = json.loads(manifest_path(shipped.case).read_text())
    assert reference_path(shipped.case).parent == DATA_DIR
    assert man["sha256"] and man["bytes"] == reference_path(shipped.case).stat().st_size
    assert shipped.les_resolutions == (16, 32, 64, 128)
    n = case.n
    assert shipped.enstrophy_spectrum.shape == (SpectralGrid(n).n_shells,)
    assert shipped.paper_spectrum["xy"].shape == (n // 2,)
    assert shipped.log_enstrophy_mean.shape == shipped.log_enstrophy_var.shape == (SpectralGrid(n).k_cut,)
    for n_les, les in shipped.les.items():
        m = case.snapshots_for(n_les)
        assert les.snapshots.shape == (m, n_les, n_les // 2 + 1)
        assert les.snapshots.dtype == np.complex128 and np.isfinite(les.snapshots).all()
        assert les.dns_enstrophy_spectrum.shape == (SpectralGrid(n_les).k_cut + 1,)
        assert les.paper_spectrum["x"].shape == les.dns_paper_spectrum["x"].shape == (n_les // 2,)
    assert shipped.parameters["n"] == n and shipped.parameters["nu"] == case.nu
    total_mb = sum(reference_path(c).stat().st_size for c in SHIPPED) / 1e6
    assert total_mb < 16.0


def test_spectra_normalisation(shipped):
    # sum_k Z(k) = <omega^2>/2 (time mean over the samples) and sigma_omega^2 = <omega^2>
    n_spin = len(shipped.series["enstrophy"]) - shipped.n_samples
    z_mean = shipped.series["enstrophy"][n_spin:].mean()
    e_mean = shipped.series["energy"][n_spin:].mean()
    np.testing.assert_allclose(shipped.enstrophy_spectrum.sum(), z_mean, rtol=1e-10)
    np.testing.assert_allclose(shipped.energy_spectrum.sum(), e_mean, rtol=1e-10)
    np.testing.assert_allclose(shipped.sigma_omega**2, 2 * z_mean, rtol=1e-10)
    # the paper's one-sided directional spectra fold +-m: sum_m w(m) spec(m) = Z
    w = np.where(np.arange(shipped.paper_spectrum["x"].size) == 0, 1.0, 2.0)
    for d in ("x", "y", "xy"):
        np.testing.assert_allclose((w * shipped.paper_spectrum[d]).sum(), z_mean, rtol=1e-10)
    # filtered DNS = DNS on the shells inside the LES's kept square; the PDF integrates to 1 - outside
    for n_les, les in shipped.les.items():
        kc = SpectralGrid(n_les).k_cut
        np.testing.assert_allclose(les.enstrophy_spectrum[:kc], shipped.enstrophy_spectrum[:kc], rtol=1e-10)
        np.testing.assert_allclose(les.dns_enstrophy_spectrum, shipped.enstrophy_spectrum[: kc + 1])
        np.testing.assert_allclose(les.sigma_omega**2, 2 * les.enstrophy_spectrum.sum(), rtol=1e-10)
        width = np.diff(les.pdf.bin_edges)
        assert 0.99 < np.sum(les.pdf.density * width) <= 1.0 + 1e-12
    assert 0.999 < np.sum(shipped.pdf.density * np.diff(shipped.pdf.bin_edges)) <= 1.0 + 1e-12


def test_dns_is_resolved_without_pile_up(shipped, request):
    _known_shortfall(request, shipped.case, "resolved")
    grid = SpectralGrid(REFERENCE_CASES[shipped.case].n)
    kc = grid.k_cut  # 85 at N = 256
    z = shipped.enstrophy_spectrum
    # the last octave before the 2/3 cutoff falls by orders of magnitude ...
    assert z[kc] / z[kc // 2] < 1e-2, z[kc] / z[kc // 2]
    # ... and monotonically (no pile-up at the cutoff). Shells hold different numbers of lattice modes
    # (e.g. 516 at k = 84, 552 at k = 85), which makes the shell sums jitter by ~10%, so monotonicity is
    # checked on the mean per mode: each shell at most 5% above the lowest shell before it.
    kept = (grid.mask & (grid.k2 > 0)) * grid.hermitian_weight
    _, modes = diagnostics.shell_spectrum(grid, kept)
    per_mode = (z / np.maximum(modes, 1))[kc // 2 : kc + 1]
    running_min = np.minimum.accumulate(per_mode)
    assert np.all(per_mode[1:] <= 1.05 * running_min[:-1])
    assert per_mode[-1] / per_mode[0] < 1e-2


def test_dns_is_stationary(shipped, request):
    _known_shortfall(request, shipped.case, "stationary")
    st = shipped.stationarity
    assert st["stationary"], st
    assert st["energy_relative_change"] < 0.15 and st["enstrophy_relative_change"] < 0.15
    # the time-mean spectra of the two halves of the window agree within 0.15 decades on every resolved shell
    # k >= 2; the domain-scale shell k = 1 varies on longer times in the beta case (its zonal jets), so it
    # only has to agree within 0.5 decades
    with np.load(reference_path(shipped.case)) as z:
        h0, h1 = z["enstrophy_spectrum_half0"], z["enstrophy_spectrum_half1"]
    kc = SpectralGrid(REFERENCE_CASES[shipped.case].n).k_cut
    change = np.abs(np.log10(h1[1 : kc + 1] / h0[1 : kc + 1]))
    assert change[1:].max() < 0.15 and change[0] < 0.5, change
    np.testing.assert_allclose(change.max(), st["spectrum_max_log10_change"])


def test_snapshots_resemble_filtered_dns_and_are_spaced(shipped):
    man = shipped.manifest
    assert man["snapshot_interval_eddy_turnovers"] >= 1.0  # sigma_omega * spacing (turnover time 1 / sigma)
    for n_les, les in shipped.les.items():
        grid = SpectralGrid(n_les)
        times = les.snapshot_times
        # >= 2 eddy turnovers 1 / sigma_omega apart (0.5 time units ~ 3 turnovers in the paper cases)
        assert np.all(np.diff(times) * shipped.sigma_omega >= 2.0)
        np.testing.assert_allclose(np.diff(times), man["snapshot_interval"], rtol=1e-9)  # the manifest says the truth
        # the snapshots hold only the LES's kept modes (what an LES initial condition can represent)
        assert np.all(les.snapshots[:, ~(grid.mask & (grid.k2 > 0))] == 0)
        _, z = diagnostics.enstrophy_spectrum(grid, les.snapshots)
        k = np.arange(1, grid.k_cut + 1)
        log_err = np.abs(np.log10(z.mean(axis=0)[k] / les.enstrophy_spectrum[k]))
        assert np.median(log_err) < 0.1 and log_err.max() < 0.5, (n_les, log_err)
        # each snapshot's log spectrum lies within a few standard deviations of the time mean
        dev = (np.log(z[:, k]) - les.log_enstrophy_mean) / np.sqrt(les.log_enstrophy_var)
        assert np.mean(np.abs(dev) < 3.5) > 0.97


def test_dynamic_smagorinsky_on_filtered_dns_snapshots():
    les = load_reference("fhit_cpu", n_les=64).at(64)
    c = dynamic_coefficient(SpectralGrid(64), les.snapshots[:4], "smagorinsky")
    assert np.all(c > 0) and np.all((np.sqrt(c) > 0.05) & (np.sqrt(c) < 0.6)), np.sqrt(c)


def test_beta_case_is_anisotropic():
    fhit, beta = load_reference("fhit_cpu"), load_reference("beta_cpu")
    # zonal jets: enstrophy at k_x = 0 (spec_y(0)) dominates the beta case, not the isotropic one
    ratio = lambda d: d.paper_spectrum["y"][0] / d.paper_spectrum["x"][0]  # noqa: E731
    assert ratio(beta) > 3 * ratio(fhit)


def test_load_reference_selects_resolution_and_rejects_unknowns():
    d = load_reference("fhit_cpu", n_les=32)
    assert list(d.les) == [32] and d.les_resolutions == (32,)
    with pytest.raises(ValueError, match=r"accepted: \['beta_cpu', 'beta_paper', 'fhit_cpu'"):
        load_reference("fhit")
    with pytest.raises(ValueError, match=r"available: \[16, 32, 64, 128\]"):
        load_reference("fhit_cpu", n_les=48)
    with pytest.raises(ValueError, match="available"):
        load_reference("fhit_cpu").at(256)


# ----------------------------------------------------------------------------------------- errors


def _copy_case(tmp_path: Path, case: str = "fhit_cpu") -> Path:
    for p in (reference_path(case), manifest_path(case)):
        shutil.copy(p, tmp_path / p.name)
    return tmp_path


def test_missing_or_corrupt_file_names_the_regenerate_command(tmp_path):
    cmd = "python scripts/generate_turbulence_reference.py --case fhit_cpu --output-dir"
    with pytest.raises(ReferenceDataError, match=f"missing.*{cmd}"):
        load_reference("fhit_cpu", directory=tmp_path)
    d = _copy_case(tmp_path)
    assert load_reference("fhit_cpu", directory=d).case == "fhit_cpu"
    raw = bytearray((d / "fhit_cpu.npz").read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (d / "fhit_cpu.npz").write_bytes(bytes(raw))
    with pytest.raises(ReferenceDataError, match=f"corrupt: SHA-256.*{cmd}"):
        load_reference("fhit_cpu", directory=d)  # the cache notices the changed file
    # a manifest whose shapes disagree with the file
    d2 = tmp_path / "shapes"
    d2.mkdir()
    _copy_case(d2)
    man = json.loads((d2 / "fhit_cpu.json").read_text())
    man["shapes"]["enstrophy_spectrum"] = [3]
    (d2 / "fhit_cpu.json").write_text(json.dumps(man))
    with pytest.raises(ReferenceDataError, match="shape.*regenerate it with: python scripts/generate_turbulence"):
        load_reference("fhit_cpu", directory=d2)
    (d2 / "fhit_cpu.json").write_text("{not json")
    with pytest.raises(ReferenceDataError, match="unreadable manifest"):
        load_reference("fhit_cpu", directory=d2)


def test_shipped_error_message_uses_the_plain_command(tmp_path, monkeypatch):
    import simrl.physics.turbulence.reference as ref

    monkeypatch.setattr(ref, "DATA_DIR", tmp_path)
    ref._load_cached.cache_clear()
    try:
        with pytest.raises(ReferenceDataError, match=r"with: python scripts/generate_turbulence_reference.py --case beta_cpu$"):
            ref.load_reference("beta_cpu")
    finally:
        ref._load_cached.cache_clear()


# ----------------------------------------------------------------------------------------- generator


def _arrays(path: Path) -> dict:
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def test_generator_end_to_end_and_resume_matches_uninterrupted(tmp_path):
    full = tmp_path / "full"
    man = generate_reference(TINY, full, progress=False, log=lambda s: None)
    assert man is not None and not list(full.glob(".*"))  # checkpoint and temporaries removed
    data = load_reference("fhit_cpu", directory=full)
    assert data.n_samples == 8 and data.les[16].snapshots.shape == (2, 16, 9)
    np.testing.assert_allclose(data.les[16].snapshot_times, [0.4, 0.6])

    part = tmp_path / "part"
    assert generate_reference(TINY, part, progress=False, max_chunks=3, log=lambda s: None) is None  # in spin-up
    assert (part / ".fhit_cpu.checkpoint.npz").is_file() and not (part / "fhit_cpu.npz").exists()
    assert generate_reference(TINY, part, progress=False, max_chunks=4, log=lambda s: None) is None  # averaging
    assert generate_reference(TINY, part, progress=False, log=lambda s: None) is not None
    a, b = _arrays(full / "fhit_cpu.npz"), _arrays(part / "fhit_cpu.npz")
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)

    # an interruption right after the checkpoint of the last spin-up chunk (before the accumulators exist)
    edge = tmp_path / "edge"

    def interrupt_at_end_of_spinup(msg):
        if msg.startswith("spin-up done"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate_reference(TINY, edge, progress=False, checkpoint_seconds=0.0, log=interrupt_at_end_of_spinup)
    generate_reference(TINY, edge, progress=False, log=lambda s: None)
    np.testing.assert_array_equal(_arrays(edge / "fhit_cpu.npz")["les16_snapshots"], a["les16_snapshots"])

    # a checkpoint of another configuration is ignored, not mixed in
    other = dataclasses.replace(TINY, seed=5)
    generate_reference(other, part, progress=False, max_chunks=2, log=lambda s: None)
    msgs = []
    generate_reference(TINY, part, progress=False, log=msgs.append)
    assert any("another configuration" in m for m in msgs)
    np.testing.assert_array_equal(_arrays(part / "fhit_cpu.npz")["enstrophy_spectrum"], a["enstrophy_spectrum"])


COARSE = dataclasses.replace(TINY, n=32, coarse_n=16, coarse_dt=0.025, coarse_spinup_time=0.2, spinup_time=0.1)


def test_coarse_pre_spinup_refines_the_field_and_resumes_bitwise(tmp_path):
    msgs: list[str] = []
    man = generate_reference(COARSE, tmp_path / "full", progress=False, log=msgs.append)
    assert any(m.startswith("coarse 16^2 spin-up done") and "refined to 32^2" in m for m in msgs)
    a = _arrays(tmp_path / "full" / "fhit_cpu.npz")
    # 4 coarse chunks, then 2 spin-up and 8 averaging chunks on the DNS grid
    assert a["series_time"].size == 14
    np.testing.assert_allclose(a["series_time"][[3, 4, -1]], [0.2, 0.25, 0.7])
    assert a["coarse_enstrophy_spectrum"].shape == (SpectralGrid(16).n_shells,)
    res = man["resolution"]
    assert res["coarse_n"] == 16 and res["coarse_samples"] == 2 and res["k_cut"] == SpectralGrid(32).k_cut
    assert 0 < res["z_cut_over_z_half_cut"] and set(res["dissipation_resolved"]) == {"16"}
    assert 0 < res["dissipation_resolved"]["16"] <= 1
    assert set(man["spectral_slopes"]) == {"energy_5_16", "enstrophy_5_16"} or res["k_cut"] < 16
    # interrupted inside the coarse phase, at its end and in the averaging window: the same bytes
    part = tmp_path / "part"
    for chunks in (2, 2, 3):
        assert generate_reference(COARSE, part, progress=False, max_chunks=chunks, log=lambda s: None) is None
    generate_reference(COARSE, part, progress=False, log=lambda s: None)
    b = _arrays(part / "fhit_cpu.npz")
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_generator_refuses_les_sizes_and_coarse_phases_it_cannot_make(tmp_path):
    with pytest.raises(ValueError, match=r"LES resolution 12 must divide the DNS N = 32; accepted: \[16, 32\]"):
        generate_reference(dataclasses.replace(TINY, les_resolutions=(12,)), tmp_path, progress=False)
    with pytest.raises(ValueError, match=r"cannot hold the forcing wavenumber k_f = 4 .* use N >= 16"):
        generate_reference(dataclasses.replace(TINY, les_resolutions=(8,)), tmp_path, progress=False)
    with pytest.raises(ValueError, match=r"coarse pre-spin-up needs an even coarse_n in \(0, n = 32\)"):
        generate_reference(dataclasses.replace(COARSE, coarse_n=48), tmp_path, progress=False)
    with pytest.raises(ValueError, match=r"sample_interval / coarse_dt must be an integer"):
        generate_reference(dataclasses.replace(COARSE, coarse_dt=0.03), tmp_path, progress=False)
    assert not list(tmp_path.iterdir())  # a refused run writes nothing


def test_generator_script_runs(tmp_path):
    cmd = [
        sys.executable, str(ROOT / "scripts" / "generate_turbulence_reference.py"), "--case", "beta_cpu",
        "--output-dir", str(tmp_path), "--n", "32", "--dt", "0.01", "--les-resolutions", "16",
        "--spinup-time", "0.1", "--averaging-time", "0.2", "--sample-interval", "0.05", "--n-snapshots", "2",
        "--no-progress",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "stationarity" in out.stdout
    man = json.loads((tmp_path / "beta_cpu.json").read_text())
    assert man["dns"]["beta"] == 20.0 and man["dns"]["n"] == 32
    assert man["command"].startswith("python scripts/generate_turbulence_reference.py --case beta_cpu --output-dir")
    assert load_reference("beta_cpu", directory=tmp_path).les[16].snapshots.shape == (2, 16, 9)


def test_generator_survives_a_killed_run(tmp_path):
    """SIGKILL the script at an arbitrary point (checkpoints after every chunk); the re-run gives the same data."""
    args = [
        "--case", "fhit_cpu", "--n", "32", "--dt", "0.01", "--les-resolutions", "16", "--spinup-time", "0.5",
        "--averaging-time", "2.0", "--sample-interval", "0.02", "--n-snapshots", "2", "--no-progress",
    ]
    script = [sys.executable, str(ROOT / "scripts" / "generate_turbulence_reference.py")]
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        script + args + ["--output-dir", str(killed), "--checkpoint-seconds", "0"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    ckpt = killed / ".fhit_cpu.checkpoint.npz"
    deadline = time.monotonic() + 60
    while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.02)  # a few more chunks (each one checkpointed with an fsync); 125 in all
    proc.kill()
    proc.wait()
    assert not (killed / "fhit_cpu.npz").exists(), "the run finished before it could be interrupted"
    subprocess.run(script + args + ["--output-dir", str(killed)], cwd=ROOT, check=True, capture_output=True, timeout=120)
    case = dataclasses.replace(TINY, spinup_time=0.5, averaging_time=2.0, sample_interval=0.02)
    generate_reference(case, tmp_path / "full", progress=False, log=lambda s: None)
    a, b = _arrays(tmp_path / "full" / "fhit_cpu.npz"), _arrays(killed / "fhit_cpu.npz")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert not list(killed.glob(".*"))


def test_generator_warns_when_the_dns_exceeds_the_cfl_bound(tmp_path, monkeypatch):
    import warnings

    from simrl.physics.turbulence.model import TurbulenceModel

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        man = generate_reference(TINY, tmp_path / "ok", progress=False, log=lambda s: None)
    assert 0 < man["max_cfl"] <= man["cfl_limit"]
    monkeypatch.setattr(TurbulenceModel, "cfl_limit", property(lambda self: 0.5 * man["max_cfl"]))
    messages = []
    with pytest.warns(RuntimeWarning, match="above the solver's stability bound"):
        again = generate_reference(TINY, tmp_path / "tight", progress=False, log=messages.append)
    assert again["max_cfl"] == man["max_cfl"] and any("smaller dt" in m for m in messages)


def test_generator_rejects_inconsistent_plans(tmp_path):
    with pytest.raises(ValueError, match="sample_interval / dt must be a positive integer"):
        generate_reference(dataclasses.replace(TINY, dt=0.03), tmp_path, progress=False)
    with pytest.raises(ValueError, match="LES resolution 64 must divide the DNS N = 32"):
        generate_reference(dataclasses.replace(TINY, les_resolutions=(64,)), tmp_path, progress=False)
    # no spin-up: the PDF's histogram range (fixed from sigma at the end of the spin-up) is outgrown -> early stop
    with pytest.raises(RuntimeError, match="far from steady; use a longer spin-up"):
        generate_reference(dataclasses.replace(TINY, spinup_time=0.0, averaging_time=2.0), tmp_path, progress=False,
                           log=lambda s: None)


def test_every_case_has_a_consistent_plan():
    from simrl.physics.turbulence.reference_generator import _chunks

    for name, case in REFERENCE_CASES.items():
        steps, spin, avg = _chunks(case)
        assert steps * case.dt == pytest.approx(case.sample_interval) and avg >= 2 * case.n_snapshots
        p = case.parameters()
        assert p.k_f <= min(SpectralGrid(n).k_cut for n in case.les_resolutions), name  # every LES holds the forcing
        assert case.cpu == (case.n <= 256), name
    assert {REFERENCE_CASES[c].nu for c in ("fhit_paper", "beta_paper", "fhit_kf25_paper")} == {5e-5}


@pytest.mark.parametrize("case", PAPER_SHIPPED)
def test_paper_case_dns_agrees_with_its_coarse_run_and_the_paper(case):
    """Resolution argument of the 1024^2 paper DNS: its time-mean spectrum agrees with the 512^2 run of the
    same case (the coarse pre-spin-up's second half) on the shells both resolve, it falls by orders of
    magnitude over its last octave (checked above), and sigma_omega is near the paper's."""
    data = load_reference(case)
    res = data.manifest["resolution"]
    assert res["coarse_n"] == 512 and res["coarse_samples"] >= 40
    assert res["coarse_max_log10_difference"] < 0.15, res
    assert abs(res["coarse_sigma_omega"] / data.sigma_omega - 1) < 0.1, res
    paper_sigma = {"fhit_paper": 6.0705, "beta_paper": 10.3789}[case]
    assert abs(data.sigma_omega / paper_sigma - 1) < 0.25, (data.sigma_omega, paper_sigma)
    # the 64^2 LES resolves well under half of the viscous enstrophy dissipation: a closure has work to do
    assert res["dissipation_resolved"]["64"] < 0.5, res
    assert data.les[64].snapshots.shape[0] >= 32
