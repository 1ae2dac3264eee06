"""Container runtimes: run SageMaker-compatible containers locally, only through their contract.

``api`` is the typed surface; ``process.ProcessRuntime`` is the default runtime; ``images`` resolves image URIs;
``model_archive`` packs and safely extracts ``model.tar.gz``. Import from those modules (this package re-exports
nothing, so importing ``infra.runtime.api`` stays cheap).
"""
