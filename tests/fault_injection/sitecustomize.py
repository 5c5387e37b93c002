"""Test-only fault injection: makes nnsweep's trainer raise for one layer shape.

Put this folder on PYTHONPATH and set NNSWEEP_TEST_FAIL_LAYERS=8-8 (say); every Python
process of the sweep, joblib workers included, then fails that cell as a code bug would.
"""

import os

_shape = os.environ.get("NNSWEEP_TEST_FAIL_LAYERS")
if _shape:
    import nnsweep.run as _run

    _real_train = _run.train
    _bad = tuple(int(part) for part in _shape.split("-"))

    def _failing_train(inputs, targets, spec, seeds, **options):
        if spec.hidden_layers == _bad:
            raise RuntimeError(f"injected failure for layers {_shape}")
        return _real_train(inputs, targets, spec, seeds, **options)

    _run.train = _failing_train
