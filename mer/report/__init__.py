"""Plots, result files, reported numbers and the combined HTML report."""
