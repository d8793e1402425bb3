"""Benchmarks: ``python -m bench`` runs every suite and writes one report, each figure beside its baseline."""
