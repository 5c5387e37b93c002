"""Sweeps: the Hydra task, the sweeper logic, auto rounds, one job, cells, the end-of-sweep
callback, progress and folder ownership."""
