"""Plots and reports (matplotlib, PNG; imported only when a stage draws)."""
