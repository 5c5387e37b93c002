"""One progress line for long work, redrawn at most once a second (tqdm, on stderr).

Jobs may run in other processes or on other machines, so a sweep's progress is read from
the ``progress.json`` files its jobs write, not passed in memory.
"""

from __future__ import annotations

import threading
from pathlib import Path
from types import TracebackType

from tqdm import tqdm

from nnsweep.store import read_progress

REFRESH_SECONDS = 1.0


def progress_bar(total: int, description: str, enabled: bool) -> tqdm:
    """A seed-iteration bar; hidden when disabled or when stderr is not a terminal."""
    return tqdm(
        total=total,
        desc=description,
        unit="seed-it",
        unit_scale=True,
        mininterval=REFRESH_SECONDS,
        maxinterval=REFRESH_SECONDS,
        dynamic_ncols=True,
        leave=True,
        disable=None if enabled else True,
    )


class SweepProgress:
    """Polls a sweep directory once a second: cells done, seed-iterations done, ETA."""

    def __init__(self, sweep_dir: Path, n_cells: int, total: int, enabled: bool) -> None:
        self.sweep_dir = sweep_dir
        self.n_cells = n_cells
        self.bar = progress_bar(total, self._label(0), enabled)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _label(self, finished: int) -> str:
        return f"cells {finished}/{self.n_cells}"

    def _refresh(self) -> None:
        if not self.sweep_dir.is_dir():
            return
        done, finished = read_progress(self.sweep_dir)
        self.bar.set_description_str(self._label(finished), refresh=False)
        self.bar.update(max(0, min(done, self.bar.total) - self.bar.n))

    def _poll(self) -> None:
        while not self._stop.wait(REFRESH_SECONDS):
            self._refresh()

    def __enter__(self) -> SweepProgress:
        if not self.bar.disable:
            self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
            self._refresh()
        self.bar.close()
