"""``xpushare plan``: how many replicas of a workload fit on a cluster, where, and what they leave.

The cluster is read from an API server (--kubeconfig) or from files (-f, repeatable; YAML or JSON,
several documents or a List, as `kubectl get resourceslices,deviceclasses,resourceclaims,nodes,pods -A
-o yaml` writes them). The workload (--workload) is a ResourceClaimTemplate or a ResourceClaim, or a
Pod or Deployment whose pod spec names claim templates. Replicas are placed one after another by the
structured allocator that the scheduler stand-in uses, spread over the nodes as kube-scheduler spreads
pods. The plan says how many fit and on which nodes, what each device has used and free afterwards,
the free capacity no further replica can use (fragmentation), why the rest did not fit, and how many
would fit in each slice mode. See docs/planning.md.
"""

from __future__ import annotations

import argparse
import json
import sys

from controller.settings import DRIVER_NAME

_HELP = (__doc__ or "").replace("``", "")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "plan",
        help="how many replicas of a workload fit on a cluster, and where",
        description=_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add(
        "--workload",
        required=True,
        metavar="FILE",
        help="ResourceClaimTemplate, ResourceClaim, Pod or Deployment (YAML or JSON; - for stdin)",
    )
    add(
        "--replicas",
        type=int,
        default=None,
        help="replicas to place, 1..100000 (default: the Deployment's spec.replicas, else 1)",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--kubeconfig", metavar="PATH", help="read the cluster from this API server")
    source.add_argument(
        "-f",
        "--filename",
        action="append",
        metavar="FILE",
        help="read the cluster from this file (repeatable; - for stdin)",
    )
    add("--namespace", default="", help="the workload's namespace (default: its own, else default)")
    add("--driver-name", default=DRIVER_NAME, help=f"our driver's name (default {DRIVER_NAME})")
    add("--no-compare", action="store_true", help="leave out the slice-mode comparison")
    add("-o", "--output", choices=("table", "json"), default="table", help="table (default) or json")
    add("--limit", type=int, default=20, help="rows of the node and device tables (default 20; 0: all)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from api.errors import ConfigError
    from api.yamlfile import load_documents
    from dra_driver.cli.extras import requires_sim_extra

    with requires_sim_extra("plan"):  # placements run the simulation's allocator (CEL)
        from dra_driver.planning import PlanOptions, as_json, parse_workload, plan, render_table
        from dra_driver.planning.files import load_cluster_files, read_text

    if args.limit < 0:
        raise ConfigError(f"--limit: {args.limit} is out of range; allowed 0 (all) or more")
    text, name = read_text(args.workload)
    documents = load_documents(text, name)
    if args.kubeconfig is not None:
        from dra_driver.core.kube import KubeApi, load_api_client
        from dra_driver.planning.live import TemplateReader, read_cluster

        with load_api_client(args.kubeconfig) as api_client:
            api = KubeApi(api_client)
            snapshot = read_cluster(api)
            workload = parse_workload(documents, name, TemplateReader(api), args.namespace)
    else:
        snapshot = load_cluster_files(args.filename)
        workload = parse_workload(documents, name, None, args.namespace)
    if snapshot.ignored:
        kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(snapshot.ignored.items()))
        print(f"note: objects not used by plan: {kinds}", file=sys.stderr)
    replicas = args.replicas if args.replicas is not None else max(1, workload.replicas or 1)
    options = PlanOptions(replicas, args.driver_name, compare_modes=not args.no_compare)
    report = plan(snapshot, workload, options)
    if args.output == "json":
        print(json.dumps(as_json(report), sort_keys=True))
    else:
        print(render_table(report, args.limit or len(report.nodes) + len(report.devices)))
    return 0
