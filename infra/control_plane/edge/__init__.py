"""The edge's jobs, one module each: HTTP guards, SigV4 verification, routing (see ``docs/security.md``), and the
runtime front that owns the port and answers InvokeEndpoint (its request heads in ``request_head``).
"""
