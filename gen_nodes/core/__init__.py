"""core: what every layer builds on and that needs no I/O of its own beyond GEN's schemas.

The action spec and the built-in actions, the registry, the engine (input checks, request
building, output checks), every error class, redaction, private state paths and schema
validation. It imports only the stdlib and its own modules (the client lazily, to run an action).
"""
