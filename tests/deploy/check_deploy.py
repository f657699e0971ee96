#!/usr/bin/env python3
"""Static checks of the Compose deployment against the programs' own config tables.

    check_deploy.py WORKDIR REPO

WORKDIR holds what run.sh prepared: <program>.env (each program's --env-example),
config-default.yaml / config-demo.yaml / config-monitoring.yaml (`docker-compose config`
output for those profiles), metrics.txt (every lst_* string literal of the C sources).
Prints one line per failed check and exits 1 when there is any.
"""
import json
import os
import re
import sys

import yaml

WORK, REPO = sys.argv[1], sys.argv[2]
DEPLOY = os.path.join(REPO, "deploy")
PROGRAMS = ["gateway-out", "gateway-in", "ledger", "view-api", "threema-sim"]
CORE = ["gateway-out", "gateway-in", "ledger", "view-api"]
errors = []
checks = 0


def fail(msg):
    errors.append(msg)


def check(cond, msg):
    global checks
    checks += 1
    if not cond:
        fail(msg)


def load_yaml(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


# ---- the config tables, from the binaries ------------------------------------------------
class Entry:
    def __init__(self, name, required, sensitive):
        self.name, self.required, self.sensitive = name, required, sensitive


def read_table(program):
    """{name: Entry} from a program's --env-example (description line, then NAME= line:
    commented out when optional, bare when required)."""
    table = {}
    lines = open(os.path.join(WORK, program + ".env"), encoding="utf-8").read().splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^(#?)(LST_[A-Z0-9_]+)=", line)
        if not m:
            continue
        desc = lines[i - 1] if i > 0 else ""
        table[m.group(2)] = Entry(m.group(2), m.group(1) == "", "sensitive" in desc)
    if not table:
        fail("%s --env-example lists no variable" % program)
    return table


tables = {p: read_table(p) for p in PROGRAMS}
all_names = set().union(*[set(t) for t in tables.values()])


def known(name, table):
    """The entry a variable NAME or NAME_FILE sets, or None."""
    if name in table:
        return table[name]
    if name.endswith("_FILE") and name[:-5] in table:
        return table[name[:-5]]
    return None


# ---- the compose file, raw (what it sets) and resolved (what each profile runs) -------------
raw = load_yaml(os.path.join(DEPLOY, "compose.yaml"))
raw_services = raw["services"]
resolved = {p: load_yaml(os.path.join(WORK, "config-%s.yaml" % p))
            for p in ("default", "demo", "monitoring")}


def program_of(svc):
    """The Leitstand program a service runs: the image's SERVICE build argument, unless the
    entrypoint is overridden (kafka-init runs lst-admin of the ledger image)."""
    if "entrypoint" in svc:
        return None
    return ((svc.get("build") or {}).get("args") or {}).get("SERVICE")


def active(config, profiles):
    """Services a `docker-compose --profile ...` run starts (1.29's config still prints the
    others with their profiles: key)."""
    return {n: s for n, s in config["services"].items()
            if not s.get("profiles") or set(s["profiles"]) & set(profiles)}


# 1. every variable compose.yaml sets for a program exists in that program's table, every
#    required one is set, secrets only as *_FILE from /run/secrets of a mounted secret.
for name, svc in raw_services.items():
    prog = program_of(svc)
    if prog is None:
        continue
    table = tables[prog]
    env = svc.get("environment") or {}
    check(isinstance(env, dict), "%s: environment must be a mapping" % name)
    for var, value in env.items():
        entry = known(var, table)
        check(entry is not None,
              "%s: compose.yaml sets %s, which is in no config table of %s (--env-example)"
              % (name, var, prog))
        if entry is not None and entry.sensitive:
            check(var.endswith("_FILE") and str(value).startswith("/run/secrets/"),
                  "%s: sensitive %s must come from a Compose secret as %s_FILE=/run/secrets/..."
                  % (name, var, entry.name))
        if str(value).startswith("/run/secrets/"):
            sec = str(value)[len("/run/secrets/"):]
            check(sec in (svc.get("secrets") or []),
                  "%s: %s points at secret %s that the service does not mount" % (name, var, sec))
            check(sec in (raw.get("secrets") or {}),
                  "%s: secret %s is not declared at the top level" % (name, sec))
    for var, entry in table.items():
        if entry.required:
            check(var in env or var + "_FILE" in env,
                  "%s: required %s (REQUIRED in %s --help) is not set in compose.yaml"
                  % (name, var, prog))

# Resolved: the required values are non-empty after interpolation, in every profile.
for profile, cfg in resolved.items():
    for name, svc in active(cfg, [profile]).items():
        prog = program_of(raw_services.get(name, {}))
        if prog is None:
            continue
        env = svc.get("environment") or {}
        for var, entry in tables[prog].items():
            if entry.required:
                check(str(env.get(var) or env.get(var + "_FILE") or "") != "",
                      "%s (%s profile): required %s resolves to an empty value" % (name, profile, var))

# 2. no plain secret in compose.yaml or in the generated .env.example.
sensitive = {n for t in tables.values() for n, e in t.items() if e.sensitive}
env_example = open(os.path.join(DEPLOY, ".env.example"), encoding="utf-8").read()
for line in env_example.splitlines():
    m = re.match(r"^([A-Z0-9_]+)=(.*)$", line)
    if m:
        check(m.group(1) not in sensitive, ".env.example sets the secret %s" % m.group(1))
for var in sensitive:
    for name, svc in raw_services.items():
        check(var not in (svc.get("environment") or {}),
              "%s: secret %s as a plain environment value" % (name, var))

# 3. every ${VAR} compose.yaml interpolates is documented in .env.example (and so generated).
text = open(os.path.join(DEPLOY, "compose.yaml"), encoding="utf-8").read()
listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)[=:]", env_example, re.M))
for var in sorted(set(re.findall(r"(?<!\$)\$\{([A-Z][A-Z0-9_]*)", text))):
    check(var in listed, "compose.yaml interpolates ${%s}, which .env.example does not list" % var)
    if var.startswith("LST_"):
        check(var in all_names, "compose.yaml interpolates ${%s}, in no config table" % var)
# ... and every LST_* of every table is in .env.example
for var in sorted(all_names):
    check(var in listed, ".env.example misses %s (regenerate: scripts/gen-config-docs.sh)" % var)

# 4. structure: healthchecks, restart policies, depends_on on health, profiles.
for profile, cfg in resolved.items():
    for name, svc in active(cfg, [profile]).items():
        hc = svc.get("healthcheck") or {}
        check(hc.get("test") and not hc.get("disable"),
              "%s (%s): no healthcheck" % (name, profile))
        check("restart" in svc, "%s (%s): no restart policy" % (name, profile))
        deps = svc.get("depends_on") or {}
        check(isinstance(deps, dict), "%s: depends_on must name conditions" % name)
        for dep, cond in (deps.items() if isinstance(deps, dict) else []):
            c = (cond or {}).get("condition")
            want = "service_completed_successfully" if dep == "kafka-init" else "service_healthy"
            check(c == want, "%s depends on %s with condition %s, not %s" % (name, dep, c, want))
for name in CORE:
    deps = raw_services[name].get("depends_on") or {}
    env = raw_services[name].get("environment") or {}
    # every Redis a service talks to (its projections' or state Redis, the view API's state
    # Redis for the idempotency keys) must be up before it
    redises = [env.get(v) for v in ("LST_REDIS_HOST", "LST_VIEW_STATE_REDIS_HOST") if env.get(v)]
    for dep in ["kafka", "kafka-init"] + redises:
        check(dep in deps, "%s does not wait for %s" % (name, dep))
    check(not raw_services[name].get("profiles"), "%s must run without a profile" % name)
    check(raw_services[name].get("restart") in ("unless-stopped", "always", "on-failure"),
          "%s: restart policy must restart a service that exits 1" % name)

default_active = active(resolved["default"], [])
demo_active = active(resolved["demo"], ["demo"])
check("threema-sim" not in default_active and "demo-seed" not in default_active,
      "the simulator and the demo data must be under the demo profile only")
check("threema-sim" in demo_active and "demo-seed" in demo_active,
      "the demo profile must start the simulator and the demo data")
for name in ("gateway-out", "gateway-in"):
    url = resolved["default"]["services"][name]["environment"].get("LST_GATEWAY_URL", "")
    check(url.startswith("https://") and "sim" not in url,
          "%s: without the demo profile LST_GATEWAY_URL must be the real Gateway, is %r" % (name, url))
    demo_url = resolved["demo"]["services"][name]["environment"].get("LST_GATEWAY_URL", "")
    check(demo_url.startswith("http://threema-sim:"),
          "%s: the demo must point at the simulator, is %r" % (name, demo_url))
    # everything phones answer goes to gateway-in, which this demo simulator must reach
sim_env = resolved["demo"]["services"]["threema-sim"]["environment"]
check(sim_env.get("LST_SIM_CALLBACK_URL", "").startswith("http://gateway-in:18082/"),
      "the simulator must post callbacks to gateway-in")

# kafka, redis: the images, KRaft, volumes, the right healthchecks.
kafka = raw_services["kafka"]
check(kafka.get("image", "").startswith("apache/kafka:3.9."), "kafka: image must be apache/kafka:3.9.x")
check("controller" in str(kafka["environment"].get("KAFKA_PROCESS_ROLES")), "kafka: not KRaft")
check(any(str(v).startswith("kafka-data:") for v in kafka.get("volumes", [])), "kafka: data not on a volume")
check("kafka-broker-api-versions" in json.dumps(kafka["healthcheck"]["test"]),
      "kafka: healthcheck must be a broker API request")
def flag(cmd, name):
    return cmd[cmd.index(name) + 1] if name in cmd[:-1] else None


# The state Redis (dedupe marks, idempotency keys: nothing rebuilds them) keeps an AOF; the
# projections' Redis is rebuilt from Kafka and runs without one (docs/operations.md).
for name, aof, volume in (("redis", "yes", "redis-data:"),
                          ("redis-projections", "no", "redis-projections-data:")):
    redis = raw_services.get(name, {})
    cmd = [str(c) for c in redis.get("command", [])]
    check(flag(cmd, "--appendonly") == aof, "%s: --appendonly must be %s" % (name, aof))
    check(flag(cmd, "--save") not in (None, ""), "%s: no RDB snapshots" % name)
    check(any(str(v).startswith(volume) for v in redis.get("volumes", [])),
          "%s: data not on a volume" % name)
    check(redis.get("healthcheck", {}).get("test", [])[-2:] == ["redis-cli", "ping"],
          "%s: healthcheck must be redis-cli ping" % name)
# who uses which: the gateways' keys must not land in the Redis without AOF
for name in ("gateway-out", "gateway-in"):
    check(raw_services[name]["environment"].get("LST_REDIS_HOST") == "redis",
          "%s: its dedupe marks need the Redis with AOF" % name)
check(raw_services["view-api"]["environment"].get("LST_VIEW_STATE_REDIS_HOST") == "redis",
      "view-api: its idempotency keys need the Redis with AOF (LST_VIEW_STATE_REDIS_HOST)")
check(raw_services["ledger"]["environment"].get("LST_REDIS_HOST") ==
      raw_services["view-api"]["environment"].get("LST_REDIS_HOST"),
      "view-api must read the projections where the ledger writes them")

# gateway-out scales: no fixed name, no host port.
gwo = raw_services["gateway-out"]
check("container_name" not in gwo and "ports" not in gwo,
      "gateway-out: container_name or ports prevent --scale gateway-out=N")

# one blob store: gateway-in, gateway-out and view-api mount the same volume where LST_BLOB_DIR
# (or the image's default) points.
def blob_mount(name):
    svc = resolved["default"]["services"][name]
    path = svc.get("environment", {}).get("LST_BLOB_DIR", "/var/lib/leitstand/blobs")
    for v in svc.get("volumes", []):
        src, _, rest = str(v).partition(":")
        if rest.split(":")[0] == path:
            return src, rest
    return None, None

mounts = {n: blob_mount(n) for n in ("gateway-in", "gateway-out", "view-api")}
srcs = {m[0] for m in mounts.values()}
check(len(srcs) == 1 and None not in srcs, "blob store volumes differ: %r" % mounts)
check(not any(m[1] and m[1].endswith(":ro") for m in mounts.values()),
      "the blob store must be writable (lst_blobstore_create checks it): %r" % mounts)

# the TLS proxy in front of gateway-in and view-api.
caddy = open(os.path.join(DEPLOY, "caddy", "Caddyfile"), encoding="utf-8").read()
check("reverse_proxy gateway-in:18082" in caddy and "reverse_proxy view-api:18080" in caddy,
      "Caddyfile must proxy gateway-in:18082 and view-api:18080")
proxy = raw_services["proxy"]
check(any(str(p).endswith(":443") for p in proxy.get("ports", [])), "proxy: no HTTPS port")
check({"gateway-in", "view-api"} <= set(proxy.get("depends_on", {})), "proxy: must wait for its upstreams")

# ports of the healthcheck and the fixed LST_HTTP_PORT agree with Prometheus' targets.
prom = load_yaml(os.path.join(DEPLOY, "prometheus", "prometheus.yml"))
targets = json.dumps(prom["scrape_configs"])
for name in CORE:
    port = raw_services[name]["environment"]["LST_HTTP_PORT"]
    check(('"%s:%s"' % (name, port)) in targets or ('"names": ["%s"]' % name in targets and str(port) in targets),
          "prometheus.yml does not scrape %s on %s" % (name, port))

# ---- the Dockerfile ------------------------------------------------------------------------
docker = open(os.path.join(DEPLOY, "Dockerfile"), encoding="utf-8").read()
stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", docker, re.M | re.I)
check(len(stages) >= 2, "Dockerfile: not multi-stage")
check(stages and stages[0][0] == "debian:12", "Dockerfile: build stage must be debian:12")
check(stages and stages[-1][0] == "debian:12-slim", "Dockerfile: runtime stage must be debian:12-slim")
# The runtime stage without comment lines (comments may name what is left out).
runtime = "\n".join(l for l in docker[docker.rfind("\nFROM "):].splitlines()
                    if not l.lstrip().startswith("#"))
pkgs = set(re.findall(r"\b(lib[a-z0-9.+-]+|ca-certificates)\b",
                      re.search(r"apt-get install[^&]*", runtime, re.S).group(0)))
allowed = {"librdkafka1", "libcurl4", "libsodium23", "libhiredis0.14", "libjson-c5",
           "libmicrohttpd12", "ca-certificates"}
check(pkgs <= allowed, "Dockerfile: runtime installs more than the runtime libraries: %s" % (pkgs - allowed))
check(not re.search(r"-dev\b|\bgcc\b|\bcmake\b", runtime), "Dockerfile: build tools in the runtime stage")
user = re.findall(r"^USER\s+(\S+)", runtime, re.M)
check(user and not user[-1].startswith(("root", "0")), "Dockerfile: runtime must run as a non-root user")
check(re.search(r"^HEALTHCHECK\s", runtime, re.M) is not None, "Dockerfile: no HEALTHCHECK")
for var in re.findall(r"\b(LST_[A-Z0-9_]+)=", runtime):
    check(var in all_names, "Dockerfile sets %s, in no config table" % var)
with open(os.path.join(WORK, "needed-packages.txt"), encoding="utf-8") as f:
    needed = {l.strip() for l in f if l.strip()}
for p in sorted(needed):
    check(p in allowed or p in ("libc6",),
          "the programs link a library of %s, which the runtime image does not install" % p)
# The build stage copies every folder the top-level CMakeLists.txt adds (and BuildKit's
# Dockerfile.dockerignore lets it through), or the image build breaks on a new folder.
cmake = open(os.path.join(REPO, "CMakeLists.txt"), encoding="utf-8").read()
copied = set(re.findall(r"^COPY\s+(\S+)\s", docker, re.M))
ignore = open(os.path.join(DEPLOY, "Dockerfile.dockerignore"), encoding="utf-8").read()
for sub in sorted({d.split("/")[0] for d in re.findall(r"add_subdirectory\((\S+?)\)", cmake)}):
    check(sub in copied, "Dockerfile does not COPY %s (added by CMakeLists.txt)" % sub)
    check(("!%s/" % sub) in ignore, "Dockerfile.dockerignore excludes %s" % sub)
for name in CORE:
    build = raw_services[name].get("build") or {}
    check(build.get("dockerfile") == "deploy/Dockerfile" and (build.get("args") or {}).get("SERVICE") == name,
          "%s: must build deploy/Dockerfile with SERVICE=%s" % (name, name))

# ---- metric names in alerts and dashboard exist in the code --------------------------------
with open(os.path.join(WORK, "metrics.txt"), encoding="utf-8") as f:
    code_metrics = {l.strip() for l in f if l.strip()}
exporter = {"kafka_consumergroup_lag", "kafka_topic_partition_current_offset", "up"}

def metric_names(expr):
    names = set(re.findall(r"\b((?:lst|kafka)_[a-z0-9_]+)\b", expr))
    return {re.sub(r"_(bucket|sum|count)$", "", n) if n not in code_metrics else n for n in names}

alerts = load_yaml(os.path.join(DEPLOY, "prometheus", "alerts.yml"))
alert_names = set()
for g in alerts["groups"]:
    for r in g["rules"]:
        alert_names.add(r["alert"])
        for n in metric_names(r["expr"]):
            check(n in code_metrics or n in exporter,
                  "alert %s uses %s, which no service registers" % (r["alert"], n))
want = {"credits low": r"CreditsLow", "402": r"402", "401": r"401", "consumer lag": r"ConsumerLag",
        "callback failures": r"CallbackFailures", "DLQ growth": r"Dlq"}
for what, pat in want.items():
    check(any(re.search(pat, a) for a in alert_names), "alerts.yml has no %s alert" % what)
dash = json.load(open(os.path.join(DEPLOY, "grafana", "dashboards", "leitstand.json"), encoding="utf-8"))
used = set()
for p in dash["panels"]:
    for t in p.get("targets", []):
        used |= metric_names(t["expr"])
for n in sorted(used):
    check(n in code_metrics or n in exporter, "dashboard uses %s, which no service registers" % n)
# every metric of the finished services and the library appears on the dashboard; metrics of
# the services still growing (ledger, view-api) are reported, not failed.
for n in sorted(code_metrics):
    if n.startswith(("lst_gateway_out_", "lst_gateway_in_", "lst_kafka_", "lst_http_")):
        check(n in used, "dashboard does not show %s" % n)
    elif n.startswith(("lst_ledger_", "lst_view_")) and n not in used:
        print("note: dashboard does not show %s yet" % n)

for e in errors:
    print("FAIL:", e)
print("check_deploy: %d checks, %d failed" % (checks, len(errors)))
sys.exit(1 if errors else 0)
