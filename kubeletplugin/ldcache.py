"""The container's loader cache: a CDI hook that makes ``ldconfig -p`` inside it list the driver's libraries.

The driver's libraries are bind-mounted into directories the image's loader may not search (Ascend's
``/usr/local/Ascend/driver/lib64``), and some programs find them only through the loader cache (Triton
looks for libcuda with ``ldconfig -p``). Setting ``LD_LIBRARY_PATH`` would replace the image's own, so
instead, as the NVIDIA Container Toolkit's ``update-ldcache`` hook does, a ``createContainer`` hook
rebuilds the container's ``/etc/ld.so.cache`` with the directories added.

The image is a tenant's: nothing of it runs, and nothing is written through its paths. The hook runs the
*host's* ``ldconfig`` with ``-r <container root>`` (ldconfig chroots itself before reading the image's
``ld.so.conf`` and writing its cache, so the image's symlinks resolve inside its root, never onto the
host) and ``-X`` (no links made in the read-only driver mounts); the directories are given on its
command line, so no file of ours is written into the image. A later ``ldconfig`` run inside the container
rebuilds the cache without them (the libraries stay where they are mounted).

The hook is a POSIX shell script passed to the host's ``/bin/sh``, so nothing is installed on the host.
The runtime runs it after the container's mounts are made and before it starts, with the container's
state (JSON, one object) on stdin; the script finds the bundle there and the root in its
``config.json``, both written by the runtime. It never fails the container: an image without a glibc
loader cache (musl, distroless), a read-only root or anything unexpected leaves the cache as it was,
with one line on the runtime's log.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

HOOK_NAME = "xpushare-ldcache"
SHELL = "/bin/sh"
# The runtime passes the hook's environment as given: a PATH for sed and tr.
HOOK_ENV = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",)
# The host's ldconfig (Ubuntu's /sbin/ldconfig is a wrapper script around ldconfig.real).
HOST_LDCONFIG = ("/sbin/ldconfig.real", "/usr/sbin/ldconfig.real", "/sbin/ldconfig", "/usr/sbin/ldconfig")

# $0 is the hook's name, "$@" the library directories (container paths).
SCRIPT = r"""
say() { echo "$0: $*" >&2; }
state=$(tr -d '\n')
bundle=$(printf '%s' "$state" | sed -n 's/.*"bundle"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p')
[ -n "$bundle" ] && [ -r "$bundle/config.json" ] || { say "no bundle in the container state"; exit 0; }
root=$(tr -d '\n' < "$bundle/config.json" |
  sed -n 's/.*"root"[[:space:]]*:[[:space:]]*{[^}]*"path"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p')
case "$root" in /*) ;; "") say "no root in $bundle/config.json"; exit 0 ;; *) root="$bundle/$root" ;; esac
[ -e "$root/etc/ld.so.cache" ] || [ -e "$root/etc/ld.so.conf" ] || exit 0  # no glibc loader cache
ldconfig=
for candidate in @HOST_LDCONFIG@; do
  if [ -x "$candidate" ]; then ldconfig=$candidate; break; fi
done
[ -n "$ldconfig" ] || { say "no ldconfig on the host"; exit 0; }
"$ldconfig" -r "$root" -X "$@" 2>/dev/null || say "ldconfig -r $root failed"
exit 0
""".replace("@HOST_LDCONFIG@", " ".join(HOST_LDCONFIG)).strip()


def ldcache_hook(library_dirs: Sequence[str]) -> dict[str, Any]:
    """The CDI hook (``containerEdits.hooks`` entry) that adds ``library_dirs`` to the loader cache."""
    return {
        "hookName": "createContainer",
        "path": SHELL,
        "args": ["sh", "-c", SCRIPT, HOOK_NAME, *library_dirs],
        "env": list(HOOK_ENV),
    }
