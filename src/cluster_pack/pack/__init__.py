"""Environment -> PackSpec -> Builder: what is installed, what to pack, the artifact."""
