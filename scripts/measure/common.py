"""Shared helpers for scripts/measure/*.py (python3 stdlib only).

- locating the `ember` binary and the shared test data,
- waiting for a quiet machine before a timed run (contention guard),
- running a command under `/usr/bin/time -v` and parsing wall time / peak RSS,
- running `ember serve` on a free port for the HTTP/WebSocket measurements,
- the command line, tables and JSON output those server scripts share,
- text normalisation and word-level Levenshtein (WER) with an alignment.
"""

import argparse
import hashlib
import http.client
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

HOME = os.path.expanduser("~")
CACHE = os.environ.get("EMBER_CACHE_DIR", os.path.join(HOME, ".cache", "ember"))
MEASURE_DIR = os.environ.get("EMBER_MEASURE_DIR", os.path.join(CACHE, "measure"))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA_DIR = os.environ.get("EMBER_DATA_DIR", os.path.join(os.path.dirname(REPO), "shared", "data"))
# scripts/reference: the Python reference implementations (sentences.py is stdlib only).
REFERENCE_DIR = os.path.join(REPO, "scripts", "reference")


def ember_bin():
    """EMBER_BIN if set, else the release build in CARGO_TARGET_DIR."""
    if os.environ.get("EMBER_BIN"):
        return os.environ["EMBER_BIN"]
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(CACHE, "target"))
    return os.path.join(target, "release", "ember")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def binary_info(path):
    """Path, mtime and sha256 prefix of a binary, to tell measured builds apart."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return {"path": path, "mtime": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(os.path.getmtime(path))),
            "sha256": h.hexdigest()[:12]}


# ---------------------------------------------------------------- contention

HEAVY_NAMES = ("cargo", "rustc", "ember", "cc1plus", "cc1", "ld", "clang", "cmake", "cargo-clippy", "clippy-driver")


def _proc_times():
    """pid -> (utime+stime ticks, comm, ppid) for every process."""
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                st = f.read()
        except OSError:
            continue
        r = st.rfind(")")
        comm = st[st.find("(") + 1 : r]
        fields = st[r + 2 :].split()
        out[int(pid)] = (int(fields[11]) + int(fields[12]), comm, int(fields[1]))
    return out


def _cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def heavy_processes(exclude=(), interval=1.0):
    """Processes using > 15 % of a core over `interval` s, or named like a build/test/ember
    process, other than ours (this script and `exclude`)."""
    me = os.getpid()
    a = _proc_times()
    time.sleep(interval)
    b = _proc_times()
    hz = os.sysconf("SC_CLK_TCK")
    busy = []
    for pid, (t1, comm, ppid) in b.items():
        if pid in (me, os.getppid()) or pid in exclude or ppid == me:
            continue
        t0 = a.get(pid, (t1,))[0]
        pct = 100.0 * (t1 - t0) / hz / interval
        args = _cmdline(pid)
        named = comm in HEAVY_NAMES or ("/deps/" in args and "target" in args)
        if pct > 15.0 or (named and pct > 1.0):
            busy.append("%d %s %.0f%% %s" % (pid, comm, pct, args[:110]))
    return busy


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[0:3]


def wait_quiet(max_wait_s=600, poll_s=30):
    """Poll until no heavy process is seen (max_wait_s); return a note for the report."""
    start = time.time()
    first = heavy_processes()
    busy = first
    while busy and time.time() - start < max_wait_s:
        log("[contention] waiting, load %s: %s" % (" ".join(loadavg()), busy[:3]))
        time.sleep(poll_s)
        busy = heavy_processes()
    waited = time.time() - start
    note = {
        "loadavg_before": loadavg(),
        "waited_s": round(waited, 1),
        "busy_at_start": first[:5],
        "busy_at_run": busy[:5],
    }
    if busy:
        log("[contention] STILL BUSY after %.0f s, timing anyway: %s" % (waited, busy[:3]))
    return note


def contention_during(proc_pid_set):
    """Heavy processes other than ours (sampled during a run)."""
    return heavy_processes(exclude=proc_pid_set)


# ---------------------------------------------------------------- timed run


def timed_run(cmd, env_extra=None, stdout_path=None, stderr_path=None, sample_s=15):
    """Run cmd under /usr/bin/time -v; return dict(wall_s, max_rss_kb, rc, contention samples)."""
    env = dict(os.environ)
    env.update(env_extra or {})
    tfile = (stderr_path or "/tmp/measure_time") + ".time"
    full = ["/usr/bin/time", "-v", "-o", tfile] + cmd
    so = open(stdout_path, "w") if stdout_path else subprocess.DEVNULL
    se = open(stderr_path, "w") if stderr_path else subprocess.DEVNULL
    t0 = time.time()
    p = subprocess.Popen(full, env=env, stdout=so, stderr=se)
    samples = []
    while True:
        try:
            p.wait(timeout=sample_s)
            break
        except subprocess.TimeoutExpired:
            kids = {p.pid}
            try:
                out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(p.pid)], capture_output=True, text=True).stdout
                kids |= {int(x) for x in out.split()}
            except Exception:
                pass
            others = contention_during(kids)
            if others:
                samples.append({"t": round(time.time() - t0), "load": loadavg()[0], "busy": others[:3]})
    wall_outer = time.time() - t0
    if stdout_path:
        so.close()
    if stderr_path:
        se.close()
    res = {"rc": p.returncode, "wall_outer_s": round(wall_outer, 2), "contention_samples": samples}
    with open(tfile) as f:
        tv = f.read()
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", tv)
    res["max_rss_kb"] = int(m.group(1)) if m else None
    m = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", tv)
    if m:
        parts = [float(x) for x in m.group(1).split(":")]
        wall = 0.0
        for x in parts:
            wall = wall * 60 + x
        res["wall_s"] = round(wall, 2)
    m = re.search(r"User time \(seconds\): ([\d.]+)", tv)
    res["user_s"] = float(m.group(1)) if m else None
    m = re.search(r"System time \(seconds\): ([\d.]+)", tv)
    res["sys_s"] = float(m.group(1)) if m else None
    m = re.search(r"Percent of CPU this job got: (\d+)%", tv)
    res["cpu_pct"] = int(m.group(1)) if m else None
    return res


def parse_transcribed_lines(stderr_text):
    """The `transcribed` info lines: file, audio_secs, elapsed_secs, timings JSON."""
    ansi = re.compile(r"\x1b\[[0-9;]*m")
    out = []
    for line in stderr_text.splitlines():
        line = ansi.sub("", line)
        if " transcribed " not in line:
            continue
        d = {}
        for key in ("file", "audio_secs", "elapsed_secs", "real_time_factor"):
            m = re.search(r"\b%s=(\S+)" % key, line)
            if m:
                d[key] = m.group(1)
        m = re.search(r"timings=(\{.*?\})", line)
        if m:
            try:
                d["timings"] = json.loads(m.group(1))
            except ValueError:
                d["timings"] = m.group(1)
        out.append(d)
    return out


# ---------------------------------------------------------------- ember serve

STREAM_PATH = "/v1/audio/transcriptions/streaming"
# The server is on 127.0.0.1: never go through an http_proxy from the environment.
_LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One `binary serve *args` on a free 127.0.0.1 port (EMBER_HOST / EMBER_PORT), with `env`
    over os.environ (RUST_LOG=info unless set; EMBER_API_KEYS dropped, so no auth). Its
    output goes to log_dir/serve-<name>-<time>.log (`log_path`), after a `$ command` line.
    `url` and `ws_url` (the streaming endpoint) are usable once wait_healthy() returns;
    stop() ends it (also after a failed start)."""

    def __init__(self, binary, name, log_dir, args=(), env=None):
        self.name, self.port = name, free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.ws_url = "ws://127.0.0.1:%d%s" % (self.port, STREAM_PATH)
        env = dict(env or {})
        full_env = dict(os.environ, EMBER_HOST="127.0.0.1", EMBER_PORT=str(self.port))
        full_env.update(env)
        full_env.setdefault("RUST_LOG", "info")
        full_env.pop("EMBER_API_KEYS", None)
        self.args = [binary, "serve"] + list(args)
        command = " ".join(["%s=%s" % kv for kv in env.items()] + self.args)
        os.makedirs(log_dir, exist_ok=True)
        self.log_path = os.path.join(log_dir, "serve-%s-%s.log" % (name, time.strftime("%Y%m%dT%H%M%S")))
        self.logf = open(self.log_path, "w", encoding="utf-8")
        self.logf.write("$ %s\n" % command)
        self.logf.flush()
        log("[server %s] %s  (port %d, log %s)" % (name, command, self.port, self.log_path))
        self.proc = subprocess.Popen(self.args, env=full_env, stdin=subprocess.DEVNULL,
                                     stdout=self.logf, stderr=subprocess.STDOUT)

    def wait_healthy(self, timeout=300):
        """Poll GET /health until it answers 200; RuntimeError if the server exits first or
        `timeout` s pass (model loading on a cold cache takes a while)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("ember serve (%s) exited %s; see %s" % (self.name, self.proc.returncode, self.log_path))
            try:
                with _LOCAL.open(self.url + "/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except (OSError, http.client.HTTPException):  # not listening yet, or not ready (HTTP error)
                pass
            time.sleep(0.25)
        raise RuntimeError("ember serve (%s) not healthy after %d s; see %s" % (self.name, timeout, self.log_path))

    def stop(self):
        """SIGTERM, SIGKILL after 15 s; close the log. Safe to call twice."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()


