"""The edge's jobs, one module each: HTTP guards, SigV4 verification, and routing (see ``docs/security.md``)."""
