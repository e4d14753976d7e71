"""The kubelet's gRPC protocols that a DRA plugin serves, under stable names.

The rest of the project imports the generated modules from here, never from ``gen/`` (whose layout
follows protoc's), so regenerating or moving the stubs touches this file only::

    from api.kubelet import dra_v1_pb2, dra_v1_grpc
    dra_v1_grpc.add_DRAPluginServicer_to_server(servicer, server)

``*_pb2`` modules hold the messages, ``*_grpc`` modules the servicer base classes, the stubs and the
``add_*_to_server`` functions. The service names are what the kubelet dials (``/<service>/<method>``).
"""

from api.kubelet.gen.dra.v1 import api_pb2 as dra_v1_pb2
from api.kubelet.gen.dra.v1 import api_pb2_grpc as dra_v1_grpc
from api.kubelet.gen.dra.v1beta1 import api_pb2 as dra_v1beta1_pb2
from api.kubelet.gen.dra.v1beta1 import api_pb2_grpc as dra_v1beta1_grpc
from api.kubelet.gen.health.v1alpha1 import api_pb2 as health_v1alpha1_pb2
from api.kubelet.gen.health.v1alpha1 import api_pb2_grpc as health_v1alpha1_grpc
from api.kubelet.gen.pluginregistration.v1 import api_pb2 as registration_pb2
from api.kubelet.gen.pluginregistration.v1 import api_pb2_grpc as registration_grpc

DRA_V1_SERVICE: str = dra_v1_pb2.DESCRIPTOR.services_by_name["DRAPlugin"].full_name
DRA_V1BETA1_SERVICE: str = dra_v1beta1_pb2.DESCRIPTOR.services_by_name["DRAPlugin"].full_name
HEALTH_V1ALPHA1_SERVICE: str = health_v1alpha1_pb2.DESCRIPTOR.services_by_name["DRAResourceHealth"].full_name
REGISTRATION_SERVICE: str = registration_pb2.DESCRIPTOR.services_by_name["Registration"].full_name

__all__ = [
    "DRA_V1BETA1_SERVICE",
    "DRA_V1_SERVICE",
    "HEALTH_V1ALPHA1_SERVICE",
    "REGISTRATION_SERVICE",
    "dra_v1_grpc",
    "dra_v1_pb2",
    "dra_v1beta1_grpc",
    "dra_v1beta1_pb2",
    "health_v1alpha1_grpc",
    "health_v1alpha1_pb2",
    "registration_grpc",
    "registration_pb2",
]
