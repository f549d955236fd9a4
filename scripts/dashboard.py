"""The simrl dashboard (Streamlit): runs overview, learning curves, baselines, env pages, rollouts.

    streamlit run scripts/dashboard.py -- --runs outputs/ multirun/
    streamlit run scripts/dashboard.py --server.headless true --server.port 8501 -- --runs outputs/

The same app is installed as ``simrl-dashboard --runs outputs/`` (simrl.dashboard.cli).
Without ``--runs`` it reads $SIMRL_RUNS, else ./outputs and ./multirun.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Runnable from a checkout without `pip install -e .`.
_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from simrl.dashboard.app import main  # noqa: E402

main()
