"""Artifact + manifest -> Store: publishing to any URL, atomically."""
