#!/usr/bin/env python3
"""Generate the Stripe emulator's request-parameter table from Stripe's OpenAPI description.

Usage:
    scripts/stripe/gen_params.py SPEC.json [--out PATH] [--overrides PATH] [--check]

SPEC.json is Stripe's published OpenAPI description (in this project:
shared/stripe/spec/openapi.spec3.2023-09-12.api-2023-08-16.json). The script keeps only the
operations the emulator serves (OPERATIONS below), applies the hand-written corrections for
the 2026 API (gen_params.overrides.json, next to this script; each entry says why), and
writes a compact JSON table that the emulator's checker (src/validation/) embeds.

--check regenerates the table in memory and exits 1 when the committed file differs, so a
reviewer (or CI, where the spec is at hand) can see the table is what the script makes.

Python 3.11, standard library only.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import pathlib
import sys

# The operations the emulator serves, as "METHOD /path/template" (the spec's templates).
OPERATIONS = [
    "POST /v1/checkout/sessions",
    "GET /v1/checkout/sessions/{session}",
    "POST /v1/checkout/sessions/{session}",
    "POST /v1/checkout/sessions/{session}/expire",
    "POST /v1/billing_portal/sessions",
    "POST /v1/payment_intents",
    "GET /v1/payment_intents/{intent}",
    "POST /v1/payment_intents/{intent}/confirm",
    "POST /v1/customers",
    "GET /v1/customers/{customer}",
    "GET /v1/invoices",
    "GET /v1/invoices/{invoice}",
    "POST /v1/invoices/{invoice}/void",
    "POST /v1/invoices/{invoice}/mark_uncollectible",
    "POST /v1/invoices/{invoice}/pay",
    "POST /v1/invoices/create_preview",
    "GET /v1/subscriptions",
    "GET /v1/subscriptions/{subscription_exposed_id}",
    "POST /v1/subscriptions/{subscription_exposed_id}",
    "DELETE /v1/subscriptions/{subscription_exposed_id}",
    "POST /v1/subscriptions/{subscription}/resume",
    "GET /v1/events",
    "GET /v1/events/{id}",
    "POST /v1/refunds",
    "GET /v1/refunds/{refund}",
    "GET /v1/charges/{charge}",
    "GET /v1/disputes/{dispute}",
    "POST /v1/products",
    "POST /v1/prices",
    "POST /v1/test_helpers/test_clocks",
    "GET /v1/test_helpers/test_clocks/{test_clock}",
    "POST /v1/test_helpers/test_clocks/{test_clock}/advance",
]

SCRIPT_DIR = pathlib.Path(__file__).resolve().parent
REPO = SCRIPT_DIR.parent.parent
DEFAULT_OVERRIDES = SCRIPT_DIR / "gen_params.overrides.json"
# The table lives in the emulator crate's src/validation/.
CRATE_DIRS = ["crates/billing-stripe-emulator"]


class GenError(Exception):
    """A spec or overrides entry the script cannot apply."""


def default_out() -> pathlib.Path:
    for crate in CRATE_DIRS:
        if (REPO / crate).is_dir():
            return REPO / crate / "src" / "validation" / "params.json"
    raise GenError("no emulator crate found; pass --out")


# ---------------------------------------------------------------------------------------
# Reading operations out of the spec (OpenAPI level)
# ---------------------------------------------------------------------------------------


def operation_root(spec: dict, key: str) -> dict | None:
    """The operation's parameters as one OpenAPI object schema (query and form body)."""
    method, path = key.split(" ", 1)
    op = spec.get("paths", {}).get(path, {}).get(method.lower())
    if op is None:
        return None
    properties: dict = {}
    required: list = []
    for param in op.get("parameters", []):
        if param.get("in") != "query":
            continue  # path parameters are in the URL, not in the params
        properties[param["name"]] = param.get("schema", {})
        if param.get("required"):
            required.append(param["name"])
    body = (
        op.get("requestBody", {})
        .get("content", {})
        .get("application/x-www-form-urlencoded", {})
        .get("schema", {})
    )
    for name, schema in body.get("properties", {}).items():
        properties[name] = schema
    required.extend(body.get("required", []))
    return {"type": "object", "properties": properties, "required": sorted(set(required))}


def split_param(param: str) -> list[str]:
    """`a[b][c]` -> ["a", "b", "c"]."""
    head, _, rest = param.partition("[")
    parts = [head]
    if rest:
        if not rest.endswith("]"):
            raise GenError(f"malformed parameter path {param!r}")
        parts.extend(rest[:-1].split("]["))
    return parts


