"""``simrl-dashboard``: start the Streamlit dashboard over a folder of runs.

    simrl-dashboard                            # ./outputs and ./multirun, http://localhost:8501
    simrl-dashboard --runs outputs/ multirun/ --port 8502
    simrl-dashboard --runs outputs/ -- --server.headless true   # more `streamlit run` options

This is ``streamlit run <simrl/dashboard/app.py> [streamlit options] -- --runs ...``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Sequence

APP = Path(__file__).resolve().with_name("app.py")


def build_command(argv: Sequence[str] | None = None) -> list[str]:
    """The ``streamlit run`` command line for ``argv`` (``simrl-dashboard``'s arguments)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(prog="simrl-dashboard", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--runs", nargs="+", default=None, metavar="DIR",
                        help="folders searched for run folders (default: $SIMRL_RUNS, else ./outputs ./multirun)")  # fmt: skip
    parser.add_argument("--port", type=int, default=None, help="server port (Streamlit's default: 8501)")
    parser.add_argument("--address", default=None, help="server address (e.g. 127.0.0.1 or 0.0.0.0)")
    parser.add_argument("--headless", action="store_true", help="do not open a browser")
    args = parser.parse_args(argv)
    cmd = [sys.executable, "-m", "streamlit", "run", str(APP)]
    if args.port is not None:
        cmd += ["--server.port", str(args.port)]
    if args.address is not None:
        cmd += ["--server.address", args.address]
    if args.headless:
        cmd += ["--server.headless", "true"]
    cmd += extra
    if args.runs:
        cmd += ["--", "--runs", *[str(Path(r).resolve()) for r in args.runs]]
    return cmd


def main(argv: Sequence[str] | None = None) -> int:
    """Run the dashboard until interrupted.

    On POSIX the process becomes ``streamlit run`` (``os.execv``), so signals reach the server
    directly; elsewhere Streamlit runs as a child and its exit status is returned.
    """
    cmd = build_command(argv)
    if os.name == "posix":
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(cmd[0], cmd)
    try:
        return subprocess.call(cmd)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
