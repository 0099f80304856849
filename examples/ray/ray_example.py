"""A Ray cluster (head + workers) from your packed environment: locally, or on YARN.

    python examples/ray/ray_example.py                   # head + 2 local worker nodes
    python examples/ray/ray_example.py --yarn            # on YARN (skein, HDFS)

The environment is the virtualenv running this script (``ray``, and ``skein`` for
--yarn). Ray wants the driver and the cluster on the same Python and Ray versions.
"""

import argparse
import os
import sys

import ray

import cluster_pack
from cluster_pack.launch import ray as cp_ray


@ray.remote
def square(x):
    return x * x


@ray.remote
class Accumulator:
    def __init__(self):
        self.total = 0

    def add(self, value):
        self.total += value
        return self.total


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--yarn", action="store_true")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--package-path")
    args = parser.parse_args(argv)

    # published as content-addressed parts (the default layout): Ray's large wheels are
    # uploaded once, a later change re-uploads only the distributions that changed
    package_path, _ = cluster_pack.upload_env(package_path=args.package_path)
    if args.yarn:
        # the containers use the driver's interpreter directory first on PATH
        path = os.path.dirname(getattr(sys, "_base_executable", sys.executable))
        cluster = cp_ray.yarn_cluster(package_path, n_workers=args.workers,
                                      env_vars={"PATH": f"{path}:/usr/bin:/bin"})
    else:
        cluster = cp_ray.local_cluster(n_workers=args.workers, package_path=package_path)
    with cluster:
        squares = ray.get([square.remote(i) for i in range(10)])
        acc = Accumulator.remote()
        totals = [ray.get(acc.add.remote(s)) for s in squares]
        print("squares:", squares)
        print("running total:", totals[-1])
        print("nodes:", len([n for n in ray.nodes() if n["Alive"]]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
