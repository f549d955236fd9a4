"""Batched gravitational N-body integrators in N-body units (G = 1), compiled with Numba.

Kernel contract (shared by every integrator module, so that environments can swap them):

``integrate_<name>(pos, vel, mass, time, t_end, param, step_state, max_steps, force_evals, status)``

=============  ============  ==============================================================
argument       shape/dtype   meaning
=============  ============  ==============================================================
pos, vel       (B, n, 3) f8  positions and velocities, advanced in place
mass           (B, n) f8     masses
time           (B,) f8       current time of each system, advanced in place to ``t_end``
t_end          (B,) f8       target time of each system; the last step is shortened so that
                             each system lands exactly on its own target
param          (B,) f8       the step parameter: Hermite eta, IAS15 epsilon, leapfrog dt
step_state     (B,) f8       integrator memory carried between calls (IAS15: the next step
                             size; 0 means "choose one"); ignored by integrators without it
max_steps      int           per-system cap on steps in this call (guards stalled steps)
force_evals    (B,) i8       out: force evaluations of the whole system made in this call
                             (one evaluation of all accelerations, with or without jerks,
                             counts 1) -- the deterministic cost measure
status         (B,) i8       out: 0 reached ``t_end``; 1 step cap hit first; 2 non-finite state
=============  ============  ==============================================================

Each integrator module builds a serial and a ``parallel=True`` (``prange`` over systems)
variant from one Python function; ``simrl.physics.nbody.integrators`` dispatches by name.
"""

STATUS_OK = 0
STATUS_STEP_LIMIT = 1
STATUS_NONFINITE = 2
