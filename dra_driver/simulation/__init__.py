"""A cluster without a cluster: what the demo and the tests run in place of Kubernetes and real devices.

``apiserver`` (an embedded Kubernetes API server), ``scheduler`` (kube-scheduler's DRA plugin and the
resourceclaim controller, over the structured ``allocator``), ``kubelet`` (a kubelet stand-in that calls
the plugin over its sockets), ``workloads`` (fake vendor runtimes and workload programs in C, built from
``csrc``) and ``demo`` (the steps of ``xpushare demo``). The components never import it; it needs the
``sim`` extra (``pip install 'xpushare[sim]'``: cel-python, jsonschema).
"""
