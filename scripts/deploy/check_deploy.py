#!/usr/bin/env python3
"""Offline checks of the container and Kubernetes files (run by scripts/validate-deploy.sh).

Subcommands:
  ingress FILE                the Ingress example routes only the API and the webhook path
  overlay FILE --namespace N --image I --replicas R
                              the rules every rendered overlay must keep (probes, security
                              context, secrets by reference, selectors that match...)
  compose COMPOSE ENV_EXAMPLE [--schema-wheel WHL]
                              docker-compose.yml against the Compose schema and our rules
  docker ROOT                 Dockerfile rules, the .dockerignore'd build context, and the
                              cargo skeleton the Dockerfile builds first

Each prints one line per passed check group and exits 1 on the first failed group, with
every problem of that group listed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import zipfile
from typing import Any, Callable

import yaml

SECRET_ENV = ("DATABASE_URL", "STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRET", "JWT_SECRET")
PINNED_STRIPE_VERSION = "2026-07-29.dahlia"
WEBHOOK_PATH = "/api/v1/billing/stripe/webhook"


class Problems:
    """Collects the failures of one group of checks."""

    def __init__(self, group: str) -> None:
        self.group = group
        self.items: list[str] = []

    def check(self, condition: bool, message: str) -> bool:
        if not condition:
            self.items.append(message)
        return condition

    def finish(self) -> None:
        if self.items:
            print(f"FAIL {self.group}:", file=sys.stderr)
            for item in self.items:
                print(f"  - {item}", file=sys.stderr)
            sys.exit(1)
        print(f"ok   {self.group}")


def load_docs(path: str) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc is not None]


def index(docs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


# --- overlay ---------------------------------------------------------------------------


def _selector_matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def _check_container_security(p: Problems, where: str, pod: dict[str, Any], container: dict[str, Any]) -> None:
    psc = pod.get("securityContext", {})
    csc = container.get("securityContext", {})
    p.check(psc.get("runAsNonRoot") is True, f"{where}: pod runAsNonRoot must be true")
    p.check(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{where}: pod seccompProfile RuntimeDefault")
    p.check(pod.get("automountServiceAccountToken") is False, f"{where}: automountServiceAccountToken must be false")
    p.check(csc.get("runAsNonRoot") is True, f"{where}: container runAsNonRoot")
    p.check(csc.get("runAsUser") == 10001, f"{where}: container runAsUser 10001 (the image's user)")
    p.check(csc.get("readOnlyRootFilesystem") is True, f"{where}: readOnlyRootFilesystem")
    p.check(csc.get("allowPrivilegeEscalation") is False, f"{where}: allowPrivilegeEscalation false")
    p.check(csc.get("capabilities", {}).get("drop") == ["ALL"], f"{where}: capabilities drop ALL")
    p.check(csc.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{where}: container seccompProfile")
    res = container.get("resources", {})
    for kind in ("requests", "limits"):
        for resource in ("cpu", "memory"):
            p.check(resource in res.get(kind, {}), f"{where}: resources.{kind}.{resource} missing")


def _secret_ref(env: dict[str, dict[str, Any]], name: str) -> dict[str, Any] | None:
    return env.get(name, {}).get("valueFrom", {}).get("secretKeyRef")


def _mebibytes(quantity: str) -> float:
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "M": 1e6 / 2**20, "G": 1e9 / 2**20}
    for suffix, factor in units.items():
        if str(quantity).endswith(suffix):
            return float(str(quantity)[: -len(suffix)]) * factor
    return float(quantity) / 2**20


def cmd_overlay(args: argparse.Namespace) -> None:
    docs = load_docs(args.file)
    objs = index(docs)
    name = os.path.basename(args.file)

    p = Problems(f"{name}: objects, namespace, image")
    expected = {"Namespace", "ServiceAccount", "ConfigMap", "Service", "Deployment", "Job", "PodDisruptionBudget", "HorizontalPodAutoscaler", "NetworkPolicy"}
    kinds = {d["kind"] for d in docs}
    p.check(expected <= kinds, f"missing kinds {sorted(expected - kinds)}")
    p.check("Secret" not in kinds, "a Secret is rendered: secrets are created from the vault, never from git")
    for d in docs:
        if d["kind"] != "Namespace":
            p.check(d["metadata"].get("namespace") == args.namespace, f"{d['kind']}/{d['metadata']['name']} not in namespace {args.namespace}")
    p.check(objs.get(("Namespace", args.namespace), {}).get("metadata", {}).get("labels", {}).get("pod-security.kubernetes.io/enforce") == "restricted", "the Namespace must enforce the restricted Pod Security profile")
    deploy = objs.get(("Deployment", "billing-server"))
    jobs = [d for d in docs if d["kind"] == "Job" and d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "migration"]
    job = jobs[0] if len(jobs) == 1 else None
    if not p.check(deploy is not None and job is not None, "Deployment billing-server and one migration Job are required"):
        p.finish()
    assert deploy is not None and job is not None
    pod = deploy["spec"]["template"]["spec"]
    container = next(c for c in pod["containers"] if c["name"] == "billing-server")
    job_pod = job["spec"]["template"]["spec"]
    job_container = job_pod["containers"][0]
    p.check(container["image"] == args.image, f"Deployment image {container['image']} != {args.image}")
    p.check(job_container["image"] == args.image, f"Job image {job_container['image']} != {args.image} (must migrate with the release it precedes)")
    p.check(not container["image"].endswith(":latest") and ":" in container["image"].rsplit("/", 1)[-1] or "@sha256:" in container["image"], "the image needs an explicit tag or digest, not latest")
    p.finish()

    p = Problems(f"{name}: Deployment rollout, probes, shutdown")
    spec = deploy["spec"]
    hpa = objs[("HorizontalPodAutoscaler", "billing-server")]["spec"]
    p.check(spec.get("replicas") == args.replicas, f"replicas {spec.get('replicas')} != {args.replicas}")
    p.check(spec.get("replicas", 0) >= 2, "at least 2 replicas")
    p.check(hpa["minReplicas"] == spec.get("replicas"), "HPA minReplicas must equal the Deployment's replicas")
    p.check(hpa["minReplicas"] >= 2 and hpa["maxReplicas"] >= hpa["minReplicas"], "HPA 2 <= min <= max")
    p.check(hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "billing-server"}, "HPA targets the Deployment")
    cpu = [m for m in hpa.get("metrics", []) if m.get("resource", {}).get("name") == "cpu"]
    p.check(bool(cpu) and cpu[0]["resource"]["target"].get("averageUtilization") == 70, "HPA on CPU 70%")
    strategy = spec.get("strategy", {})
    p.check(strategy.get("type") == "RollingUpdate" and strategy.get("rollingUpdate") == {"maxUnavailable": 0, "maxSurge": 1}, "RollingUpdate maxUnavailable 0, maxSurge 1")
    ports = {port["name"]: port["containerPort"] for port in container.get("ports", [])}
    p.check(ports.get("http") == 8087, "container port http = 8087")
    for probe, path in (("startupProbe", "/health/live"), ("livenessProbe", "/health/live"), ("readinessProbe", "/health/ready")):
        get = container.get(probe, {}).get("httpGet", {})
        p.check(get.get("path") == path and get.get("port") in ("http", 8087), f"{probe} must GET {path} on the http port")
    config = objs[("ConfigMap", "billing-server-config")]["data"]
    drain = int(config.get("SHUTDOWN_TIMEOUT_SECS", "20"))
    pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    sleep = int(pre_stop[-1]) if len(pre_stop) == 2 and pre_stop[0].endswith("sleep") else 0
    p.check(sleep >= 3, "a preStop sleep lets endpoint removal propagate before the drain")
    p.check(pod.get("terminationGracePeriodSeconds", 30) > sleep + drain, f"terminationGracePeriodSeconds must exceed preStop {sleep}s + drain {drain}s")
    p.check(bool(pod.get("topologySpreadConstraints") or pod.get("affinity", {}).get("podAntiAffinity")), "spread the replicas (topologySpreadConstraints or podAntiAffinity)")
    limit = container.get("resources", {}).get("limits", {}).get("memory", "0")
    p.check(_mebibytes(limit) <= 256, f"memory limit {limit} is far above the service's 64 MiB target")
    p.finish()

    p = Problems(f"{name}: security contexts")
    _check_container_security(p, "Deployment", pod, container)
    _check_container_security(p, "Job", job_pod, job_container)
    sa = pod.get("serviceAccountName")
    p.check(sa is not None and ("ServiceAccount", sa) in objs and objs[("ServiceAccount", sa)].get("automountServiceAccountToken") is False, "a dedicated ServiceAccount without a token")
    p.finish()

    p = Problems(f"{name}: configuration and secrets")
    env = _env(container)
    p.check(env.get("MIGRATE_ON_START", {}).get("value") == "false", "the Deployment sets MIGRATE_ON_START=false (the Job migrates)")
    for var in SECRET_ENV:
        ref = _secret_ref(env, var)
        p.check(ref is not None and ref.get("name") == "billing-server-secrets" and ref.get("key") == var, f"{var} must come from secretKeyRef billing-server-secrets/{var}")
    for var in ("JWT_SECRET", "JWT_PUBLIC_KEY"):
        p.check((_secret_ref(env, var) or {}).get("optional") is True, f"{var} secretKeyRef must be optional (one of the two is set)")
    for var, entry in env.items():
        if any(word in var for word in ("SECRET", "KEY", "PASSWORD", "TOKEN", "DATABASE_URL")):
            p.check("value" not in entry, f"{var} has a literal value in the Deployment")
    refs = [e.get("configMapRef", {}).get("name") for e in container.get("envFrom", [])]
    p.check(refs == ["billing-server-config"], "envFrom the ConfigMap billing-server-config")
    for key, value in config.items():
        p.check(isinstance(value, str), f"ConfigMap {key} must be a string")
        p.check(not any(word in key for word in ("SECRET", "API_KEY", "PASSWORD", "TOKEN", "DATABASE_URL")), f"ConfigMap holds {key}: secrets belong in the Secret")
    p.check(config.get("STRIPE_API_VERSION") == PINNED_STRIPE_VERSION, f"STRIPE_API_VERSION pinned to {PINNED_STRIPE_VERSION}")
    p.check("MIGRATE_ON_START" not in config or config["MIGRATE_ON_START"] == "false", "ConfigMap must not turn MIGRATE_ON_START on")
    for key in ("CHECKOUT_SUCCESS_URL", "CHECKOUT_CANCEL_URL", "PORTAL_RETURN_URL"):
        p.check(config.get(key, "").startswith("https://"), f"{key} must be an https URL")
    p.finish()

    p = Problems(f"{name}: migration Job")
    job_spec = job["spec"]
    # One Job per release: named after the generated ConfigMap that holds its image.
    marker = objs.get(("ConfigMap", job["metadata"]["name"]), {})
    p.check(re.fullmatch(r"billing-server-migrate-[a-z0-9]{10}", job["metadata"]["name"]) is not None, f"the Job's name {job['metadata']['name']} must carry the release hash (deploy/base/release-name.yaml)")
    p.check(marker.get("data", {}).get("IMAGE") == job_container["image"], "the ConfigMap of the Job's name must hold the Job's image (the overlay's replacement)")
    p.check(job_container.get("args") == ["migrate"], "the Job runs `billing-server migrate`")
    job_env = _env(job_container)
    ref = _secret_ref(job_env, "DATABASE_URL")
    p.check(ref is not None and ref.get("name") == "billing-server-secrets", "the Job reads DATABASE_URL from the Secret")
    p.check(set(job_env) <= {"DATABASE_URL", "LOG_FORMAT", "RUST_LOG", "DATABASE_MAX_CONNECTIONS"}, f"the Job needs only DATABASE_URL (got {sorted(job_env)})")
    p.check(job_pod.get("restartPolicy") in ("Never", "OnFailure"), "Job restartPolicy")
    p.check(isinstance(job_spec.get("backoffLimit"), int), "Job backoffLimit")
    p.check(isinstance(job_spec.get("ttlSecondsAfterFinished"), int), "Job ttlSecondsAfterFinished")
    job_labels = job["spec"]["template"]["metadata"]["labels"]
    p.check(not _selector_matches(spec["selector"]["matchLabels"], job_labels), "the Deployment's selector must not match the Job's pods")
    p.finish()

    p = Problems(f"{name}: ServiceMonitor scrapes the API pods, the dashboard ConfigMap")
    monitor = objs.get(("ServiceMonitor", "billing-server"))
    service = objs[("Service", "billing-server")]
    if p.check(monitor is not None, "the ServiceMonitor billing-server (deploy/components/monitoring)"):
        assert monitor is not None
        p.check(_selector_matches(monitor["spec"]["selector"]["matchLabels"], service["metadata"].get("labels", {})), "the ServiceMonitor selects the Service")
        ports = {port["name"] for port in service["spec"]["ports"]}
        p.check(all(e.get("port") in ports and e.get("path") == "/metrics" for e in monitor["spec"]["endpoints"]), "the ServiceMonitor scrapes /metrics on a named port of the Service")
    p.check(("PrometheusRule", "billing-server") in objs, "the PrometheusRule billing-server")
    dashboard = objs.get(("ConfigMap", "billing-server-grafana-dashboard"), {})
    p.check(dashboard.get("metadata", {}).get("labels", {}).get("grafana_dashboard") == "1" and "billing-server.json" in dashboard.get("data", {}), "the Grafana dashboard ConfigMap with the sidecar's label")
    p.finish()

    p = Problems(f"{name}: Service, PDB, NetworkPolicy select the right pods")
    pod_labels = deploy["spec"]["template"]["metadata"]["labels"]
    p.check(_selector_matches(spec["selector"]["matchLabels"], pod_labels), "Deployment selector matches its template")
    svc = objs[("Service", "billing-server")]["spec"]
    p.check(_selector_matches(svc["selector"], pod_labels) and not _selector_matches(svc["selector"], job_labels), "Service selects the API pods only")
    p.check(all(port.get("targetPort") in ("http", 8087) for port in svc["ports"]), "Service targets the http port")
    pdb = objs[("PodDisruptionBudget", "billing-server")]["spec"]
    p.check(pdb.get("minAvailable") == 1, "PDB minAvailable 1")
    p.check(_selector_matches(pdb["selector"]["matchLabels"], pod_labels) and not _selector_matches(pdb["selector"]["matchLabels"], job_labels), "PDB selects the API pods only")
    netpol = objs[("NetworkPolicy", "billing-server")]["spec"]
    p.check(_selector_matches(netpol["podSelector"]["matchLabels"], pod_labels) and _selector_matches(netpol["podSelector"]["matchLabels"], job_labels), "NetworkPolicy covers the API and the Job pods")
    p.check(sorted(netpol.get("policyTypes", [])) == ["Egress", "Ingress"], "NetworkPolicy restricts ingress and egress")
    in_ports = {(pt.get("protocol", "TCP"), pt["port"]) for rule in netpol.get("ingress", []) for pt in rule.get("ports", [])}
    p.check(in_ports == {("TCP", 8087)}, f"ingress only on 8087 (got {sorted(in_ports)})")
    out_ports = {(pt.get("protocol", "TCP"), pt["port"]) for rule in netpol.get("egress", []) for pt in rule.get("ports", [])}
    want = {("UDP", 53), ("TCP", 53), ("TCP", 5432), ("TCP", 443)}
    p.check(out_ports == want, f"egress must be exactly DNS, PostgreSQL, HTTPS (got {sorted(out_ports)})")
    p.check(all(rule.get("ports") for rule in netpol.get("egress", [])), "every egress rule names its ports")
    p.finish()


# --- ingress ---------------------------------------------------------------------------


def cmd_ingress(args: argparse.Namespace) -> None:
    p = Problems(f"{os.path.basename(args.file)}: only the API and the webhook are exposed")
    ingresses = [d for d in load_docs(args.file) if d["kind"] == "Ingress"]
    p.check(len(ingresses) == 1, "one Ingress")
    paths = [(path["path"], path["pathType"], path["backend"]) for ing in ingresses for rule in ing["spec"]["rules"] for path in rule["http"]["paths"]]
    p.check({(path, kind) for path, kind, _ in paths} == {(WEBHOOK_PATH, "Exact"), ("/api/v1/billing", "Prefix")}, f"paths must be exactly the webhook (Exact) and /api/v1/billing (Prefix), got {[(a, b) for a, b, _ in paths]}")
    for path, _, backend in paths:
        p.check(backend.get("service", {}).get("name") == "billing-server" and backend["service"].get("port", {}).get("name") == "http", f"{path} must go to the Service billing-server, port http")
        p.check(not path.startswith(("/metrics", "/health", "/api-docs")) and path != "/", f"{path} exposes an internal endpoint")
    p.check(all(ing["spec"].get("tls") for ing in ingresses), "TLS")
    p.finish()


# --- compose ---------------------------------------------------------------------------

INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def read_env_file(path: str) -> dict[str, str]:
    values = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, _, value = line.partition("=")
                values[key.strip()] = value.strip().strip('"')
    return values


def interpolate(node: Any, env: dict[str, str], missing: list[str]) -> Any:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR:?error} substitution (subset)."""
    if isinstance(node, dict):
        return {k: interpolate(v, env, missing) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate(v, env, missing) for v in node]
    if isinstance(node, str):
        def sub(match: re.Match[str]) -> str:
            name, op, arg = match.group(1), match.group(2), match.group(3)
            value = env.get(name)
            if value:
                return value
            if op in (":-", "-"):
                return arg or ""
            missing.append(name)
            return ""
        return INTERPOLATION.sub(sub, node)
    return node


