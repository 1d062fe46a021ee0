#!/usr/bin/env python3
"""A small kustomize renderer, for machines with neither `kustomize` nor `kubectl`.

It implements exactly the subset deploy/ uses, and refuses anything else rather than
rendering it wrong:

* ``resources``: YAML files (one or more documents) and directories holding a
  kustomization (built recursively);
* ``namespace``: set on every namespaced resource;
* ``labels``: ``pairs`` added to ``metadata.labels`` (``includeSelectors: false`` only;
  ``includeTemplates: true`` also labels pod templates);
* ``images``: ``name`` -> ``newName`` / ``newTag`` / ``digest`` on every container and
  init container of a pod, pod template or CronJob;
* ``patches``: strategic-merge patches given by ``path`` (or inline ``patch``), applied
  to the resource of the patch's kind and name (or the ``target`` kind/name). Lists merge
  by their Kubernetes merge key (containers, env, volumes by ``name``; ports by port;
  volumeMounts by ``mountPath``); other lists are replaced; ``null`` deletes a key.

Transformers run in kustomize's order: patches, namespace, labels, images.

Usage: kustomize_build.py DIR [-o FILE]   (prints the rendered multi-document YAML)
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
from typing import Any

import yaml

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SUPPORTED_KEYS = {"apiVersion", "kind", "resources", "namespace", "labels", "images", "patches"}
CLUSTER_SCOPED_KINDS = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PersistentVolume",
    "PriorityClass",
    "StorageClass",
    "IngressClass",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
}
# Strategic-merge keys of the lists we may patch (from the Kubernetes API's
# x-kubernetes-patch-merge-key); anything else is replaced whole, as SMP does for lists
# without a merge key.
MERGE_KEYS = {
    "containers": ("name",),
    "initContainers": ("name",),
    "ephemeralContainers": ("name",),
    "volumes": ("name",),
    "env": ("name",),
    "imagePullSecrets": ("name",),
    "volumeMounts": ("mountPath",),
    "ports": ("containerPort", "port"),
}


class KustomizeError(Exception):
    """A kustomization this renderer cannot (or must not) render."""


def _load_yaml_docs(path: str) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        docs = [doc for doc in yaml.safe_load_all(handle) if doc is not None]
    for doc in docs:
        if not isinstance(doc, dict) or "kind" not in doc or "metadata" not in doc:
            raise KustomizeError(f"{path}: every document must be a Kubernetes object")
    return docs


def _kustomization_file(directory: str) -> str:
    for name in KUSTOMIZATION_FILES:
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate):
            return candidate
    raise KustomizeError(f"{directory}: no kustomization file")


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    return obj["kind"], obj["metadata"]["name"]


def build(directory: str) -> list[dict[str, Any]]:
    """Renders the kustomization in ``directory``."""
    path = _kustomization_file(directory)
    with open(path, encoding="utf-8") as handle:
        kustomization = yaml.safe_load(handle) or {}
    unsupported = set(kustomization) - SUPPORTED_KEYS
    if unsupported:
        raise KustomizeError(f"{path}: unsupported field(s) {sorted(unsupported)}")

    resources: list[dict[str, Any]] = []
    for entry in kustomization.get("resources", []):
        target = os.path.normpath(os.path.join(directory, entry))
        if os.path.isdir(target):
            resources.extend(build(target))
        elif os.path.isfile(target):
            resources.extend(_load_yaml_docs(target))
        else:
            raise KustomizeError(f"{path}: resource {entry} does not exist (remote ones are unsupported)")
    seen: set[tuple[str, str]] = set()
    for obj in resources:
        if _key(obj) in seen:
            raise KustomizeError(f"{path}: duplicate resource {_key(obj)}")
        seen.add(_key(obj))

    for patch_entry in kustomization.get("patches", []):
        _apply_patch(directory, path, patch_entry, resources)
    if "namespace" in kustomization:
        for obj in resources:
            if obj["kind"] not in CLUSTER_SCOPED_KINDS:
                obj["metadata"]["namespace"] = kustomization["namespace"]
    for label_entry in kustomization.get("labels", []):
        _apply_labels(path, label_entry, resources)
    for image in kustomization.get("images", []):
        _apply_image(path, image, resources)
    return resources


def _apply_patch(directory: str, path: str, entry: dict[str, Any], resources: list[dict[str, Any]]) -> None:
    unsupported = set(entry) - {"path", "patch", "target"}
    if unsupported:
        raise KustomizeError(f"{path}: patch field(s) {sorted(unsupported)} unsupported")
    if "path" in entry:
        patch_docs = _load_yaml_docs(os.path.join(directory, entry["path"]))
    elif "patch" in entry:
        patch_docs = [doc for doc in yaml.safe_load_all(entry["patch"]) if doc is not None]
    else:
        raise KustomizeError(f"{path}: a patch needs `path` or `patch`")
    if len(patch_docs) != 1 or not isinstance(patch_docs[0], dict) or "kind" not in patch_docs[0]:
        raise KustomizeError(f"{path}: only single-document strategic-merge patches are supported")
    patch = patch_docs[0]
    target = entry.get("target") or {}
    if set(target) - {"kind", "name"}:
        raise KustomizeError(f"{path}: patch targets may name only kind and name")
    kind = target.get("kind", patch["kind"])
    name = target.get("name", patch.get("metadata", {}).get("name"))
    matches = [obj for obj in resources if obj["kind"] == kind and obj["metadata"]["name"] == name]
    if len(matches) != 1:
        raise KustomizeError(f"{path}: patch for {kind}/{name} matches {len(matches)} resources")
    body = copy.deepcopy(patch)
    body.pop("apiVersion", None)
    body.pop("kind", None)
    body.get("metadata", {}).pop("name", None)
    merged = strategic_merge(matches[0], body)
    matches[0].clear()
    matches[0].update(merged)


def strategic_merge(base: Any, patch: Any, field: str = "") -> Any:
    """Merges ``patch`` into ``base`` the way a strategic-merge patch does (subset)."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = copy.deepcopy(base)
        for key, value in patch.items():
            if key.startswith("$"):
                raise KustomizeError(f"patch directive {key} unsupported")
            if value is None:
                out.pop(key, None)
            elif key in out:
                out[key] = strategic_merge(out[key], value, key)
            else:
                out[key] = copy.deepcopy(value)
        return out
    if isinstance(base, list) and isinstance(patch, list) and field in MERGE_KEYS:
        return _merge_list(base, patch, field)
    return copy.deepcopy(patch)


