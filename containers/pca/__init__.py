"""Built-in-compatible PCA container (spec §6): ``python -m containers.pca train|serve``."""

__all__: list[str] = []