# ---------------------------------------------------------------- server scripts


def arg_parser(doc):
    """The parser of a server script: its docstring as the help text, then --bin. The script
    adds its own options, then calls parse_args()."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=ember_bin(), help="ember binary (default: %(default)s)")
    return ap


def parse_args(ap):
    """Add --no-wait and --json (last in --help), parse, check that --bin exists, and turn
    SIGTERM into an exit so the script's `finally` stops its servers."""
    ap.add_argument("--no-wait", action="store_true", help="skip the contention guard")
    ap.add_argument("--json", metavar="PATH", help="also write the figures here")
    args = ap.parse_args()
    if not os.path.isfile(args.bin):
        sys.exit("no ember binary at %s (--bin or EMBER_BIN)" % args.bin)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    return args


def median(xs, nd=1):
    """Median of the values that are not None, rounded to nd decimals (nd=0: an int);
    None when there are none."""
    xs = [x for x in xs if x is not None]
    if not xs:
        return None
    m = statistics.median(xs)
    return round(m, nd) if nd else int(m)


def print_table(header, rows, widths):
    """A markdown table padded to `widths`: the first column left-aligned, the others
    right-aligned; None prints as "-"."""
    fmt = "| %%-%ds | " % widths[0] + " | ".join("%%%ds" % w for w in widths[1:]) + " |"
    print(fmt % tuple(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(fmt % tuple("-" if x is None else x for x in r))


def write_json(path, obj):
    """Write the figures to `path` (~ expanded) and say so on stderr."""
    with open(os.path.expanduser(path), "w") as f:
        json.dump(obj, f, indent=1)
    log("wrote %s" % path)


# ---------------------------------------------------------------- WER

_PUNCT = re.compile(r"[^\w\s']|_")


def normalize(text):
    """Lowercase, hyphens/slashes to spaces, strip punctuation (apostrophes dropped), split."""
    t = text.lower().replace("-", " ").replace("/", " ")
    t = _PUNCT.sub(" ", t)
    t = t.replace("'", "")
    return t.split()


def align(ref, hyp):
    """Word-level Levenshtein. Returns (S, D, I, ops) where ops is a list of
    (op, ref_index or None, hyp_index or None), op in '=', 'S', 'D', 'I'."""
    n, m = len(ref), len(hyp)
    # back[i] is a bytearray of length m+1: 0 diag-match, 1 diag-sub, 2 up (deletion), 3 left (insertion)
    prev = list(range(m + 1))
    back = [bytearray([3] * (m + 1))]
    for i in range(1, n + 1):
        cur = [i] + [0] * m
        b = bytearray(m + 1)
        b[0] = 2
        ri = ref[i - 1]
        for j in range(1, m + 1):
            if hyp[j - 1] == ri:
                best, op = prev[j - 1], 0
            else:
                best, op = prev[j - 1] + 1, 1
            d = prev[j] + 1
            if d < best:
                best, op = d, 2
            ins = cur[j - 1] + 1
            if ins < best:
                best, op = ins, 3
            cur[j] = best
            b[j] = op
        back.append(b)
        prev = cur
    ops = []
    i, j = n, m
    while i > 0 or j > 0:
        op = back[i][j] if i > 0 else 3
        if i > 0 and j == 0:
            op = 2
        if op in (0, 1):
            ops.append(("=" if op == 0 else "S", i - 1, j - 1))
            i, j = i - 1, j - 1
        elif op == 2:
            ops.append(("D", i - 1, None))
            i -= 1
        else:
            ops.append(("I", None, j - 1))
            j -= 1
    ops.reverse()
    s = sum(1 for o in ops if o[0] == "S")
    d = sum(1 for o in ops if o[0] == "D")
    ins = sum(1 for o in ops if o[0] == "I")
    return s, d, ins, ops


def wer(ref_text, hyp_text):
    ref, hyp = normalize(ref_text), normalize(hyp_text)
    s, d, i, ops = align(ref, hyp)
    return {
        "wer": (s + d + i) / max(1, len(ref)),
        "sub": s,
        "del": d,
        "ins": i,
        "ref_words": len(ref),
        "hyp_words": len(hyp),
        "ops": ops,
        "ref": ref,
        "hyp": hyp,
    }
