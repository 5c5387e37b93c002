"""Statistics on stored tables: summaries, verdict decisions, sequential rounds, placement
trends and grouping. Imports nothing of store, report or sweep."""
