"""Submit the worker to YARN from the project's venv: ``python -m skein_project.client``.

The venv is packed and published once (``upload_env`` skips it when nothing changed); this
project, installed in editable mode, is zipped and shipped next to it, so local edits to
``worker.py`` run on the cluster at the next submission without repacking.
"""

import argparse
import logging

import skein

import cluster_pack
from cluster_pack.skein import skein_launcher


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=10)
    parser.add_argument("--containers", type=int, default=2)
    parser.add_argument("--package-path", default=None,
                        help="where to publish the env (default: {defaultFS}/user/$USER/envs/)")
    options = parser.parse_args()
    logging.basicConfig(level=logging.INFO)

    package_path, _ = cluster_pack.upload_env(package_path=options.package_path)
    with skein.Client() as client:
        app_id = skein_launcher.submit(
            client, module_name="skein_project.worker", args=[str(options.n)],
            package_path=package_path, num_containers=options.containers, memory="512 MiB",
            name="skein-project")
        succeeded = skein_launcher.wait_for_finished(client, app_id, poll_every_secs=2)
        logs = skein_launcher.get_application_logs(client, app_id,
                                                   wait_for_nb_logs=options.containers + 1)
    for container, text in (logs.items() if logs else []):
        for line in text.splitlines():
            if line.startswith("worker "):
                print(f"{container}: {line}")
    print(f"{app_id} succeeded: {succeeded}")
    return 0 if succeeded else 1


if __name__ == "__main__":
    raise SystemExit(main())
