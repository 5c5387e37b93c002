"""Where nnsweep finds experiments and datasets; only for nnsweep's own config.

Hydra runs every installed search-path plugin for every Hydra app, so this one first checks
that the app's primary config is nnsweep's, and otherwise changes nothing. It imports no
nnsweep code: ``find_spec`` locates the package without importing it.

For nnsweep, after its own config (which keeps ``config.yaml``, the shipped datasets and
Hydra's groups), it adds one group per folder (config_source.py), in this order:

1. ``./experiments/*.yaml`` of the working directory: experiments;
2. ``./conf/dataset/*.yaml`` of the working directory: datasets;
3. the shipped experiments (in the installed package, or the clone's ``experiments/``).

A name found in several places is taken from the first. ``--config-dir`` and
``hydra.searchpath`` folders come after these, as Hydra places them.
"""

import importlib.util
import os
from pathlib import Path

from hydra.core.config_search_path import ConfigSearchPath, SearchPathQuery
from hydra.plugins.search_path_plugin import SearchPathPlugin


def nnsweep_folders() -> tuple[Path, Path] | None:
    """(config folder, shipped experiments folder) of the installed package or the clone."""
    spec = importlib.util.find_spec("nnsweep")
    if spec is None or spec.origin is None:
        return None
    package = Path(spec.origin).resolve().parent
    if (package / "conf" / "config.yaml").is_file():  # an installed wheel
        return package / "conf", package / "experiments"
    return package.parent / "conf", package.parent / "experiments"  # a clone


class NNSweepSearchPathPlugin(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        folders = nnsweep_folders()
        if folders is None:
            return
        conf_dir, shipped = folders
        main = [element for element in search_path.get_path() if element.provider == "main"]
        if not main or main[0].path not in (f"file://{conf_dir}", str(conf_dir)):
            return  # another app: leave its search path alone
        here = Path(os.getcwd())
        anchor = SearchPathQuery(provider="schema")
        for provider, group, folder in (
            ("nnsweep-cwd-experiments", "experiments", here / "experiments"),
            ("nnsweep-cwd-datasets", "dataset", here / "conf" / "dataset"),
            ("nnsweep-shipped-experiments", "experiments", shipped),
        ):
            search_path.prepend(
                provider=provider, path=f"nnsweep-group://{group}={folder}", anchor=anchor
            )
