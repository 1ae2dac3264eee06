"""Built-in-compatible K-Means container (spec §5): ``python -m containers.kmeans train|serve``."""

__all__: list[str] = []
