"""A project that ships itself to YARN (installed in editable mode in the venv)."""
