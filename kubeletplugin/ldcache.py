"""The container's loader cache: a CDI hook that makes ``ldconfig -p`` inside it list the driver's libraries.

The driver's libraries are bind-mounted into directories the image's loader may not search (Ascend's
``/usr/local/Ascend/driver/lib64``), and some programs find them only through the loader cache (Triton
looks for libcuda with ``ldconfig -p``). Setting ``LD_LIBRARY_PATH`` would replace the image's own, so
instead, as the NVIDIA Container Toolkit's ``update-ldcache`` hook does, a ``createContainer`` hook adds
the directories to the container's ``/etc/ld.so.conf.d`` and runs the image's own ``ldconfig`` in its
root (its own glibc writes the cache format it reads).

The hook is a POSIX shell script passed to the host's ``/bin/sh``, so nothing is installed on the host.
The runtime runs it after the container's mounts are made and before it starts, with the container's
state (JSON, one object) on stdin; the script finds the bundle there and the root in its
``config.json``. It never fails the container: an image without ``ldconfig`` (musl, distroless), a
read-only root or anything unexpected leaves the cache as it was, with one line on the runtime's log.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

HOOK_NAME = "xpushare-ldcache"
CONF_FILE = "/etc/ld.so.conf.d/00-xpushare.conf"
SHELL = "/bin/sh"
# The runtime passes the hook's environment as given: a PATH for sed, tr and chroot.
HOOK_ENV = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",)

# $0 is the hook's name, "$@" the library directories (container paths).
SCRIPT = r"""
say() { echo "$0: $*" >&2; }
state=$(tr -d '\n')
bundle=$(printf '%s' "$state" | sed -n 's/.*"bundle"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p')
[ -n "$bundle" ] && [ -r "$bundle/config.json" ] || { say "no bundle in the container state"; exit 0; }
root=$(tr -d '\n' < "$bundle/config.json" |
  sed -n 's/.*"root"[[:space:]]*:[[:space:]]*{[^}]*"path"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p')
case "$root" in /*) ;; "") say "no root in $bundle/config.json"; exit 0 ;; *) root="$bundle/$root" ;; esac
ldconfig=
for candidate in /sbin/ldconfig /usr/sbin/ldconfig /sbin/ldconfig.real /usr/sbin/ldconfig.real; do
  if [ -x "$root$candidate" ]; then ldconfig=$candidate; break; fi
done
[ -n "$ldconfig" ] || exit 0
mkdir -p "$root/etc/ld.so.conf.d" 2>/dev/null
if ! printf '%s\n' "$@" > "$root@CONF@" 2>/dev/null; then say "cannot write @CONF@"; exit 0; fi
grep -qs 'ld.so.conf.d' "$root/etc/ld.so.conf" ||
  printf 'include /etc/ld.so.conf.d/*.conf\n' >> "$root/etc/ld.so.conf" 2>/dev/null
chroot "$root" "$ldconfig" 2>/dev/null || say "ldconfig failed in $root"
exit 0
""".replace("@CONF@", CONF_FILE).strip()


def ldcache_hook(library_dirs: Sequence[str]) -> dict[str, Any]:
    """The CDI hook (``containerEdits.hooks`` entry) that adds ``library_dirs`` to the loader cache."""
    return {
        "hookName": "createContainer",
        "path": SHELL,
        "args": ["sh", "-c", SCRIPT, HOOK_NAME, *library_dirs],
        "env": list(HOOK_ENV),
    }
