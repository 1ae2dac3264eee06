"""The segmentation pipeline: digits -> PCA -> K-Means -> batch transform, with a per-cluster summary."""
