import sys

from cluster_pack.cli import main

sys.exit(main())
