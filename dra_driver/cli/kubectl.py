"""``kubectl-xpushare``: the kubectl plugin (``kubectl xpushare status NODE``), the ``xpushare`` command
under kubectl's naming: ``status`` there is ``remote-status`` here (read through the API server)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from dra_driver.cli import main as xpushare

_COMMANDS = {"status": "remote-status"}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in _COMMANDS:
        args[0] = _COMMANDS[args[0]]
    elif not args or args[0] in ("-h", "--help"):
        print("usage: kubectl xpushare status NODE [-n NAMESPACE] [--window S] [-o table|json]")
        return 0 if args else 2
    return xpushare(args)


if __name__ == "__main__":
    raise SystemExit(main())
