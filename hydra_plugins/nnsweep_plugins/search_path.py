"""Where nnsweep finds experiments and datasets; only for nnsweep's own config.

Hydra runs every installed search-path plugin for every Hydra app, so this one first checks
that the app's primary config is nnsweep's, and otherwise changes nothing. It imports no
nnsweep code: ``find_spec`` locates the package without importing it.

For nnsweep, after its own config (which keeps ``config.yaml`` and Hydra's groups), it adds:

1. the working directory: ``./experiments/*.yaml`` are experiments;
2. ``./conf`` of the working directory: ``./conf/dataset/*.yaml`` are datasets;
3. the shipped experiments (bundled in the package, or the clone's ``experiments/``).

A name found in several places is taken from the first. ``--config-dir`` and
``hydra.searchpath`` folders come after these, as Hydra places them.
"""

import importlib.util
import os
from pathlib import Path

from hydra.core.config_search_path import ConfigSearchPath, SearchPathQuery
from hydra.plugins.search_path_plugin import SearchPathPlugin


def nnsweep_roots() -> tuple[Path, Path] | None:
    """(config folder, folder holding experiments/) of the installed package or the clone."""
    spec = importlib.util.find_spec("nnsweep")
    if spec is None or spec.origin is None:
        return None
    package = Path(spec.origin).resolve().parent
    if (package / "conf" / "config.yaml").is_file():  # an installed wheel
        return package / "conf", package / "shipped"
    return package.parent / "conf", package.parent  # a clone: conf/ and experiments/ at the top


class NNSweepSearchPathPlugin(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        roots = nnsweep_roots()
        if roots is None:
            return
        conf_dir, shipped = roots
        main = [element for element in search_path.get_path() if element.provider == "main"]
        if not main or main[0].path not in (f"file://{conf_dir}", str(conf_dir)):
            return  # another app: leave its search path alone
        cwd = Path(os.getcwd())
        anchor = SearchPathQuery(provider="schema")
        for provider, path in (
            ("nnsweep-cwd", cwd),
            ("nnsweep-cwd-conf", cwd / "conf"),
            ("nnsweep-shipped", shipped),
        ):
            search_path.prepend(provider=provider, path=f"file://{path}", anchor=anchor)
