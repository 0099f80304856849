"""cluster-pack's version (its own module: the manifest records it, and the package's
``__init__`` is the public API, which sits above every stage)."""

__version__ = "1.0.0.dev0"