def object_of(schema: dict, where: str) -> dict:
    """The object schema to step into: itself, its array items, or its object anyOf choice."""
    if "properties" in schema or schema.get("type") == "object":
        schema.setdefault("properties", {})
        return schema
    for choice in schema.get("anyOf", []) + schema.get("oneOf", []):
        if "properties" in choice or choice.get("type") == "object":
            choice.setdefault("properties", {})
            return choice
    raise GenError(f"{where} is not an object")


def parent_and_name(root: dict, param: str, create: bool = False) -> tuple[dict, str]:
    """The object schema holding `param` (bracket path; arrays are stepped through)."""
    parts = split_param(param)
    node = root
    for i, part in enumerate(parts[:-1]):
        where = "[".join(parts[: i + 1])
        props = object_of(node, where)["properties"]
        child = props.get(part)
        if child is None:
            if not create:
                raise GenError(f"{param}: no parameter {where}")
            child = {"type": "object", "properties": {}}
            props[part] = child
        node = child.get("items", child) if child.get("type") == "array" else child
    return object_of(node, param), parts[-1]


def apply_override(ops: dict, spec: dict, entry: dict) -> None:
    kind = entry.get("kind")
    key = entry.get("operation")
    if not entry.get("reason"):
        raise GenError(f"override without a reason: {entry}")
    if kind == "operation":
        if "copy_from" in entry:
            source = operation_root(spec, entry["copy_from"])
            if source is None:
                raise GenError(f"copy_from {entry['copy_from']} is not in the spec")
            root = copy.deepcopy(source)
        else:
            root = {"type": "object", "properties": {}, "required": []}
        for old, new in entry.get("move", {}).items():
            schema = root["properties"].pop(old, None)
            if schema is None:
                raise GenError(f"{key}: move of unknown parameter {old}")
            was_required = old in root.get("required", [])
            root["required"] = [r for r in root.get("required", []) if r != old]
            parent, name = parent_and_name(root, new, create=True)
            parent["properties"][name] = schema
            if was_required:
                parent.setdefault("required", []).append(name)
        for name, schema in entry.get("params", {}).items():
            root["properties"][name] = schema
        for name in entry.get("remove", []):
            if root["properties"].pop(name, None) is None:
                raise GenError(f"{key}: removal of unknown parameter {name}")
        ops[key] = root
        return
    root = ops.get(key)
    if root is None:
        raise GenError(f"override for an operation not in the table: {key}")
    parent, name = parent_and_name(root, entry["param"])
    props = parent["properties"]
    if kind == "add":
        if name in props:
            raise GenError(f"{key}: {entry['param']} already exists (use replace)")
        props[name] = entry["schema"]
        if entry.get("required"):
            parent.setdefault("required", []).append(name)
    elif kind == "replace":
        if name not in props:
            raise GenError(f"{key}: {entry['param']} does not exist (use add)")
        props[name] = entry["schema"]
    elif kind == "remove":
        if props.pop(name, None) is None:
            raise GenError(f"{key}: {entry['param']} does not exist")
        parent["required"] = [r for r in parent.get("required", []) if r != name]
    elif kind == "optional":
        if name not in parent.get("required", []):
            raise GenError(f"{key}: {entry['param']} is not required")
        parent["required"] = [r for r in parent["required"] if r != name]
    elif kind == "require":
        if name not in props:
            raise GenError(f"{key}: {entry['param']} does not exist")
        parent.setdefault("required", []).append(name)
    else:
        raise GenError(f"unknown override kind {kind!r}")


# ---------------------------------------------------------------------------------------
# Compact form (what the checker reads)
#
#   {"t": "string", "max": N}            string, maxLength N when the spec gives one
#   {"t": "decimal"}                      decimal string ("12.5")
#   {"t": "integer"} / {"t": "number"} / {"t": "boolean"}
#   {"t": "enum", "v": [..]}              one of the values
#   {"t": "object", "p": {..}, "r": [..]} nested hash with known keys, "r" required ones (if any)
#   {"t": "map", "v": {..}, "meta": true} hash with free keys (metadata: Stripe's limits)
#   {"t": "array", "i": {..}}             array (indexed `a[0]` or appended `a[]`)
#   {"t": "any_of", "c": [..]}            one of several shapes
#   {"t": "any"}                          not checked
#   "e": true on any of them              the empty string `""` (unset) is accepted
# ---------------------------------------------------------------------------------------


