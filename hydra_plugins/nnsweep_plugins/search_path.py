"""Put the repository root on Hydra's search path so ``experiments/*.yaml`` is a group."""

from __future__ import annotations

from pathlib import Path

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin

import nnsweep

# experiments/ sits beside nnsweep/, so its parent is the search root and the
# folder name is the config group: experiments=neurons_early.
PROJECT_ROOT = Path(nnsweep.__file__).resolve().parents[1]


class NNSweepSearchPathPlugin(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        search_path.append(provider="nnsweep-experiments", path=f"file://{PROJECT_ROOT}")
