"""The console: server-rendered pages over the stack's own API, served at ``/console/`` (docs/console.md)."""
