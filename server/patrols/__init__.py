"""Patrol rounds (巡查): scans at checkpoints, rounds judged at their end, the night's log."""
