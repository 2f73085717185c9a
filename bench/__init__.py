"""Benchmarks: scripts, not tests (`python -m bench.<name>`); figures go to docs/benchmarks.md."""
