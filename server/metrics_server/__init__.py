"""A Kubernetes Metrics API server (metrics.k8s.io/v1beta1) on trio."""

__version__ = "0.1.0"
