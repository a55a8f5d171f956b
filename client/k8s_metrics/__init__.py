"""Typed client for the Kubernetes Metrics API (metrics.k8s.io/v1beta1)."""

__version__ = "0.1.0"
