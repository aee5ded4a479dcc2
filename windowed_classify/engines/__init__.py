"""Engines run pass 1's counting tasks and pass 2's windows: serial, threads, processes, Dask."""
