"""nnsweep: which hidden-layer shape trains best, and how sure can we be."""

__version__ = "0.1.0"

# What a trainer of your own uses (README, "Bring your own trainer"), imported on first use.
_TRAINER_API = {
    "SeedResult": "nnsweep.train.trainer",
    "TrainData": "nnsweep.train.trainer",
    "curve_iterations": "nnsweep.train.trainer",
    "TrainSpec": "nnsweep.config",
}


def __getattr__(name: str) -> object:
    if name in _TRAINER_API:
        import importlib

        return getattr(importlib.import_module(_TRAINER_API[name]), name)
    raise AttributeError(f"module 'nnsweep' has no attribute {name!r}")
