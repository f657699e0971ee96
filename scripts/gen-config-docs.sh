#!/usr/bin/env bash
# Generates the configuration reference and the Compose .env example from the programs' own
# config tables, so neither can drift from the code:
#
#   scripts/gen-config-docs.sh [--check] [BUILD_DIR]
#
#   docs/configuration.md   every program's --config-markdown, shared sections once
#   deploy/.env.example     every program's --env-example, each variable once, annotated with
#                           what deploy/compose.yaml fixes or mounts as a secret, plus the
#                           deployment's own DEPLOY_* variables (below)
#
# BUILD_DIR (default: $LST_BUILD_DIR or build) holds the built programs. --check writes
# nothing and exits 1 when a committed file differs from what the binaries print now (the
# diff is shown); run without --check to regenerate. Needs python3 with PyYAML
# (python3-yaml) to read deploy/compose.yaml.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CHECK=0
BUILD_DIR=${LST_BUILD_DIR:-build}
while [ $# -gt 0 ]; do
    case "$1" in
    --check) CHECK=1 ;;
    -h | --help) awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"; exit 0 ;;
    -*) echo "gen-config-docs: unknown option '$1'" >&2; exit 2 ;;
    *) BUILD_DIR=$1 ;;
    esac
    shift
done
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR=$ROOT/$BUILD_DIR ;; esac

# program name, path in the build, one-line role (the order of the generated files).
PROGRAMS=(
    "gateway-out services/gateway-out/gateway-out"
    "gateway-in services/gateway-in/gateway-in"
    "ledger services/ledger/ledger"
    "view-api services/view-api/view-api"
    "threema-sim tools/threema-sim/threema-sim"
)

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
for entry in "${PROGRAMS[@]}"; do
    read -r name rel <<<"$entry"
    bin=$BUILD_DIR/$rel
    [ -x "$bin" ] || { echo "gen-config-docs: $bin missing; build first (cmake --build $BUILD_DIR)" >&2; exit 1; }
    # An empty environment: the output must not depend on the caller's settings.
    env -i "$bin" --config-markdown >"$TMP/$name.md"
    env -i "$bin" --env-example >"$TMP/$name.env"
    env -i "$bin" --help | sed -n '3p' >"$TMP/$name.summary"
done

python3 - "$TMP" "$ROOT" "${PROGRAMS[@]}" <<'PY'
import os, re, sys
import yaml

tmp, root, progs = sys.argv[1], sys.argv[2], [p.split()[0] for p in sys.argv[3:]]

# Deployment variables: read by deploy/compose.yaml itself (interpolation), not by a program.
# tests/deploy checks that every ${VAR} of compose.yaml is listed here or in a config table.
DEPLOY = [
    ("DEPLOY_CALLBACK_DOMAIN", "", True,
     "Public DNS name of the Gateway's callback URL (TLS at the proxy). The callback URL to register with Threema is https://<this><LST_CALLBACK_PATH>."),
    ("DEPLOY_API_DOMAIN", "", True,
     "Public DNS name of the view-api (the single-page apps' API), a different name than the callback domain."),
    ("DEPLOY_ACME_EMAIL", "", True,
     "Contact address for the ACME (Let's Encrypt) account of the TLS proxy."),
    ("DEPLOY_HTTP_PORT", "80", False, "Host port of the proxy's HTTP listener (ACME challenges, redirect to HTTPS)."),
    ("DEPLOY_HTTPS_PORT", "443", False, "Host port of the proxy's HTTPS listener."),
    ("DEPLOY_GATEWAY_SECRET_FILE", "./secrets/gateway.secret", False,
     "File with the Gateway API secret (Compose secret gateway_secret, read as LST_GATEWAY_SECRET_FILE)."),
    ("DEPLOY_PRIVATE_KEY_FILE", "./secrets/gateway.private.key", False,
     "File with the Gateway ID's private key, private:<hex> (Compose secret gateway_private_key, read as LST_PRIVATE_KEY_FILE)."),
    ("DEPLOY_API_TOKENS_FILE", "./secrets/api-tokens", False,
     "The view-api token file (Compose secret api_tokens, read as LST_VIEW_TOKENS_FILE)."),
    ("DEPLOY_GRAFANA_PASSWORD_FILE", "./secrets/grafana-admin-password", False,
     "Grafana's admin password (monitoring profile)."),
    ("DEPLOY_ENV_FILE", ".env", False,
     "The file whose LST_* settings reach every Leitstand container (this file)."),
    ("DEPLOY_IMAGE_TAG", "latest", False, "Tag of the leitstand/* images built or pulled."),
    ("DEPLOY_KAFKA_CLUSTER_ID", "bGVpdHN0YW5kLWthZmthMQ", False,
     "KRaft cluster id the Kafka volume is formatted with; never change it once the volume holds data."),
    ("DEPLOY_KAFKA_RETENTION_HOURS", "720", False,
     "Default retention of the Kafka topics in hours (the ledger can be rebuilt from what is retained)."),
    ("DEPLOY_KAFKA_HEAP_OPTS", "-Xms512m -Xmx1g", False, "JVM heap of the broker."),
    ("DEPLOY_PROMETHEUS_PORT", "9090", False, "Loopback host port of Prometheus (monitoring profile)."),
    ("DEPLOY_GRAFANA_PORT", "3000", False, "Loopback host port of Grafana (monitoring profile)."),
]

