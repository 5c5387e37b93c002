"""Result files: atomic writes, the per-seed cache, provenance, sweep folders and tables."""
