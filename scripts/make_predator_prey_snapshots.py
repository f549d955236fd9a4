"""Generate the stored start states of ``simrl/PredatorPrey-v0``.

Runs K independent uncontrolled sheep-wolves-grass models (default: the NetLogo big world,
K = 32, 1,000 ticks -- past the transient; NetLogo's steady-state means are taken over ticks
500-1000) and stores their final states, count histories and a manifest with a SHA-256
checksum, atomically. The last quarter of the states is the held-out "eval" split.

    python scripts/make_predator_prey_snapshots.py                      # the shipped set
    python scripts/make_predator_prey_snapshots.py --width 63 --height 63 --count 8 \\
        --ticks 300 --out /tmp/small.npz                                 # a small test set

Without ``--initial-sheep/--initial-wolves`` a smaller world gets the big world's initial
densities (2,500 sheep and 1,250 wolves per 65,025 patches). ``--grass-regrowth-time G``
(default 30) makes a set for environments with ``params={"grass_regrowth_time": g}``, g >= G
(the stored regrowth countdowns go up to G). Cost: about 0.4 s per model
per 1,000 big-world ticks on one core.
"""

from __future__ import annotations

import argparse
import json
import time

from simrl.envs.predator_prey import DEFAULT_SNAPSHOTS, generate_snapshot_set
from simrl.physics.ecology import PredatorPreyParams


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(DEFAULT_SNAPSHOTS), help="output .npz (manifest .json beside it)")
    parser.add_argument("--count", type=int, default=32, help="number of independent runs (K)")
    parser.add_argument("--ticks", type=int, default=1000, help="uncontrolled ticks per run")
    parser.add_argument("--seed", type=int, default=20240318)
    parser.add_argument("--eval-count", type=int, default=None, help="held-out states (default K // 4)")
    parser.add_argument("--width", type=int, default=255)
    parser.add_argument("--height", type=int, default=255)
    parser.add_argument("--initial-sheep", type=int, default=None)
    parser.add_argument("--initial-wolves", type=int, default=None)
    parser.add_argument("--grass-regrowth-time", type=int, default=30,
                        help="ticks a grazed patch takes to regrow (the environment accepts this or more with the set)")
    parser.add_argument("--parallel", action="store_true", help="one model per thread (same results)")
    args = parser.parse_args(argv)
    area = args.width * args.height / (255 * 255)
    params = PredatorPreyParams(
        width=args.width, height=args.height,
        initial_sheep=args.initial_sheep if args.initial_sheep is not None else round(2500 * area),
        initial_wolves=args.initial_wolves if args.initial_wolves is not None else round(1250 * area),
        grass_regrowth_time=args.grass_regrowth_time)
    start = time.perf_counter()
    manifest = generate_snapshot_set(args.out, params, args.count, args.ticks, args.seed, args.eval_count, args.parallel)
    info = json.loads(manifest.read_text())
    print(f"wrote {args.out} ({info['bytes'] / 1e6:.2f} MB) and {manifest.name} in {time.perf_counter() - start:.1f} s")
    print("mean (grass, sheep, wolves) over the second half of the runs:",
          [round(v, 1) for v in info["mean_counts_second_half"]])


if __name__ == "__main__":
    main()
