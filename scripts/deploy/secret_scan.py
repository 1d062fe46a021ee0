#!/usr/bin/env python3
"""Fails when a file that git tracks (or would track) holds something that looks like a
real secret.

Files scanned: ``git ls-files --cached --others --exclude-standard`` (tracked files plus
new files that are not git-ignored, i.e. what the next commit may contain). Outside a git
work tree, every file below the root except .git/ and target/.

Rules (name: what it finds):
  stripe-key      sk_live_/sk_test_/rk_live_/rk_test_ followed by 20+ alphanumerics
  webhook-secret  whsec_ followed by 20+ alphanumerics
  private-key     a PEM private key header
  aws-key         an AWS access key id (AKIA + 16)
  jwt             a JSON Web Token (three base64url parts, the first starting eyJ)
  url-password    user:PASSWORD@ in a URL, or password=<value>, unless the value is an
                  obvious placeholder (postgres, password, changeme, replace..., ${VAR}...)

Allow-list: scripts/deploy/secret-scan-allowlist.txt, one entry a line:
  <path glob> <rule>  # why this is not a secret
An entry without a reason is an error, and so is an entry that no longer matches
anything (so the list cannot rot).

Usage: secret_scan.py [--root DIR] [--allowlist FILE] [--self-test]
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import re
import subprocess
import sys
from dataclasses import dataclass

RULES: dict[str, re.Pattern[str]] = {
    "stripe-key": re.compile(r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{20,}"),
    "webhook-secret": re.compile(r"\bwhsec_[A-Za-z0-9]{20,}"),
    "private-key": re.compile(r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY-----"),
    "aws-key": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    "jwt": re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]*"),
}
# user:password@ in a URL with a scheme, and password=<value> (connection strings, queries).
URL_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@'\"]+:([^@\s/'\"]+)@")
PARAM_PASSWORD = re.compile(r"(?i)\bpassword=([^&\s;,)`'\"]+)")
PLACEHOLDER = re.compile(
    r"""(?ix)^(
        \$\{[^}]*\}.* | \$[A-Za-z_][A-Za-z0-9_]* | \$\$[A-Za-z_][A-Za-z0-9_]*   # ${VAR}, $VAR
      | <[^>]*> | \{[^}]*\} | \{\{.*\}\} | %[sd] | \*+ | x+ | \.\.\.            # <pass>, {pass}, ***
      | postgres | password | pass | passwd | pwd | pw | secret | changeme | change[-_]me
      | example | test | testing | dev | local | billing | user | admin
      | hunter2                                      # the proverbial fake password, used by tests
      | (replace|your|fake|dummy|placeholder|example|test|dev|local)[-_a-z0-9]*
    )$"""
)
SKIP_DIRS = {".git", "target", "node_modules"}


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    rule: str
    excerpt: str


@dataclass
class AllowEntry:
    glob: str
    rule: str
    reason: str
    used: bool = False


def list_files(root: str) -> list[str]:
    try:
        out = subprocess.run(
            ["git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            check=True,
            capture_output=True,
        ).stdout
        return sorted({p for p in out.decode().split("\0") if p and os.path.isfile(os.path.join(root, p))})
    except (OSError, subprocess.CalledProcessError):
        files = []
        for directory, dirs, names in os.walk(root):
            dirs[:] = [d for d in dirs if d not in SKIP_DIRS]
            for name in names:
                files.append(os.path.relpath(os.path.join(directory, name), root))
        return sorted(files)


def _mask(text: str) -> str:
    return text[:12] + "…" if len(text) > 12 else text


def scan_text(path: str, text: str) -> list[Finding]:
    findings = []
    for number, line in enumerate(text.splitlines(), start=1):
        for rule, pattern in RULES.items():
            for match in pattern.finditer(line):
                findings.append(Finding(path, number, rule, _mask(match.group(0))))
        for pattern in (URL_PASSWORD, PARAM_PASSWORD):
            for match in pattern.finditer(line):
                if not PLACEHOLDER.match(match.group(1)):
                    findings.append(Finding(path, number, "url-password", _mask(match.group(0))))
    return findings


def load_allowlist(path: str) -> list[AllowEntry]:
    entries = []
    if not os.path.exists(path):
        return entries
    with open(path, encoding="utf-8") as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            body, _, reason = line.partition("#")
            fields = body.split()
            if len(fields) != 2 or fields[1] not in set(RULES) | {"url-password"} or not reason.strip():
                raise ValueError(f"{path}:{number}: expected `<path glob> <rule>  # reason`, got {line!r}")
            entries.append(AllowEntry(fields[0], fields[1], reason.strip()))
    return entries


def scan(root: str, allowlist: list[AllowEntry]) -> tuple[list[Finding], int]:
    findings = []
    files = list_files(root)
    for rel in files:
        try:
            with open(os.path.join(root, rel), "rb") as handle:
                data = handle.read()
        except OSError:
            continue
        if b"\0" in data[:8192]:
            continue  # binary
        for finding in scan_text(rel, data.decode("utf-8", errors="replace")):
            allowed = [e for e in allowlist if e.rule == finding.rule and fnmatch.fnmatchcase(rel, e.glob)]
            for entry in allowed:
                entry.used = True
            if not allowed:
                findings.append(finding)
    return findings, len(files)


def self_test() -> None:
    """The rules find what they should and pass what they should (fails loudly if not)."""
    fake_key = "sk_" + "live_" + "A1b2C3d4E5f6G7h8I9j0K1l2"  # assembled so this file holds no literal
    must_flag = {
        fake_key: "stripe-key",
        "rk_test_" + "0123456789abcdefghijKLMN": "stripe-key",
        "whsec_" + "0123456789abcdefghijKLMN": "webhook-secret",
        "-----BEGIN " + "RSA PRIVATE KEY-----": "private-key",
        "-----BEGIN " + "PRIVATE KEY-----": "private-key",
        "AKIA" + "ABCDEFGHIJKLMNOP": "aws-key",
        "eyJ" + "hbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig": "jwt",
        "postgres://billing:" + "S3cr3t-Pa55@db:5432/billing": "url-password",
        "host=db user=billing password=" + "hunter2hunter2": "url-password",
    }
    must_pass = [
        "STRIPE_API_KEY=sk_test_replace_me",
        "STRIPE_WEBHOOK_SECRET=whsec_replace_me",
        "sk_test_fake",
        "postgres://postgres:postgres@127.0.0.1:5432/billing",
        "postgres://postgres:${POSTGRES_PASSWORD}@postgres:5432/billing",
        "postgres://postgres:replace-with-a-local-password@127.0.0.1:5432/billing",
        "postgres://USER:PASSWORD@HOST:5432/billing",
        "postgres://postgres@127.0.0.1:5432/billing",
        "https://app.example.com/billing/success?session_id={CHECKOUT_SESSION_ID}",
        "-----BEGIN PUBLIC KEY-----",
        'PgConfig::new("postgres://app:hunter2@db:5432/billing")',
    ]
    for text, rule in must_flag.items():
        rules = {f.rule for f in scan_text("self-test", text)}
        if rule not in rules:
            raise AssertionError(f"self-test: {rule} not found in a sample that holds one")
    for text in must_pass:
        found = scan_text("self-test", text)
        if found:
            raise AssertionError(f"self-test: placeholder flagged as {found[0].rule}: {text}")


def main() -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--root", default=os.path.normpath(os.path.join(here, "..", "..")))
    parser.add_argument("--allowlist", default=os.path.join(here, "secret-scan-allowlist.txt"))
    parser.add_argument("--self-test", action="store_true", help="only check the rules themselves")
    args = parser.parse_args()

    self_test()
    if args.self_test:
        print("secret scan: rule self-test passed")
        return 0
    try:
        allowlist = load_allowlist(args.allowlist)
    except ValueError as error:
        print(f"secret scan: {error}", file=sys.stderr)
        return 1
    findings, count = scan(args.root, allowlist)
    status = 0
    for finding in findings:
        print(f"  SECRET? {finding.path}:{finding.line}: {finding.rule} ({finding.excerpt})", file=sys.stderr)
        status = 1
    for entry in allowlist:
        if not entry.used:
            print(f"  stale allow-list entry (matches nothing): {entry.glob} {entry.rule}", file=sys.stderr)
            status = 1
    allowed = sum(e.used for e in allowlist)
    print(f"secret scan: {count} files, {len(findings)} finding(s), {allowed} allow-listed fixture rule(s)")
    return status


if __name__ == "__main__":
    sys.exit(main())
