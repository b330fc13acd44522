"""Measurements (DESIGN §6): weight deltas streamed from checkpoints, and functional probes."""
