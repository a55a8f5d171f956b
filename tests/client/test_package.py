"""The package's top level: public names resolve lazily, and only what is used gets imported."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import k8s_metrics


def _modules_after(statement: str) -> list[str]:
    listing = "json.dumps(sorted(m for m in sys.modules if m.startswith('k8s_metrics')))"
    code = f"{statement}\nimport json, sys\nprint({listing})"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return list(json.loads(out))


def test_importing_kubeconfig_does_not_load_the_generated_client() -> None:
    # The metrics server imports only the kubeconfig loader; the generated client and attrs would
    # cost it ~55 modules of memory for nothing.
    assert _modules_after("import k8s_metrics.kubeconfig") == [
        "k8s_metrics",
        "k8s_metrics.kubeconfig",
        "k8s_metrics.kubeconfig.connection",
        "k8s_metrics.kubeconfig.document",
        "k8s_metrics.kubeconfig.execplugin",
        "k8s_metrics.kubeconfig.files",
        "k8s_metrics.kubeconfig.incluster",
        "k8s_metrics.kubeconfig.tokens",
    ]


def test_public_names_resolve_on_first_use() -> None:
    assert "k8s_metrics._generated" in _modules_after("from k8s_metrics import open_metrics")
    assert set(k8s_metrics.__all__) <= set(dir(k8s_metrics))
    for name in k8s_metrics.__all__:
        assert getattr(k8s_metrics, name) is not None


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="module 'k8s_metrics' has no attribute 'nope'"):
        k8s_metrics.nope  # noqa: B018


def test_the_public_models_are_every_generated_model() -> None:
    from k8s_metrics import models
    from k8s_metrics._generated import models as generated
    from k8s_metrics._generated import types

    assert set(models.__all__) == {*generated.__all__, "UNSET", "Unset"}
    for name in generated.__all__:
        assert getattr(models, name) is getattr(generated, name)
    assert (models.UNSET, models.Unset) == (types.UNSET, types.Unset)


def test_the_public_api_is_every_generated_operation() -> None:
    import pkgutil

    from k8s_metrics import api
    from k8s_metrics._generated import api as generated

    for group in ("metrics", "discovery"):
        generated_group = getattr(generated, group)
        operations = sorted(m.name for m in pkgutil.iter_modules(generated_group.__path__))
        public = getattr(api, group)
        assert sorted(public.__all__) == operations
        for name in operations:
            assert getattr(public, name) is getattr(generated_group, name)
