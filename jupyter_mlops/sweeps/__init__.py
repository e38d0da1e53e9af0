"""Sweeps: many parameter sets from one notebook, the best trial registered.

- ``space``: the trials a sweep tries (a grid, or random draws) and how the best is chosen;
  pure.
- ``record``: a sweep's ``sweep.json``, which lets an interrupted sweep resume.
- ``sweeper``: running the trials as ordinary pipeline runs nested under the sweep's
  MLflow run, sharing the stages that read no swept parameter through the stage cache.
"""
