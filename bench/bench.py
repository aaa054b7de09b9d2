#!/usr/bin/env python3
"""Benchmark aws_login.py: start-up, imports, login round trips, the refresher.

    python3 bench/bench.py [--rounds 30] [--idle 60] [--peer PYTHON]

Standard library only.  Everything runs side by side in one go: the runs of
what is compared alternate, are repeated, and the table gives medians and
ratios, so a noisy machine moves both sides alike.  The IdP and STS are the
loopback fakes of test_aws_login.py (real HTTPS servers, a test CA).

``--peer PYTHON``: a Python with awscli-login 1.0 installed (``pip install
awscli-login``, and ``awscli`` for its `aws login`), logged in against the
same IdP and STS, its IdP session reused, alternating with ours.

What each cut saved (measured when it was made, 2026-12-03, this 2-core VM,
Python 3.11; the "cuts" rows below measure the first two again on every run):
  - system CAs read lazily from the hashed folder instead of parsing the
    bundle file (ssl.create_default_context): 50 ms -> 2 ms per login;
  - the configured credential_process command starts with -I -S: no site,
    no .pth files (this pyenv's site imports certifi: 40 ms), 1.08x of
    `python -c pass` -> at the floor of `python -I -S -c pass`;
  - the loader of the configured command uses importlib.machinery, not
    importlib.util (6 ms without site);
  - the system's own bundle given again as AWS_CA_BUNDLE is not parsed a
    second time (40 ms on hosts that export it, like this one).
"""

import argparse
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SCRIPT = os.path.join(ROOT, "aws_login.py")
sys.path.insert(0, ROOT)

import test_aws_login as fakes  # noqa: E402  (the loopback IdP and STS)

HEAVY = ("ssl", "urllib.request", "xml", "http.cookiejar", "argparse")


def timed(command, env, check=True):
    started = time.perf_counter()
    subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=check)
    return time.perf_counter() - started


def alternate(commands, env, rounds, check=True):
    """Run each command once per round, in turn; the median seconds of each."""
    times = [[] for _ in commands]
    order = list(range(len(commands)))
    for _ in range(rounds):
        for i in order:
            times[i].append(timed(commands[i], env, check))
        order.reverse()         # neither side always goes first

    return [statistics.median(t) for t in times]


def imported_modules(command, env):
    out = subprocess.run(command[:1] + ["-X", "importtime"] + command[1:], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         universal_newlines=True).stderr
    found = {}
    for line in out.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if m:
            found[m.group(4)] = int(m.group(2))
    return found


class World(object):
    """A temporary home with a configured profile, and the fakes running."""

    def __init__(self):
        self.home = tempfile.mkdtemp(prefix="aws-login-bench-")
        os.mkdir(os.path.join(self.home, "pki"))
        pems = fakes.write_pem_files(os.path.join(self.home, "pki"))
        self.idp = fakes.FakeIdP().start()
        self.sts = fakes.FakeSTS().start()
        self.idp.users["alice"] = dict(password="pw", roles=[fakes.ADMIN + "," + fakes.PROVIDER_A],
                                       session_duration=None, role_session_name=None)
        self.env = dict((k, v) for k, v in os.environ.items() if k not in fakes.CLEARED_ENV)
        self.env.update({
            "HOME": self.home, "AWSCLI_LOGIN_ROOT": self.home,
            "AWS_SHARED_CREDENTIALS_FILE": os.path.join(self.home, ".aws", "credentials"),
            "AWS_CONFIG_FILE": os.path.join(self.home, ".aws", "config"),
            "AWS_ENDPOINT_URL_STS": self.sts.url, "AWS_CA_BUNDLE": pems["ca"]})
        os.makedirs(os.path.join(self.home, ".aws-login"))
        with open(os.path.join(self.home, ".aws-login", "config"), "w") as f:
            f.write("[default]\necp_endpoint_url = %s\nusername = alice\nfactor = auto\n"
                    "password = pw\nrefresh = false\n\n[proc]\necp_endpoint_url = %s\n"
                    "username = alice\nfactor = auto\npassword = pw\n"
                    % (self.idp.url, self.idp.url))

    def tool(self, *args):
        return subprocess.run([sys.executable, SCRIPT] + list(args), env=self.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True)

    def close(self):
        self.tool("logout", "--all")
        self.idp.stop()
        self.sts.stop()
        shutil.rmtree(self.home, True)


def bench_credential_process(world, rounds):
    world.tool("--profile", "proc", "configure", "--credential-process")
    with open(world.env["AWS_CONFIG_FILE"]) as f:
        line = [l for l in f.read().splitlines() if l.startswith("credential_process")][0]
    command = shlex.split(line.split("=", 1)[1].strip())
    first = subprocess.run(command, env=world.env, stdout=subprocess.PIPE,
                           universal_newlines=True)
    assert '"Version": 1' in first.stdout, first
    requests = len(world.idp.requests) + len(world.sts.requests)
    ours, bare = alternate([command, [command[0], "-I", "-S", "-c", "pass"]], world.env, rounds)
    assert len(world.idp.requests) + len(world.sts.requests) == requests, "cache missed"
    modules = imported_modules(command, world.env)
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY or m in HEAVY)
    return command, ours, bare, load_time(command, world.env), heavy


