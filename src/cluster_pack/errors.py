"""One exception root for everything cluster-pack raises on purpose.

Every error subclasses :class:`ClusterPackError` and the builtin that matches its
meaning, so ``except ValueError`` written against the original library still works.
The CLI turns these into a single ``Error: ...`` line; ``exit_code`` 2 means
"bad input, fix the call", 1 means "something failed while doing the work".
"""


class ClusterPackError(Exception):
    """Root of all cluster-pack errors."""

    exit_code = 1


class ConfigurationError(ClusterPackError, ValueError):
    """The caller asked for something that cannot work (bad argument, bad path...)."""

    exit_code = 2


class NotInVirtualEnvError(ConfigurationError):
    """``upload_env`` was called outside a virtualenv and no fallback is configured."""


class InterpreterError(ConfigurationError):
    """``include_interpreter``: the venv's base interpreter cannot be shipped to the nodes
    (no prefix, another platform, shared libraries outside its prefix)."""


class PackageSelectionError(ConfigurationError, LookupError):
    """A package named in ``only_packages``/``additional_packages``/... cannot be found."""


class BrokenDistributionError(ClusterPackError, ValueError):
    """An installed distribution has unreadable or inconsistent metadata."""

    exit_code = 2


class EditableSourceError(ClusterPackError, FileNotFoundError):
    """An editable project's source directory is missing or unusable."""

    exit_code = 2


class BuildError(ClusterPackError, RuntimeError):
    """Building the artifact failed (the pex tool or the resolver reported an error)."""


class JobFailedError(ClusterPackError, RuntimeError):
    """A job or function launched with the packed environment failed (its output says why)."""


class StorageError(ClusterPackError, OSError):
    """Reading from or publishing to storage failed."""


class KerberosError(StorageError):
    """A Kerberized cluster refused us: no ticket, an expired one, or no GSSAPI library.

    The message says what to do (``kinit`` and the principal when it is known); it never
    contains a ticket or a key. Exit code 2: nothing is wrong with the cluster, get a ticket.
    """

    exit_code = 2


class IntegrityError(ClusterPackError, ValueError):
    """An artifact does not match its manifest (size or sha256), or a manifest is invalid."""


class ClusterError(ClusterPackError):
    """A cluster process died, or the cluster could not start."""
