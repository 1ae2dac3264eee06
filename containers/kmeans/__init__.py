"""Built-in-compatible K-Means container (docs/algorithms/kmeans.md): ``python -m containers.kmeans train|serve``."""

__all__: list[str] = []
