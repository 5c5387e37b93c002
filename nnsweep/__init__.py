"""nnsweep: which hidden-layer shape trains best, and how sure can we be."""

__version__ = "0.1.0"
