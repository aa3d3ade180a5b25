"""The leaf layer: errors, option parsing, registries, host fingerprints, paths, event types, child processes that
die with their parent.

Every other part of the project may import this package; it imports nothing
else of the project, and no torch, so a runner or a predictor can use it alone.
"""
