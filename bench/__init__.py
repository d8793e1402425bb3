"""Benchmarks: ``python -m bench`` runs every suite and prints each figure beside its baseline."""
