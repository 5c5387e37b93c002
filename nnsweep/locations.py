"""Where nnsweep's own configs live: inside the installed package, or at the clone's top.

A wheel carries ``conf/`` as ``nnsweep/conf`` and ``experiments/`` as
``nnsweep/experiments``; a clone (editable install) keeps both at the top of the
repository. hydra_plugins/nnsweep_plugins/search_path.py mirrors this without importing it.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
_ROOT = PACKAGE_DIR if (PACKAGE_DIR / "conf" / "config.yaml").is_file() else PACKAGE_DIR.parent

# The primary config folder (config.yaml, dataset/, hydra/).
CONF_DIR = _ROOT / "conf"
# The shipped experiments (experiments=NAME).
SHIPPED_EXPERIMENTS = _ROOT / "experiments"
