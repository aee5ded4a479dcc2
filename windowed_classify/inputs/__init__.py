"""Inputs: find the layers, open them on one grid, plan windows, read windows."""
