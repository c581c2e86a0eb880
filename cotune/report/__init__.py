"""Plots and the self-contained HTML report of a study or a benchmark comparison."""