def read(name, ext):
    with open(os.path.join(tmp, name + ext), encoding="utf-8") as f:
        return f.read()

def split_sections(text, head_re):
    """[(title, body)] of a --config-markdown or --env-example output."""
    out, title, body = [], None, []
    for line in text.splitlines():
        m = re.match(head_re, line)
        if m:
            if title is not None:
                out.append((title, "\n".join(body).strip("\n")))
            title, body = m.group(1), []
        elif title is not None:
            body.append(line)
    if title is not None:
        out.append((title, "\n".join(body).strip("\n")))
    return out

# ---- docs/configuration.md -------------------------------------------------------------
md = ["<!-- Generated by scripts/gen-config-docs.sh from the programs' --config-markdown; do not",
      "     edit by hand. Regenerate after changing a config table: scripts/gen-config-docs.sh -->",
      "# Configuration reference", "",
      "Every Leitstand program is configured through environment variables only, from one table",
      "per section in the code (`lib/include/lst/config.h`). Each program prints its own table with",
      "`--help`, `--config-markdown` and `--env-example`, and `--print-config` shows the effective",
      "values (secrets hidden). Rules that hold for every variable:", "",
      "- Any variable `NAME` can instead be given as `NAME_FILE`, the path of a file holding the",
      "  value (trailing newlines stripped); setting both is an error. Secrets (flag `sensitive`)",
      "  should always come from files: Compose secrets (`deploy/compose.yaml`) or files readable",
      "  only by the service user (systemd, `deploy/systemd/`).",
      "- An empty value counts as unset, so the default applies.",
      "- A program checks the whole configuration at start and reports every error at once (exit",
      "  status 2).", "",
      "In the Compose deployment, `deploy/.env` (from `deploy/.env.example`, generated from the same",
      "tables) reaches every container; see `deploy/README.md` and `docs/operations.md`.", ""]
seen_md = {}
for p in progs:
    summary = read(p, ".summary").strip()
    md += ["## " + p, "", summary[:1].upper() + summary[1:] + ".", ""]
    for title, body in split_sections(read(p, ".md"), r"^### (.+)$"):
        key = (title, body)
        if key in seen_md:
            md += ["### " + title, "", "The same as in [%s](#%s) above." % (seen_md[key], seen_md[key]), ""]
            continue
        seen_md[key] = p
        md += ["### " + title, "", body, ""]
md_text = "\n".join(md).rstrip("\n") + "\n"

# ---- deploy/.env.example ---------------------------------------------------------------
with open(os.path.join(root, "deploy", "compose.yaml"), encoding="utf-8") as f:
    compose = yaml.safe_load(f)

def program_of(svc):
    build = svc.get("build") or {}
    args = build.get("args") or {}
    if "entrypoint" in svc:
        return None  # a one-shot using a tool of the image (kafka-init)
    return args.get("SERVICE")

fixed = {}    # NAME -> [(program, value)] set by compose.yaml's environment blocks
secret = {}   # NAME -> secret name, for NAME_FILE mounted from /run/secrets
for sname, svc in (compose.get("services") or {}).items():
    prog = program_of(svc)
    if prog is None:
        continue
    for k, v in (svc.get("environment") or {}).items():
        v = "" if v is None else str(v)
        if k.endswith("_FILE") and v.startswith("/run/secrets/"):
            secret.setdefault(k[:-5], v[len("/run/secrets/"):])
        fixed.setdefault(k, []).append((prog, v))

def passthrough(name, value):
    """A match when value is ${name:-default} or ${name:?error}: group 1 '-' or '?', group 2
    the default (empty for '?')."""
    m = re.match(r"^\$\{" + re.escape(name) + r":([-?])([^}]*)\}$", value)
    if m and m.group(1) == "?":
        return re.match(r"^\$\{" + re.escape(name) + r":(\?)()", value)
    return m