def _compose_schema(wheel: str | None) -> dict[str, Any] | None:
    if not wheel:
        return None
    with zipfile.ZipFile(wheel) as archive:
        schema = json.loads(archive.read("compose/config/compose_spec.json"))
    # The 2021 schema shipped with docker-compose 1.29.2 predates the top-level `name`
    # (a string in today's Compose Specification); add it instead of dropping the field.
    schema["properties"].setdefault("name", {"type": "string"})
    return schema


def cmd_compose(args: argparse.Namespace) -> None:
    with open(args.compose, encoding="utf-8") as handle:
        raw = yaml.safe_load(handle)
    example = read_env_file(args.env_example)

    p = Problems(".env.example: placeholders only, every setting named")
    for key in ("PORT", "DATABASE_URL", "STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRET", "STRIPE_API_VERSION", "JWT_SECRET", "CHECKOUT_SUCCESS_URL", "CHECKOUT_CANCEL_URL", "PORTAL_RETURN_URL", "POSTGRES_PASSWORD", "LOG_FORMAT", "RUST_LOG", "MIGRATE_ON_START"):
        p.check(key in example, f".env.example lacks {key}")
    for key in ("STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRET", "JWT_SECRET", "POSTGRES_PASSWORD"):
        p.check("replace" in example.get(key, ""), f"{key} in .env.example must be an obvious placeholder (contain 'replace')")
    p.check(len(example.get("JWT_SECRET", "")) >= 32, "the JWT_SECRET placeholder must be >= 32 bytes so a copied .env starts")
    p.check(example.get("STRIPE_API_VERSION") == PINNED_STRIPE_VERSION, "STRIPE_API_VERSION pinned")
    ignored = subprocess.run(["git", "-C", os.path.dirname(os.path.abspath(args.compose)), "check-ignore", "-q", ".env"], check=False).returncode == 0
    p.check(ignored, ".env must be git-ignored")
    p.finish()

    p = Problems("docker-compose.yml: no literal secret, Compose schema")
    for service, body in raw.get("services", {}).items():
        environment = body.get("environment", {})
        if isinstance(environment, list):
            environment = dict(item.split("=", 1) for item in environment)
        for key, value in environment.items():
            if any(word in key for word in ("PASSWORD", "SECRET", "API_KEY", "TOKEN")):
                p.check(isinstance(value, str) and value.startswith("${"), f"{service}.environment.{key} must come from .env, not a literal")
            if key == "DATABASE_URL":
                p.check("${POSTGRES_PASSWORD" in str(value), f"{service}.environment.DATABASE_URL must take the password from .env")
    missing: list[str] = []
    rendered = interpolate(raw, example, missing)
    p.check(not missing, f"variables without value or default in .env.example: {sorted(set(missing))}")
    schema = _compose_schema(args.schema_wheel)
    if schema is not None:
        import jsonschema  # installed with kubernetes-validate

        validator = jsonschema.Draft201909Validator(schema)
        for error in validator.iter_errors(rendered):
            p.check(False, f"schema: {'/'.join(map(str, error.absolute_path))}: {error.message}")
    p.finish()

    p = Problems("docker-compose.yml: services postgres, billing, stripe-cli")
    services = rendered.get("services", {})
    pg = services.get("postgres", {})
    p.check(str(pg.get("image", "")).startswith("postgres:15"), "postgres uses postgres:15")
    p.check("pg_isready" in " ".join(map(str, pg.get("healthcheck", {}).get("test", []))), "postgres healthcheck runs pg_isready")
    volumes = [str(v).split(":")[0] for v in pg.get("volumes", [])]
    p.check(any(v in rendered.get("volumes", {}) for v in volumes), "postgres data on a named volume")
    billing = services.get("billing", {})
    build = billing.get("build", {})
    p.check((build if isinstance(build, str) else build.get("context")) == ".", "billing is built from the Dockerfile at the root")
    env_files = billing.get("env_file", [])
    p.check(env_files in (".env", [".env"]), "billing reads env_file .env")
    p.check(billing.get("depends_on", {}).get("postgres", {}).get("condition") == "service_healthy", "billing waits for postgres to be healthy")
    p.check(any(str(port).endswith("8087:8087") for port in billing.get("ports", [])), "billing publishes 8087")
    cli = services.get("stripe-cli", {})
    p.check(str(cli.get("image", "")).startswith("stripe/stripe-cli"), "stripe-cli uses stripe/stripe-cli")
    command = cli.get("command", [])
    command = shlex.split(command) if isinstance(command, str) else command
    p.check(command[:1] == ["listen"], "stripe-cli runs `listen`")
    forward = command[command.index("--forward-to") + 1] if "--forward-to" in command else ""
    p.check(forward == f"http://billing:8087{WEBHOOK_PATH}", f"stripe-cli forwards to http://billing:8087{WEBHOOK_PATH} (got {forward!r})")
    p.check("STRIPE_API_KEY" in raw["services"].get("stripe-cli", {}).get("environment", {}), "stripe-cli gets STRIPE_API_KEY")
    p.finish()


