"""Training: the arithmetic, the kernel, the stacked trainer, datasets and shapes.

Imports nothing of sweep, store, stats or report."""
