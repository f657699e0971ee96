#!/usr/bin/env python3
"""Turns a `redis-cli MONITOR` capture into RESP for `redis-cli --pipe`, one file per part.

Input (stdin): MONITOR lines, `<time> [<db> <client>] "CMD" "arg" ...`, with the arguments
escaped as Redis prints them (sdscatrepr: \\\\ \\" \\n \\r \\t \\a \\b \\xHH). Lines of the
commands the ledger's scripts ran carry the client `lua`; only those are kept. A line whose
command is ECHO with an argument `mark:<name>` starts the part <name>.

usage: monitor_to_resp.py OUT_DIR     writes OUT_DIR/<part>.resp and prints "<part> <commands>"
"""
import os
import sys

ESC = {ord("\\"): b"\\", ord('"'): b'"', ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t",
       ord("a"): b"\a", ord("b"): b"\b"}


def args_of(line):
    """The quoted arguments after the `[...]` of one MONITOR line, as bytes."""
    raw = line.encode("latin-1")
    i = raw.index(b"]") + 1
    out = []
    while True:
        i = raw.find(b'"', i)
        if i < 0:
            return out
        i += 1
        arg = bytearray()
        while raw[i] != ord('"'):
            c = raw[i]
            if c == ord("\\"):
                n = raw[i + 1]
                if n == ord("x"):
                    arg.append(int(raw[i + 2:i + 4], 16))
                    i += 4
                    continue
                arg += ESC.get(n, bytes([n]))
                i += 2
                continue
            arg.append(c)
            i += 1
        out.append(bytes(arg))
        i += 1


def resp(args):
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(parts)


def main():
    out_dir = sys.argv[1]
    part, f, counts = None, None, {}
    for line in sys.stdin.buffer:
        line = line.decode("latin-1").rstrip("\n")
        if "]" not in line:
            continue
        client = line[line.index("[") + 1:line.index("]")].split()
        args = args_of(line)
        if args and args[0].upper() == b"ECHO" and len(args) == 2 and args[1].startswith(b"mark:"):
            if f is not None:
                f.close()
            part = args[1][5:].decode()
            f = open(os.path.join(out_dir, part + ".resp"), "wb")
            counts[part] = 0
            continue
        if f is None or len(client) < 2 or client[1] != "lua" or not args:
            continue
        f.write(resp(args))
        counts[part] += 1
    if f is not None:
        f.close()
    for p, n in counts.items():
        print(p, n)


if __name__ == "__main__":
    main()
