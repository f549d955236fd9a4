"""Fixtures shared by every test folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def small_predator_prey_snapshots(tmp_path_factory) -> str:
    """Path of a small sheep-wolves-grass snapshot set (63 x 63 world at big-world densities, 8
    states after 300 ticks), made once per test session; tests read it and never change it."""
    from simrl.envs.predator_prey import generate_snapshot_set
    from simrl.physics.ecology import PredatorPreyParams

    path = tmp_path_factory.mktemp("predator_prey") / "small.npz"
    small = PredatorPreyParams(width=63, height=63, initial_sheep=152, initial_wolves=76)
    generate_snapshot_set(path, small, count=8, ticks=300, seed=5)
    return str(path)


@pytest.fixture
def kill_after_first_checkpoint():
    """``kill(args, run_dir, cwd)``: start ``scripts/train_agent.py args`` and SIGKILL it right after its first
    checkpoint's sidecar appears in ``run_dir/checkpoints`` (at most 300 s); returns the process's exit code."""
    from simrl.agents.checkpoints import find_sidecars

    def kill(args: list[str], run_dir: Path, cwd: Path) -> int:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
        proc = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "train_agent.py"), *args], cwd=cwd, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
        try:
            deadline = time.monotonic() + 300
            while not find_sidecars(run_dir / "checkpoints"):
                assert proc.poll() is None, f"the run ended before its first checkpoint: {proc.stderr.read()[-3000:]}"
                assert time.monotonic() < deadline, "no checkpoint after 300 s"
                time.sleep(0.02)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert not (run_dir / "final_model.zip").exists(), "the run finished before it was killed"
        return proc.returncode

    return kill
