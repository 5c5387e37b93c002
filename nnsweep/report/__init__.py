"""Reports: rendering, sections, wording, plots, and the many-cell, auto and study reports.

Reads stored tables; never trains."""
