"""The ``nnsweep`` sweeper: a thin public-API Hydra Sweeper; the logic is in nnsweep.sweep.launch.

Hydra imports this module while it discovers plugins, in every Hydra app of the
environment, so it imports only Hydra's public plugin interface at import time and
registers nothing: ``hydra/sweeper=nnsweep`` is a YAML file of nnsweep's own config
(conf/hydra/sweeper/nnsweep.yaml), and nnsweep's code is imported only when a sweep runs.
"""

from typing import Any

from hydra.plugins.sweeper import Sweeper


class NNSweepSweeper(Sweeper):
    """Expands the grid, validates every cell, then launches the jobs in batches."""

    def __init__(
        self,
        max_batch_size: int | None = None,
        params: dict[str, str] | None = None,
    ) -> None:
        self.max_batch_size = max_batch_size
        self.params = dict(params or {})
        self.hydra_context = None
        self.config = None
        self.launcher = None

    def setup(self, *, hydra_context: Any, task_function: Any, config: Any) -> None:
        from hydra.core.plugins import Plugins

        self.hydra_context = hydra_context
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> Any:
        from nnsweep.sweep.launch import run_sweep

        assert self.hydra_context is not None and self.config is not None
        return run_sweep(
            config=self.config,
            config_loader=self.hydra_context.config_loader,
            launcher=self.launcher,
            params=self.params,
            arguments=arguments,
            max_batch_size=self.max_batch_size,
        )
