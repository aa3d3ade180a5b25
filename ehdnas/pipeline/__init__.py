"""What every method shares around a runner: export to ONNX, measure, store, and predictors from the store."""