def is_empty_choice(schema: dict) -> bool:
    return schema.get("enum") == [""]


def convert(schema: dict, name: str | None = None) -> dict:
    choices = schema.get("anyOf") or schema.get("oneOf")
    if choices:
        empty = any(is_empty_choice(c) for c in choices)
        rest = [convert(c, name) for c in choices if not is_empty_choice(c)]
        if not rest:
            out = {"t": "enum", "v": []}
        elif len(rest) == 1:
            out = rest[0]
        else:
            out = {"t": "any_of", "c": rest}
        if empty:
            out["e"] = True
        return out
    kind = schema.get("type")
    if "enum" in schema and not schema.get("x-stripeBypassValidation"):
        values = [v for v in schema["enum"] if v != ""]
        out = {"t": "enum", "v": values}
        if len(values) != len(schema["enum"]):
            out["e"] = True
        return out
    if kind == "string":
        if schema.get("format") == "decimal":
            return {"t": "decimal"}
        out = {"t": "string"}
        if "maxLength" in schema:
            out["max"] = schema["maxLength"]
        return out
    if kind in ("integer", "number", "boolean"):
        return {"t": kind}
    if kind == "array":
        return {"t": "array", "i": convert(schema.get("items", {}))}
    if kind == "object" or "properties" in schema:
        props = schema.get("properties")
        if props:
            out = {"t": "object", "p": {k: convert(v, k) for k, v in sorted(props.items())}}
            required = sorted(set(schema.get("required", [])))
            if required:
                out["r"] = required
            return out
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            out = {"t": "map", "v": convert(extra)}
            if name == "metadata":
                out["meta"] = True
            return out
        if props is not None and schema.get("additionalProperties") is False:
            return {"t": "object", "p": {}}
        return {"t": "map", "v": {"t": "any"}}
    return {"t": "any"}


def build(spec_path: pathlib.Path, overrides_path: pathlib.Path) -> str:
    spec_bytes = spec_path.read_bytes()
    spec = json.loads(spec_bytes)
    overrides_bytes = overrides_path.read_bytes()
    overrides = json.loads(overrides_bytes)
    ops: dict = {}
    for key in OPERATIONS:
        root = operation_root(spec, key)
        if root is not None:
            ops[key] = root
    for entry in overrides["entries"]:
        apply_override(ops, spec, entry)
    missing = [k for k in OPERATIONS if k not in ops]
    if missing:
        raise GenError(f"operations neither in the spec nor in the overrides: {missing}")
    extra = [k for k in ops if k not in OPERATIONS]
    if extra:
        raise GenError(f"overrides define operations the emulator does not serve: {extra}")
    header = {
        "generated_by": "scripts/stripe/gen_params.py (do not edit by hand)",
        "spec": spec_path.name,
        "spec_api_version": spec.get("info", {}).get("version"),
        "spec_sha256": hashlib.sha256(spec_bytes).hexdigest(),
        "overrides_sha256": hashlib.sha256(overrides_bytes).hexdigest(),
    }
    lines = ["{", f'"about":{json.dumps(header, sort_keys=True)},', '"operations":{']
    body = []
    for key in OPERATIONS:  # one operation per line keeps diffs readable
        compact = json.dumps(convert(ops[key]), sort_keys=True, separators=(",", ":"))
        body.append(f"{json.dumps(key)}:{compact}")
    lines.append(",\n".join(body))
    lines.append("}}")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("spec", type=pathlib.Path, help="Stripe's OpenAPI description (JSON)")
    parser.add_argument("--out", type=pathlib.Path, help="table to write (default: the crate's)")
    parser.add_argument("--overrides", type=pathlib.Path, default=DEFAULT_OVERRIDES)
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args()
    try:
        out = args.out or default_out()
        table = build(args.spec, args.overrides)
    except (GenError, OSError, json.JSONDecodeError, KeyError) as e:
        print(f"gen_params: {e}", file=sys.stderr)
        return 2
    if args.check:
        current = out.read_text(encoding="utf-8") if out.exists() else ""
        if current != table:
            print(f"gen_params: {out} is not what the script makes; regenerate it", file=sys.stderr)
            return 1
        print(f"gen_params: {out} is up to date")
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table, encoding="utf-8")
    print(f"gen_params: wrote {out} ({len(table)} bytes, {len(OPERATIONS)} operations)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