def _merge_key(items: list[Any], field: str) -> str:
    for candidate in MERGE_KEYS[field]:
        if items and all(isinstance(item, dict) and candidate in item for item in items):
            return candidate
    raise KustomizeError(f"cannot merge list `{field}`: items lack a merge key {MERGE_KEYS[field]}")


def _merge_list(base: list[Any], patch: list[Any], field: str) -> list[Any]:
    key = _merge_key(base + patch, field)
    out = copy.deepcopy(base)
    for item in patch:
        index = next((i for i, existing in enumerate(out) if existing[key] == item[key]), None)
        if index is None:
            out.append(copy.deepcopy(item))
        else:
            out[index] = strategic_merge(out[index], item)
    return out


def _apply_labels(path: str, entry: dict[str, Any], resources: list[dict[str, Any]]) -> None:
    if set(entry) - {"pairs", "includeSelectors", "includeTemplates"}:
        raise KustomizeError(f"{path}: labels field(s) {sorted(set(entry))} unsupported")
    if entry.get("includeSelectors", False):
        raise KustomizeError(f"{path}: labels with includeSelectors: true are unsupported")
    pairs = {str(k): str(v) for k, v in (entry.get("pairs") or {}).items()}
    for obj in resources:
        obj["metadata"].setdefault("labels", {}).update(pairs)
        if entry.get("includeTemplates", False):
            for template in _pod_templates(obj):
                template.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)


def _pod_templates(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = obj.get("spec") or {}
    if obj["kind"] == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    template = spec.get("template")
    return [template] if isinstance(template, dict) else []


def _pod_specs(obj: dict[str, Any]) -> list[dict[str, Any]]:
    if obj["kind"] == "Pod":
        return [obj.get("spec") or {}]
    return [template.get("spec") or {} for template in _pod_templates(obj)]


def split_image(image: str) -> tuple[str, str | None, str | None]:
    """``registry/name:tag@digest`` -> (``registry/name``, tag, digest)."""
    digest = None
    if "@" in image:
        image, digest = image.split("@", 1)
    tag = None
    last_slash = image.rfind("/")
    colon = image.rfind(":")
    if colon > last_slash:
        image, tag = image[:colon], image[colon + 1 :]
    return image, tag, digest


def _apply_image(path: str, entry: dict[str, Any], resources: list[dict[str, Any]]) -> None:
    if set(entry) - {"name", "newName", "newTag", "digest"}:
        raise KustomizeError(f"{path}: images field(s) {sorted(set(entry))} unsupported")
    for obj in resources:
        for pod_spec in _pod_specs(obj):
            for container in pod_spec.get("containers", []) + pod_spec.get("initContainers", []):
                name, tag, digest = split_image(container.get("image", ""))
                if name != entry["name"]:
                    continue
                name = entry.get("newName", name)
                if "digest" in entry:
                    container["image"] = f"{name}@{entry['digest']}"
                    continue
                if "newTag" in entry:
                    tag, digest = str(entry["newTag"]), None
                image = name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
                container["image"] = image


def render(resources: list[dict[str, Any]]) -> str:
    """Multi-document YAML, one resource per document."""
    return yaml.safe_dump_all(resources, sort_keys=False, default_flow_style=False, width=1000)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("directory")
    parser.add_argument("-o", "--output", help="write here instead of stdout")
    args = parser.parse_args()
    try:
        text = render(build(args.directory))
    except (KustomizeError, OSError, yaml.YAMLError) as error:
        print(f"kustomize_build.py: {error}", file=sys.stderr)
        return 1
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
