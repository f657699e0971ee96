#!/usr/bin/env python3
"""Checks real view-api responses against proto/openapi.yaml.

Input: the exchanges the view-api tests dump (LST_VIEW_API_DUMP), one per line:
method TAB path TAB status TAB content type TAB body. For each exchange: the path matches a
documented path, the method is documented there, the status is one of the operation's
responses, the content type is one the response declares, and the body validates (JSON
Schema 2020-12, the dialect of OpenAPI 3.1) against that response's schema. Unknown paths
may only have been answered 404. Exit 0 when all hold, 1 otherwise; prints the operations
and statuses the run covered.

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


def main():
    spec = yaml.safe_load(open(sys.argv[1], encoding="utf-8"))
    registry = Registry().with_resource(BASE, Resource(contents=spec, specification=DRAFT202012))
    templates = []
    for tpl in spec["paths"]:
        rx = "^" + re.sub(r"\{[^}]+\}", "[^/]+", tpl) + "$"
        templates.append((re.compile(rx), tpl))
    errors, covered, n = [], set(), 0
    for line in open(sys.argv[2], encoding="utf-8"):
        line = line.rstrip("\n")
        if not line:
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
        media = ctype.split(";")[0].strip()
        if media not in content:
            errors.append(f"{where}: content type {media!r} not in {sorted(content)}")
            continue
        try:
            doc = json.loads(body)
        except ValueError:
            errors.append(f"{where}: body is not JSON")
            continue
        schema = content[media]["schema"]
        if "$ref" in schema:
            schema = {"$ref": BASE + schema["$ref"]}
        else:
            schema = json.loads(json.dumps(schema).replace('"#/components', f'"{BASE}#/components'))
        for e in Draft202012Validator(schema, registry=registry).iter_errors(doc):
            errors.append(f"{where}: {'/'.join(map(str, e.absolute_path))}: {e.message}")
    print(f"{n} exchanges, {len(covered)} documented operation/status pairs covered:")
    for c in sorted(covered):
        print("  " + c)
    for e in errors:
        print("MISMATCH " + e)
    return 1 if errors or n == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
