"""Running a bundle, split by job and by the process each part runs in (docs/ARCHITECTURE.md).

This package imports nothing itself: ``python -m jupyter_mlops.run.reaper`` starts next to
every run and must stay light.
"""
