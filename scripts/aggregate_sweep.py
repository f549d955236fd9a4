"""Tabulate every job of a Hydra sweep folder: overrides, status, objective, evaluation summary.

    python scripts/aggregate_sweep.py multirun/2026-01-01_12-00-00
    python scripts/aggregate_sweep.py multirun/2026-01-01_12-00-00 --csv results.csv
    python scripts/aggregate_sweep.py multirun/*                  # several sweeps, one table each

One row per job folder (``.hydra/config.yaml``): the job, its status from ``run_info.json``
(``complete``; ``failed`` with the error; ``training`` when the job was killed or is still
running; ``not started``), the objective ``scripts/train_agent.py`` returned (the trained
policy's evaluation score, lower is better), steps and training time, one column per swept
override, and the trained policy's held-out evaluation (episodes, mean and IQM return, medians
of the environment's cost and error). Failed jobs are listed after the table with their errors.

The table is printed and written as CSV (atomically): ``<sweep>/sweep_summary.csv`` unless
``--csv`` names another file. Exit status: 0, or 1 when any job failed, 2 for a bad folder.
``scripts/train_agent.py -m`` writes the same summary itself when a sweep ends; the dashboard
reads the same folders (``simrl-dashboard --runs multirun``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep_dirs", nargs="+", type=Path, help="sweep folder(s), e.g. multirun/<date_time>")
    parser.add_argument("--csv", type=Path, default=None, help="CSV path (one sweep only); default <sweep>/sweep_summary.csv")
    args = parser.parse_args(argv)
    if args.csv is not None and len(args.sweep_dirs) > 1:
        parser.error("--csv takes one sweep folder; without it each sweep gets its own sweep_summary.csv")

    from simrl.agents.training import find_sweep_jobs, format_sweep_table, write_sweep_summary

    status = 0
    for sweep_dir in args.sweep_dirs:
        try:
            if not find_sweep_jobs(sweep_dir):
                print(f"error: {sweep_dir} holds no job folders (.hydra/config.yaml); is it a multirun folder?", file=sys.stderr)
                status = 2
                continue
        except FileNotFoundError as exc:
            print(f"error: {exc}", file=sys.stderr)
            status = 2
            continue
        csv_path = args.csv if args.csv is not None else sweep_dir / "sweep_summary.csv"
        table = write_sweep_summary(sweep_dir, csv_path)
        print(f"sweep {sweep_dir}:\n{format_sweep_table(table)}\ntable written to {csv_path}\n")
        if (table["status"] == "failed").any() and status == 0:
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
