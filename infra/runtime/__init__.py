"""Container runtimes: run SageMaker-compatible containers locally, only through their contract.

``api`` is the typed surface; ``process/`` holds the default runtime (``process.ProcessRuntime``) and ``docker/`` the
Docker one (``docker.DockerRuntime``); ``images`` resolves image URIs; ``model_archive`` packs and safely extracts
``model.tar.gz``. Import from those modules (this package re-exports nothing, so importing ``infra.runtime.api`` stays
cheap).
"""
