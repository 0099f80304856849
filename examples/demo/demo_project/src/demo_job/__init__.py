"""A tiny job: runs in a cluster container (here: the local runner) from the packed env."""
