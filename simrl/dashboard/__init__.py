"""A Streamlit dashboard over simrl's training runs (``simrl-dashboard --runs outputs/``).

* :mod:`~simrl.dashboard.runs` -- the data layer (no Streamlit): run discovery, status,
  learning curves, evaluation episodes, policy x metric aggregates with CIs.
* :mod:`~simrl.dashboard.rollout` -- replay one episode of a run's policy (frames + per-step info).
* :mod:`~simrl.dashboard.plots` -- Plotly figures.
* :mod:`~simrl.dashboard.env_pages` -- one page per environment id (a registry; ThreeBody first).
* :mod:`~simrl.dashboard.app` -- the Streamlit app; :mod:`~simrl.dashboard.cli` starts it.
"""
