"""Contains all the data models used in inputs/outputs"""

from .api_group import APIGroup
from .api_group_api_version import APIGroupApiVersion
from .api_group_kind import APIGroupKind
from .api_group_list import APIGroupList
from .api_group_list_api_version import APIGroupListApiVersion
from .api_group_list_kind import APIGroupListKind
from .api_resource import APIResource
from .api_resource_list import APIResourceList
from .api_resource_list_api_version import APIResourceListApiVersion
from .api_resource_list_kind import APIResourceListKind
from .container_metrics import ContainerMetrics
from .group_version_for_discovery import GroupVersionForDiscovery
from .labels import Labels
from .list_meta import ListMeta
from .node_metrics import NodeMetrics
from .node_metrics_api_version import NodeMetricsApiVersion
from .node_metrics_kind import NodeMetricsKind
from .node_metrics_list import NodeMetricsList
from .node_metrics_list_api_version import NodeMetricsListApiVersion
from .node_metrics_list_kind import NodeMetricsListKind
from .object_meta import ObjectMeta
from .pod_metrics import PodMetrics
from .pod_metrics_api_version import PodMetricsApiVersion
from .pod_metrics_kind import PodMetricsKind
from .pod_metrics_list import PodMetricsList
from .pod_metrics_list_api_version import PodMetricsListApiVersion
from .pod_metrics_list_kind import PodMetricsListKind
from .resource_list import ResourceList
from .resource_version_match import ResourceVersionMatch
from .server_address_by_client_cidr import ServerAddressByClientCIDR
from .status import Status
from .status_api_version import StatusApiVersion
from .status_cause import StatusCause
from .status_details import StatusDetails
from .status_kind import StatusKind
from .status_status import StatusStatus
from .version_info import VersionInfo

__all__ = (
    "APIGroup",
    "APIGroupApiVersion",
    "APIGroupKind",
    "APIGroupList",
    "APIGroupListApiVersion",
    "APIGroupListKind",
    "APIResource",
    "APIResourceList",
    "APIResourceListApiVersion",
    "APIResourceListKind",
    "ContainerMetrics",
    "GroupVersionForDiscovery",
    "Labels",
    "ListMeta",
    "NodeMetrics",
    "NodeMetricsApiVersion",
    "NodeMetricsKind",
    "NodeMetricsList",
    "NodeMetricsListApiVersion",
    "NodeMetricsListKind",
    "ObjectMeta",
    "PodMetrics",
    "PodMetricsApiVersion",
    "PodMetricsKind",
    "PodMetricsList",
    "PodMetricsListApiVersion",
    "PodMetricsListKind",
    "ResourceList",
    "ResourceVersionMatch",
    "ServerAddressByClientCIDR",
    "Status",
    "StatusApiVersion",
    "StatusCause",
    "StatusDetails",
    "StatusKind",
    "StatusStatus",
    "VersionInfo",
)