def load_time(command, env):
    """Microseconds the configured command takes to load aws_login.py by its path
    from cached bytecode (its -c code after the quick answer from the cache, up
    to, not including, main()): what a call that renews pays on top."""
    code = command[command.index("-c") + 1]
    load = "import sys;" + code[code.index("import importlib.machinery"):code.rindex("sys.exit(")]
    timed_code = "import time;_t=time.perf_counter();%sprint(time.perf_counter()-_t)" % load
    out = subprocess.run([command[0], "-c", timed_code], env=env, stdout=subprocess.PIPE,
                         universal_newlines=True, check=True).stdout
    return float(out) * 1e6


def bench_login(world, rounds):
    first = world.tool("login")
    assert first.returncode == 0, first.stderr
    trips, times = [], []
    for _ in range(rounds):
        world.tool("logout")
        before = len(world.idp.requests) + len(world.sts.requests)
        started = time.perf_counter()
        run = world.tool("login")
        times.append(time.perf_counter() - started)
        assert run.returncode == 0, run.stderr
        trips.append(len(world.idp.requests) + len(world.sts.requests) - before)
    assert all(who == "session" for _, who in world.idp.logins[1:]), world.idp.logins
    return statistics.median(times), max(trips)


def bench_refresher(world, idle):
    world.tool("logout")
    run = world.tool("login", "--force")
    with open(os.path.join(world.home, ".aws-login", "config")) as f:
        text = f.read()
    with open(os.path.join(world.home, ".aws-login", "config"), "w") as f:
        f.write(text.replace("refresh = false\n", ""))
    world.tool("logout")
    run = world.tool("login")
    pid = int(re.search(r"pid (\d+)", run.stderr).group(1))
    time.sleep(1)

    def cpu():
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    with open("/proc/%d/status" % pid) as f:
        rss = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) / 1024.0
    before = cpu()
    time.sleep(idle)
    used = cpu() - before
    world.tool("logout")
    return rss, used


def bench_peer(peer, world, rounds):
    """Login with the IdP session reused: ours (`login --force`) against awscli-login
    1.0's `aws login --force-refresh` (its AWS CLI plugin, which runs its
    `aws-login --login`), same IdP user, same STS, alternating.  Without awscli
    in the peer's Python, its `aws-login --login` alone (what the plugin runs).
    Returns (ours, theirs, what theirs was)."""
    bin_dir = os.path.dirname(os.path.abspath(peer))
    env = dict(world.env, PATH=bin_dir + os.pathsep + world.env.get("PATH", ""),
               REQUESTS_CA_BUNDLE=world.env["AWS_CA_BUNDLE"])
    with open(os.path.join(world.home, ".aws-login", "config"), "a") as f:
        f.write("\n[peer]\necp_endpoint_url = %s\nusername = alice\npassword = pw\n"
                "factor = auto\n" % world.idp.url)
    os.makedirs(os.path.dirname(env["AWS_SHARED_CREDENTIALS_FILE"]), exist_ok=True)
    with open(env["AWS_SHARED_CREDENTIALS_FILE"], "a") as f:     # its `aws login configure`
        f.write("\n[peer]\ncredential_process = aws-login --profile peer\n")
    has_awscli = subprocess.run([peer, "-c", "import awscli"], env=env).returncode == 0
    if has_awscli:
        with open(env["AWS_CONFIG_FILE"], "a") as f:
            f.write("\n[plugins]\nlogin = awscli_login\n")
        theirs = [peer, "-m", "awscli", "--profile", "peer", "login", "--force-refresh"]
        what = "awscli-login 1.0 `aws login`"
    else:
        import json
        args = os.path.join(world.home, "peer-args.json")
        with open(args, "w") as f:
            json.dump({"ecp_endpoint_url": None, "username": None, "password": None,
                       "factor": None, "passcode": None, "role_arn": None, "duration": None,
                       "http_header_factor": None, "http_header_passcode": None,
                       "verify_ssl_certificate": None, "ask_password": False,
                       "force_refresh": True, "verbose": 0, "debug_info": False,
                       "save_http_traffic": None, "load_http_traffic": None}, f)
        theirs = [os.path.join(bin_dir, "aws-login"), "--login", args, "--profile", "peer"]
        what = "awscli-login 1.0 `aws-login --login` (no awscli: its plugin's command)"
    first = subprocess.run(theirs, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           universal_newlines=True)
    assert first.returncode == 0, first.stdout
    ours = [sys.executable, SCRIPT, "login", "--force", "--no-refresh"]
    # what pip's `aws-login` wrapper runs: the module imported from site-packages,
    # compiled when pip installed it
    import py_compile
    site = os.path.join(world.home, "site-packages")
    os.mkdir(site)
    shutil.copy(SCRIPT, site)
    py_compile.compile(os.path.join(site, "aws_login.py"), doraise=True)
    installed = [sys.executable, "-c", "import sys;sys.path.insert(0,%r);from aws_login "
                 "import main;sys.exit(main())" % site, "login", "--force", "--no-refresh"]
    for command in (ours, installed):
        assert subprocess.run(command, env=env).returncode == 0
    before = list(world.idp.logins)
    mine, mine_installed, them = alternate([ours, installed, theirs], env, rounds)
    assert all(who == "session" for _, who in world.idp.logins[len(before):]), \
        "a login did not reuse the IdP session"
    return mine, mine_installed, them, what


