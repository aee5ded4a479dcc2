"""The package version, in a module of its own so that reading it imports nothing else."""

# Raised whenever the pixels a config produces could change: the resume journal refuses to
# continue a run begun by another version.
__version__ = "0.2.0"
