"""Performance models learned from the measurement store (predictors, baselines, the loss term).

They arrive with the perf_models issue; the package exists now so the
distribution's layout is final.
"""
