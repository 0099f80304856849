import os
import sys

import six  # only in the packed environment, not in the container's base interpreter


def main() -> None:
    print(f"demo_job ran in {os.getcwd()}")
    print(f"  python     {sys.executable}")
    print(f"  six        {six.__version__} from {os.path.dirname(six.__file__)}")
    print(f"  arguments  {sys.argv[1:]}")
    print(f"  published  {os.environ.get('C_PACK_PACKAGE_PATH')}")


if __name__ == "__main__":
    main()
