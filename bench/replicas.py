"""The benchmarks' replicas sit behind the emulator package's balancer (emulator/balancer.py),
the same the fault tests use."""

from __future__ import annotations

from emulator.balancer import HOOK_PATH, SECRET_HEADER, Balancer, free_port, listening

SECRET = "bench-replicas-secret_16"

__all__ = ["HOOK_PATH", "SECRET", "SECRET_HEADER", "Balancer", "free_port", "listening"]
