"""The embedded API server object: start and stop it, find its URL, write a kubeconfig for it.

It listens on 127.0.0.1 (a free port by default) and serves plain HTTP: on loopback that is what a
kubeconfig for a local cluster needs, and it keeps the simulator free of certificate handling. Namespaces
``default`` and ``kube-system`` exist from the start, as in any cluster.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from types import TracebackType

import yaml
from kubernetes.client import ApiClient
from kubernetes.config import new_client_from_config_dict

from api.errors import XPUShareError
from dra_driver.core.fileio import write_atomically
from dra_driver.simulation.apiserver import objects
from dra_driver.simulation.apiserver.handler import ApiContext, ApiHandler, ApiHttpServer
from dra_driver.simulation.apiserver.registry import Registry
from dra_driver.simulation.apiserver.resources import NAMESPACES, Resources
from dra_driver.simulation.apiserver.schema import (
    SCHEMAS_ENV,
    SchemaSet,
    default_schema_dir,
    shared_schema_set,
)
from dra_driver.simulation.apiserver.store import Store
from dra_driver.simulation.apiserver.tls import ServingCert, make_serving_cert
from dra_driver.simulation.gates import Gates

_log = logging.getLogger(__name__)
INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


class ApiServerError(XPUShareError):
    """The embedded API server could not start or write its kubeconfig."""


class ApiServer:
    """A Kubernetes API server in this process; use as a context manager or call start()/stop()."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, schema_dir: Path | None = None,
                 disabled_gates: list[str] | tuple[str, ...] = (), history: int = 10_000,
                 tls_dir: Path | None = None) -> None:
        """``tls_dir``: serve HTTPS with a self-signed certificate made in that directory."""
        self.host = host
        self.requested_port = port
        self.gates = Gates.from_names(list(disabled_gates))
        directory = schema_dir or default_schema_dir()
        self.schemas: SchemaSet = shared_schema_set(str(directory) if directory is not None else None)
        if not self.schemas.available:
            _log.warning("upstream Kubernetes schemas not found: serving and validating against OpenAPI "
                         "documents generated from the kubernetes client models (set %s to their "
                         "directory)", SCHEMAS_ENV, extra={"directory": str(directory)})
        self.registry = Registry()
        self.store = Store(history)
        self.resources = Resources(self.store, self.schemas, self.gates)
        self._http: ApiHttpServer | None = None
        self._thread: threading.Thread | None = None
        self.cert: ServingCert | None = make_serving_cert(tls_dir, host) if tls_dir is not None else None
        self._seed()

    def _seed(self) -> None:
        kind = self.registry.lookup("", "v1", NAMESPACES)
        assert kind is not None
        for name in INITIAL_NAMESPACES:
            obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
            objects.init_system_fields(kind, obj)
            self.store.create(kind.qualified, ("", name), obj)

    @property
    def port(self) -> int:
        if self._http is None:
            raise ApiServerError("the API server is not running")
        return int(self._http.server_address[1])

    @property
    def url(self) -> str:
        scheme = "https" if self.cert is not None else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def start(self) -> ApiServer:
        try:
            http = ApiHttpServer((self.host, self.requested_port), ApiHandler)
        except OSError as err:
            raise ApiServerError(f"listen on {self.host}:{self.requested_port}: {err}") from err
        if self.cert is not None:
            # The handshake happens in the request thread, so a slow client cannot stall accept().
            http.socket = self.cert.server_context().wrap_socket(http.socket, server_side=True,
                                                                 do_handshake_on_connect=False)
        address = f"{self.host}:{http.server_address[1]}"
        http.context = ApiContext(self.registry, self.resources, self.schemas, address)
        self._http = http
        self._thread = threading.Thread(target=http.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"apiserver-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; open watches end within a second."""
        self.store.close()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._http = None
        self._thread = None

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def kubeconfig(self, context: str = "xpushare-sim") -> dict[str, object]:
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": self._cluster()}],
            "users": [{"name": context, "user": {"token": "xpushare-sim"}}],
            "contexts": [{"name": context, "context": {"cluster": context, "user": context,
                                                       "namespace": "default"}}],
            "current-context": context,
            "preferences": {},
        }

    def client(self) -> ApiClient:
        """An official client for this server, configured from its own kubeconfig (TLS included)."""
        api: ApiClient = new_client_from_config_dict(self.kubeconfig())  # type: ignore[no-untyped-call]
        return api

    def _cluster(self) -> dict[str, str]:
        cluster = {"server": self.url}
        if self.cert is not None:
            cluster["certificate-authority-data"] = self.cert.authority_data()
        return cluster

    def write_kubeconfig(self, path: Path | str) -> Path:
        """Write a kubeconfig for this server atomically (temp file, fsync, rename), mode 0600."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        text = yaml.safe_dump(self.kubeconfig(), sort_keys=False)
        try:
            write_atomically(target, text.encode(), mode=0o600)
        except OSError as err:
            raise ApiServerError(f"write kubeconfig {target}: {err}") from err
        return target
