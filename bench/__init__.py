"""Benchmarks: data generator, load generator and the ``./pulse bench`` runner (see README.md)."""
