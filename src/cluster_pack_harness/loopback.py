"""Keep servers started inside YARN containers on loopback.

Third-party ApplicationMasters bind their servers to the wildcard address (skein's AM: gRPC and
web UI on ``*:port``). The harness promises that everything listens on 127.0.0.1 only, so the
NodeManager puts a tiny ``LD_PRELOAD`` library in every container's environment
(``yarn.nodemanager.admin-env``) that rewrites ``bind()`` to the wildcard address:

* IPv4 ``0.0.0.0``  -> ``127.0.0.1``
* IPv6 ``::``       -> ``::ffff:127.0.0.1`` on dual-stack sockets, ``::1`` on IPV6_V6ONLY sockets

The library is compiled once with the system C compiler into the harness cache directory. Without
a compiler the harness still works, containers just bind where they like (a warning is logged).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import Optional

from cluster_pack_harness.build import cache_dir

SOURCE = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

typedef int (*bind_fn)(int, const struct sockaddr *, socklen_t);

int bind(int fd, const struct sockaddr *addr, socklen_t len) {
  static bind_fn real_bind = 0;
  if (!real_bind) real_bind = (bind_fn) dlsym(RTLD_NEXT, "bind");
  if (addr && addr->sa_family == AF_INET && len >= (socklen_t) sizeof(struct sockaddr_in)) {
    const struct sockaddr_in *in = (const struct sockaddr_in *) addr;
    if (in->sin_addr.s_addr == htonl(INADDR_ANY)) {
      struct sockaddr_in copy;
      memcpy(&copy, in, sizeof copy);
      copy.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      return real_bind(fd, (const struct sockaddr *) &copy, sizeof copy);
    }
  } else if (addr && addr->sa_family == AF_INET6 && len >= (socklen_t) sizeof(struct sockaddr_in6)) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) addr;
    if (memcmp(&in6->sin6_addr, &in6addr_any, sizeof(struct in6_addr)) == 0) {
      struct sockaddr_in6 copy;
      int v6only = 0;
      socklen_t optlen = sizeof v6only;
      memcpy(&copy, in6, sizeof copy);
      if (getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &optlen) == 0 && v6only) {
        copy.sin6_addr = in6addr_loopback;
      } else {
        memset(&copy.sin6_addr, 0, sizeof copy.sin6_addr);
        copy.sin6_addr.s6_addr[10] = 0xff;
        copy.sin6_addr.s6_addr[11] = 0xff;
        copy.sin6_addr.s6_addr[12] = 127;
        copy.sin6_addr.s6_addr[15] = 1;
      }
      return real_bind(fd, (const struct sockaddr *) &copy, sizeof copy);
    }
  }
  return real_bind(fd, addr, len);
}
"""


def ensure_bind_shim(log=None) -> Optional[Path]:
    """Path of the compiled LD_PRELOAD library, or None when no C compiler is available."""
    digest = hashlib.sha256(SOURCE.encode()).hexdigest()[:12]
    target = cache_dir() / f"bind-loopback-{digest}.so"
    if target.exists():
        return target
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        if log:
            log("no C compiler: containers' servers may bind the wildcard address")
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    src = target.with_suffix(f".{os.getpid()}.c")
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    src.write_text(SOURCE)
    try:
        proc = subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", str(tmp), str(src), "-ldl"],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            if log:
                log(f"could not compile the loopback bind shim: {proc.stderr.strip()[-500:]}")
            return None
        os.replace(tmp, target)
    finally:
        src.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
    return target
