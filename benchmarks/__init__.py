"""Benchmarks: each module prints one ``bench <name> key=value ... (note)`` line (see shared benchmarks.md)."""
