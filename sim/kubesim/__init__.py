"""A simulated Kubernetes cluster (kube-apiserver, aggregator, kubelets) for tests, demos and benchmarks.

Start with `SimCluster` (see `kubesim.cluster`); `python -m kubesim` runs one from the command
line, and `metrics-server simulate` (`kubesim.simulate`) adds the real metrics server as a
separate process. This is its own distribution (`sim/`, k8s-metrics-kubesim): it never imports
the server, and the server never imports it.
"""

from k8s_metrics.selectors import SelectorError

from .clock import SimClock
from .cluster import SimCluster
from .entities import ContainerSpec
from .errors import ConfigError, NotFoundError, SimError
from .model import FAULT_MODES, KUBELET_FORMATS
from .profiles import MI, Bursty, Profile, Sine, Steady
from .statefiles import ADMIN_USER, LIMITED_NAMESPACE, LIMITED_USER, METRICS_SERVER_USER, StatePaths

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
