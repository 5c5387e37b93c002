"""nnsweep's Hydra plugins: the experiments/ search path and the validating sweeper.

Hydra discovers plugins only inside the ``hydra_plugins`` namespace package, so these two
thin classes live here while the logic they call stays in ``nnsweep``.
"""
