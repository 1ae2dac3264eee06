"""The serving side shared by the containers: the inference HTTP server (/ping, /invocations, multi-model routes) and
the dense-row handler the built-in algorithms use (docs/containers.md)."""
