#!/usr/bin/env python3
"""Benchmark aws_login.py: start-up, imports, login round trips, the refresher.

    python3 bench/bench.py [--rounds 30] [--idle 60] [--awscli-login-venv DIR]

Standard library only.  Everything runs side by side in one go: the runs of
what is compared alternate, are repeated, and the table gives medians and
ratios, so a noisy machine moves both sides alike.  The IdP and STS are the
loopback fakes of test_aws_login.py (real HTTPS servers, a test CA).
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
    ours, bare = alternate([command, [command[0], "-c", "pass"]], world.env, rounds)
    assert len(world.idp.requests) + len(world.sts.requests) == requests, "cache missed"
    modules = imported_modules(command, world.env)
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY or m in HEAVY)
    return command, ours, bare, load_time(command, world.env), heavy


def load_time(command, env):
    """Microseconds the configured command takes to load aws_login.py by its path
    from cached bytecode (the command's -c code up to, not including, main())."""
    code = command[command.index("-c") + 1]
    load = code[:code.rindex("sys.exit(")]
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


def bench_awscli_login(venv, world, command, rounds):
    """awscli-login's credential_process command (`aws-login --profile P`) against our
    cached one.  Its command needs its own `aws login` state first, which only the
    AWS CLI plugin writes; without it, it exits at once ("Already logged out!"),
    which is the least it can cost: its start-up."""
    theirs = [os.path.join(venv, "bin", "aws-login"), "--profile", "proc"]
    ours_import = [sys.executable, "-c", "import sys; sys.path.insert(0, %r); import aws_login"
                   % ROOT]
    their_import = [os.path.join(venv, "bin", "python"), "-c", "import awscli_login"]
    return alternate([command, theirs, ours_import, their_import], world.env, rounds,
                     check=False)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--idle", type=float, default=60.0,
                        help="seconds to watch the idle refresher's CPU")
    parser.add_argument("--awscli-login-venv", metavar="DIR",
                        help="a venv with `pip install awscli-login`, for the comparison rows")
    args = parser.parse_args()
    world = World()
    rows = []
    try:
        command, ours, bare, import_us, heavy = bench_credential_process(world, args.rounds)
        rows.append(("credential_process, cached (the configured command)",
                     "%.1f ms" % (ours * 1000), "%.1f ms (`python -c pass`)" % (bare * 1000),
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
        rss, used = bench_refresher(world, args.idle)
        rows.append(("refresher idle: resident memory", "%.1f MB" % rss, "", "", "<= 20 MB",
                     rss <= 20))
        rows.append(("refresher idle: CPU over %gs" % args.idle, "%.3f s" % used, "", "",
                     "< 0.05 s", used < 0.05))
        if args.awscli_login_venv:
            mine, theirs, mine_i, theirs_i = bench_awscli_login(
                args.awscli_login_venv, world, command, args.rounds)
            rows.append(("credential_process start-up vs awscli-login's `aws-login` "
                         "(its early exit)", "%.1f ms" % (mine * 1000),
                         "%.1f ms (awscli-login)" % (theirs * 1000), "%.2fx" % (mine / theirs),
                         "", True))
            rows.append(("python -c 'import aws_login' vs 'import awscli_login'",
                         "%.1f ms" % (mine_i * 1000), "%.1f ms (awscli-login)" % (theirs_i * 1000),
                         "%.2fx" % (mine_i / theirs_i), "", True))
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
