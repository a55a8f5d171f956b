"""A simulated Kubernetes cluster (kube-apiserver, aggregator, kubelets) for tests, demos and benchmarks.

Start with `SimCluster` (see `kubesim.cluster`); `python -m kubesim` runs one from the command
line. The metrics server package never imports this one.
"""

from .clock import SimClock
from .cluster import (
    ADMIN_USER,
    LIMITED_NAMESPACE,
    LIMITED_USER,
    METRICS_SERVER_USER,
    SimCluster,
    StatePaths,
)
from .entities import ContainerSpec
from .errors import ConfigError, NotFoundError, SelectorError, SimError
from .model import FAULT_MODES, KUBELET_FORMATS
from .profiles import MI, Bursty, Profile, Sine, Steady

__all__ = [
    "ADMIN_USER",
    "FAULT_MODES",
    "KUBELET_FORMATS",
    "LIMITED_NAMESPACE",
    "LIMITED_USER",
    "METRICS_SERVER_USER",
    "MI",
    "Bursty",
    "ConfigError",
    "ContainerSpec",
    "NotFoundError",
    "Profile",
    "SelectorError",
    "SimClock",
    "SimCluster",
    "SimError",
    "Sine",
    "StatePaths",
    "Steady",
]
