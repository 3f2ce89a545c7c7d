"""Benchmarks: each script prints one JSON object per line (name, value, unit, target, met)."""
