"""Tests of gen_params.py that need no spec file: `python3 -m unittest scripts/stripe/test_gen_params.py`."""

import copy
import json
import pathlib
import sys
import tempfile
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import gen_params  # noqa: E402

EMPTY = {"enum": [""], "type": "string"}
SPEC = {
    "info": {"version": "2023-08-16"},
    "paths": {
        "/v1/things": {
            "post": {
                "requestBody": {
                    "content": {
                        "application/x-www-form-urlencoded": {
                            "schema": {
                                "properties": {
                                    "name": {"maxLength": 10, "type": "string"},
                                    "metadata": {
                                        "anyOf": [
                                            {"additionalProperties": {"type": "string"}, "type": "object"},
                                            EMPTY,
                                        ]
                                    },
                                    "kind": {"enum": ["a", "b"], "type": "string"},
                                    "method": {"enum": ["card"], "type": "string", "x-stripeBypassValidation": True},
                                    "old_flat": {"type": "integer"},
                                },
                                "required": ["name"],
                            }
                        }
                    }
                }
            }
        },
        "/v1/things/{thing}": {
            "get": {
                "parameters": [
                    {"in": "path", "name": "thing", "required": True, "schema": {"type": "string"}},
                    {"in": "query", "name": "expand", "schema": {"items": {"type": "string"}, "type": "array"}},
                ]
            }
        },
    },
}


class ConvertTest(unittest.TestCase):
    def test_shapes(self):
        root = gen_params.convert(gen_params.operation_root(SPEC, "POST /v1/things"))
        props = root["p"]
        self.assertEqual(root["r"], ["name"])
        self.assertEqual(props["name"], {"t": "string", "max": 10})
        self.assertEqual(props["metadata"], {"t": "map", "v": {"t": "string"}, "meta": True, "e": True})
        self.assertEqual(props["kind"], {"t": "enum", "v": ["a", "b"]})
        self.assertEqual(props["method"], {"t": "string"}, "bypassed enums are plain strings")

    def test_path_parameters_are_not_params(self):
        root = gen_params.convert(gen_params.operation_root(SPEC, "GET /v1/things/{thing}"))
        self.assertEqual(list(root["p"]), ["expand"])
        self.assertNotIn("r", root)


class OverrideTest(unittest.TestCase):
    def ops(self):
        return {"POST /v1/things": gen_params.operation_root(SPEC, "POST /v1/things")}

    def test_a_new_operation_copies_and_moves(self):
        ops = self.ops()
        gen_params.apply_override(ops, SPEC, {
            "kind": "operation", "operation": "POST /v1/things/preview",
            "copy_from": "POST /v1/things", "move": {"old_flat": "details[flat]"},
            "remove": ["kind"], "reason": "test",
        })
        root = gen_params.convert(ops["POST /v1/things/preview"])
        self.assertEqual(root["p"]["details"], {"t": "object", "p": {"flat": {"t": "integer"}}})
        self.assertNotIn("kind", root["p"])
        self.assertNotIn("old_flat", root["p"])

    def test_edits_and_their_guards(self):
        ops = self.ops()
        gen_params.apply_override(ops, SPEC, {"kind": "optional", "operation": "POST /v1/things", "param": "name", "reason": "r"})
        gen_params.apply_override(ops, SPEC, {"kind": "add", "operation": "POST /v1/things", "param": "extra", "schema": {"type": "boolean"}, "reason": "r"})
        root = gen_params.convert(ops["POST /v1/things"])
        self.assertNotIn("r", root)
        self.assertEqual(root["p"]["extra"], {"t": "boolean"})
        for bad in [
            {"kind": "add", "operation": "POST /v1/things", "param": "extra", "schema": {}, "reason": "exists"},
            {"kind": "remove", "operation": "POST /v1/things", "param": "nope", "reason": "absent"},
            {"kind": "remove", "operation": "POST /v1/things", "param": "kind"},
            {"kind": "remove", "operation": "GET /v1/nowhere", "param": "kind", "reason": "no op"},
        ]:
            with self.assertRaises(gen_params.GenError, msg=json.dumps(bad)):
                gen_params.apply_override(copy.deepcopy(ops), SPEC, bad)


if __name__ == "__main__":
    unittest.main()
