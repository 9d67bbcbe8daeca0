"""Benchmarks of gen-nodes against a baseline measured in the same run; see ``benchmarks/run.py``."""
