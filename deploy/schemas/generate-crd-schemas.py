#!/usr/bin/env python3
"""Regenerate the vendored CRD JSON schemas in this directory.

Source: the PyPI packages `cloudcoil-models-keda` (KEDA 2.16 CRDs) and
`cloudcoil-models-prometheus-operator` (prometheus-operator 0.80 CRDs), whose
pydantic models are generated from the CRDs' OpenAPI schemas. Nothing is
fetched from the web:

    python3 -m venv /tmp/cc && /tmp/cc/bin/pip install \
        cloudcoil-models-keda==2.16.1.0 cloudcoil-models-prometheus-operator==0.80.1.0
    /tmp/cc/bin/python deploy/schemas/generate-crd-schemas.py

Made strict here: every object with declared properties refuses unknown
fields (a misspelt key fails, as `kubectl apply --validate=strict` would), and
apiVersion/kind are pinned.
"""

import json
import pathlib

from cloudcoil.models.keda import v1alpha1 as keda
from cloudcoil.models.prometheus_operator import v1 as prom

OUT = pathlib.Path(__file__).resolve().parent
KINDS = [
    ("keda.sh/v1alpha1", "ScaledObject", keda.ScaledObject),
    ("keda.sh/v1alpha1", "TriggerAuthentication", keda.TriggerAuthentication),
    ("monitoring.coreos.com/v1", "ServiceMonitor", prom.ServiceMonitor),
    ("monitoring.coreos.com/v1", "PodMonitor", prom.PodMonitor),
    ("monitoring.coreos.com/v1", "PrometheusRule", prom.PrometheusRule),
]


def strict(node):
    if isinstance(node, dict):
        pattern = node.get("pattern")
        if isinstance(pattern, str) and "(?i)" in pattern:
            # Go's inline flag is not ECMA-262: spell the case-insensitivity out
            # (only `^(?i)(abort|warn)?$`, Thanos' partial_response_strategy).
            node["pattern"] = pattern.replace("(?i)", "").replace(
                "abort", "[Aa][Bb][Oo][Rr][Tt]").replace("warn", "[Ww][Aa][Rr][Nn]")
        if isinstance(node.get("properties"), dict) and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            strict(value)
    elif isinstance(node, list):
        for value in node:
            strict(value)


for api_version, kind, model in KINDS:
    schema = model.model_json_schema(by_alias=True, mode="validation")
    strict(schema)
    schema["properties"]["apiVersion"] = {"const": api_version}
    schema["properties"]["kind"] = {"const": kind}
    schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind", "metadata", "spec"})
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = f"{kind} ({api_version}), generated from cloudcoil models"
    path = OUT / f"{kind.lower()}.json"
    path.write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
    print(path.name)
