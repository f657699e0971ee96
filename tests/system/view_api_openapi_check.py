#!/usr/bin/env python3
"""Checks real view-api responses against proto/openapi.yaml.

Input: the exchanges the view-api tests dump (LST_VIEW_API_DUMP), one per line:
method TAB path TAB status TAB content type TAB body. For each exchange: the path matches a
documented path, the method is documented there, the status is one of the operation's
responses, the content type is one the response declares, and the body validates (JSON
Schema 2020-12, the dialect of OpenAPI 3.1) against that response's schema; a problem's type
is one the document lists in x-problem-types. Unknown paths may only have been answered 404.

Lines "QUERY TAB method TAB path TAB name,name,..." are a route's table of known query
parameters (struct va_query_spec, which the view-api refuses anything else by): each must
equal the operation's documented query parameters, and once any is given, every documented
operation under /api/ must have one (empty when it takes none). Exit 0 when all hold, 1
otherwise; prints the operations and statuses the run covered.

usage: view_api_openapi_check.py OPENAPI_YAML DUMP_FILE
"""
import json
import re
import sys

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

BASE = "urn:leitstand:openapi"


def query_params(spec, op):
    """The names of an operation's documented query parameters."""
    names = set()
    for p in op.get("parameters", []):
        if "$ref" in p:
            p = spec["components"]["parameters"][p["$ref"].rsplit("/", 1)[1]]
        if p.get("in") == "query":
            names.add(p["name"])
    return names


def check_queries(spec, tables, errors):
    """The C tables of known query parameters against the document, both ways."""
    for (method, path), names in tables.items():
        op = spec["paths"].get(path, {}).get(method.lower())
        if op is None:
            errors.append(f"query table of {method} {path}: no such operation")
            continue
        doc = query_params(spec, op)
        if names != doc:
            errors.append(f"query table of {method} {path}: only in C {sorted(names - doc)}, "
                          f"only documented {sorted(doc - names)}")
    # every /api operation has a table, also one without query parameters (an empty one: the
    # view-api refuses any query there); /healthz and /readyz are the service frame's
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if isinstance(op, dict) and path.startswith("/api/") and \
                    (method.upper(), path) not in tables:
                errors.append(f"{method.upper()} {path}: no query table was given")


def check_problem(spec, doc, status, where, errors):
    """A problem's type is one of x-problem-types, answered with the status listed there (one
    type, one status), and its body says the HTTP status."""
    slug = str(doc.get("type", "")).rsplit(":", 1)[-1]
    listed = spec.get("x-problem-types", {})
    if slug not in listed:
        errors.append(f"{where}: problem type {slug!r} not in x-problem-types")
    elif listed[slug] != status:
        errors.append(f"{where}: problem type {slug!r} is listed with status {listed[slug]}")
    if doc.get("status") != status:
        errors.append(f"{where}: problem body says status {doc.get('status')}")


def media_of(content, media):
    """The declared media type that covers media: itself, then type/*, then */*."""
    for key in (media, media.split("/")[0] + "/*", "*/*"):
        if key in content:
            return key
    return None


def main():
    spec = yaml.safe_load(open(sys.argv[1], encoding="utf-8"))
    registry = Registry().with_resource(BASE, Resource(contents=spec, specification=DRAFT202012))
    templates = []
    for tpl in spec["paths"]:
        rx = "^" + re.sub(r"\{[^}]+\}", "[^/]+", tpl) + "$"
        templates.append((re.compile(rx), tpl))
    errors, covered, n = [], set(), 0
    tables = {}
    # surrogateescape: a binary body (GET /api/blobs/{sha256}) is not UTF-8; newline="\n":
    # its other control bytes must not split the line
    for line in open(sys.argv[2], encoding="utf-8", errors="surrogateescape", newline="\n"):
        line = line.rstrip("\n")
        if not line:
            continue
        if line.startswith("QUERY\t"):
            _, method, path, names = line.split("\t", 3)
            tables[(method, path)] = set(names.split(",")) - {""}
            continue
        method, path, status, ctype, body = line.split("\t", 4)
        n += 1
        where = f"{method} {path} -> {status}"
        if method == "OPTIONS":
            continue  # CORS preflight, answered by the frame for every API path
        tpl = next((t for rx, t in templates if rx.match(path)), None)
        if tpl is None:
            if status != "404":
                errors.append(f"{where}: undocumented path")
            continue
        op = spec["paths"][tpl].get(method.lower())
        if op is None:
            if status not in ("404", "405"):
                errors.append(f"{where}: method not documented for {tpl}")
            continue
        resp = op["responses"].get(status)
        if resp is None:
            errors.append(f"{where}: status not documented for {method} {tpl}")
            continue
        covered.add(f"{method} {tpl} {status}")
        if "$ref" in resp:
            resp = spec["components"]["responses"][resp["$ref"].rsplit("/", 1)[1]]
        content = resp.get("content")
        if not content:
            continue
        media = media_of(content, ctype.split(";")[0].strip())
        if media is None:
            errors.append(f"{where}: content type {ctype!r} not in {sorted(content)}")
            continue
        if not media.endswith("json") or method == "HEAD":
            continue  # bytes (a blob), or no body at all: the content type is all there is
        try:
            doc = json.loads(body)
        except ValueError:
            errors.append(f"{where}: body is not JSON")
            continue
        if media == "application/problem+json":
            check_problem(spec, doc, int(status), where, errors)
        schema = content[media]["schema"]
        if "$ref" in schema:
            schema = {"$ref": BASE + schema["$ref"]}
        else:
            schema = json.loads(json.dumps(schema).replace('"#/components', f'"{BASE}#/components'))
        for e in Draft202012Validator(schema, registry=registry).iter_errors(doc):
            errors.append(f"{where}: {'/'.join(map(str, e.absolute_path))}: {e.message}")
    if tables:
        check_queries(spec, tables, errors)
        print(f"{len(tables)} query tables checked against the documented parameters")
    print(f"{n} exchanges, {len(covered)} documented operation/status pairs covered:")
    for c in sorted(covered):
        print("  " + c)
    for e in errors:
        print("MISMATCH " + e)
    return 1 if errors or n == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
