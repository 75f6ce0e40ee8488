"""Intra-op threads for the fused kernels on an idle and on a loaded machine (the data behind ``auto_threads``).

For each machine load (0, 1 or 2 busy-looping processes started by this script), OpenMP wait policy (ACTIVE,
PASSIVE) and layer size N, one recurrent LIF layer (the one ``benchmarks/kernel_speed.py`` builds: B = 64,
128 Bernoulli(0.05) inputs, dense recurrence) runs forward + backward over ``--steps`` steps on 1 and on 2 threads,
each in a fresh process (the wait policy is read when OpenMP starts); the best of 3 calls after a warm-up is printed
with the ratio 1-thread / 2-thread time (> 1: two threads are faster).

Run: ``python benchmarks/thread_choice.py [--sizes 64,128,512,2048] [--steps 100]`` (about 2 minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

BUSY = "import time\nt = time.time()\nwhile time.time() - t < 3600:\n    pass\n"


def worker(n: int, threads: int, steps: int) -> float:
    """Best of 3 forward+backward calls, in seconds, in this process."""
    import torch

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from kernel_speed import make_problem

    torch.set_num_threads(threads)
    p = make_problem(n, steps, torch.float32)

    def call() -> None:
        state = p.layer.initial_state(p.x.shape[0], "zeros", None, None)
        p.layer(p.x, state).spikes.sum().backward()

    call()
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="64,128,512,2048")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--worker", nargs=2, type=int, metavar=("N", "THREADS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], args.worker[1], args.steps)))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"os.cpu_count() = {os.cpu_count()}; times are best of 3 forward+backward calls, T = {args.steps}")
    for load in (0, 1, 2):
        hogs = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(load)]
        try:
            time.sleep(0.5)
            for policy in ("ACTIVE", "PASSIVE"):
                for n in sizes:
                    times = {}
                    for threads in (1, 2):
                        env = dict(os.environ, OMP_WAIT_POLICY=policy)
                        cmd = [sys.executable, os.path.abspath(__file__), "--worker", str(n), str(threads),
                               "--steps", str(args.steps)]  # fmt: skip
                        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
                        times[threads] = json.loads(done.stdout.strip().splitlines()[-1])
                    line = f"busy processes {load}  {policy:7s}  N = {n:5d}:  1 thread {1e3 * times[1]:8.1f} ms"
                    print(f"{line}  2 threads {1e3 * times[2]:8.1f} ms  1/2 = {times[1] / times[2]:.2f}", flush=True)
        finally:
            for h in hogs:
                h.kill()


if __name__ == "__main__":
    main()
