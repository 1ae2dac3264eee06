"""Containers of the process runtime listen on loopback only, even when their code binds the wildcard address.

Some programs bind ``0.0.0.0`` with no option to change it; distributed XGBoost's C++ collective (3.2) opens its
workers' sockets that way. Under the process runtime every ``algo-N`` resolves to ``127.0.0.1``, so a job never needs
more than loopback, while a wildcard listener is reachable from every network the machine is on. A small preload
library (compiled here once per process, with the machine's C compiler) wraps ``bind(2)``: a wildcard IPv4 address
becomes ``127.0.0.1``; a wildcard IPv6 address becomes ``::ffff:127.0.0.1`` (``::1`` for an IPv6-only socket), so
IPv4 loopback clients still connect. The isolation binds it into the namespace and preloads it in the container
(docs/security.md#what-jobs-listen-on). Statically linked programs are not covered. Without a compiler the stack logs
one WARNING and jobs' wildcard listeners stay as they are.
"""

from __future__ import annotations

import atexit
import functools
import logging
import shutil
import subprocess
import tempfile
from pathlib import Path

logger = logging.getLogger(__name__)

__all__ = ["CONTAINER_PATH", "loopback_bind_library"]

CONTAINER_PATH = "/opt/.sagestack/loopback-bind.so"  # where the container sees it (inside its /opt tmpfs)
_COMPILE_TIMEOUT_SECONDS = 120.0
_SOURCE = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

typedef int (*bind_function)(int, const struct sockaddr *, socklen_t);

int bind(int fd, const struct sockaddr *address, socklen_t length) {
    static bind_function real_bind;
    if (!real_bind) real_bind = (bind_function)dlsym(RTLD_NEXT, "bind");
    if (address && address->sa_family == AF_INET && length >= sizeof(struct sockaddr_in)) {
        struct sockaddr_in ipv4;
        memcpy(&ipv4, address, sizeof ipv4);
        if (ipv4.sin_addr.s_addr == htonl(INADDR_ANY)) {
            ipv4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            return real_bind(fd, (const struct sockaddr *)&ipv4, sizeof ipv4);
        }
    } else if (address && address->sa_family == AF_INET6 && length >= sizeof(struct sockaddr_in6)) {
        struct sockaddr_in6 ipv6;
        memcpy(&ipv6, address, sizeof ipv6);
        if (IN6_IS_ADDR_UNSPECIFIED(&ipv6.sin6_addr)) {
            int only_ipv6 = 0;
            socklen_t size = sizeof only_ipv6;
            getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &only_ipv6, &size);
            if (only_ipv6) {
                ipv6.sin6_addr = in6addr_loopback;
            } else {
                memset(&ipv6.sin6_addr, 0, sizeof ipv6.sin6_addr);
                ipv6.sin6_addr.s6_addr[10] = 0xff;
                ipv6.sin6_addr.s6_addr[11] = 0xff;
                ipv6.sin6_addr.s6_addr[12] = 127;
                ipv6.sin6_addr.s6_addr[15] = 1;
            }
            return real_bind(fd, (const struct sockaddr *)&ipv6, sizeof ipv6);
        }
    }
    return real_bind(fd, address, length);
}
"""


@functools.cache
def loopback_bind_library() -> Path | None:
    """The compiled preload library (in a private directory removed at exit), or ``None`` without a compiler."""
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        logger.warning("no C compiler (cc): jobs' wildcard listeners are not moved to loopback")
        return None
    folder = Path(tempfile.mkdtemp(prefix="sagestack-loopback-"))
    atexit.register(shutil.rmtree, folder, True)
    source, library = folder / "loopback_bind.c", folder / "loopback-bind.so"
    source.write_text(_SOURCE, encoding="utf-8")
    command = [compiler, "-shared", "-fPIC", "-O2", "-o", str(library), str(source), "-ldl"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=_COMPILE_TIMEOUT_SECONDS, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        logger.warning("cannot compile the loopback preload library (%s): wildcard listeners stay", exc)
        return None
    if done.returncode != 0:
        logger.warning("cannot compile the loopback preload library: %s", done.stderr.strip()[-500:])
        return None
    library.chmod(0o755)
    return library