def bench_cuts(rounds):
    """The site start-up that -I -S skips, and the CA store cut, measured now."""
    site, floor = alternate([[sys.executable, "-c", "pass"],
                             [sys.executable, "-I", "-S", "-c", "pass"]], os.environ, rounds)
    code = ("import sys,time,ssl;sys.path.insert(0,%r);import aws_login;t=time.perf_counter();"
            "%s;print(time.perf_counter()-t)")
    default, ours = [statistics.median(float(subprocess.run(
        [sys.executable, "-c", code % (ROOT, call)], stdout=subprocess.PIPE,
        universal_newlines=True, env=dict(os.environ, AWS_CA_BUNDLE="")).stdout)
        for _ in range(max(3, rounds // 3)))
        for call in ("ssl.create_default_context()", "aws_login._make_ssl_context()")]
    return site, floor, default, ours


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--idle", type=float, default=60.0,
                        help="seconds to watch the idle refresher's CPU")
    parser.add_argument("--peer", metavar="PYTHON",
                        help="a Python with awscli-login 1.0 (and awscli) installed, for the "
                             "login comparison")
    args = parser.parse_args()
    world = World()
    rows = []
    try:
        command, ours, bare, import_us, heavy = bench_credential_process(world, args.rounds)
        rows.append(("credential_process, cached (the configured command)",
                     "%.1f ms" % (ours * 1000),
                     "%.1f ms (`python -I -S -c pass`)" % (bare * 1000),
                     "%.2fx" % (ours / bare), "<= 1.3x", ours / bare <= 1.3))
        rows.append(("load aws_login.py by its path, cached bytecode",
                     "%.1f ms" % ((import_us or 0) / 1000.0), "", "", "", True))
        rows.append(("heavy modules on the cached path", ", ".join(heavy) or "none", "", "",
                     "none", not heavy))
        wall, trips = bench_login(world, max(3, args.rounds // 3))
        rows.append(("login with IdP session reuse: wall time", "%.0f ms" % (wall * 1000),
                     "", "", "", True))
        rows.append(("login with IdP session reuse: HTTP round trips", str(trips), "", "",
                     "2", trips == 2))
        if args.peer:
            mine, installed, theirs, what = bench_peer(args.peer, world,
                                                       max(3, args.rounds // 3))
            rows.append(("login, IdP session reused: `aws-login login` (pip: bytecode)",
                         "%.0f ms" % (installed * 1000), "%.0f ms (%s)" % (theirs * 1000, what),
                         "%.1fx faster" % (theirs / installed), ">= 10x faster",
                         theirs / installed >= 10))
            rows.append(("login, IdP session reused: `python3 aws_login.py login` (compiles "
                         "the file)", "%.0f ms" % (mine * 1000), "%.0f ms (the same)"
                         % (theirs * 1000), "%.1fx faster" % (theirs / mine), "", True))
        else:
            rows.append(("login with IdP session reuse vs awscli-login 1.0",
                         "not measured (give --peer PYTHON)", "", "", ">= 10x faster", True))
        site, floor, default_ca, our_ca = bench_cuts(args.rounds)
        rows.append(("cut: site start-up that -I -S skips", "%.1f ms" % ((site - floor) * 1000),
                     "%.1f ms (`python -c pass`)" % (site * 1000), "", "", True))
        rows.append(("cut: system CA store (_make_ssl_context)", "%.1f ms" % (our_ca * 1000),
                     "%.1f ms (ssl.create_default_context)" % (default_ca * 1000),
                     "%.2fx" % (our_ca / default_ca), "", True))
        rss, used = bench_refresher(world, args.idle)
        rows.append(("refresher idle: resident memory", "%.1f MB" % rss, "", "", "<= 12 MB",
                     rss <= 12))
        rows.append(("refresher idle: CPU over %gs" % args.idle, "%.3f s" % used, "", "",
                     "< 0.05 s", used < 0.05))
    finally:
        world.close()
    print("aws_login.py benchmark: Python %s on %s, %d CPUs, %s" % (
        platform.python_version(), platform.platform(), os.cpu_count(),
        time.strftime("%Y-%m-%d")))
    print("median of %d alternating runs\n" % args.rounds)
    print("| measure | aws_login.py | baseline | ratio | target | met |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, value, base, ratio, target, ok in rows:
        print("| %s | %s | %s | %s | %s | %s |" % (name, value, base, ratio, target,
                                                   "yes" if ok else "NO"))
    return 0 if all(r[-1] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
