"""The original remote entry point, kept runnable: ``python -m cluster_pack.skein._execute_fun
FILE [LOG_LEVEL]``. It is :mod:`cluster_pack.launch.run_function` (which also saves the result
and turns an exception into exit status 1)."""

import sys

from cluster_pack.launch.run_function import main


def _execute_fun(path_to_serialized_fun: str) -> None:
    """Run the pickled ``{"func", "args"}`` at ``path_to_serialized_fun``; raise on failure."""
    if main([path_to_serialized_fun]) != 0:
        raise RuntimeError(f"the function in {path_to_serialized_fun} failed")


if __name__ == "__main__":
    sys.exit(main())
