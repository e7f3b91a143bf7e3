"""Shared helpers for scripts/measure/*.py (python3 stdlib only).

- locating the `ember` binary and the shared test data,
- waiting for a quiet machine before a timed run (contention guard),
- running a command under `/usr/bin/time -v` and parsing wall time / peak RSS,
- text normalisation and word-level Levenshtein (WER) with an alignment.
"""

import json
import os
import re
import subprocess
import sys
import time

HOME = os.path.expanduser("~")
CACHE = os.environ.get("EMBER_CACHE_DIR", os.path.join(HOME, ".cache", "ember"))
MEASURE_DIR = os.environ.get("EMBER_MEASURE_DIR", os.path.join(CACHE, "measure"))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA_DIR = os.environ.get("EMBER_DATA_DIR", os.path.join(os.path.dirname(REPO), "shared", "data"))


def ember_bin():
    """EMBER_BIN if set, else the release build in CARGO_TARGET_DIR."""
    if os.environ.get("EMBER_BIN"):
        return os.environ["EMBER_BIN"]
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(CACHE, "target"))
    return os.path.join(target, "release", "ember")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


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
