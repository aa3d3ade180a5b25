"""The tasks a searched network is trained on: image classification and optical flow, with their data."""
