"""Test-only fault injection: makes nnsweep's trainer raise for one layer shape.

Put this folder on PYTHONPATH and set NNSWEEP_TEST_FAIL_LAYERS=8-8 (say); every Python
process of the sweep, joblib workers included, then fails that cell as a code bug would.
"""

import os

_shape = os.environ.get("NNSWEEP_TEST_FAIL_LAYERS")
if _shape:
    import nnsweep.sweep.job as _run

    _real_train = _run.train
    _bad = tuple(int(part) for part in _shape.split("-"))

    def _failing_train(inputs, targets, spec, seeds, **options):
        if spec.hidden_layers == _bad:
            raise RuntimeError(f"injected failure for layers {_shape}")
        return _real_train(inputs, targets, spec, seeds, **options)

    _run.train = _failing_train

# NNSWEEP_TEST_KILL_LAYERS=8-8: the worker training that cell is killed, as by the OOM killer.
# NNSWEEP_TEST_ENOSPC_LAYERS=8-8: from that cell on, every file its process writes fails
# with "No space left on device", as on a full disk.
_kill = os.environ.get("NNSWEEP_TEST_KILL_LAYERS")
_full = os.environ.get("NNSWEEP_TEST_ENOSPC_LAYERS")
_hold = os.environ.get("NNSWEEP_TEST_HOLD_LAYERS")
if _kill or _full:
    import errno
    import signal

    import nnsweep.store as _store
    import nnsweep.store.atomic as _atomic
    import nnsweep.sweep.job as _run

    _train_before = _run.train

    def _faulty_train(inputs, targets, spec, seeds, **options):
        shape = "-".join(map(str, spec.hidden_layers))
        if shape == _kill:
            import time

            marker = os.environ.get("NNSWEEP_TEST_KILLED_MARKER")
            if marker:  # killed only once the held cell (below) is under way
                deadline = time.monotonic() + 120
                while not os.path.exists(marker + ".held") and time.monotonic() < deadline:
                    time.sleep(0.05)
            else:
                time.sleep(2)  # the other cells finish first, so that only this one is lost
            os.kill(os.getpid(), signal.SIGKILL)
        if shape == _hold:
            import time

            # NNSWEEP_TEST_HOLD_LAYERS=4-4: that cell's first attempt stays unfinished until
            # the pool that the killed cell breaks ends this worker too (at most two
            # minutes); a second attempt runs straight through.
            killed = os.environ["NNSWEEP_TEST_KILLED_MARKER"]
            if not os.path.exists(killed + ".held"):
                open(killed + ".held", "w").close()
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    time.sleep(0.05)
        if shape == _full:

            def _disk_full(path, data):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

            _store.write_bytes = _atomic.write_bytes = _disk_full  # callers use either
        return _train_before(inputs, targets, spec, seeds, **options)

    _run.train = _faulty_train
