"""Runs a function shipped with cloudpickle: ``python -m cluster_pack.run_function FILE [LEVEL]``.

The return value is logged and written (cloudpickled) to ``FILE.result``; an exception
is printed with its traceback and makes the process exit with status 1.
"""

import logging
import sys
import traceback

_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        print("usage: python -m cluster_pack.run_function FILE [LOG_LEVEL]", file=sys.stderr)
        return 2
    path = argv[0]
    level = argv[1] if len(argv) > 1 and argv[1] in _LEVELS else "INFO"
    logging.basicConfig(level=level)
    import cloudpickle

    with open(path, "rb") as f:
        payload = cloudpickle.load(f)
    func, args = payload["func"], payload.get("args", [])
    name = getattr(func, "__qualname__", repr(func))
    try:
        result = func(*args)
    except BaseException:
        traceback.print_exc()
        print(f"cluster-pack: {name} failed", file=sys.stderr)
        return 1
    logging.getLogger("cluster_pack").info("%s returned %r", name, result)
    try:
        with open(f"{path}.result", "wb") as f:
            cloudpickle.dump(result, f)
    except Exception as exc:  # an unpicklable result is not a job failure
        logging.getLogger("cluster_pack").warning("cannot save the result: %s", exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