env = ["# Settings of the Leitstand Compose deployment. Generated by scripts/gen-config-docs.sh from",
       "# the programs' --env-example and deploy/compose.yaml; do not edit by hand.",
       "#",
       "#   cp .env.example .env     then fill in every uncommented NAME= line",
       "#",
       "# Lines starting with # are defaults or notes; uncomment a line to change the setting.",
       "# Every LST_* line reaches every Leitstand container (a program reads only its own",
       "# names, docs/configuration.md). Secrets never go here: they are files, mounted as Compose",
       "# secrets (the DEPLOY_*_FILE paths below).", "",
       "# ======== deployment (read by deploy/compose.yaml) ========",
       "# Compose project name: prefix of containers and volumes (leitstand_kafka-data, ...).",
       "COMPOSE_PROJECT_NAME=leitstand"]
for name, default, required, desc in DEPLOY:
    env.append("# " + desc + (" (required)" if required else " (default %s)" % (default or '""')))
    env.append(("%s=" % name) if required else ("#%s=%s" % (name, default)))
seen_sections = {}
seen_vars = {}
for p in progs:
    env += ["", "# ======== %s ========" % p]
    for title, body in split_sections(read(p, ".env"), r"^# ---- (.+) ----$"):
        key = (title, body)
        if key in seen_sections:
            env.append("# ---- %s: as for %s above ----" % (title, seen_sections[key]))
            continue
        seen_sections[key] = p
        env.append("# ---- %s ----" % title)
        lines = body.splitlines()
        i = 0
        while i < len(lines):
            desc, line = lines[i], (lines[i + 1] if i + 1 < len(lines) else "")
            i += 2
            m = re.match(r"^#?([A-Z0-9_]+)=(.*)$", line)
            if not m:
                raise SystemExit("gen-config-docs: cannot read %s --env-example near %r" % (p, line))
            name = m.group(1)
            sensitive = "sensitive" in desc
            if name in seen_vars:
                env.append("# %s: listed under %s above (one value for all programs)" % (name, seen_vars[name]))
                continue
            seen_vars[name] = p
            env.append(desc)
            if name in secret:
                env.append("# %s: Compose secret %s (%s_FILE=/run/secrets/%s); never a value here"
                           % (name, secret[name], name, secret[name]))
            elif name in fixed and all(passthrough(name, v) for _, v in fixed[name]):
                # compose.yaml interpolates this very name from this file, maybe with a
                # default of its own (LST_GATEWAY_URL: the real Gateway, not the simulator).
                m2 = passthrough(name, fixed[name][0][1])
                if m2.group(1) == "?":
                    env.append("%s=" % name)
                else:
                    if m2.group(2) != m.group(2):
                        env.append("# compose.yaml's default differs from the program's:")
                    env.append("#%s=%s" % (name, m2.group(2)))
            elif name in fixed:
                vals = ", ".join("%s: %s" % pv for pv in fixed[name])
                how = ("mounted from a Compose secret" if all(v.startswith("/run/secrets/") for _, v in fixed[name])
                       else "a value here is overridden")
                env.append("# %s: set by compose.yaml (%s); %s" % (name, vals, how))
            elif sensitive:
                # Never a plain secret in .env: the line stays commented, NAME_FILE is the way.
                env.append("# %s: secret; add a Compose secret and set %s_FILE instead" % (name, name))
            else:
                env.append(line)
env_text = "\n".join(env).rstrip("\n") + "\n"

with open(os.path.join(tmp, "configuration.md"), "w", encoding="utf-8") as f:
    f.write(md_text)
with open(os.path.join(tmp, "env.example"), "w", encoding="utf-8") as f:
    f.write(env_text)
PY

status=0
for pair in "configuration.md:docs/configuration.md" "env.example:deploy/.env.example"; do
    gen=$TMP/${pair%%:*}
    dst=$ROOT/${pair#*:}
    if [ "$CHECK" -eq 1 ]; then
        if ! diff -u "$dst" "$gen" >"$TMP/diff" 2>&1; then
            echo "gen-config-docs: ${pair#*:} differs from what the programs print now:" >&2
            head -n 60 "$TMP/diff" >&2
            echo "gen-config-docs: run scripts/gen-config-docs.sh $BUILD_DIR and commit the result" >&2
            status=1
        else
            echo "gen-config-docs: ${pair#*:} up to date"
        fi
    else
        cp "$gen" "$dst"
        echo "gen-config-docs: wrote ${pair#*:}"
    fi
done
exit $status
