"""``nnsweep --help``: one page, from the declared settings and the configs found on disk.

Hydra prints ``hydra.help.template`` (conf/hydra/help/nnsweep.yaml); that template is the
``nnsweep_help`` resolver below, so the page always matches the code.
"""

from __future__ import annotations

from pathlib import Path

from nnsweep import __version__
from nnsweep.config import (
    DATASET_DEFAULT,
    DATASET_DOC,
    SETTINGS,
    setting_values,
    shown_default,
)
from nnsweep.locations import CONF_DIR, SHIPPED_EXPERIMENTS
from nnsweep.train.data import kinds_help

# Launchers: Hydra's own, and nnsweep's presets in conf/hydra/launcher/.
LAUNCHERS = """\
  joblib (the default: one job per core), basic (one job at a time),
  ray_cluster, slurm, submitit_local (pip install 'nnsweep[ray]' or 'nnsweep[slurm]')"""

EXAMPLES = """\
  nnsweep layers=16-8-8 n_seeds=20                      # 20 seeds of one shape, one job
  nnsweep -m layers=8-16-8,8-8-8,16-8-8 n_seeds=100     # a sweep, tables and report
  nnsweep experiments=neurons_early hydra/launcher=basic   # a shipped experiment"""


def _names(folder: Path) -> list[str]:
    return sorted(path.stem for path in folder.glob("*.yaml")) if folder.is_dir() else []


def _listing(names: list[str]) -> str:
    return ", ".join(names) or "none"


def help_page() -> str:
    """The whole page (about 45 lines); contains no ``$`` (Hydra substitutes its template)."""
    here = Path.cwd()
    width = max(len(f"{f.name}={shown_default(f)}") for f in SETTINGS) + 2
    settings = [
        f"  {f'{f.name}={shown_default(f)}':<{width}}{f.metadata['doc']} [{setting_values(f)}]"
        for f in SETTINGS
    ]
    local = here / "experiments"
    same_folder = local.is_dir() and local.resolve() == SHIPPED_EXPERIMENTS.resolve()
    lines = [
        f"nnsweep {__version__}: which hidden-layer shape trains best, over many seeds, and how "
        "sure can we be?",
        "",
        "Usage:",
        "  nnsweep [key=value ...]            train one cell (a block of seeds of one shape)",
        "  nnsweep -m key=a,b [key=x,y ...]   a sweep: every combination is a cell (a job);",
        "                                     tables and a report when it ends",
        "  nnsweep experiments=NAME           a sweep written in experiments/NAME.yaml",
        "  nnsweep collect SWEEP_FOLDER       rebuild a sweep's tables and report from its jobs",
        "  nnsweep report SWEEP_FOLDER        rebuild a sweep's report from its tables",
        "  python -m nnsweep ... is the same. Output goes to ./results of this folder.",
        "  Hydra's own options: --hydra-help, --cfg job, --info, --config-dir DIR, --multirun (-m)",
        "",
        "Settings (key=default):",
        f"  dataset={DATASET_DEFAULT}".ljust(width + 2) + f"{DATASET_DOC} [a dataset below]",
        *settings,
        "",
        "Datasets (dataset=NAME; your own: ./conf/dataset/NAME.yaml):",
        f"  {_listing(sorted({*_names(CONF_DIR / 'dataset'), *_names(here / 'conf/dataset')}))}",
        "",
        "Dataset keys (dataset.KEY=VALUE; a key the chosen dataset's kind lacks is refused):",
        *kinds_help(),
        "",
        "Experiments (experiments=NAME; your own: ./experiments/NAME.yaml):",
        f"  shipped: {_listing(_names(SHIPPED_EXPERIMENTS))}",
        f"  here:    {'the shipped ones' if same_folder else _listing(_names(local))}",
        "",
        "Launchers (hydra/launcher=NAME):",
        LAUNCHERS,
        "",
        "Examples:",
        EXAMPLES,
    ]
    return "\n".join(lines).replace("$", "")


def register_resolver() -> None:
    """Make ``${nnsweep_help:}`` available to the help template (nnsweep's app only)."""
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("nnsweep_help"):
        OmegaConf.register_new_resolver("nnsweep_help", help_page)
