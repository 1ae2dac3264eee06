"""Built-in-compatible PCA container (docs/algorithms/pca.md): ``python -m containers.pca train|serve``."""

__all__: list[str] = []
