"""Times one gateway-out run of the benchmark from its own /metrics, in one process.

    python3 watch.py METRICS_URL N GW_PID SIM_PID TIMEOUT_S

Polls lst_gateway_out_outcomes_total every 20 ms over one keep-alive connection until it
reaches N. The shell loop this replaces started curl, awk, date and sleep 20 times a second:
about a tenth of the two cores, taken from the run it measured, while the SDK's run times
itself in-process. Prints shell assignments: the whole-run and steady rates (steady = from the
first poll at N/10 outcomes, as sdk_send.py does), and the CPU microseconds per send of
gateway-out and the simulator over the steady window. Exit 1 if N is not reached in time.
"""
import http.client
import os
import sys
import time
import urllib.parse

METRIC = "lst_gateway_out_outcomes_total"


def outcomes(conn, path):
    conn.request("GET", path)
    body = conn.getresponse().read().decode()
    return sum(int(float(line.rsplit(" ", 1)[1])) for line in body.splitlines()
               if line.startswith(METRIC))


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    url, n, gw_pid, sim_pid, timeout = sys.argv[1:6]
    n, end = int(n), time.monotonic() + float(timeout)
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
    first = mark = None  # (time, count[, gw cpu, sim cpu])
    c = 0
    while time.monotonic() < end:
        c, now = outcomes(conn, u.path), time.monotonic()
        if first is None and c > 0:
            first = (now, c)
        if mark is None and c > 0 and c >= n // 10:
            mark = (now, c, cpu_s(gw_pid), cpu_s(sim_pid))
        if c >= n:
            break
        time.sleep(0.02)
    if c < n or mark is None:
        print(f"watch: {c} of {n} outcomes", file=sys.stderr)
        return 1
    steady_n = max(c - mark[1], 1)
    print(f"GW_RATE_ALL={round((c - first[1]) / max(now - first[0], 1e-3), 1)}")
    print(f"GW_RATE={round(steady_n / max(now - mark[0], 1e-3), 1)}")
    print(f"GW_US={round((cpu_s(gw_pid) - mark[2]) * 1e6 / steady_n)}")
    print(f"SIM_US={round((cpu_s(sim_pid) - mark[3]) * 1e6 / steady_n)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