# --- docker ----------------------------------------------------------------------------


def dockerfile_instructions(path: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    with open(path, encoding="utf-8") as handle:
        for raw in handle:
            line = raw.rstrip("\n")
            if not pending and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if pending and line.lstrip().startswith("#"):
                continue
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            pending += line
            word, _, rest = pending.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
            pending = ""
    return out


def dockerignore_matcher(path: str) -> Callable[[str], bool]:
    """True when a context-relative path is EXCLUDED (Docker's rules: last match wins; a
    pattern that matches a directory matches everything below it)."""
    rules: list[tuple[bool, re.Pattern[str]]] = []
    with open(path, encoding="utf-8") as handle:
        for raw in handle:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            pattern = line[1:].strip() if negate else line
            pattern = pattern.strip("/")
            regex = ""
            i = 0
            while i < len(pattern):
                if pattern.startswith("**/", i):
                    regex += "(?:.*/)?"
                    i += 3
                elif pattern.startswith("**", i):
                    regex += ".*"
                    i += 2
                elif pattern[i] == "*":
                    regex += "[^/]*"
                    i += 1
                elif pattern[i] == "?":
                    regex += "[^/]"
                    i += 1
                else:
                    regex += re.escape(pattern[i])
                    i += 1
            rules.append((negate, re.compile(regex + "(?:/.*)?$")))

    def excluded(rel: str) -> bool:
        result = False
        for negate, regex in rules:
            if regex.match(rel):
                result = not negate
        return result

    return excluded


def _cargo_targets(workspace: str) -> dict[str, set[str]]:
    out = subprocess.run(
        ["cargo", "metadata", "--no-deps", "--offline", "--format-version", "1"],
        cwd=workspace,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    meta = json.loads(out)
    return {
        pkg["name"]: {f"{t['name']}:{'/'.join(t['kind'])}" for t in pkg["targets"] if not set(t["kind"]) & {"test", "bench", "example"}}
        for pkg in meta["packages"]
    }


def cmd_docker(args: argparse.Namespace) -> None:
    root = args.root
    dockerfile = os.path.join(root, "Dockerfile")
    steps = dockerfile_instructions(dockerfile)
    with open(dockerfile, encoding="utf-8") as handle:
        first_line = handle.readline()

    p = Problems("Dockerfile: stages, runtime image, user, entrypoint, no secrets")
    p.check(first_line.startswith("# syntax=docker/dockerfile:1"), "BuildKit syntax line first (cache mounts)")
    froms = [i for i, (word, _) in enumerate(steps) if word == "FROM"]
    p.check(len(froms) >= 2, "multi-stage build")
    final = steps[froms[-1]:]
    p.check(re.match(r"debian:\$\{DEBIAN_SUITE\}-slim|debian:bookworm-slim", final[0][1]) is not None, "runtime stage is debian:bookworm-slim")
    args_defaults = {a.split("=", 1)[0]: a.split("=", 1)[1] for w, a in steps if w == "ARG" and "=" in a}
    p.check(args_defaults.get("DEBIAN_SUITE") == "bookworm", "DEBIAN_SUITE defaults to bookworm for builder and runtime")
    p.check(args_defaults.get("RUST_VERSION", "").startswith("1."), "RUST_VERSION pinned")
    final_runs = " ".join(a for w, a in final if w == "RUN")
    p.check("libpq5" in final_runs and "ca-certificates" in final_runs, "runtime installs libpq5 and ca-certificates")
    p.check("--no-install-recommends" in final_runs and "rm -rf /var/lib/apt/lists/*" in final_runs, "runtime apt layer is slim")
    p.check("--uid 10001" in final_runs, "runtime creates the uid 10001 user")
    users = [a for w, a in final if w == "USER"]
    p.check(users == ["10001:10001"], f"runtime runs as USER 10001:10001 (got {users})")
    p.check(("EXPOSE", "8087") in final, "EXPOSE 8087")
    p.check(("ENTRYPOINT", '["/usr/local/bin/billing-server"]') in final, 'ENTRYPOINT ["/usr/local/bin/billing-server"]')
    p.check(("CMD", '["serve"]') in final, 'CMD ["serve"]')
    all_runs = " ".join(a for w, a in steps if w == "RUN")
    p.check("libpq-dev" in all_runs, "builder installs libpq-dev")
    p.check(all_runs.count("cargo build --release --locked -p billing-server") == 2, "dependency build then source build, both --locked")
    for word, arguments in steps:
        if word in ("ARG", "ENV"):
            names = re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", arguments) or [arguments.split()[0]]
            for var in names:
                p.check(not re.search(r"SECRET|KEY|TOKEN|PASSWORD|JWT|DATABASE_URL", var), f"{word} {var}: no secret may be a build argument or image env")
    p.finish()

    p = Problems(".dockerignore: build context holds the sources and no secrets")
    excluded = dockerignore_matcher(os.path.join(root, ".dockerignore"))
    files = subprocess.run(["git", "-C", root, "ls-files", "--cached", "--others", "--exclude-standard"], check=True, capture_output=True, text=True).stdout.split()
    included = [f for f in files if not excluded(f)]
    for word, arguments in steps:
        if word == "COPY" and "--from=" not in arguments:
            sources = [a for a in arguments.split() if not a.startswith("--")][:-1]
            for source in sources:
                source = source.rstrip("/")
                p.check(any(f == source or f.startswith(source + "/") for f in included), f"COPY {source}: nothing of it is in the build context")
    for needed in ("Cargo.toml", "Cargo.lock", "scripts/deploy/cargo-skeleton.sh"):
        p.check(not excluded(needed), f"{needed} must be in the context")
    for source in [f for f in files if f.startswith(("crates/", "migrations/")) and "/target/" not in f]:
        p.check(not excluded(source), f"{source} is excluded but the build may need it")
    for secret in (".env", ".env.local", "crates/billing-server/.env", ".git/config", "target/release/billing-server", "deploy/base/secret.example.yaml", "docs/operations.md"):
        p.check(excluded(secret), f"{secret} must not be in the build context")
    p.finish()

    p = Problems("cargo skeleton: same packages and build targets as the workspace")
    with tempfile.TemporaryDirectory() as skeleton:
        subprocess.run(["bash", os.path.join(root, "scripts/deploy/cargo-skeleton.sh"), root, skeleton], check=True)
        try:
            real = _cargo_targets(root)
            stub = _cargo_targets(skeleton)
            p.check(real == stub, f"targets differ: workspace {real} / skeleton {stub}")
        except (OSError, subprocess.CalledProcessError) as error:
            p.check(False, f"cargo metadata failed: {error}")
        with open(os.path.join(skeleton, "Cargo.lock"), "rb") as a, open(os.path.join(root, "Cargo.lock"), "rb") as b:
            p.check(a.read() == b.read(), "skeleton keeps Cargo.lock byte for byte")
    p.finish()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    sub = parser.add_subparsers(dest="command", required=True)
    ingress = sub.add_parser("ingress")
    ingress.add_argument("file")
    overlay = sub.add_parser("overlay")
    overlay.add_argument("file")
    overlay.add_argument("--namespace", required=True)
    overlay.add_argument("--image", required=True)
    overlay.add_argument("--replicas", type=int, required=True)
    compose = sub.add_parser("compose")
    compose.add_argument("compose")
    compose.add_argument("env_example")
    compose.add_argument("--schema-wheel")
    docker = sub.add_parser("docker")
    docker.add_argument("root")
    args = parser.parse_args()
    {"ingress": cmd_ingress, "overlay": cmd_overlay, "compose": cmd_compose, "docker": cmd_docker}[args.command](args)


if __name__ == "__main__":
    main()
