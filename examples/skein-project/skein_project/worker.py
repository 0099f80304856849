"""What runs in the YARN containers: ``python -m skein_project.worker N``."""

import os
import socket
import sys


def sum_of_squares(n: int) -> int:
    return sum(i * i for i in range(n))


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    print(f"worker {os.environ.get('SKEIN_CONTAINER_ID', '?')} on {socket.gethostname()}: "
          f"sum_of_squares({n}) = {sum_of_squares(n)}", flush=True)


if __name__ == "__main__":
    main()
