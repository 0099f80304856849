"""A Dask cluster from your packed environment: locally, or on YARN with --yarn.

    python examples/dask/dask_example.py                 # scheduler + 2 local workers
    python examples/dask/dask_example.py --yarn          # on YARN (skein, HDFS)

The environment is the virtualenv running this script (it needs ``distributed``, and
``skein`` for --yarn); cluster-pack packs and publishes it first (``upload_env``).
"""

import argparse
import sys

import cluster_pack
from cluster_pack.launch import dask as cp_dask


def partition_stats(i):
    import platform
    return {"partition": i, "sum_of_squares": sum(x * x for x in range(i * 1000)),
            "python": platform.python_version()}


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--yarn", action="store_true")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--package-path", help="where to publish the env (default: cluster-pack's)")
    args = parser.parse_args(argv)

    package_path, _ = cluster_pack.upload_env(package_path=args.package_path)
    if args.yarn:
        cluster = cp_dask.yarn_cluster(package_path, n_workers=args.workers,
                                       worker_memory="1 GiB")
    else:
        cluster = cp_dask.local_cluster(n_workers=args.workers, package_path=package_path)
    with cluster:
        client = cluster.client
        results = client.gather(client.map(partition_stats, range(4)))
        for r in results:
            print(f"partition {r['partition']}: {r['sum_of_squares']} (python {r['python']})")
        print("total =", sum(r["sum_of_squares"] for r in results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
