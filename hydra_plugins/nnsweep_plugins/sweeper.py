"""A BasicSweeper that validates every cell before any job runs, and shows progress.

Hydra's BasicSweeper creates the sweep directory before it composes the jobs, so a bad
value in one cell would leave a half-made sweep behind. This sweeper composes and
validates every cell first (a bad one exits with a one-line error and writes nothing),
then hands the sweep to BasicSweeper unchanged, with a progress line beside it.
"""

# No "from __future__ import annotations": Hydra loads plugin modules outside sys.modules,
# where dataclasses cannot resolve string annotations.
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import OmegaConf, open_dict, read_write

from nnsweep import ownership
from nnsweep.cli import describe_hydra_error, exit_with_error, finish_broken_sweep
from nnsweep.config import ConfigError, RunConfig, to_run_config
from nnsweep.errors import SweepFolderError
from nnsweep.progress import SweepProgress
from nnsweep.shapes import expand_params


@dataclass
class NNSweepSweeperConf:
    # The class Hydra instantiates for hydra/sweeper=nnsweep.
    _target_: str = "hydra_plugins.nnsweep_plugins.sweeper.NNSweepSweeper"
    # Jobs per launch batch; null launches the whole sweep as one batch.
    max_batch_size: Optional[int] = None  # noqa: UP045 - OmegaConf needs typing.Optional
    # Sweep axes, as in BasicSweeper: key -> comma-separated values.
    params: Optional[dict[str, str]] = None  # noqa: UP045


ConfigStore.instance().store(
    group="hydra/sweeper", name="nnsweep", node=NNSweepSweeperConf, provider="nnsweep"
)


class NNSweepSweeper(BasicSweeper):
    # Job overrides that _validated_cells has composed and validated.
    _validated: frozenset[tuple[str, ...]] = frozenset()

    def sweep(self, arguments: list[str]) -> Any:
        self._expand_shape_families()
        cells = self._validated_cells(arguments)
        sweep_dir = Path(self.config.hydra.sweep.dir)
        try:  # every cell is valid: now the folder is this sweep's, or it is refused
            ownership.claim(sweep_dir)
        except SweepFolderError as error:
            exit_with_error(str(error))
        total = sum(cell.n_seeds * cell.train.iterations for cell in cells)
        show = bool(self.config.get("progress", True))
        with SweepProgress(sweep_dir, n_cells=len(cells), total=total, enabled=show):
            try:
                return super().sweep(arguments)
            except Exception as error:  # a lost worker, a full disk: not the whole sweep
                sys.exit(finish_broken_sweep(sweep_dir, cells, error))

    def _expand_shape_families(self) -> None:
        """Turn ``layers: budget(...)`` into its list of shapes, here, once: the jobs, the
        validation and multirun.yaml (saved from self.config) then all see the plain list."""
        assert self.config is not None
        try:
            self.params = expand_params(self.params)
        except ConfigError as error:
            exit_with_error(str(error))
        if self.params:
            with read_write(self.config), open_dict(self.config):
                self.config.hydra.sweeper.params = dict(self.params)

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        # BasicSweeper composes every job of a batch once more before launching it. Jobs that
        # _validated_cells already composed (all of them, normally) are not composed again:
        # that is about 0.3 s per cell.
        unseen = [job for job in batch if tuple(job) not in self._validated]
        if unseen:
            super().validate_batch_is_legal(unseen)

    def _validated_cells(self, arguments: list[str]) -> list[RunConfig]:
        """Compose every job's config as the launcher will, and validate it."""
        assert self.hydra_context is not None and self.config is not None
        loader = self.hydra_context.config_loader
        try:
            parser = OverridesParser.create(config_loader=loader)
            overrides = parser.parse_overrides([*self._parse_config(), *arguments])
            batches = self.split_arguments(overrides, None)
            cells = []
            self._validated = frozenset(tuple(job) for job in batches[0])
            for job_overrides in batches[0]:
                job_config = loader.load_sweep_config(self.config, list(job_overrides))
                with open_dict(job_config):
                    del job_config["hydra"]
                cells.append(to_run_config(OmegaConf.to_container(job_config, resolve=True)))
            return cells
        except ConfigError as error:
            exit_with_error(str(error))
        except HydraException as error:
            exit_with_error(describe_hydra_error(error))
        sys.exit(2)  # unreachable: exit_with_error exits
