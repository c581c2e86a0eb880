"""Benchmarks: synthetic landscapes and the equal-budget comparison harness."""
