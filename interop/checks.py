#!/usr/bin/env python3
"""Interop checks for aws_login.py against a real SimpleSAMLphp ECP IdP and moto STS.

Started by interop/run, which sets up the services and passes their
coordinates in the environment (INTEROP_*).  Standard library only.

Two groups:
  infra  - the harness itself, at curl/openssl level (IdPs, TLS, signatures,
           recording proxy, moto, AWS CLI, the pseudo-terminal driver);
  tool   - the real aws_login.py driven like a person through a pty, once per
           Python in INTEROP_PYTHONS (default 3.6 and 3.13).

Prints one PASS/FAIL/SKIP line per check, details under failures, and
"N passed, M failed" (", K skipped" if any) as its last line; exit status 1 if
anything failed.  Select checks with INTEROP_ONLY=regex (matched on names).
"""
import base64
import contextlib
import errno
import hashlib
import hmac
import json
import os
import pty
import re
import select
import shutil
import socket
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request

E = os.environ
HERE = os.path.dirname(os.path.abspath(__file__))
TOOL = E.get("INTEROP_TOOL", os.path.join(os.path.dirname(HERE), "aws_login.py"))
STATE = E["INTEROP_STATE"]
CA = E["INTEROP_TLS_CA"]
SIGNING_CERT = E["INTEROP_SIGNING_CERT"]
IDP_A = E["INTEROP_IDP_A_URL"]          # assertion signed, ForceAuthn on
IDP_B = E["INTEROP_IDP_B_URL"]          # response + assertion signed, session reuse
IDP_A_HTTP = E.get("INTEROP_IDP_A_HTTP_URL")
IDP_ACCESS_LOG = E.get("INTEROP_IDP_ACCESS_LOG") or os.path.join(STATE, "idp", "log", "apache-access.log")
STS_URL = E["INTEROP_STS_URL"]          # the recording proxy
MOTO_URL = E.get("INTEROP_MOTO_URL")    # moto itself (reset-auth, IAM set-up)
ATHERIS = E.get("INTEROP_ATHERIS", "ok")          # "ok" or why atheris is missing
FUZZ_SECONDS = int(E.get("INTEROP_FUZZ_SECONDS", "60"))
RECORDS = E["INTEROP_RECORDS"]
AWS = E["INTEROP_AWS"]                  # the venv's AWS CLI v1
PYTHONS = E.get("INTEROP_PYTHONS", "").split()
KEYRING_DIRS = json.loads(E.get("INTEROP_KEYRING_DIRS", "{}"))   # "X.Y" -> pip --target dir
ONLY = re.compile(E.get("INTEROP_ONLY", ""))
REGION = "us-east-1"

SAML_P = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML_A = "urn:oasis:names:tc:SAML:2.0:assertion"
ACS = "https://signin.aws.amazon.com/saml"

ALICE_ARN = "arn:aws:sts::123456789012:assumed-role/Admin/alice@example.org"
ERIN_ARN = "arn:aws:sts::123456789012:assumed-role/ShortLived/erin"
SHORT_LIVED_ROLE = "arn:aws:iam::123456789012:role/ShortLived"   # erin's; see sts_proxy.py
BOB_READONLY_ARN = "arn:aws:sts::210987654321:assumed-role/ReadOnly/bob"

RESULTS = {"passed": 0, "failed": 0, "skipped": 0, "cleaned": 0}
LIVE = set()        # Terminals whose process may still run (own sessions: kill on exit)
HOMES = []          # Homes made by the running check: their refreshers are stopped after it


class CheckFailed(Exception):
    def __str__(self):
        return "\n".join(str(a) for a in self.args if a)


class Skip(Exception):
    pass


def need(cond, message, *details):
    if not cond:
        raise CheckFailed(message + "".join("\n" + str(d) for d in details if d))


def run_check(name, fn, *args):
    if not ONLY.search(name):
        return
    t0 = time.time()
    summary = None
    try:
        try:
            summary = fn(*args)
        finally:
            cleanup_homes()
    except Skip as e:
        RESULTS["skipped"] += 1
        print("SKIP: %s (%s)" % (name, e), flush=True)
        return
    except CheckFailed as e:
        RESULTS["failed"] += 1
        print("FAIL: %s (%.1fs)" % (name, time.time() - t0), flush=True)
        print(indent(str(e)), flush=True)
        return
    except Exception:
        RESULTS["failed"] += 1
        print("FAIL: %s (harness error)" % name, flush=True)
        print(indent(traceback.format_exc()), flush=True)
        return
    RESULTS["passed"] += 1
    print("PASS: %s%s (%.1fs)" % (name, " -> " + summary if summary else "", time.time() - t0),
          flush=True)


def indent(text, limit=6000):
    if len(text) > limit:
        text = text[:limit] + "\n... (%d more characters)" % (len(text) - limit)
    return "\n".join("    | " + line for line in text.splitlines())


# --------------------------------------------------------------------------
# Pseudo-terminal driver
# --------------------------------------------------------------------------

# Runs in the child: new session, then open the pty slave, which (no
# O_NOCTTY, session leader without a terminal) makes it the controlling
# terminal, i.e. what /dev/tty opens; then exec the real command.
# SIGINT/SIGQUIT back to default: interop/run starts us as a background job,
# which ignores them, and an ignored SIGINT would survive the exec (a Python
# started that way installs no KeyboardInterrupt handler).
SHIM = ("import os,sys,signal\n"
        "signal.signal(signal.SIGINT, signal.SIG_DFL)\n"
        "signal.signal(signal.SIGQUIT, signal.SIG_DFL)\n"
        "os.setsid()\n"
        "fd = os.open(sys.argv[1], os.O_RDWR)\n"
        "os.execvp(sys.argv[2], sys.argv[2:])\n")


class Terminal(object):
    """One process whose controlling terminal is a fresh pty; stdio are pipes."""

    def __init__(self, argv, env, stdin_data=None, cwd=None):
        self.master, self.slave = pty.openpty()
        slave_name = os.ttyname(self.slave)
        self.argv = argv
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SHIM, slave_name] + list(argv),
            stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd)
        LIVE.add(self)
        self.slave_name = slave_name
        # what only this program (and what it leaves behind) may hold: its
        # terminal and its pipes; checked when it exits (see wait)
        self.held = set([slave_name] + ["pipe:[%d]" % os.fstat(f.fileno()).st_ino
                                        for f in (self.proc.stdin, self.proc.stdout,
                                                  self.proc.stderr) if f is not None])
        self.last_send = self.exited_at = None
        self.out, self.err = [], []
        self._threads = [threading.Thread(target=self._drain, args=(self.proc.stdout, self.out)),
                         threading.Thread(target=self._drain, args=(self.proc.stderr, self.err))]
        if stdin_data is not None:
            self._threads.append(threading.Thread(target=self._feed, args=(stdin_data,)))
        for t in self._threads:
            t.daemon = True
            t.start()
        self.screen = b""       # everything the program wrote to the terminal
        self.pos = 0            # how much of it was already consumed by expect()
        self.sent = []          # what we typed, for the transcript

    def _drain(self, pipe, sink):
        while True:
            chunk = pipe.read1(65536) if hasattr(pipe, "read1") else pipe.read(65536)
            if not chunk:
                break
            sink.append(chunk)

    def _feed(self, data):
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass

    def _read(self, timeout):
        r, _, _ = select.select([self.master], [], [], timeout)
        if not r:
            return False
        try:
            data = os.read(self.master, 65536)
        except OSError as e:
            if e.errno == errno.EIO:
                return False
            raise
        self.screen += data
        return bool(data)

    def pending(self):
        return self.screen[self.pos:].decode("utf-8", "replace")

    def send(self, text):
        self.sent.append(text)
        self.last_send = time.time()
        os.write(self.master, text.encode("utf-8"))

    def interact(self, answers, timeout=60, quiet=1.5):
        """Answer prompts until the process exits.

        answers: list of (name, regex, reply) where reply is a string or a
        callable(term) -> string.  A prompt is recognised when the unread
        terminal output ends with the regex.  Returns the list of prompt
        names answered, in order.  Unknown prompts (output ending in ': ' that
        stays quiet) kill the process and fail the check.
        """
        seen = []
        deadline = time.time() + timeout
        last_data = time.time()
        while True:
            if time.time() > deadline:
                self.kill()
                raise CheckFailed("timed out after %ss waiting for the program; prompts so far %r"
                                  % (timeout, seen), self.transcript())
            got = self._read(0.1)
            if got:
                last_data = time.time()
            text = self.pending()
            matched = False
            for name, rx, reply in answers:
                if re.search(rx + r"\s*$", text):
                    seen.append(name)
                    self.pos = len(self.screen)
                    self.send((reply(self) if callable(reply) else reply) + "\n")
                    matched = True
                    break
            if matched:
                continue
            if self.proc.poll() is not None and not got:
                self.exited_at = self.exited_at or time.time()
                # drain what is left
                while self._read(0.05):
                    pass
                return seen
            if (text.rstrip(" ").endswith(":") and text.endswith(" ")
                    and time.time() - last_data > quiet and self.proc.poll() is None):
                self.kill()
                raise CheckFailed("unexpected prompt %r (answered so far: %r)"
                                  % (text[-200:], seen), self.transcript())

    def expect(self, rx, timeout=30):
        deadline = time.time() + timeout
        while True:
            m = re.search(rx, self.pending())
            if m:
                self.pos += len(self.pending()[:m.end()].encode("utf-8"))
                return m
            if time.time() > deadline or (self.proc.poll() is not None and not self._read(0.05)):
                raise CheckFailed("did not see %r on the terminal" % rx, self.transcript())
            self._read(0.1)

    def wait(self, timeout=60):
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise CheckFailed("process did not exit within %ss" % timeout, self.transcript())
        self.exited_at = self.exited_at or time.time()
        LIVE.discard(self)
        # Nothing the program started may keep its terminal or its pipes (a
        # refresher must be fully detached): else `login` in a script or
        # behind `curl | python3 -` would not return.  Looked at before our
        # own slave fd is closed, so the pty name cannot have been reused.
        holders = fd_holders(self.held)
        for t in self._threads:
            t.join(5)
        open_pipes = [t for t in self._threads[:2] if t.is_alive()]
        while self._read(0.02):
            pass
        os.close(self.slave)
        os.close(self.master)
        self.rc = rc
        self.stdout = b"".join(self.out).decode("utf-8", "replace")
        self.stderr = b"".join(self.err).decode("utf-8", "replace")
        with open(os.path.join(STATE, "transcripts.log"), "a") as f:
            f.write("=== exit %s\n%s\n\n" % (rc, self.transcript()))
        need(not holders, "after the program exited, other processes still hold its terminal "
             "or pipes: %s" % ", ".join("pid %d fd %s -> %s (%s)" % (pid, fd, link, proc_cmdline(pid))
                                       for pid, fd, link in holders), self.transcript())
        need(not open_pipes, "stdout/stderr of the program still open 5 s after it exited",
             self.transcript())
        return rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        LIVE.discard(self)

    def transcript(self):
        return ("command: %s\n--- terminal ---\n%s\n--- typed ---\n%r\n--- stdout ---\n%s\n--- stderr ---\n%s"
                % (" ".join(self.argv), self.screen.decode("utf-8", "replace"), self.sent,
                   b"".join(self.out).decode("utf-8", "replace"),
                   b"".join(self.err).decode("utf-8", "replace")))


# --------------------------------------------------------------------------
# Processes (/proc): who holds what, refreshers, cleanup
# --------------------------------------------------------------------------

def _pids():
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def fd_holders(targets, exclude=None):
    """(pid, fd, link) of every process but us with an fd open on one of ``targets``
    (paths such as /dev/pts/3, or "pipe:[inode]")."""
    exclude = {os.getpid()} if exclude is None else exclude
    found = []
    for pid in _pids():
        if pid in exclude:
            continue
        try:
            fds = os.listdir("/proc/%d/fd" % pid)
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if link in targets:
                found.append((pid, fd, link))
    return found


def proc_stat(pid):
    """dict(state, ppid, pgrp, sid, tty_nr) from /proc/PID/stat, or None if there is no such pid."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return {"state": fields[0], "ppid": int(fields[1]), "pgrp": int(fields[2]),
            "sid": int(fields[3]), "tty_nr": int(fields[4]),
            "starttime": fields[22 - 3]}      # clock ticks since boot


def ns_pids(pid):
    """``pid``'s number in each PID namespace it is in, outermost first (NSpid)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("NSpid:"):
                    return [int(n) for n in line.split()[1:]]
    except OSError:
        pass
    return []


def boot_id():
    with open("/proc/sys/kernel/random/boot_id") as f:
        return f.read().strip()


def proc_alive(pid):
    st = proc_stat(pid)
    return st is not None and st["state"] not in ("Z", "X")


def proc_env(pid):
    try:
        with open("/proc/%d/environ" % pid, "rb") as f:
            data = f.read()
    except OSError:
        return {}
    return dict(kv.decode("utf-8", "replace").split("=", 1)
                for kv in data.split(b"\0") if b"=" in kv)


def proc_cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        return "?"


def proc_fds(pid):
    out = {}
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                out[int(fd)] = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                pass
    except OSError:
        pass
    return out


def gone_or_zombie(pid, timeout=3.0):
    """True once ``pid`` has exited (reaped, or a zombie of whoever inherited it)."""
    deadline = time.time() + timeout
    while proc_alive(pid):
        if time.time() > deadline:
            return False
        time.sleep(0.05)
    return True


def stop_pid(pid):
    try:
        os.kill(pid, signal.SIGTERM)
    except OSError:
        return
    if not gone_or_zombie(pid, 3.0):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
        gone_or_zombie(pid, 2.0)


def cleanup_homes():
    """Stop every process still running for the Homes of the check that just ended:
    the refreshers named by the pid files in their run dirs, and anything else
    whose environment has one of their AWSCLI_LOGIN_ROOTs (a refresher whose
    pid file is gone).  A pid is only killed when its environment says it is
    ours, so a recycled pid is never hit."""
    for home in list(HOMES):
        try:
            for pid in home.leftover_pids():
                stop_pid(pid)
                RESULTS["cleaned"] += 1
        except Exception:
            print("    | cleanup of %s failed:\n%s" % (home.dir, indent(traceback.format_exc())),
                  flush=True)
    del HOMES[:]


# --------------------------------------------------------------------------
# Helpers: environment, files, STS records, AWS CLI, xmlsec1
# --------------------------------------------------------------------------

class Home(object):
    """A fresh HOME with the tool's and the AWS CLI's files inside it."""

    def __init__(self, label, python=None, keyring=False):
        self.dir = tempfile.mkdtemp(prefix=re.sub(r"\W+", "-", label) + "-",
                                    dir=os.path.join(STATE, "homes"))
        self.python = python
        self.creds = os.path.join(self.dir, ".aws", "credentials")
        self.awsconf = os.path.join(self.dir, ".aws", "config")
        self.root = os.path.join(self.dir, ".aws-login")
        self.env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": self.dir,
            "LANG": "C.UTF-8",
            "TERM": "xterm",
            "AWSCLI_LOGIN_ROOT": self.dir,     # awscli-login's: it stands for the home
            "AWS_SHARED_CREDENTIALS_FILE": self.creds,
            "AWS_CONFIG_FILE": self.awsconf,
            "AWS_ENDPOINT_URL_STS": STS_URL,
            "AWS_DEFAULT_REGION": REGION,
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        if keyring:
            ver = python_version(python)
            kdir = KEYRING_DIRS.get(ver)
            if not kdir:
                raise Skip("no keyring install for Python %s (interop/run installs one per "
                           "interop/pins/keyring-py%s.txt; installed: %s)"
                           % (ver, ver, ", ".join(sorted(KEYRING_DIRS)) or "none"))
            self.env["PYTHONPATH"] = kdir
            self.env["PYTHON_KEYRING_BACKEND"] = "keyrings.alt.file.PlaintextKeyring"
            self.env["XDG_DATA_HOME"] = os.path.join(self.dir, ".local", "share")
        HOMES.append(self)

    def pid_file(self, profile):
        return os.path.join(self.root, "run", profile + ".pid")

    def refresher(self, profile):
        """(pid, next renewal epoch, locked, fields) from the profile's pid file, or
        None; fields: host, boot_id, start_time, role (the lines after the first)."""
        import fcntl
        try:
            fd = os.open(self.pid_file(profile), os.O_RDONLY)
        except OSError:
            return None
        try:
            text = os.read(fd, 200).decode("ascii", "replace")
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                locked = False
            except OSError:
                locked = True
        finally:
            os.close(fd)
        m = re.match(r"(\d+) (\d+)\n((?:(?:host|boot_id|start_time|role) [ -~]+\n)*)$", text)
        need(m is not None, "pid file %s is not 'PID NEXT_RENEWAL_EPOCH' and 'KEY VALUE' "
             "lines: %r" % (self.pid_file(profile), text))
        fields = dict(line.split(" ", 1) for line in m.group(3).splitlines())
        return int(m.group(1)), int(m.group(2)), locked, fields

    def owns(self, pid):
        return proc_env(pid).get("AWSCLI_LOGIN_ROOT") == self.dir

    def leftover_pids(self):
        pids = set()
        run = os.path.join(self.root, "run")
        for name in (os.listdir(run) if os.path.isdir(run) else []):
            if name.endswith(".pid"):
                try:
                    with open(os.path.join(run, name)) as f:
                        pids.add(int(f.read().split()[0]))
                except (OSError, ValueError, IndexError):
                    pass
        pids.update(p for p in _pids() if p != os.getpid() and self.owns(p))
        return sorted(p for p in pids if proc_alive(p) and self.owns(p))

    def tool(self, *args, **kw):
        """Start `python aws_login.py ARGS` on a pty."""
        return Terminal([self.python, TOOL] + list(args), self.env, **kw)

    def run_tool(self, *args, answers=(), timeout=60, **kw):
        t = self.tool(*args, **kw)
        seen = t.interact(list(answers), timeout=timeout)
        t.wait()
        t.seen = seen
        return t

    def read(self, path):
        try:
            with open(path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def write(self, path, data):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)


_versions = {}


def python_version(python):
    if python not in _versions:
        _versions[python] = subprocess.check_output(
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"]).decode().strip()
    return _versions[python]


def records():
    return sorted(f for f in os.listdir(RECORDS) if f.endswith(".json"))


def new_records(before, action=None):
    out = []
    for name in records():
        if name in before:
            continue
        with open(os.path.join(RECORDS, name)) as f:
            rec = json.load(f)
        if action is None or rec.get("action") == action:
            out.append(rec)
    return out


def caller_identity(home, profile):
    """The AWS CLI without a terminal (its own session: a credential_process
    that needed to ask would fail rather than wait for a person)."""
    p = subprocess.run([AWS, "sts", "get-caller-identity", "--profile", profile, "--output", "json"],
                       env=home.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, start_new_session=True, timeout=60)
    out, err = p.stdout.decode(), p.stderr.decode()
    arn = None
    if p.returncode == 0:
        try:
            arn = json.loads(out)["Arn"]
        except Exception:
            pass
    return p.returncode, arn, out + err


def xmlsec_verify(path, id_attrs, node_xpath=None):
    cmd = ["xmlsec1", "--verify", "--pubkey-cert-pem", SIGNING_CERT]
    for a in id_attrs:
        cmd += ["--id-attr:ID", a]
    if node_xpath:
        cmd += ["--node-xpath", node_xpath]
    cmd.append(path)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = p.stdout.decode("utf-8", "replace")
    # --pubkey-cert-pem trusts the key; xmlsec1 still complains that the
    # self-signed cert in KeyInfo has no CA: noise, drop it from reports
    out = "\n".join(l for l in out.splitlines() if "msg=self-signed certificate" not in l)
    ok = p.returncode == 0 and re.search(r"^OK$", out, re.M) is not None
    return ok, " ".join(cmd) + "\n" + out


ASSERTION_ID = SAML_A + ":Assertion"
RESPONSE_ID = SAML_P + ":Response"
ASSERTION_SIG_XPATH = "//*[local-name()='Assertion']/*[local-name()='Signature']"
RESPONSE_SIG_XPATH = "/*[local-name()='Response']/*[local-name()='Signature']"


def check_signatures(xml_bytes, label, response_signed):
    """Verify what reached STS against the IdP signing cert; plus a negative control."""
    d = os.path.join(STATE, "saml")
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, label + ".xml")
    with open(path, "wb") as f:
        f.write(xml_bytes)
    text = xml_bytes.decode("utf-8", "replace")
    need(re.match(r"\s*(<\?xml[^>]*\?>\s*)?<([\w.-]+:)?Response\b", text) is not None,
         "SAMLAssertion is not a samlp:Response element", text[:400])
    need("Envelope" not in text.split(">", 1)[0], "SAMLAssertion is a SOAP envelope")
    if not response_signed:
        # the exact command from the brief: first Signature = the Assertion's
        ok, out = xmlsec_verify(path, [ASSERTION_ID])
        need(ok, "assertion signature does not verify", out)
    else:
        ok, out = xmlsec_verify(path, [RESPONSE_ID])
        need(ok, "response signature does not verify (--id-attr Response)", out)
        ok, out = xmlsec_verify(path, [RESPONSE_ID, ASSERTION_ID])
        need(ok, "response signature does not verify (--id-attr Response + Assertion)", out)
        ok, out = xmlsec_verify(path, [ASSERTION_ID, RESPONSE_ID], node_xpath=ASSERTION_SIG_XPATH)
        need(ok, "assertion signature (inside a signed response) does not verify", out)
    # negative control: the verifier must notice a changed role
    tampered = os.path.join(d, label + "-tampered.xml")
    with open(tampered, "w") as f:
        f.write(text.replace("role/Admin,", "role/Hacker,").replace("role/ReadOnly", "role/Hacker"))
    ok, out = xmlsec_verify(tampered, [ASSERTION_ID, RESPONSE_ID], node_xpath=ASSERTION_SIG_XPATH)
    need(not ok, "negative control: tampered assertion still verifies", out)


def saml_from_record(rec):
    return base64.b64decode(rec["form"]["SAMLAssertion"])


def ssl_ctx():
    return ssl.create_default_context(cafile=CA)


AUTHN = open(os.path.join(HERE, "authnrequest.xml"), "rb").read()


def ecp_post(url, user=None, password=None, jar=None, context=None):
    import http.cookiejar
    headers = {"Content-Type": "text/xml"}
    if user:
        headers["Authorization"] = "Basic " + base64.b64encode(
            ("%s:%s" % (user, password)).encode()).decode()
    handlers = [urllib.request.HTTPSHandler(context=context or ssl_ctx())]
    if jar is not None:
        handlers.append(urllib.request.HTTPCookieProcessor(jar))
    opener = urllib.request.build_opener(*handlers)
    req = urllib.request.Request(url, data=AUTHN, headers=headers, method="POST")
    try:
        with opener.open(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:     # an answer too: callers check status and body
        return e.code, e.read()


def extract_response(envelope):
    """Cut the samlp:Response element out of the SOAP envelope, bytes untouched
    (SimpleSAMLphp declares samlp/saml on the element itself)."""
    m = re.search(rb"<(samlp:)?Response\b.*</(samlp:)?Response>", envelope, re.S)
    need(m is not None, "no samlp:Response in the IdP answer", envelope[:500])
    return m.group(0)


# --------------------------------------------------------------------------
# Infrastructure checks
# --------------------------------------------------------------------------

def infra_idp_a():
    status, body = ecp_post(IDP_A, "alice", "alice-pass")
    need(status == 200, "HTTP %s" % status, body[:800])
    need(b"status:Success" in body, "no Success status", body[:800])
    need(b"role/Admin,arn:aws:iam::123456789012:saml-provider/IdP" in body, "no Role attribute",
         body[:2000])
    check_signatures(extract_response(body), "infra-alice-a", response_signed=False)


def infra_idp_tls():
    try:
        ecp_post(IDP_A, "alice", "alice-pass", context=ssl.create_default_context())
    except urllib.error.URLError as e:
        need("CERTIFICATE_VERIFY_FAILED" in str(e), "unexpected error %r" % e)
        return
    raise CheckFailed("HTTPS to the IdP verified without the test CA")


def infra_idp_wrong_password():
    status, body = ecp_post(IDP_A, "alice", "WRONG")
    need(status == 200 and b"status:Responder" in body and b"WRONGUSERPASS" in body,
         "expected HTTP 200 + Responder/WRONGUSERPASS", status, body[:800])


def infra_idp_b():
    import http.cookiejar
    jar = http.cookiejar.CookieJar()
    status, body = ecp_post(IDP_B, "bob", "bob-pass", jar=jar)
    need(status == 200 and b"status:Success" in body, "login failed: HTTP %s" % status, body[:800])
    check_signatures(extract_response(body), "infra-bob-b", response_signed=True)
    status, body = ecp_post(IDP_B, jar=jar)
    need(b"status:Success" in body, "IdP B: no session reuse with cookies (HTTP %s, cookies %r)"
         % (status, sorted(c.name for c in jar)), body[:800])
    jar = http.cookiejar.CookieJar()
    ecp_post(IDP_A, "bob", "bob-pass", jar=jar)
    status, body = ecp_post(IDP_A, jar=jar)
    need(b"status:Responder" in body, "IdP A: cookies stood in for the password (ForceAuthn off?): "
         "HTTP %s" % status, body[:800])


def sts_assume(resp, role, provider, duration=None):
    form = [("Action", "AssumeRoleWithSAML"), ("Version", "2011-06-15"), ("RoleArn", role),
            ("PrincipalArn", provider), ("SAMLAssertion", base64.b64encode(resp).decode())]
    if duration:
        form.append(("DurationSeconds", str(duration)))
    status, body = http_post(STS_URL + "/", urllib.parse.urlencode(form).encode(),
                             {"Content-Type": "application/x-www-form-urlencoded"})
    if status != 200:
        raise StsRefused(status, body)
    return body.decode()


class StsRefused(CheckFailed):
    """A non-200 answer of STS (through the proxy) to sts_assume."""

    def __init__(self, status, body):
        CheckFailed.__init__(self, "STS (through the proxy) answered AssumeRoleWithSAML with "
                             + seen(status, body))
        self.status, self.body = status, body


def expiration_in(answer):
    m = re.search(r"<Expiration>(.*?)</Expiration>", answer)
    need(m is not None, "no <Expiration> in the STS answer", answer[:2000])
    return iso_epoch(m.group(1))


def iso_epoch(text):
    """2026-11-27T10:04:44Z or 2026-11-27T10:04:44.734882Z -> epoch seconds (float)."""
    import calendar
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|\+00:00)$", text.strip())
    need(m is not None, "not a UTC timestamp: %r" % text)
    return calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")) + float(m.group(2) or 0)


def infra_idp_dave():
    status, body = ecp_post(IDP_A, "dave", "dave-pass")
    need(b"status:Success" in body, "dave login failed: HTTP %s" % status, body[:800])
    need(re.search(rb"SessionDuration.*?>900<", body, re.S), "no SessionDuration 900 for dave")
    status, body = ecp_post(IDP_A, "erin", "erin-pass")
    need(b"status:Success" in body, "erin login failed: HTTP %s" % status, body[:800])
    need(re.search(rb"SessionDuration.*?>20<", body, re.S), "no SessionDuration 20 for erin")
    # Both ask STS for 900 s, as aws_login does (it clamps SessionDuration to
    # 900..43200).  The proxy drops DurationSeconds for erin's role only and
    # moto takes the assertion's SessionDuration: erin's credentials live 20 s.
    before = records()
    t0 = time.time()
    answer = sts_assume(extract_response(body), SHORT_LIVED_ROLE,
                        "arn:aws:iam::123456789012:saml-provider/IdP", 900)
    left = expiration_in(answer) - t0
    need(10 <= left <= 30, "erin's credentials expire in %.0fs, expected about 20" % left, answer)
    rec = new_records(before, "AssumeRoleWithSAML")
    need(len(rec) == 1 and rec[0]["form"].get("DurationSeconds") == "900"
         and rec[0].get("dropped_duration_seconds") == "900",
         "proxy record for erin: DurationSeconds not sent as 900 or not dropped", rec)
    status, body = ecp_post(IDP_A, "dave", "dave-pass")
    before = records()
    t0 = time.time()
    answer = sts_assume(extract_response(body), "arn:aws:iam::123456789012:role/Refresher",
                        "arn:aws:iam::123456789012:saml-provider/IdP", 900)
    left = expiration_in(answer) - t0
    need(880 <= left <= 920, "dave's credentials expire in %.0fs, expected 900" % left, answer)
    rec = new_records(before, "AssumeRoleWithSAML")
    need(len(rec) == 1 and "dropped_duration_seconds" not in rec[0],
         "proxy dropped DurationSeconds for a role that is not the short-lived one", rec)


def infra_sts():
    status, body = ecp_post(IDP_B, "bob", "bob-pass")
    resp = extract_response(body)
    before = records()
    form = urllib.parse.urlencode({
        "Action": "AssumeRoleWithSAML", "Version": "2011-06-15",
        "RoleArn": "arn:aws:iam::210987654321:role/ReadOnly",
        "PrincipalArn": "arn:aws:iam::210987654321:saml-provider/IdP",
        "SAMLAssertion": base64.b64encode(resp).decode()}).encode()
    status, body = http_post(STS_URL + "/", form,
                             {"Content-Type": "application/x-www-form-urlencoded"})
    need(status == 200, "AssumeRoleWithSAML (bob, ReadOnly) through the proxy: " + seen(status, body))
    answer = body.decode("utf-8", "replace")
    keys = {}
    for k in ("AccessKeyId", "SecretAccessKey", "SessionToken"):
        m = re.search("<%s>(.*?)</%s>" % (k, k), answer)
        need(m is not None, "no <%s> in STS's answer: %s" % (k, seen(status, body)))
        keys[k] = m.group(1)
    recs = new_records(before, "AssumeRoleWithSAML")
    need(len(recs) == 1, "proxy recorded %d AssumeRoleWithSAML" % len(recs))
    need(saml_from_record(recs[0]) == resp, "recorded SAMLAssertion differs from what was sent")
    need("forwarded_body_b64" in recs[0], "proxy did not reduce the two-role assertion")
    home = Home("infra-sts")
    home.write(home.creds, ("[p]\naws_access_key_id = %(AccessKeyId)s\naws_secret_access_key = "
                            "%(SecretAccessKey)s\naws_session_token = %(SessionToken)s\n" % keys).encode())
    rc, arn, out = caller_identity(home, "p")
    need(rc == 0 and arn == BOB_READONLY_ARN, "aws sts get-caller-identity gave %r" % arn, out)
    # a role the assertion does not grant: refused like real STS
    form = form.replace(b"ReadOnly", b"Other")
    status, body = http_post(STS_URL + "/", form,
                             {"Content-Type": "application/x-www-form-urlencoded"})
    need(status == 403 and b"AccessDenied" in body, "a role not in the assertion: expected 403 "
         "AccessDenied, got " + seen(status, body))


def infra_pty():
    prog = ("import getpass,sys\n"
            "w=open('/dev/tty','w'); r=open('/dev/tty')\n"
            "w.write('Name: '); w.flush(); n=r.readline().strip()\n"
            "p=getpass.getpass('Password: ')\n"
            "print(n, p); sys.stderr.write('ok\\n')\n")
    t = Terminal([sys.executable, "-c", prog], {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
    seen = t.interact([("name", r"Name: ", "zed"), ("password", r"Password: ", "s3cret")], timeout=20)
    t.wait()
    need(seen == ["name", "password"], "prompts seen %r" % seen, t.transcript())
    need(t.stdout.strip() == "zed s3cret" and t.stderr.strip() == "ok", "wrong output", t.transcript())
    need(b"s3cret" not in t.screen, "no-echo password was echoed", t.transcript())
    need(b"zed" in t.screen, "typed name not echoed on the terminal", t.transcript())


# --------------------------------------------------------------------------
# Tool checks (the real aws_login.py)
# --------------------------------------------------------------------------

def answers_for(password=None, username=None, selection=None, factor=""):
    a = []
    if password is not None:
        a.append(("password", r"Password: ", password))
    if username is not None:
        a.append(("username", r"Username \[[^\]]*\]: ", username))
    if selection is not None:
        a.append(("selection", r"Selection: ", str(selection)))
    a.append(("factor", r"Factor: ", factor))
    return a


def configure_flags(home, profile, endpoint, username, *extra):
    t = home.run_tool("--profile", profile, "configure", "--ecp-endpoint-url", endpoint,
                      "--username", username, "--ca-bundle", CA, *extra)
    need(t.rc == 0, "configure with flags: exit %s" % t.rc, t.transcript())
    need(not t.seen, "configure with flags prompted %r" % t.seen, t.transcript())
    return t


def login_ok(home, profile, answers, *args):
    before = records()
    t = home.run_tool("--profile", profile, "login", *args, answers=answers)
    need(t.rc == 0, "login exit %s" % t.rc, t.transcript())
    need(any(l.startswith("Logged in") for l in t.stderr.splitlines()),
         "no 'Logged in' line on stderr", t.transcript())
    t.records = new_records(before, "AssumeRoleWithSAML")
    return t


def creds_section(home, profile):
    text = (home.read(home.creds) or b"").decode()
    m = re.search(r"^\[%s\]\s*$(.*?)(?=^\[|\Z)" % re.escape(profile), text, re.M | re.S)
    return m.group(1) if m else None


def need_creds(home, profile):
    sec = creds_section(home, profile)
    need(sec is not None, "no [%s] in the credentials file" % profile, home.read(home.creds))
    for k in ("aws_access_key_id", "aws_secret_access_key", "aws_session_token"):
        need(re.search(r"^%s\s*=\s*\S" % k, sec, re.M), "no %s in [%s]" % (k, profile), sec)
    mode = os.stat(home.creds).st_mode & 0o777
    need(mode & 0o077 == 0, "credentials file has mode %o (readable by others)" % mode)


CONFIGURE_PROMPTS = [
    ("endpoint", r"ECP Endpoint URL \[[^\]]*\]: "),
    ("username", r"Username \[[^\]]*\]: "),
    ("keyring", r"Enable Keyring \[[^\]]*\]: "),
    ("factor", r"Duo Factor \[[^\]]*\]: "),
    ("role", r"Role ARN \[[^\]]*\]: "),
    ("region", r"Region \[[^\]]*\]: "),
    ("credential_process", r"Use credential_process \[[^\]]*\]: "),
]


def configure_prompts(**replies):
    """configure's seven prompts; Enter (keep the value) unless a reply is given by name."""
    return [(name, rx, replies.get(name, "")) for name, rx in CONFIGURE_PROMPTS]


REFRESHER_RX = r"A refresher \(pid (\d+)\) renews them\."


def refresher_pid_from(t):
    m = re.search(REFRESHER_RX, t.stderr)
    need(m is not None, "no 'A refresher (pid N) renews them.' in the login message", t.transcript())
    return int(m.group(1))


def need_refresher(home, profile, pid):
    """The pid file names ``pid`` and is locked by it; the process runs."""
    state = home.refresher(profile)
    need(state is not None, "no pid file %s" % home.pid_file(profile))
    need(state[0] == pid, "pid file names pid %d, the login message %d" % (state[0], pid))
    need(state[2], "pid file %s is not locked (the refresher holds a lock while it lives)"
         % home.pid_file(profile))
    need(proc_alive(pid) and home.owns(pid), "refresher pid %d is not running" % pid)
    return state


def need_stopped(home, profile, pid, what):
    need(gone_or_zombie(pid, 3.0), "%s: refresher pid %d still running (%s)"
         % (what, pid, proc_cmdline(pid)))
    need(not os.path.exists(home.pid_file(profile)), "%s: pid file %s left behind"
         % (what, home.pid_file(profile)))


def need_detached(pid, home, term):
    """Nothing of the login's terminal, pipes, session or working directory."""
    # it reports its pid, then execs its own small interpreter: look once that
    # one runs (mid-exec, the dynamic loader holds libc open for a moment)
    deadline = time.time() + 15
    while "_refresher_loop" not in proc_cmdline(pid) and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(0.2)
    st = proc_stat(pid)
    need(st is not None, "refresher pid %d does not exist" % pid)
    need(st["tty_nr"] == 0, "refresher %d has a controlling terminal (tty_nr %#x)" % (pid, st["tty_nr"]))
    need(st["sid"] not in (term.proc.pid, os.getsid(0)),
         "refresher %d is still in the login's session (sid %d)" % (pid, st["sid"]))
    fds = proc_fds(pid)
    bad = dict((fd, link) for fd, link in fds.items()
               if link != "/dev/null" and not link.startswith(home.root + os.sep))
    need(not bad, "refresher %d holds fds other than /dev/null and its own files: %r" % (pid, bad))
    need(fds.get(0) == "/dev/null", "refresher stdin is %r, not /dev/null" % fds.get(0))
    try:
        cwd = os.readlink("/proc/%d/cwd" % pid)
    except OSError:
        cwd = "?"
    need(cwd == "/", "refresher %d has cwd %r (keeps a directory busy), expected /" % (pid, cwd))


def status_row(home, profile):
    t = home.run_tool("--profile", profile, "status", "--output", "json")
    need(t.rc == 0, "status exit %s" % t.rc, t.transcript())
    try:
        rows = json.loads(t.stdout)
    except ValueError:
        raise CheckFailed("status --output json is not JSON", t.transcript())
    row = [r for r in rows if r.get("profile") == profile]
    need(len(row) == 1, "status lists profile %s %d times" % (profile, len(row)), t.stdout)
    return row[0]


def access_log():
    """The IdPs' Apache access log lines (Basic-auth user, port) so far."""
    try:
        with open(IDP_ACCESS_LOG, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        m = re.match(r"\S+ \S+ (\S+) \[.*?\] \"(\S+) (\S+).*?\" \d+ \S+ (\d+)$", line)
        if m:
            out.append({"user": m.group(1), "method": m.group(2), "path": m.group(3),
                        "port": int(m.group(4))})
    return out


def signing_key(rec):
    """The access key id a SigV4-signed request (AWS CLI) was signed with."""
    m = re.search(r"Credential=(\w+)/", rec.get("headers", {}).get("Authorization", ""))
    return m.group(1) if m else None


def issued_key(rec):
    m = re.search(r"<AccessKeyId>(\w+)</AccessKeyId>", rec.get("response", ""))
    return m.group(1) if m else None


def creds_value(home, profile, key):
    sec = creds_section(home, profile) or ""
    m = re.search(r"^%s\s*=\s*(\S+)" % re.escape(key), sec, re.M)
    return m.group(1) if m else None


def aws_on_terminal(home, profile, answers, timeout=90):
    """aws sts get-caller-identity on a pty: a credential_process it runs may ask there."""
    t = Terminal([AWS, "sts", "get-caller-identity", "--profile", profile, "--output", "json"],
                 home.env)
    t.seen = t.interact(answers, timeout=timeout)
    t.wait()
    t.arn = None
    if t.rc == 0:
        try:
            t.arn = json.loads(t.stdout)["Arn"]
        except (ValueError, KeyError):
            pass
    return t


NO_CREDENTIALS_RX = r"Unable to locate credentials|could not be found|Partial credentials"


def tool_1_configure_login(py):
    """configure through the prompts, login alice over HTTPS, aws sts get-caller-identity."""
    home = Home("t1", py)
    # No CA known yet: configure tries the endpoint after it is given, finds its
    # certificate untrusted and asks for the CA bundle, then goes on.
    answers = configure_prompts(endpoint=IDP_A, username="alice")
    answers.insert(1, ("ca_bundle", r"CA Bundle \[None\]: ", CA))
    t = home.run_tool("--profile", "p1", "configure", answers=answers)
    need(t.rc == 0, "configure exit %s" % t.rc, t.transcript())
    need(t.seen == [name for name, _, _ in answers],
         "configure prompts %r" % t.seen, t.transcript())
    for rx in (r"ECP Endpoint URL \[None\]: ", r"not trusted", r"CA Bundle \[None\]: ",
               r"Username \[None\]: ", r"Enable Keyring \[False\]: ",
               r"Duo Factor \[None\]: ", r"Role ARN \[None\]: ", r"Region \[None\]: ",
               r"Use credential_process \[False\]: "):
        need(re.search(rx, t.screen.decode()), "prompt %r not shown as in the contract" % rx, t.transcript())
    need(t.stdout == "", "configure wrote to stdout", t.transcript())
    # Enter at the last prompt keeps file mode, and no region was given: the AWS
    # config is not touched
    need("Mode: file" in t.stderr, "configure did not report file mode", t.transcript())
    need(home.read(home.awsconf) is None, "file-mode configure wrote the AWS config",
         home.read(home.awsconf))
    # with flags, configure asks nothing (and tries nothing)
    t = home.run_tool("--profile", "p1", "configure", "--ca-bundle", CA)
    need(t.rc == 0 and not t.seen, "configure --ca-bundle: exit %s, prompts %r" % (t.rc, t.seen), t.transcript())
    conf = (home.read(os.path.join(home.root, "config")) or b"").decode()
    for opt, val in (("ecp_endpoint_url", IDP_A), ("username", "alice"), ("ca_bundle", CA)):
        need(re.search(r"^%s\s*=\s*%s\s*$" % (opt, re.escape(val)), conf, re.M),
             "config lacks %s = %s" % (opt, val), conf)
    t = login_ok(home, "p1", answers_for(password="alice-pass"))
    need(t.seen.count("password") == 1 and "username" not in t.seen,
         "login prompts %r" % t.seen, t.transcript())
    need(b"alice-pass" not in t.screen, "password echoed on the terminal", t.transcript())
    need("alice-pass" not in t.stdout + t.stderr, "password printed", t.transcript())
    need(t.stdout == "", "login wrote to stdout", t.transcript())
    need_creds(home, "p1")
    rc, arn, out = caller_identity(home, "p1")
    need(rc == 0 and arn == ALICE_ARN, "get-caller-identity: rc %s arn %r" % (rc, arn), out)
    need(len(t.records) == 1, "%d AssumeRoleWithSAML calls recorded" % len(t.records))
    form = t.records[0]["form"]
    need(form.get("RoleArn") == "arn:aws:iam::123456789012:role/Admin"
         and form.get("PrincipalArn") == "arn:aws:iam::123456789012:saml-provider/IdP",
         "STS got RoleArn %r PrincipalArn %r" % (form.get("RoleArn"), form.get("PrincipalArn")))
    check_signatures(saml_from_record(t.records[0]), "t1-%s" % python_version(py), response_signed=False)


def tool_2_signed_response(py):
    """IdP B signs the whole Response: the assertion that reaches STS still verifies."""
    home = Home("t2", py)
    configure_flags(home, "p2", IDP_B, "alice")
    t = login_ok(home, "p2", answers_for(password="alice-pass"))
    need(len(t.records) == 1, "%d AssumeRoleWithSAML calls recorded" % len(t.records))
    check_signatures(saml_from_record(t.records[0]), "t2-%s" % python_version(py), response_signed=True)
    rc, arn, out = caller_identity(home, "p2")
    need(rc == 0 and arn == ALICE_ARN, "get-caller-identity: rc %s arn %r" % (rc, arn), out)


MENU_RX = (r"Please choose the role you would like to assume:\s*\r?\n"
           r"\s+Account: 123456789012\s*\r?\n"
           r"\s+\[ 0 \]: Admin\s*\r?\n"
           r"\s+Account: 210987654321\s*\r?\n"
           r"\s+\[ 1 \]: ReadOnly\s*\r?\n"
           r"Selection: ")


def tool_3_role_menu(py):
    """bob: menu grouped by account, choose ReadOnly in 210987654321."""
    home = Home("t3", py)
    configure_flags(home, "p3", IDP_A, "bob")
    t = login_ok(home, "p3", answers_for(password="bob-pass", selection=1))
    need(t.seen.count("selection") == 1, "prompts %r" % t.seen, t.transcript())
    need(re.search(MENU_RX, t.screen.decode("utf-8", "replace")), "menu not as in the contract",
         t.transcript())
    need(len(t.records) == 1, "%d AssumeRoleWithSAML calls recorded" % len(t.records))
    form = t.records[0]["form"]
    need(form.get("RoleArn") == "arn:aws:iam::210987654321:role/ReadOnly"
         and form.get("PrincipalArn") == "arn:aws:iam::210987654321:saml-provider/IdP",
         "STS got RoleArn %r PrincipalArn %r" % (form.get("RoleArn"), form.get("PrincipalArn")))
    rc, arn, out = caller_identity(home, "p3")
    need(rc == 0 and arn == BOB_READONLY_ARN, "get-caller-identity: rc %s arn %r" % (rc, arn), out)
    # the assertion bob's client sent holds both roles and still verifies
    saml = saml_from_record(t.records[0])
    need(saml.count(b"saml-provider/IdP") == 2, "assertion sent to STS lost a role")
    check_signatures(saml, "t3-%s" % python_version(py), response_signed=False)


def tool_4_no_role(py):
    """carol has no Role: exit 6, one stderr line, credentials file untouched."""
    home = Home("t4", py)
    configure_flags(home, "p4", IDP_A, "carol")
    before = records()
    t = home.run_tool("--profile", "p4", "login", answers=answers_for(password="carol-pass"))
    need(t.rc == 6, "exit %s, expected 6" % t.rc, t.transcript())
    lines = [l for l in t.stderr.splitlines() if l.strip()]
    need(len(lines) == 1, "stderr has %d lines, expected 1" % len(lines), t.transcript())
    need(home.read(home.creds) is None, "credentials file created", home.read(home.creds))
    need(not new_records(before), "STS was called")
    # an existing credentials file stays byte-identical
    orig = b"# mine\n[other]\naws_access_key_id = AKIAOTHER\naws_secret_access_key = x\n"
    home.write(home.creds, orig)
    t = home.run_tool("--profile", "p4", "login", answers=answers_for(password="carol-pass"))
    need(t.rc == 6, "second run: exit %s" % t.rc, t.transcript())
    need(home.read(home.creds) == orig, "credentials file changed", home.read(home.creds))


def tool_5_wrong_password(py):
    """wrong password: exit 4, nothing written."""
    home = Home("t5", py)
    configure_flags(home, "p5", IDP_A, "alice")
    before = records()
    t = home.run_tool("--profile", "p5", "login", answers=answers_for(password="WRONG"))
    need(t.rc == 4, "exit %s, expected 4" % t.rc, t.transcript())
    need(home.read(home.creds) is None, "credentials file created", home.read(home.creds))
    need(not new_records(before), "STS was called")
    need(len([l for l in t.stderr.splitlines() if l.strip()]) >= 1, "no error message", t.transcript())


def keyring_call(home, code):
    p = subprocess.run([home.python, "-c", "import keyring,sys\n" + code], env=home.env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    need(p.returncode == 0, "keyring helper failed (exit %s) under %s with PYTHONPATH=%s"
         % (p.returncode, home.python, home.env.get("PYTHONPATH")),
         "stdout: " + p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace"))
    return p.stdout.decode().strip()


def tool_5k_keyring(py):
    """keyring: a stored wrong password makes the tool say so, re-prompt, store the new one."""
    home = Home("t5k", py, keyring=True)
    configure_flags(home, "p5k", IDP_A, "alice", "--enable-keyring", "true")
    user = "alice@127.0.0.1:%s" % urllib.parse.urlsplit(IDP_A).port
    keyring_call(home, "keyring.set_password('awscli_login', %r, 'stale-pass')" % user)
    t = login_ok(home, "p5k", answers_for(password="alice-pass"))
    need(t.seen.count("password") == 1, "prompts %r (expected one Password)" % t.seen, t.transcript())
    need(re.search(r"keyring", t.stderr + t.screen.decode("utf-8", "replace"), re.I),
         "the tool did not say the stored password was refused", t.transcript())
    stored = keyring_call(home, "print(keyring.get_password('awscli_login', %r))" % user)
    need(stored == "alice-pass", "keyring holds %r after login, expected the new password" % stored)
    # and now the keyring is enough (IdP A re-checks the password every time);
    # --force: a live refresher holds valid credentials, so a plain login
    # would answer "Already logged in" without asking the IdP
    t = login_ok(home, "p5k", answers_for(password="SHOULD-NOT-BE-ASKED"), "--force")
    need(len(t.records) == 1, "login --force: %d AssumeRoleWithSAML calls" % len(t.records),
         t.transcript())
    need("password" not in t.seen, "asked for the password although the keyring has it", t.transcript())
    rc, arn, out = caller_identity(home, "p5k")
    need(rc == 0 and arn == ALICE_ARN, "get-caller-identity: rc %s arn %r" % (rc, arn), out)


def tool_6_session_reuse(py):
    """IdP B (ForceAuthn off): second login after logout asks no password."""
    home = Home("t6", py)
    configure_flags(home, "p6", IDP_B, "alice")
    t = login_ok(home, "p6", answers_for(password="alice-pass"))
    need(t.seen.count("password") == 1, "first login prompts %r" % t.seen, t.transcript())
    pid = refresher_pid_from(t)
    t = home.run_tool("--profile", "p6", "logout")
    need(t.rc == 0, "logout exit %s" % t.rc, t.transcript())
    need(creds_section(home, "p6") is None, "section still there after logout")
    need_stopped(home, "p6", pid, "logout")
    t = login_ok(home, "p6", answers_for(password="alice-pass"))
    need("password" not in t.seen, "second login asked for the password (prompts %r)" % t.seen,
         t.transcript())
    rc, arn, out = caller_identity(home, "p6")
    need(rc == 0 and arn == ALICE_ARN, "get-caller-identity: rc %s arn %r" % (rc, arn), out)


CREDS_BEFORE = (b"# my credentials file - keep this comment\n"
                b"[other]\n"
                b"; a note about other\n"
                b"aws_access_key_id = AKIAOTHEROTHER\n"
                b"aws_secret_access_key = otherSecret/+=\n"
                b"\n"
                b"# trailing comment\n")


def tool_7_logout(py):
    """logout removes only the profile's section; get-caller-identity then fails."""
    home = Home("t7", py)
    home.write(home.creds, CREDS_BEFORE)
    configure_flags(home, "p7", IDP_A, "alice")
    t = login_ok(home, "p7", answers_for(password="alice-pass"))
    pid = refresher_pid_from(t)
    after_login = home.read(home.creds)
    need(after_login.startswith(CREDS_BEFORE) or CREDS_BEFORE.rstrip(b"\n") in after_login,
         "login changed other bytes of the file", after_login.decode())
    rc, arn, out = caller_identity(home, "p7")
    need(rc == 0 and arn == ALICE_ARN, "get-caller-identity after login: rc %s arn %r" % (rc, arn), out)
    t = home.run_tool("--profile", "p7", "logout")
    need(t.rc == 0, "logout exit %s" % t.rc, t.transcript())
    need_stopped(home, "p7", pid, "logout")
    after = home.read(home.creds)
    need(after == CREDS_BEFORE, "file after logout is not byte-identical to before login",
         "before:\n%r\nafter:\n%r" % (CREDS_BEFORE, after))
    rc, arn, out = caller_identity(home, "p7")
    need(rc != 0 and re.search(r"Unable to locate credentials|could not be found|"
                               r"Partial credentials", out),
         "get-caller-identity after logout: rc %s" % rc, out)
    rc, arn, out = caller_identity(home, "other")     # untouched, still parses
    need(rc == 0, "other profile no longer usable by the AWS CLI", out)
    t = home.run_tool("--profile", "p7", "logout")
    need(t.rc == 10, "second logout exit %s, expected 10" % t.rc, t.transcript())
    need(home.read(home.creds) == CREDS_BEFORE, "second logout changed the file")


def tool_8_bootstrap(py):
    """cat aws_login.py | python - login, through the pty: returns at once, and the
    refresher it forks holds none of the pty, the pipes or the session, and is the
    same small interpreter as from a file."""
    home = Home("t8", py)
    configure_flags(home, "p8", IDP_A, "alice")
    with open(TOOL, "rb") as f:
        src = f.read()
    before = records()
    t = Terminal([py, "-", "--profile", "p8", "login"], home.env, stdin_data=src)
    t.seen = t.interact(answers_for(password="alice-pass"))
    t.wait()    # fails if any process still holds the pty or the stdin/stdout/stderr pipes
    need(t.rc == 0, "exit %s" % t.rc, t.transcript())
    need(t.seen.count("password") == 1, "prompts %r" % t.seen, t.transcript())
    need(any(l.startswith("Logged in") for l in t.stderr.splitlines()), "no 'Logged in'", t.transcript())
    took = t.exited_at - t.last_send
    need(took < 5, "login exited %.1fs after the last answer (expected at once)" % took, t.transcript())
    need(len(new_records(before, "AssumeRoleWithSAML")) == 1, "STS not called once")
    pid = refresher_pid_from(t)
    need_refresher(home, "p8", pid)
    need_detached(pid, home, t)
    # piped in, it still starts as from a file: a fresh, small interpreter, our
    # code handed to it through a descriptor
    command = proc_cmdline(pid)
    need(command.split()[:2] != [py, "-"] and "_refresher_loop(" in command,
         "refresher is the piped program itself, not a fresh interpreter: %r" % command)
    with open("/proc/%d/status" % pid) as f:
        rss = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
    need(rss < 20000, "refresher %d uses %d kB (a fresh one uses about 12000)" % (pid, rss))
    rc, arn, out = caller_identity(home, "p8")
    need(rc == 0 and arn == ALICE_ARN, "get-caller-identity: rc %s arn %r" % (rc, arn), out)
    # logout the same way stops it
    t = Terminal([py, "-", "--profile", "p8", "logout"], home.env, stdin_data=src)
    t.interact([])
    t.wait()
    need(t.rc == 0, "cat aws_login.py | python - logout: exit %s" % t.rc, t.transcript())
    need_stopped(home, "p8", pid, "logout")


def tool_9_no_terminal(py):
    """a prompt needed without a controlling terminal: exit 11, nothing written."""
    home = Home("t9", py)
    configure_flags(home, "p9", IDP_A, "alice")
    p = subprocess.run([py, TOOL, "--profile", "p9", "login"], env=home.env, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, timeout=60)
    need(p.returncode == 11, "exit %s, expected 11" % p.returncode, p.stderr.decode())
    need(home.read(home.creds) is None, "credentials file created")


def tool_10_interrupt(py):
    """Ctrl-C at the password prompt: exit 130, nothing written, terminal echo restored."""
    home = Home("t10", py)
    configure_flags(home, "p10", IDP_A, "alice")
    t = home.tool("--profile", "p10", "login")
    t.expect(r"Password: ")
    time.sleep(0.3)
    t.send("\x03")
    rc = t.wait(30)
    need(rc == 130, "exit %s, expected 130" % rc, t.transcript())
    need(home.read(home.creds) is None, "credentials file created")


def tool_11_tls_trust(py):
    """no CA configured: exit 8, nothing written; AWS_CA_BUNDLE then suffices."""
    home = Home("t11", py)
    t = home.run_tool("--profile", "p11", "configure", "--ecp-endpoint-url", IDP_A, "--username", "alice")
    need(t.rc == 0, "configure exit %s" % t.rc, t.transcript())
    t = home.run_tool("--profile", "p11", "login", answers=answers_for(password="alice-pass"))
    need(t.rc == 8, "exit %s without the test CA, expected 8" % t.rc, t.transcript())
    need(home.read(home.creds) is None, "credentials file created")
    home.env["AWS_CA_BUNDLE"] = CA
    login_ok(home, "p11", answers_for(password="alice-pass"))
    need_creds(home, "p11")


def tool_12_aws_profile(py):
    """profile from AWS_PROFILE (no --profile); --role-arn skips the menu; unknown role exit 6."""
    home = Home("t12", py)
    home.env["AWS_PROFILE"] = "envprof"
    t = home.run_tool("configure", "--ecp-endpoint-url", IDP_A, "--username", "bob", "--ca-bundle", CA)
    need(t.rc == 0, "configure exit %s" % t.rc, t.transcript())
    conf = (home.read(os.path.join(home.root, "config")) or b"").decode()
    need(re.search(r"^\[envprof\]", conf, re.M), "configure did not use AWS_PROFILE", conf)
    before = records()
    t = home.run_tool("login", "--role-arn", "arn:aws:iam::210987654321:role/ReadOnly",
                      answers=answers_for(password="bob-pass"))
    need(t.rc == 0, "login exit %s" % t.rc, t.transcript())
    need("selection" not in t.seen, "menu shown although --role-arn was given", t.transcript())
    recs = new_records(before, "AssumeRoleWithSAML")
    need(len(recs) == 1 and recs[0]["form"].get("RoleArn") == "arn:aws:iam::210987654321:role/ReadOnly",
         "STS did not get the --role-arn role", recs and recs[0].get("form"))
    need_creds(home, "envprof")
    rc, arn, out = caller_identity(home, "envprof")
    need(rc == 0 and arn == BOB_READONLY_ARN, "get-caller-identity: rc %s arn %r" % (rc, arn), out)
    before_bytes = home.read(home.creds)
    t = home.run_tool("login", "--role-arn", "arn:aws:iam::210987654321:role/Nope",
                      answers=answers_for(password="bob-pass"))
    need(t.rc == 6, "unknown --role-arn: exit %s, expected 6" % t.rc, t.transcript())
    need(home.read(home.creds) == before_bytes, "credentials file changed")


def tool_13_refresher(py):
    """file mode: login forks a detached refresher (pid file, lock, log); a second
    login answers 'Already logged in' without IdP or STS; --force replaces the
    refresher; status shows it; logout stops it; --no-refresh and refresh=false
    start none."""
    home = Home("t13", py)
    configure_flags(home, "p13", IDP_A, "alice")
    t = login_ok(home, "p13", answers_for(password="alice-pass"))
    pid = refresher_pid_from(t)
    state = need_refresher(home, "p13", pid)
    need_detached(pid, home, t)
    # which process on which machine: logout signals only that one
    want = {"host": os.uname().nodename, "boot_id": boot_id(),
            "start_time": proc_stat(pid)["starttime"], "role": "arn:aws:iam::123456789012:role/Admin"}
    need(state[3] == want, "pid file fields %r, expected %r" % (state[3], want))
    expires = iso_epoch(creds_value(home, "p13", "aws_login_expiration") or "")
    # alice's session is 3600 s: renewal 20 minutes before expiry
    need(abs(state[1] - (expires - 1200)) <= 5, "next renewal at %d, expected %d (20 min before "
         "the expiry %d)" % (state[1], expires - 1200, expires))
    log = os.path.join(home.root, "log", "p13.log")
    need(os.path.exists(log), "no refresher log %s" % log)
    need(os.stat(log).st_mode & 0o077 == 0, "refresher log mode %o" % (os.stat(log).st_mode & 0o777))
    with open(log) as f:
        text = f.read()
    need("started for role arn:aws:iam::123456789012:role/Admin" in text,
         "refresher log lacks its start line", text)
    row = status_row(home, "p13")
    need(row["mode"] == "file" and row["logged_in"] is True
         and row["role_arn"] == "arn:aws:iam::123456789012:role/Admin"
         and row["refresher_pid"] == pid and row["refresher_alive"] is True
         and row["next_renewal"] and abs(iso_epoch(row["next_renewal"]) - state[1]) <= 1,
         "status --output json disagrees with the refresher", json.dumps(row, indent=1))

    # logged in with a live refresher: no IdP, no STS, no prompt
    before, idp_before = records(), len(access_log())
    key = creds_value(home, "p13", "aws_access_key_id")
    t = home.run_tool("--profile", "p13", "login", answers=answers_for(password="NOT-TO-BE-ASKED"))
    need(t.rc == 0, "second login exit %s" % t.rc, t.transcript())
    need(not t.seen, "second login asked %r" % t.seen, t.transcript())
    need(t.stderr.startswith("Already logged in") and "Use --force" in t.stderr,
         "second login did not say 'Already logged in ... Use --force'", t.transcript())
    need(not new_records(before), "second login called STS", new_records(before))
    need(len(access_log()) == idp_before, "second login contacted the IdP", access_log()[idp_before:])
    need(creds_value(home, "p13", "aws_access_key_id") == key, "second login changed the credentials")
    need_refresher(home, "p13", pid)

    # --force logs in again and replaces the refresher
    t = login_ok(home, "p13", answers_for(password="alice-pass"), "--force")
    need(t.seen.count("password") == 1 and len(t.records) == 1,
         "login --force: prompts %r, %d STS calls" % (t.seen, len(t.records)), t.transcript())
    need(creds_value(home, "p13", "aws_access_key_id") == issued_key(t.records[0]),
         "login --force did not write the new credentials")
    pid2 = refresher_pid_from(t)
    need(pid2 != pid, "login --force kept refresher pid %d" % pid)
    need(gone_or_zombie(pid), "the old refresher %d still runs after login --force" % pid)
    need_refresher(home, "p13", pid2)
    need(home.leftover_pids() == [pid2], "refreshers running: %r, expected only %d"
         % (home.leftover_pids(), pid2))

    t = home.run_tool("--profile", "p13", "logout")
    need(t.rc == 0, "logout exit %s" % t.rc, t.transcript())
    need_stopped(home, "p13", pid2, "logout")
    row = status_row(home, "p13")
    need(row["logged_in"] is False and row["refresher_alive"] is False,
         "status after logout", json.dumps(row, indent=1))

    # --no-refresh, and refresh = false in the profile: no refresher
    t = login_ok(home, "p13", answers_for(password="alice-pass"), "--no-refresh")
    need("refresher" not in t.stderr, "login --no-refresh mentions a refresher", t.transcript())
    need(home.refresher("p13") is None and not home.leftover_pids(),
         "login --no-refresh left a refresher: %r" % home.leftover_pids())
    t = home.run_tool("--profile", "p13", "configure", "--refresh", "false")
    need(t.rc == 0 and not t.seen, "configure --refresh false: exit %s" % t.rc, t.transcript())
    # valid credentials but no live refresher: login goes to the IdP
    t = login_ok(home, "p13", answers_for(password="alice-pass"))
    need(len(t.records) == 1, "login without a refresher: %d STS calls" % len(t.records), t.transcript())
    need("refresher" not in t.stderr, "refresh = false: login mentions a refresher", t.transcript())
    need(home.refresher("p13") is None and not home.leftover_pids(),
         "refresh = false: a refresher runs: %r" % home.leftover_pids())
    t = home.run_tool("--profile", "p13", "logout")
    need(t.rc == 0, "last logout exit %s" % t.rc, t.transcript())


AWSCONF_BEFORE = (b"# my AWS config - keep this comment\n"
                  b"[default]\n"
                  b"region = eu-west-1\n"
                  b"\n"
                  b"[profile other]\n"
                  b"; a note about other\n"
                  b"region = us-west-2\n"
                  b"output = json\n"
                  b"\n"
                  b"[profile %s]\n"
                  b"# a comment of the profile itself\n"
                  b"region = us-east-1\n"
                  b"\n"
                  b"# trailing comment\n")


def aws_config_cp(home, profile):
    """The credential_process value of [profile P] in the AWS config (configparser), or None."""
    import configparser
    cp = configparser.RawConfigParser(strict=False)
    cp.read_string((home.read(home.awsconf) or b"").decode())
    sec = "profile " + profile
    return cp.get(sec, "credential_process", fallback=None) if cp.has_section(sec) else None


def without_cp_line(data):
    return re.sub(rb"(?m)^credential_process[ \t]*=.*\r?\n", b"", data)


def tool_14_credential_process(py):
    """configure (last prompt 'true') puts the profile in process mode; the AWS CLI
    on a pty gets credentials through aws_login (password asked on the pty), the
    next call comes from the cache; login fills the cache and starts no
    refresher; configure --credential-process false restores the AWS config."""
    import shlex
    home = Home("t14", py)
    conf_before = AWSCONF_BEFORE % b"p14"
    home.write(home.awsconf, conf_before)
    configure_flags(home, "p14", IDP_A, "alice")
    t = home.run_tool("--profile", "p14", "configure",
                      answers=configure_prompts(credential_process="true"))
    need(t.rc == 0, "configure exit %s" % t.rc, t.transcript())
    need(t.seen == [name for name, _ in CONFIGURE_PROMPTS], "configure prompts %r" % t.seen,
         t.transcript())
    need(re.search(r"Use credential_process \[False\]: ", t.screen.decode()),
         "last prompt not 'Use credential_process [False]: '", t.transcript())
    need("Mode: process" in t.stderr, "configure did not report process mode", t.transcript())
    conf = home.read(home.awsconf)
    need(without_cp_line(conf) == conf_before,
         "configure changed more of the AWS config than the credential_process line",
         "before:\n%r\nafter:\n%r" % (conf_before, conf))
    command = aws_config_cp(home, "p14")
    need(command is not None, "no credential_process in [profile p14]", conf.decode())
    argv = shlex.split(command)
    need(os.path.realpath(argv[0]) == os.path.realpath(py)
         and argv[-3:] == ["--profile", "p14", "credential-process"],
         "credential_process is not '%s ... --profile p14 credential-process'" % py, command)
    need(home.read(home.creds) is None, "configure wrote a credentials file")

    # first AWS CLI call: no cache; IdP A wants the password, asked on the pty
    before = records()
    t = aws_on_terminal(home, "p14", answers_for(password="alice-pass"))
    need(t.rc == 0 and t.arn == ALICE_ARN, "aws via credential_process: rc %s arn %r" % (t.rc, t.arn),
         t.transcript())
    need(t.seen.count("password") == 1, "prompts on the pty %r" % t.seen, t.transcript())
    need(b"alice-pass" not in t.screen, "password echoed", t.transcript())
    # botocore swallows the credential_process's stderr: the tool says on the
    # terminal who asks before it asks (FINDINGS.md, finding 2, fixed in e3523da)
    need(re.search(r"aws_login: profile p14 needs you to log in again[^\n]*\n.*Password: ",
                   t.screen.decode("utf-8", "replace"), re.S),
         "the terminal does not say which profile wants the password before asking",
         t.transcript())
    sts = new_records(before, "AssumeRoleWithSAML")
    need(len(sts) == 1, "%d AssumeRoleWithSAML calls" % len(sts))
    key = issued_key(sts[0])
    gci = new_records(before, "GetCallerIdentity")
    need(len(gci) == 1 and signing_key(gci[0]) == key,
         "GetCallerIdentity not signed with the credentials from STS (%r vs %r)"
         % (gci and signing_key(gci[0]), key))
    cache = os.path.join(home.root, "cache", "p14")
    need(os.path.exists(cache), "no cache %s" % cache)
    need(os.stat(cache).st_mode & 0o077 == 0, "cache mode %o" % (os.stat(cache).st_mode & 0o777))
    need(key in home.read(cache).decode(), "the cache does not hold the credentials")
    need(home.read(home.creds) is None, "process mode wrote the shared credentials file")
    need(not home.leftover_pids(), "process mode left processes: %r" % home.leftover_pids())

    # second call: from the cache, no STS, no terminal needed
    before = records()
    rc, arn, out = caller_identity(home, "p14")
    need(rc == 0 and arn == ALICE_ARN, "second aws call: rc %s arn %r" % (rc, arn), out)
    need(not new_records(before, "AssumeRoleWithSAML"), "second aws call reached STS AssumeRoleWithSAML")
    gci = new_records(before, "GetCallerIdentity")
    need(len(gci) == 1 and signing_key(gci[0]) == key, "second call not signed with the cached key")
    # the configured command line itself prints the contract's JSON
    p = subprocess.run(argv, env=home.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, start_new_session=True, timeout=60)
    need(p.returncode == 0, "credential_process command exit %s" % p.returncode, p.stderr.decode())
    try:
        doc = json.loads(p.stdout.decode())
    except ValueError:
        raise CheckFailed("credential_process printed no JSON", p.stdout.decode())
    need(doc.get("Version") == 1 and doc.get("AccessKeyId") == key and doc.get("SecretAccessKey")
         and doc.get("SessionToken") and re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$",
                                                  doc.get("Expiration", "")),
         "credential_process JSON not as in the contract", p.stdout.decode())
    need(not new_records(before, "AssumeRoleWithSAML"), "credential_process from cache reached STS")
    row = status_row(home, "p14")
    need(row["mode"] == "process" and row["logged_in"] is True and row["refresher_pid"] is None
         and row["expiration"] == doc["Expiration"],
         "status for process mode", json.dumps(row, indent=1))

    # login in process mode: fills the cache, starts no refresher
    t = login_ok(home, "p14", answers_for(password="alice-pass"))
    need(len(t.records) == 1, "process-mode login: %d STS calls" % len(t.records), t.transcript())
    key2 = issued_key(t.records[0])
    need("refresher" not in t.stderr, "process-mode login mentions a refresher", t.transcript())
    need(home.refresher("p14") is None and not home.leftover_pids(),
         "process-mode login started a refresher: %r" % home.leftover_pids())
    need(key2 in home.read(cache).decode(), "process-mode login did not fill the cache")
    need(home.read(home.creds) is None, "process-mode login wrote the shared credentials file")
    before = records()
    rc, arn, out = caller_identity(home, "p14")
    gci = new_records(before, "GetCallerIdentity")
    need(rc == 0 and len(gci) == 1 and signing_key(gci[0]) == key2,
         "aws after process-mode login did not use the new cached key", out)

    # back to file mode: the line and the cache go, the AWS config is as before
    t = home.run_tool("--profile", "p14", "configure", "--credential-process", "false")
    need(t.rc == 0 and "Mode: file" in t.stderr, "configure --credential-process false: exit %s"
         % t.rc, t.transcript())
    need(home.read(home.awsconf) == conf_before,
         "AWS config not byte-identical after credential_process true -> false",
         "before:\n%r\nafter:\n%r" % (conf_before, home.read(home.awsconf)))
    need(not os.path.exists(cache), "the cache survived the switch to file mode")
    rc, arn, out = caller_identity(home, "p14")
    need(rc != 0 and re.search(NO_CREDENTIALS_RX, out),
         "file mode, not logged in: the AWS CLI still finds credentials (rc %s)" % rc, out)


def tool_15_logout_files(py):
    """logout of a file-mode and a process-mode profile: the AWS CLI then finds no
    credentials for it; other profiles and every comment of the credentials file
    and the AWS config stay byte-identical."""
    home = Home("t15", py)
    home.write(home.creds, CREDS_BEFORE)
    conf_before = AWSCONF_BEFORE % b"pf" + b"[profile pp]\n; process-mode profile\nregion = us-east-1\n"
    home.write(home.awsconf, conf_before)
    configure_flags(home, "pf", IDP_A, "alice")
    configure_flags(home, "pp", IDP_B, "alice", "--credential-process")
    conf0 = home.read(home.awsconf)
    need(without_cp_line(conf0) == conf_before and aws_config_cp(home, "pp"),
         "configure --credential-process changed more than one line of the AWS config",
         "before:\n%r\nafter:\n%r" % (conf_before, conf0))
    t = login_ok(home, "pf", answers_for(password="alice-pass"))
    pid = refresher_pid_from(t)
    t = login_ok(home, "pp", answers_for(password="alice-pass"))
    need("refresher" not in t.stderr, "process-mode login mentions a refresher", t.transcript())
    for prof in ("pf", "pp"):
        rc, arn, out = caller_identity(home, prof)
        need(rc == 0 and arn == ALICE_ARN, "logged in, %s: rc %s arn %r" % (prof, rc, arn), out)
    need(CREDS_BEFORE.rstrip(b"\n") in home.read(home.creds), "login changed other bytes",
         home.read(home.creds))

    # file mode
    t = home.run_tool("--profile", "pf", "logout")
    need(t.rc == 0 and "Logged out of profile pf." in t.stderr, "logout pf: exit %s" % t.rc,
         t.transcript())
    need_stopped(home, "pf", pid, "logout")
    need(home.read(home.creds) == CREDS_BEFORE, "credentials file not byte-identical after logout",
         "before:\n%r\nafter:\n%r" % (CREDS_BEFORE, home.read(home.creds)))
    need(home.read(home.awsconf) == conf0, "logout of a file-mode profile changed the AWS config",
         "before:\n%r\nafter:\n%r" % (conf0, home.read(home.awsconf)))
    rc, arn, out = caller_identity(home, "pf")
    need(rc != 0 and re.search(NO_CREDENTIALS_RX, out),
         "after logout the AWS CLI still finds credentials for pf (rc %s)" % rc, out)
    before = records()
    rc, arn, out = caller_identity(home, "pp")
    need(rc == 0 and arn == ALICE_ARN, "logout pf broke profile pp", out)
    need(not new_records(before, "AssumeRoleWithSAML"), "pp was not served from its cache")
    rc, arn, out = caller_identity(home, "other")
    need(rc == 0, "profile other no longer usable by the AWS CLI", out)

    # process mode: a plain logout keeps the AWS CLI out although IdP B's
    # session would let the credential_process log in again by itself: the
    # cache keeps only a "logged out" mark until the next `login` (FINDINGS.md,
    # finding 1, fixed in e3523da)
    cache_pp = os.path.join(home.root, "cache", "pp")
    idp_before = len(access_log())
    t = home.run_tool("--profile", "pp", "logout")
    need(t.rc == 0 and "Logged out of profile pp." in t.stderr, "logout pp: exit %s" % t.rc,
         t.transcript())
    need_logged_out_cache(home, cache_pp)
    need(home.read(home.creds) == CREDS_BEFORE, "logout pp changed the credentials file")
    need(home.read(home.awsconf) == conf0, "logout pp changed the AWS config",
         "before:\n%r\nafter:\n%r" % (conf0, home.read(home.awsconf)))
    before = records()
    rc, arn, out = caller_identity(home, "pp")
    need(rc != 0 and "custom-process" in out,
         "after logout the AWS CLI still gets credentials for pp (rc %s)" % rc, out)
    need(not new_records(before, "AssumeRoleWithSAML"), "the credential_process reached STS")
    need(len(access_log()) == idp_before, "the credential_process went to the IdP after logout",
         access_log()[idp_before:])
    row = status_row(home, "pp")
    need(row["logged_in"] is False, "status after logout pp", json.dumps(row, indent=1))
    # `login` lifts the mark (from IdP B's session: no password)
    t = login_ok(home, "pp", answers_for(password="alice-pass"))
    need("password" not in t.seen, "login after logout asked for the password (IdP B session)",
         t.transcript())
    rc, arn, out = caller_identity(home, "pp")
    need(rc == 0 and arn == ALICE_ARN, "after login again, pp: rc %s arn %r" % (rc, arn), out)
    # logout --forget: the IdP session goes too
    t = home.run_tool("--profile", "pp", "logout", "--forget")
    need(t.rc == 0 and "Logged out of profile pp." in t.stderr and "Forgot 1" in t.stderr,
         "logout --forget pp: exit %s" % t.rc, t.transcript())
    need_logged_out_cache(home, cache_pp)
    need(home.read(home.creds) == CREDS_BEFORE, "logout --forget pp changed the credentials file")
    need(home.read(home.awsconf) == conf0, "logout --forget pp changed the AWS config",
         "before:\n%r\nafter:\n%r" % (conf0, home.read(home.awsconf)))
    before = records()
    rc, arn, out = caller_identity(home, "pp")
    need(rc != 0 and "custom-process" in out,
         "after logout --forget the AWS CLI still gets credentials for pp (rc %s)" % rc, out)
    need(not new_records(before, "AssumeRoleWithSAML"), "the credential_process reached STS")
    rc, arn, out = caller_identity(home, "other")
    need(rc == 0, "profile other no longer usable by the AWS CLI", out)
    t = home.run_tool("--profile", "pf", "logout")
    need(t.rc == 10, "second logout exit %s, expected 10" % t.rc, t.transcript())
    need(home.read(home.creds) == CREDS_BEFORE and home.read(home.awsconf) == conf0,
         "second logout changed a file")


def need_logged_out_cache(home, path):
    """A process-mode profile after logout: its cache is gone or holds only the
    'logged out' mark, never credentials."""
    data = home.read(path)
    need(data is None or (data.startswith(b"# aws_login: logged out")
                          and b"AccessKeyId" not in data),
         "cache %s still holds credentials after logout" % path, data)


def wait_new_key(home, profile, old, deadline):
    while time.time() < deadline:
        key = creds_value(home, profile, "aws_access_key_id")
        if key and key != old:
            return key, time.time()
        time.sleep(0.2)
    return None, time.time()


def tool_16_short_lived(py):
    """erin's 20 s credentials (role/ShortLived; the proxy drops DurationSeconds, see
    sts_proxy.py): the refresher renews them before they expire, twice, from the
    saved IdP B session; logout stops it."""
    home = Home("t16", py)
    configure_flags(home, "p16", IDP_B, "erin", "--factor", "auto")
    before, idp_before = records(), len(access_log())
    t0 = time.time()
    t = login_ok(home, "p16", answers_for(password="erin-pass"))
    pid = refresher_pid_from(t)
    need_refresher(home, "p16", pid)
    need(len(t.records) == 1, "%d AssumeRoleWithSAML calls" % len(t.records))
    key = creds_value(home, "p16", "aws_access_key_id")
    expires = iso_epoch(creds_value(home, "p16", "aws_login_expiration") or "")
    lifetime = expires - t0
    need(10 <= lifetime <= 30, "erin's credentials live %.0fs, expected about 20 (see sts_proxy.py)"
         % lifetime)
    keys = [key]
    for n in (1, 2):
        new, seen_at = wait_new_key(home, "p16", key, expires + 5)
        need(new is not None, "renewal %d: the credentials were not renewed (expired %.1fs ago)"
             % (n, seen_at - expires), home.read(os.path.join(home.root, "log", "p16.log")))
        need(seen_at < expires, "renewal %d came %.1fs after the old credentials expired"
             % (n, seen_at - expires))
        # sessions under 40 minutes renew at half their lifetime
        need(seen_at - t0 >= 0.4 * lifetime, "renewal %d only %.1fs into a %.0fs lifetime"
             % (n, seen_at - t0, lifetime))
        need_refresher(home, "p16", pid)
        t0, key = seen_at, new
        keys.append(key)
        expires = iso_epoch(creds_value(home, "p16", "aws_login_expiration") or "")
        lifetime = expires - t0
    need(len(set(keys)) == 3, "keys %r" % keys)
    gci_before = records()
    rc, arn, out = caller_identity(home, "p16")
    need(rc == 0 and arn == ERIN_ARN, "renewed credentials: rc %s arn %r" % (rc, arn), out)
    gci = new_records(gci_before, "GetCallerIdentity")
    need(gci and signing_key(gci[0]) in keys[2:] + [creds_value(home, "p16", "aws_access_key_id")],
         "aws did not use the renewed credentials")
    sts = [r for r in new_records(before, "AssumeRoleWithSAML")
           if r["form"].get("RoleArn") == SHORT_LIVED_ROLE]
    need(len(sts) >= 3, "%d AssumeRoleWithSAML for erin, expected 3 or more" % len(sts))
    need(all(r["form"].get("DurationSeconds") == "900" for r in sts),
         "DurationSeconds sent %r, expected 900 (SessionDuration 20 clamped to STS's minimum)"
         % [r["form"].get("DurationSeconds") for r in sts])
    need([issued_key(r) for r in sts[:3]] == keys, "credentials file keys %r, STS issued %r"
         % (keys, [issued_key(r) for r in sts]))
    port = urllib.parse.urlsplit(IDP_B).port
    idp = [a for a in access_log()[idp_before:] if a["port"] == port]
    users = [a["user"] for a in idp]
    # a first login, with no saved session, first reaches the IdP with no
    # password (so TLS fails before anyone types one); then the password once
    need(len(idp) >= 4 and users[:2] == ["-", "erin"] and all(u == "-" for u in users[2:]),
         "IdP B requests (user per request) %r: expected a probe, one password login, then "
         "the saved session only" % users)
    with open(os.path.join(home.root, "log", "p16.log")) as f:
        text = f.read()
    need(text.count("renewed;") >= 2, "refresher log lacks the renewals", text)
    t = home.run_tool("--profile", "p16", "logout")
    need(t.rc == 0, "logout exit %s" % t.rc, t.transcript())
    need_stopped(home, "p16", pid, "logout")
    need(creds_section(home, "p16") is None, "section still there after logout")
    rc, arn, out = caller_identity(home, "p16")
    need(rc != 0 and re.search(NO_CREDENTIALS_RX, out),
         "after logout the AWS CLI still finds credentials (rc %s)" % rc, out)


def tool_17_refresher_gives_up(py):
    """erin on IdP A (ForceAuthn, no stored password): at renewal time only a person
    could log in, so the refresher tries the saved session once, says why in its
    log and stops; the still-valid credentials stay; the next login asks."""
    home = Home("t17", py)
    configure_flags(home, "p17", IDP_A, "erin", "--factor", "auto")
    before = records()
    t = login_ok(home, "p17", answers_for(password="erin-pass"))
    pid = refresher_pid_from(t)
    need_refresher(home, "p17", pid)
    idp_after_login = len(access_log())
    section = creds_section(home, "p17")
    expires = iso_epoch(creds_value(home, "p17", "aws_login_expiration") or "")
    need(gone_or_zombie(pid, max(1.0, expires - time.time() + 2)),
         "the refresher still runs after the credentials expired, although it cannot renew them")
    need(not os.path.exists(home.pid_file("p17")), "pid file left by the refresher")
    with open(os.path.join(home.root, "log", "p17.log")) as f:
        text = f.read()
    need(re.search(r"cannot renew: .*no password is stored.*; stopping", text),
         "refresher log does not say why it stopped", text)
    need(len(new_records(before, "AssumeRoleWithSAML")) == 1, "the refresher reached STS")
    port = urllib.parse.urlsplit(IDP_A).port
    tries = [a for a in access_log()[idp_after_login:] if a["port"] == port]
    need(len(tries) == 1 and tries[0]["user"] == "-",
         "refresher IdP requests %r: expected one try with the saved session" % tries)
    need(creds_section(home, "p17") == section, "the refresher changed the credentials it gave up on")
    row = status_row(home, "p17")
    need(row["refresher_pid"] is None and row["refresher_alive"] is False,
         "status after the refresher stopped", json.dumps(row, indent=1))
    # no live refresher: login goes to the IdP (and asks, IdP A being ForceAuthn)
    t = login_ok(home, "p17", answers_for(password="erin-pass"))
    need(t.seen.count("password") == 1, "login after the refresher stopped: prompts %r" % t.seen,
         t.transcript())
    pid2 = refresher_pid_from(t)
    t = home.run_tool("--profile", "p17", "logout")
    need(t.rc == 0, "logout exit %s" % t.rc, t.transcript())
    need_stopped(home, "p17", pid2, "logout")


# --------------------------------------------------------------------------
# moto with signature checking, role chaining, exec/env, SigV4 vs botocore, fuzzing
# --------------------------------------------------------------------------

def moto_version():
    """The moto that interop/run started (the venv's, whose Python runs us)."""
    try:
        import importlib.metadata
        return "moto " + importlib.metadata.version("moto")
    except Exception as e:      # not fatal: it only goes into messages
        return "moto version unknown (%s)" % e


def seen(status, body, limit=300):
    """What came back, for a message: the status, the first bytes of the body
    and which moto answered."""
    if isinstance(body, str):
        body = body.encode("utf-8", "replace")
    return "HTTP %s, %d bytes%s: %r (%s)" % (status, len(body), ", first %d" % limit
                                             if len(body) > limit else "", body[:limit],
                                             moto_version())


def http_post(url, data, headers, timeout=30):
    """(status, body): an HTTP error status is an answer too, not an exception."""
    req = urllib.request.Request(url, data=data, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def moto_reset_auth(value):
    """POST /moto-api/reset-auth to moto itself (not through the proxy).  moto
    lets the next ``value`` calls through unchecked and then verifies the SigV4
    signature (and authorises the action like IAM) of every call; "inf" turns
    that off again."""
    need(MOTO_URL, "INTEROP_MOTO_URL is not set (interop/run passes it)")
    status, body = http_post(MOTO_URL + "/moto-api/reset-auth", str(value).encode(),
                             {"Content-Type": "text/plain"})
    try:
        doc = json.loads(body.decode())
    except ValueError:
        doc = None
    need(status == 200 and isinstance(doc, dict) and doc.get("status") == "ok",
         "moto reset-auth %s answered %s" % (value, seen(status, body)))
    return doc


@contextlib.contextmanager
def moto_auth(free_calls):
    """Signature checking on for the ``with`` block (after ``free_calls`` unchecked
    calls), off again afterwards whatever happens, so no other check sees it."""
    moto_reset_auth(free_calls)
    try:
        yield
    finally:
        moto_reset_auth("inf")


def sigv4_headers(url, body, key, secret, region=REGION, service="sts", token=None):
    """Headers of a SigV4-signed POST of a form ``body`` to ``url`` (the harness's
    own small signer: its probes must not depend on the tool under test)."""
    host = urllib.parse.urlsplit(url).netloc
    amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    headers = {"content-type": "application/x-www-form-urlencoded; charset=utf-8",
               "host": host, "x-amz-date": amz_date}
    if token:
        headers["x-amz-security-token"] = token
    names = sorted(headers)
    canonical = "\n".join(["POST", urllib.parse.urlsplit(url).path or "/", ""]
                          + ["%s:%s" % (n, headers[n]) for n in names]
                          + ["", ";".join(names), hashlib.sha256(body).hexdigest()])
    scope = "%s/%s/%s/aws4_request" % (amz_date[:8], region, service)
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    k = ("AWS4" + secret).encode()
    for part in (amz_date[:8], region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    headers["authorization"] = ("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, "
                                "Signature=%s" % (key, scope, ";".join(names),
                                                  hmac.new(k, to_sign.encode(),
                                                           hashlib.sha256).hexdigest()))
    del headers["host"]     # urllib sends the same netloc itself
    return headers


def moto_gci_probe(key, secret, token=None):
    """(status, body) of a GetCallerIdentity sent straight to moto (not through
    the proxy: no record), SigV4-signed with ``key`` and ``secret`` for
    sts/us-east-1.  Signed, because moto routes a request by its Authorization
    header's credential scope: it verifies nothing while checking is off, so
    any secret passes then, and with checking on a wrong secret for a key it
    knows is refused (403 SignatureDoesNotMatch).  An unsigned request is
    routed by its Action only for AssumeRoleWithSAML/WebIdentity; moto 5.2
    sends an unsigned GetCallerIdentity to its S3 backend (default service),
    which answered 500 in 5.2.6 (and whatever S3 made of it before): it said
    nothing about STS's checking."""
    body = b"Action=GetCallerIdentity&Version=2011-06-15"
    need(MOTO_URL, "INTEROP_MOTO_URL is not set (interop/run passes it)")
    return http_post(MOTO_URL + "/", body, sigv4_headers(MOTO_URL + "/", body, key, secret,
                                                         token=token))


class Plain(object):
    """A finished run of a program without a terminal."""

    def __init__(self, argv, p):
        self.argv, self.rc = argv, p.returncode
        self.stdout = p.stdout.decode("utf-8", "replace")
        self.stderr = p.stderr.decode("utf-8", "replace")

    def lines(self):
        return [l for l in self.stderr.splitlines() if l.strip()]

    def transcript(self):
        return "command: %s\nexit %s\n--- stdout ---\n%s\n--- stderr ---\n%s" % (
            " ".join(self.argv), self.rc, self.stdout, self.stderr)


def run_plain(argv, env, timeout=90):
    """A program in its own session, stdin /dev/null, no terminal."""
    p = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, start_new_session=True, timeout=timeout)
    return Plain(argv, p)


def tool_plain(home, *args, **kw):
    return run_plain([home.python, TOOL] + list(args), kw.pop("env", None) or home.env, **kw)


def set_creds_value(home, profile, key, value):
    text = home.read(home.creds).decode()
    m = re.search(r"^\[%s\]\s*$(.*?)(?=^\[|\Z)" % re.escape(profile), text, re.M | re.S)
    need(m is not None, "no [%s] in the credentials file" % profile)
    section, n = re.subn(r"(?m)^(%s\s*=\s*)\S+" % re.escape(key), lambda x: x.group(1) + value,
                         m.group(1))
    need(n == 1, "no %s in [%s]" % (key, profile))
    home.write(home.creds, (text[:m.start(1)] + section + text[m.end(1):]).encode())


def altered(text):
    return text[:-1] + ("A" if text[-1:] != "A" else "B")


def signed_header_names(rec):
    m = re.search(r"SignedHeaders=([^,\s]+)", rec.get("headers", {}).get("Authorization", ""))
    return m.group(1).split(";") if m else []


def rec_header(rec, name):
    for k, v in rec.get("headers", {}).items():
        if k.lower() == name.lower():
            return v
    return None


def issued_token(rec):
    m = re.search(r"<SessionToken>([^<]+)</SessionToken>", rec.get("response", ""))
    return m.group(1) if m else None


SIG_MISMATCH_TEXT = "The request signature we calculated does not match the signature you provided"


def tool_18_whoami_signed(py):
    """whoami while moto verifies every SigV4 signature: the assumed-role ARN; with
    the secret key altered, exit 7 and moto's SignatureDoesNotMatch on one line;
    with the session token altered, InvalidClientTokenId."""
    home = Home("t18", py)
    configure_flags(home, "p18", IDP_A, "alice")
    login_ok(home, "p18", answers_for(password="alice-pass"))
    key = creds_value(home, "p18", "aws_access_key_id")
    secret = creds_value(home, "p18", "aws_secret_access_key")
    token = creds_value(home, "p18", "aws_session_token")
    with moto_auth(0):
        # negative control: moto now refuses a wrong signature made with a key it knows
        status, body = moto_gci_probe(key, altered(secret), token)
        need(status == 403 and b"SignatureDoesNotMatch" in body,
             "signature checking on, but moto answered a GetCallerIdentity signed with a wrong "
             "secret with " + seen(status, body) + " (expected 403 SignatureDoesNotMatch)")
        before = records()
        p = tool_plain(home, "--profile", "p18", "whoami", "--output", "json")
        need(p.rc == 0, "whoami: exit %s" % p.rc, p.transcript())
        try:
            doc = json.loads(p.stdout)
        except ValueError:
            raise CheckFailed("whoami --output json printed no JSON", p.transcript())
        need(doc.get("Arn") == ALICE_ARN and doc.get("Account") == "123456789012"
             and str(doc.get("UserId", "")).endswith(":alice@example.org"),
             "whoami --output json: %r" % doc, p.transcript())
        gci = new_records(before, "GetCallerIdentity")
        need(len(gci) == 1 and gci[0]["status"] == 200, "proxy: %d GetCallerIdentity, status %r"
             % (len(gci), [r["status"] for r in gci]))
        need(signing_key(gci[0]) == key, "whoami signed with %r, the credentials file holds %r"
             % (signing_key(gci[0]), key))
        names = signed_header_names(gci[0])
        need({"host", "x-amz-date", "x-amz-security-token"} <= set(names),
             "whoami's SignedHeaders %r lack host/x-amz-date/x-amz-security-token" % names)
        need(rec_header(gci[0], "X-Amz-Security-Token") == token, "whoami did not send the "
             "session token of the credentials file")
        # the AWS CLI's own signature passes the same check
        rc, arn, out = caller_identity(home, "p18")
        need(rc == 0 and arn == ALICE_ARN, "AWS CLI with signature checking on: rc %s arn %r"
             % (rc, arn), out)

        set_creds_value(home, "p18", "aws_secret_access_key", altered(secret))
        before = records()
        p = tool_plain(home, "--profile", "p18", "whoami", "--output", "json")
        need(p.rc == 7, "whoami with an altered secret key: exit %s, expected 7" % p.rc,
             p.transcript())
        need(len(p.lines()) == 1 and "SignatureDoesNotMatch" in p.stderr
             and SIG_MISMATCH_TEXT in p.stderr,
             "stderr is not one line with moto's SignatureDoesNotMatch and its message",
             p.transcript())
        need(p.stdout == "" and "Traceback" not in p.stderr, "output besides the error",
             p.transcript())
        gci = new_records(before, "GetCallerIdentity")
        need(len(gci) == 1 and gci[0]["status"] == 403
             and "SignatureDoesNotMatch" in gci[0].get("upstream_response", gci[0]["response"]),
             "proxy: expected one GetCallerIdentity refused by moto with SignatureDoesNotMatch",
             gci)

        set_creds_value(home, "p18", "aws_secret_access_key", secret)
        set_creds_value(home, "p18", "aws_session_token", altered(token))
        p = tool_plain(home, "--profile", "p18", "whoami")
        need(p.rc == 7 and len(p.lines()) == 1 and "InvalidClientTokenId" in p.stderr,
             "whoami with an altered session token: exit %s, expected 7 and moto's "
             "InvalidClientTokenId on one line" % p.rc, p.transcript())
        set_creds_value(home, "p18", "aws_session_token", token)
        p = tool_plain(home, "--profile", "p18", "whoami")
        need(p.rc == 0 and ALICE_ARN in p.stdout, "whoami (text) with the keys restored: exit %s"
             % p.rc, p.transcript())
    # and off again: the same wrong signature passes, and it reached STS
    status, body = moto_gci_probe(key, altered(secret), token)
    need(status == 200 and b"<GetCallerIdentityResult>" in body and ALICE_ARN.encode() in body,
         "signature checking still on after the check: a GetCallerIdentity signed with a wrong "
         "secret got " + seen(status, body) + " (expected 200 and alice's ARN from STS)")


CHAINED_ROLE_NAME = "Chained"
CHAINED_ROLE = "arn:aws:iam::123456789012:role/" + CHAINED_ROLE_NAME
CHAINED_ARN = "arn:aws:sts::123456789012:assumed-role/Chained/alice@example.org"
CHAIN_EXTERNAL_ID = "interop-external-id-42"
_moto_iam = []


def moto_iam_roles():
    """Admin (alice's SAML role, allowed sts:AssumeRole on Chained) and Chained
    (trusts alice's session, needs the external id) in moto's IAM (boto3)."""
    if not _moto_iam:
        p = run_plain([sys.executable, os.path.join(HERE, "moto_iam_setup.py"), MOTO_URL,
                       CHAINED_ROLE_NAME, CHAIN_EXTERNAL_ID], dict(E))
        need(p.rc == 0, "moto_iam_setup.py failed", p.transcript())
        _moto_iam.append(json.loads(p.stdout.strip().splitlines()[-1]))
    return _moto_iam[0]


def tool_19_role_chaining(py):
    """chain_role_arn + chain_external_id: after AssumeRoleWithSAML a signed
    sts:AssumeRole, which moto verifies (signature, the caller role's policy,
    the chained role's trust policy and external id); the AWS CLI and whoami
    then see the chained role; a wrong external id is refused (exit 7)."""
    home = Home("t19", py)
    moto_iam_roles()
    configure_flags(home, "p19", IDP_A, "alice", "--chain-role-arn", CHAINED_ROLE,
                    "--chain-external-id", CHAIN_EXTERNAL_ID)
    conf = (home.read(os.path.join(home.root, "config")) or b"").decode()
    for opt, val in (("chain_role_arn", CHAINED_ROLE), ("chain_external_id", CHAIN_EXTERNAL_ID)):
        need(re.search(r"^%s\s*=\s*%s\s*$" % (opt, re.escape(val)), conf, re.M),
             "config lacks %s = %s" % (opt, val), conf)
    before = records()
    # AssumeRoleWithSAML is unsigned (as AWS defines it): moto's one free call;
    # the AssumeRole after it is checked
    with moto_auth(1):
        t = login_ok(home, "p19", answers_for(password="alice-pass"))
    need(t.seen.count("password") == 1, "prompts %r" % t.seen, t.transcript())
    recs = new_records(before)
    need([r["action"] for r in recs] == ["AssumeRoleWithSAML", "AssumeRole"]
         and [r["status"] for r in recs] == [200, 200],
         "STS calls of the chained login: %r" % [(r["action"], r["status"]) for r in recs],
         [r.get("response", "")[:600] for r in recs])
    saml, chain = recs
    form = chain.get("form", {})
    need(form.get("RoleArn") == CHAINED_ROLE and form.get("RoleSessionName") == "alice@example.org"
         and form.get("ExternalId") == CHAIN_EXTERNAL_ID and form.get("DurationSeconds") == "3600"
         and form.get("Version") == "2011-06-15",
         "AssumeRole form %r" % form)
    need(signing_key(chain) == issued_key(saml), "AssumeRole signed with %r, not the SAML "
         "session's key %r" % (signing_key(chain), issued_key(saml)))
    need(rec_header(chain, "X-Amz-Security-Token") == issued_token(saml),
         "AssumeRole did not carry the SAML session's token")
    need({"host", "x-amz-date", "x-amz-security-token"} <= set(signed_header_names(chain)),
         "AssumeRole SignedHeaders %r" % signed_header_names(chain))
    need(re.search(r"Credential=\w+/\d{8}/us-east-1/sts/aws4_request",
                   rec_header(chain, "Authorization") or ""),
         "AssumeRole credential scope: %r" % rec_header(chain, "Authorization"))
    need("through Admin" in t.stderr and "Chained" in t.stderr,
         "the login message does not name the chain", t.transcript())
    need(creds_value(home, "p19", "aws_access_key_id") == issued_key(chain),
         "the credentials file does not hold the chained role's key")
    rc, arn, out = caller_identity(home, "p19")
    need(rc == 0 and arn == CHAINED_ARN, "get-caller-identity: rc %s arn %r" % (rc, arn), out)
    p = tool_plain(home, "--profile", "p19", "whoami", "--output", "json")
    need(p.rc == 0 and json.loads(p.stdout or "{}").get("Arn") == CHAINED_ARN,
         "whoami of the chained profile", p.transcript())

    # negative control: the same login with a wrong external id is refused by
    # moto's trust-policy check, so the AssumeRole above really was checked
    t = home.run_tool("--profile", "p19", "configure", "--chain-external-id", "wrong-external-id")
    need(t.rc == 0 and not t.seen, "configure --chain-external-id: exit %s" % t.rc, t.transcript())
    creds_before = home.read(home.creds)
    before = records()
    with moto_auth(1):
        t = home.run_tool("--profile", "p19", "login", "--force",
                          answers=answers_for(password="alice-pass"))
    need(t.rc == 7, "login with a wrong external id: exit %s, expected 7" % t.rc, t.transcript())
    need(re.search(r"AccessDenied.*not authorized to perform: sts:AssumeRole", t.stderr),
         "no AccessDenied for sts:AssumeRole on stderr", t.transcript())
    recs = new_records(before)
    need([(r["action"], r["status"]) for r in recs] == [("AssumeRoleWithSAML", 200),
                                                        ("AssumeRole", 403)],
         "STS calls: %r" % [(r["action"], r["status"]) for r in recs])
    need(recs[1]["form"].get("ExternalId") == "wrong-external-id", "external id sent %r"
         % recs[1]["form"].get("ExternalId"))
    need(home.read(home.creds) == creds_before, "a failed chained login changed the credentials")


def tool_20_exec_env(py):
    """exec runs the AWS CLI with the profile's credentials in its environment and
    passes its exit status through; eval "$(aws_login.py env)" in sh works."""
    home = Home("t20", py)
    configure_flags(home, "p20", IDP_A, "alice")
    login_ok(home, "p20", answers_for(password="alice-pass"))
    key = creds_value(home, "p20", "aws_access_key_id")
    env = dict(home.env)
    env["PATH"] = os.path.dirname(AWS) + os.pathsep + env["PATH"]
    # a profile the AWS CLI cannot find: the child must not use AWS_PROFILE
    env["AWS_PROFILE"] = "no-such-profile"

    before = records()
    p = tool_plain(home, "--profile", "p20", "exec", "--", "aws", "sts", "get-caller-identity",
                   "--output", "json", env=env)
    need(p.rc == 0, "exec -- aws sts get-caller-identity: exit %s" % p.rc, p.transcript())
    need(json.loads(p.stdout or "{}").get("Arn") == ALICE_ARN, "exec: not the assumed role",
         p.transcript())
    gci = new_records(before, "GetCallerIdentity")
    need(len(gci) == 1 and signing_key(gci[0]) == key, "exec: the AWS CLI did not sign with "
         "the profile's key")
    p = tool_plain(home, "--profile", "p20", "exec", "--", "sh", "-c", "exit 3", env=env)
    need(p.rc == 3, "exec -- sh -c 'exit 3': exit %s, expected 3" % p.rc, p.transcript())
    p = tool_plain(home, "--profile", "p20", "exec", "--", "sh", "-c",
                   'test "$AWS_ACCESS_KEY_ID" = "$1" && test -n "$AWS_SECRET_ACCESS_KEY" '
                   '&& test -n "$AWS_SESSION_TOKEN" && test -z "$AWS_PROFILE"', "sh", key, env=env)
    need(p.rc == 0, "exec: the child's environment lacks the credentials or keeps AWS_PROFILE",
         p.transcript())
    p = tool_plain(home, "--profile", "p20", "exec", "--", "no-such-command-here", env=env)
    need(p.rc == 127 and len(p.lines()) == 1, "exec of a missing command: exit %s, expected 127 "
         "and one line" % p.rc, p.transcript())

    before = records()
    script = 'eval "$("$1" "$2" --profile p20 env)" && exec aws sts get-caller-identity --output json'
    p = run_plain(["sh", "-c", script, "sh", py, TOOL], env)
    need(p.rc == 0 and json.loads(p.stdout or "{}").get("Arn") == ALICE_ARN,
         'eval "$(aws_login.py env)"; aws sts get-caller-identity: exit %s' % p.rc,
         p.transcript())
    gci = new_records(before, "GetCallerIdentity")
    need(len(gci) == 1 and signing_key(gci[0]) == key, "env: the AWS CLI did not sign with "
         "the profile's key")
    p = tool_plain(home, "--profile", "p20", "env", "--format", "json", env=env)
    try:
        doc = json.loads(p.stdout)
    except ValueError:
        raise CheckFailed("env --format json printed no JSON", p.transcript())
    need(p.rc == 0 and doc.get("AWS_ACCESS_KEY_ID") == key
         and doc.get("AWS_SECRET_ACCESS_KEY") == creds_value(home, "p20", "aws_secret_access_key")
         and doc.get("AWS_SESSION_TOKEN") == creds_value(home, "p20", "aws_session_token"),
         "env --format json disagrees with the credentials file", p.transcript())
    expires = creds_value(home, "p20", "aws_login_expiration")
    need(abs(iso_epoch(doc.get("AWS_CREDENTIAL_EXPIRATION", "")) - iso_epoch(expires)) < 1.5,
         "AWS_CREDENTIAL_EXPIRATION %r, the credentials file says %r"
         % (doc.get("AWS_CREDENTIAL_EXPIRATION"), expires))


def canonical_diff(a, b):
    """The lines of two canonical requests that differ, labelled."""
    la, lb = a.split("\n"), b.split("\n")
    labels = ["method", "canonical URI", "canonical query"]
    out = []
    for i in range(max(len(la), len(lb))):
        x = la[i] if i < len(la) else "<none>"
        y = lb[i] if i < len(lb) else "<none>"
        if x != y:
            out.append("%s:\n      aws_login: %s\n      botocore:  %s"
                       % (labels[i] if i < len(labels) else "line %d" % (i + 1), x, y))
    return "\n".join(out)


def check_sigv4_botocore():
    """aws_login.sign_request vs botocore.auth.SigV4Auth on 200 seeded requests."""
    pythons = [py for py in PYTHONS if os.path.exists(py)]
    cmd = [sys.executable, os.path.join(HERE, "sigv4_compare.py"), TOOL, "--count", "200"]
    for py in pythons:
        cmd += ["--python", py]
    p = run_plain(cmd, dict(E), timeout=300)
    try:
        r = json.loads(p.stdout)
    except ValueError:
        raise CheckFailed("sigv4_compare.py failed (exit %s)" % p.rc, p.stderr[-3000:])
    with open(os.path.join(STATE, "sigv4-compare.json"), "w") as f:
        f.write(p.stdout)
    others = ", ".join("py%s %d/%d" % (python_version(py), v.get("identical", 0), r["count"])
                       for py, v in sorted(r["pythons"].items()))
    summary = ("%d/%d identical (aws_login under the venv's py%d.%d%s; seed %d)"
               % (r["identical"], r["count"], sys.version_info[0], sys.version_info[1],
                  "; also " + others if others else "", r["seed"]))
    problems = [v["error"] for v in r["pythons"].values() if "error" in v]
    bad = r["mismatch_count"] or any(v.get("identical") != r["count"]
                                     for v in r["pythons"].values())
    if bad or problems:
        detail = []
        if r["mismatches"]:
            m = r["mismatches"][0]
            detail.append("mismatches differ in: %s" % ", ".join(
                "%s (%d)" % kv for kv in sorted(r.get("differs_in", {}).items())))
            detail.append("first differing case (n=%d): %s %s" % (
                m["case"]["n"], m["case"]["method"], m["case"]["url"]))
            detail.append(canonical_diff(m["aws_login_canonical"], m["botocore_canonical"]))
            detail.append("--- aws_login canonical request ---\n" + m["aws_login_canonical"])
            detail.append("--- botocore canonical request ---\n" + m["botocore_canonical"])
        detail += problems
        detail.append("(all of it: %s)" % os.path.join(STATE, "sigv4-compare.json"))
        raise CheckFailed(summary, *detail)
    return summary


def check_fuzz():
    """atheris on parse_ecp_answer and parse_sts_answer, seeded with live answers."""
    if ATHERIS != "ok":
        raise Skip("atheris unavailable: %s" % ATHERIS)
    import importlib.util
    if importlib.util.find_spec("atheris") is None:
        raise Skip("atheris does not import under %s" % sys.executable)
    d = os.path.join(STATE, "fuzz")
    corpus, crashes = os.path.join(d, "corpus"), os.path.join(d, "crashes")
    os.makedirs(corpus, exist_ok=True)
    seeds = {}
    # real SimpleSAMLphp ECP answers, captured now
    for name, url, user, pw in (("ecp-idp-a-alice.xml", IDP_A, "alice", "alice-pass"),
                                ("ecp-idp-b-bob-signed-response.xml", IDP_B, "bob", "bob-pass"),
                                ("ecp-idp-a-wrong-password.xml", IDP_A, "alice", "WRONG")):
        status, body = ecp_post(url, user, pw)
        need(status == 200 and b"Envelope" in body, "IdP answer for %s: HTTP %s" % (name, status),
             body[:800])
        seeds[name] = body
    # STS answers as the proxy recorded them: success, and a refusal
    before = records()
    sts_assume(extract_response(seeds["ecp-idp-a-alice.xml"]),
               "arn:aws:iam::123456789012:role/Admin", "arn:aws:iam::123456789012:saml-provider/IdP")
    try:
        sts_assume(extract_response(seeds["ecp-idp-a-alice.xml"]),
                   "arn:aws:iam::123456789012:role/NotGranted",
                   "arn:aws:iam::123456789012:saml-provider/IdP")
    except StsRefused:
        pass
    recs = new_records(before, "AssumeRoleWithSAML")
    need(len(recs) == 2 and recs[0]["status"] == 200 and recs[1]["status"] == 403,
         "STS seeds: %r" % [r["status"] for r in recs],
         "\n".join("%s: %r" % (r["status"], r.get("response", "")[:300]) for r in recs))
    seeds["sts-assume-role-with-saml.xml"] = recs[0]["response"].encode("utf-8")
    seeds["sts-error-access-denied.xml"] = recs[1]["response"].encode("utf-8")
    for name, data in seeds.items():
        with open(os.path.join(corpus, name), "wb") as f:
            f.write(data)
    cmd = [sys.executable, os.path.join(HERE, "fuzz_saml.py"), TOOL, crashes,
           "-max_total_time=%d" % FUZZ_SECONDS, "-print_final_stats=1", "-timeout=10",
           "-rss_limit_mb=2048", "-dict=" + os.path.join(HERE, "fuzz_saml.dict"), corpus]
    p = run_plain(cmd, dict(E, PYTHONDONTWRITEBYTECODE="1"), timeout=FUZZ_SECONDS + 180)
    log = p.stdout + p.stderr
    with open(os.path.join(d, "fuzz.log"), "w") as f:
        f.write(" ".join(cmd) + "\n" + log)
    m = re.search(r"stat::number_of_executed_units:\s*(\d+)", log)
    execs = int(m.group(1)) if m else None
    seed_lines = re.findall(r"^fuzz_saml: seed .*$", log, re.M)
    sites = []
    for name in sorted(os.listdir(crashes)) if os.path.isdir(crashes) else []:
        if name.endswith(".json") and name != "counts.json":
            with open(os.path.join(crashes, name)) as f:
                sites.append(json.load(f))
    summary = "%s executions in %d s, %d crash site(s)" % (
        execs if execs is not None else "?", FUZZ_SECONDS, len(sites))
    need(execs, "no libFuzzer statistics (exit %s)" % p.rc, log[-3000:])
    need(any("ecp-idp-a-alice.xml: parse_ecp_answer accepted" in l for l in seed_lines)
         and any("sts-assume-role-with-saml.xml: parse_sts_answer accepted" in l
                 for l in seed_lines),
         "the seed answers are not accepted by the parsers", "\n".join(seed_lines))
    if sites or p.rc != 0:
        detail = []
        for c in sites:
            data = base64.b64decode(c["input_b64"])
            detail.append("%s\n  message: %s\n  input (%d bytes, first 300): %r\n%s" % (
                c["site"], c["message"], len(data), data[:300],
                indent("\n".join(c["traceback"].strip().splitlines()[-6:]))))
        if p.rc != 0:
            detail.append("libFuzzer exit %s:\n%s" % (p.rc, log[-2000:]))
        detail.append("(inputs: %s; log: %s)" % (crashes, os.path.join(d, "fuzz.log")))
        raise CheckFailed(summary, *detail)
    return summary

OTHER_HOST = "interop-other-host"

# pid 1 of the other "host" (a new UTS + PID namespace, /proc of its own):
# names itself, steers its next pids so that the refresher (the login's
# grandchild: sh forks python, python forks, that forks) gets the pid of the
# decoy outside (threads take pids too: the login's requests
# each have a deadline watchdog), logs in, then waits until the refresher
# has removed its pid file (the namespace ends with its pid 1).
OTHER_HOST_SH = r"""
host=$1 decoy=$2 py=$3 tool=$4 pw=$5 out=$6 err=$7 rc=$8 pidfile=$9
hostname "$host" || exit 90
echo $((decoy - 5)) > /proc/sys/kernel/ns_last_pid 2>/dev/null
"$py" "$tool" --profile p21 login --password-stdin < "$pw" > "$out" 2> "$err"
echo $? > "$rc"
exec </dev/null >/dev/null 2>&1
while [ -e "$pidfile" ]; do sleep 0.2; done
"""


def tool_21_two_hosts(py):
    """A home shared with another host: login (with its refresher) runs in another
    UTS + PID namespace, named interop-other-host; `logout` here signals nothing
    (a decoy process here has the pid the pid file names), says where the
    refresher runs and removes the credentials; the refresher there stops by
    itself within its 30 s slice."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        raise Skip("needs root and unshare(1) for a second UTS + PID namespace")
    home = Home("t21", py)
    configure_flags(home, "p21", IDP_A, "alice", "--factor", "auto")
    os.makedirs(home.root, 0o700, exist_ok=True)
    files = dict((name, os.path.join(home.dir, name)) for name in ("pw", "out", "err", "rc"))
    fd = os.open(files["pw"], os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"alice-pass\n")
    os.close(fd)
    decoy = subprocess.Popen(["sleep", "600"], env={"PATH": "/usr/bin:/bin"},
                             start_new_session=True)
    other = None
    try:
        other = subprocess.Popen(
            ["unshare", "--uts", "--pid", "--fork", "--mount-proc", "sh", "-c", OTHER_HOST_SH,
             "sh", OTHER_HOST, str(decoy.pid), py, TOOL, files["pw"], files["out"],
             files["err"], files["rc"], home.pid_file("p21")],
            env=home.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.time() + 90
        while not (home.read(files["rc"]) or b"").strip():
            if other.poll() is not None:
                raise CheckFailed("the other host's shell exited %s before the login ended"
                                  % other.returncode, other.stderr.read().decode())
            need(time.time() < deadline, "the login on the other host did not end in 90 s")
            time.sleep(0.1)
        err = (home.read(files["err"]) or b"").decode()
        need(home.read(files["rc"]).strip() == b"0", "login on the other host: exit %s"
             % home.read(files["rc"]).decode().strip(), err)
        m = re.search(REFRESHER_RX, err)
        need(m is not None, "the other host's login started no refresher", err)
        pid = int(m.group(1))       # its pid there
        state = home.refresher("p21")
        need(state is not None and state[0] == pid and state[2],
             "pid file %r, the login said pid %d" % (state, pid))
        need(state[3].get("host") == OTHER_HOST and state[3].get("boot_id") == boot_id()
             and state[3].get("start_time", "").isdigit()
             and state[3].get("role") == "arn:aws:iam::123456789012:role/Admin",
             "pid file fields %r" % (state[3],))
        # it reports its pid, then execs its own small interpreter: wait for that
        deadline = time.time() + 15
        while True:
            outer = [p for p in _pids() if home.owns(p) and ns_pids(p)[1:] == [pid]]
            if (len(outer) == 1 and "_refresher_loop" in proc_cmdline(outer[0])) or \
                    time.time() > deadline:
                break
            time.sleep(0.1)
        need(len(outer) == 1 and "_refresher_loop" in proc_cmdline(outer[0]),
             "the refresher (pid %d on the other host) is not seen here: %r" % (pid, outer))
        arranged = pid == decoy.pid
        row = status_row(home, "p21")
        need((row["refresher_pid"], row["refresher_alive"], row["refresher_host"],
              row["refresher_local"]) == (pid, True, OTHER_HOST, False),
             "status here", json.dumps(row, indent=1))

        t = home.run_tool("--profile", "p21", "logout")
        stopped_at = time.time()
        need(t.rc == 0, "logout exit %s" % t.rc, t.transcript())
        need("Logged out of profile p21." in t.stderr, "logout did not say it logged out",
             t.transcript())
        need("refresher (pid %d) runs on host %s, not here: it was not signalled" % (
            pid, OTHER_HOST) in t.stderr, "logout did not name the other host", t.transcript())
        need(proc_alive(decoy.pid), "the decoy (pid %d here) was killed" % decoy.pid)
        need(creds_section(home, "p21") is None, "section still there after logout")

        log = os.path.join(home.root, "log", "p21.log")
        while proc_alive(outer[0]) or os.path.exists(home.pid_file("p21")):
            need(time.time() - stopped_at < 45, "the refresher on the other host still runs "
                 "45 s after logout (its slice is 30 s)", (home.read(log) or b"").decode())
            time.sleep(0.2)
        waited = time.time() - stopped_at
        text = (home.read(log) or b"").decode()
        need(re.search(r"p21\[%d\] profile p21 was logged out; stopping" % pid, text),
             "the refresher did not stop by itself (signalled?)", text)
        need(proc_alive(decoy.pid), "the decoy (pid %d here) was killed" % decoy.pid)
        try:
            other.wait(10)
        except subprocess.TimeoutExpired:
            raise CheckFailed("the other host's pid 1 did not end after the refresher")
        return "refresher pid %d on %s %s; stopped by itself %.0f s after logout" % (
            pid, OTHER_HOST, "= the decoy's pid here, which lives" if arranged
            else "(no decoy at that pid: %d)" % decoy.pid, waited)
    finally:
        for proc in (decoy, other):
            if proc is not None and proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except OSError:
                    pass
                proc.wait()


def tool_checks(py):
    ver = python_version(py)
    for name, fn in [
        ("1 configure (prompts) + login alice over HTTPS + aws get-caller-identity", tool_1_configure_login),
        ("2 signed Response (IdP B): SAMLAssertion at STS verifies", tool_2_signed_response),
        ("3 bob: role menu by account, ReadOnly chosen", tool_3_role_menu),
        ("4 carol: no role -> exit 6, nothing written", tool_4_no_role),
        ("5 wrong password -> exit 4, nothing written", tool_5_wrong_password),
        ("5k keyring: stale stored password re-prompted and replaced", tool_5k_keyring),
        ("6 IdP session reuse (IdP B): no password after logout", tool_6_session_reuse),
        ("7 logout: only the profile's section removed", tool_7_logout),
        ("8 bootstrap: cat aws_login.py | python - login returns at once, refresher detached and small",
         tool_8_bootstrap),
        ("9 no terminal -> exit 11", tool_9_no_terminal),
        ("10 Ctrl-C at Password -> exit 130", tool_10_interrupt),
        ("11 TLS: no CA -> exit 8; AWS_CA_BUNDLE trusted", tool_11_tls_trust),
        ("12 AWS_PROFILE, login --role-arn, unknown role -> exit 6", tool_12_aws_profile),
        ("13 refresher: detached, 'Already logged in', --force, status, logout, --no-refresh",
         tool_13_refresher),
        ("14 credential_process via configure: AWS CLI on a pty, then from the cache",
         tool_14_credential_process),
        ("15 logout (file + process mode): no credentials; both files byte-identical",
         tool_15_logout_files),
        ("16 refresher renews 20 s credentials before expiry; logout stops it",
         tool_16_short_lived),
        ("17 refresher that cannot renew without a person stops, once, and says why",
         tool_17_refresher_gives_up),
        ("18 whoami with moto checking SigV4: ARN; altered secret -> exit 7 SignatureDoesNotMatch",
         tool_18_whoami_signed),
        ("19 role chaining: signed AssumeRole checked by moto (trust policy, external id)",
         tool_19_role_chaining),
        ("20 exec -- aws / sh (exit status passes through); eval \"$(env)\"; aws",
         tool_20_exec_env),
        ("21 two hosts (UTS + PID namespace): logout here signals nothing; the refresher "
         "there stops by itself", tool_21_two_hosts),
    ]:
        run_check("tool py%s: %s" % (ver, name), fn, py)


def check_awscli_plugin():
    """AWS CLI v1 loads aws_login as a plugin (plugins.login = aws_login): `aws login`
    asks on the terminal as the standalone command does, the AWS CLI then uses
    the credentials, `aws login configure` asks its questions, `aws logout`
    removes them."""
    py = PYTHONS[-1]
    home = Home("plugin", py)
    home.env["PYTHONPATH"] = os.path.dirname(TOOL)    # where the AWS CLI imports plugins
    configure_flags(home, "pl", IDP_A, "alice")
    home.write(home.awsconf, (home.read(home.awsconf) or b"") + b"\n[plugins]\nlogin = aws_login\n")
    t = Terminal([AWS, "--profile", "pl", "login", "--no-refresh"], home.env)
    seen = t.interact(answers_for(password="alice-pass"), timeout=90)
    t.wait()
    need(t.rc == 0 and "password" in seen, "aws login: exit %s, prompts %r" % (t.rc, seen),
         t.transcript())
    need(any(l.startswith("Logged in") for l in t.stderr.splitlines()),
         "aws login: no 'Logged in' line", t.transcript())
    rc, arn, out = caller_identity(home, "pl")
    need(rc == 0 and arn == ALICE_ARN, "after aws login, get-caller-identity: %s %s" % (rc, arn),
         out)
    t = Terminal([AWS, "--profile", "pl", "login", "configure"], home.env)
    seen = t.interact([("url", r"ECP Endpoint URL \[[^\]]*\]: ", ""),
                       ("user", r"Username \[alice\]: ", ""),
                       ("keyring", r"Enable Keyring \[False\]: ", ""),
                       ("factor", r"Duo Factor \[[^\]]*\]: ", ""),
                       ("role", r"Role ARN \[[^\]]*\]: ", ""),
                       ("region", r"Region \[[^\]]*\]: ", ""),
                       ("mode", r"Use credential_process \[False\]: ", "")], timeout=60)
    t.wait()
    need(t.rc == 0 and len(seen) == 7, "aws login configure: exit %s, prompts %r"
         % (t.rc, seen), t.transcript())
    t = Terminal([AWS, "--profile", "pl", "logout"], home.env)
    t.interact([], timeout=30)
    t.wait()
    need(t.rc == 0 and "Logged out of profile pl." in t.stderr, "aws logout: exit %s" % t.rc,
         t.transcript())
    need(creds_section(home, "pl") is None, "aws logout left [pl] in the credentials file")
    return "aws login / login configure / logout through AWS CLI v1"


def _throwaway_aws(name, flags=""):
    """An AWS CLI v1 in a throwaway venv of its own: its `aws` script runs the
    venv's Python (with ``flags``), which finds awscli and its packages in the
    interop venv through a .pth file (nothing of ours on its path, no
    PYTHONPATH).  Returns (aws script, the venv's site-packages)."""
    base = os.path.join(os.path.dirname(AWS), "python")
    venv = os.path.join(STATE, name)
    subprocess.run([base, "-m", "venv", "--without-pip", venv], check=True)
    python = os.path.join(venv, "bin", "python")
    site = subprocess.check_output([python, "-c", "import sysconfig;print(sysconfig.get_paths()"
                                    "['purelib'])"]).decode().strip()
    shared = subprocess.check_output([base, "-c", "import awscli,os;print(os.path.dirname("
                                      "os.path.dirname(awscli.__file__)))"]).decode().strip()
    with open(os.path.join(site, "interop-awscli.pth"), "w") as f:
        f.write(shared + "\n")
    aws = os.path.join(venv, "bin", "aws")
    with open(aws, "w") as f:
        f.write("#!%s%s\nimport sys\nsys.path.append(%r)\nfrom awscli.clidriver import main\n"
                "sys.exit(main())\n" % (python, " " + flags if flags else "", shared))
    os.chmod(aws, 0o755)
    return aws, site


def check_plugin_enable():
    """`plugin enable` the way a user arrives (issue 12): no PYTHONPATH, a fresh
    HOME, the real AWS CLI v1 in a throwaway venv.  Then `aws login` (TLS
    refused without a CA; `aws --ca-bundle CA login` works), `aws sts
    get-caller-identity`, an awscli-login config with `factor = off` and
    `duration = 0` that asks only the password, `plugin disable` restoring
    ~/.aws/config byte for byte (with no `aws` on PATH), and an AWS CLI whose
    Python cannot import the module (-S: its site-packages are not on its path)
    left as it was.  Throughout, a second AWS CLI v1 in a venv of its own is on
    PATH (issue 21): it reads the same ~/.aws/config, so enable gives it the
    module too, status runs it, and it works after enable, after the login and
    after disable."""
    py = PYTHONS[-1]
    aws, site = _throwaway_aws("plugin-venv")
    home = Home("plugin-enable", py)
    aws2, module2 = _second_aws(home)
    before = b"# mine\n[default]\nregion = us-east-1\n"
    home.write(home.awsconf, before)
    t = home.run_tool("--profile", "pe", "configure", "--ecp-endpoint-url", IDP_A,
                      "--username", "alice", "--factor", "auto")
    need(t.rc == 0, "configure: exit %s" % t.rc, t.transcript())
    p = tool_plain(home, "plugin", "enable", "--aws", aws)
    need(p.rc == 0, "plugin enable: exit %s" % p.rc, p.transcript())
    module = os.path.join(site, "aws_login.py")
    need(os.path.isfile(module), "plugin enable put no aws_login.py in %s" % site, p.transcript())
    p = run_plain([aws, "--version"], home.env)
    need(p.rc == 0, "aws --version after enable: exit %s" % p.rc, p.transcript())
    _second_aws_loads_it(home, aws, aws2, module2)
    # the IdP's CA is not in the profile: --ca-bundle, a global option of the AWS CLI
    t = Terminal([aws, "--profile", "pe", "login", "--no-refresh"], home.env)
    seen = t.interact(answers_for(password="alice-pass"), timeout=90)
    t.wait()
    need(t.rc == 8 and "not trusted" in t.stderr and not seen,
         "aws login without the CA: exit %s, prompts %r (want 8, none)" % (t.rc, seen),
         t.transcript())
    t = Terminal([aws, "--ca-bundle", CA, "--profile", "pe", "login", "--no-refresh"], home.env)
    seen = t.interact(answers_for(password="alice-pass"), timeout=90)
    t.wait()
    need(t.rc == 0 and seen == ["password"], "aws --ca-bundle CA login: exit %s, prompts %r"
         % (t.rc, seen), t.transcript())
    p = run_plain([aws, "sts", "get-caller-identity", "--profile", "pe", "--output", "json"],
                  home.env)
    need(p.rc == 0 and json.loads(p.stdout)["Arn"] == ALICE_ARN,
         "aws sts get-caller-identity: exit %s" % p.rc, p.transcript())
    # awscli-login 1.0's own defaults: duration = 0 (not set), factor = off (no Duo)
    home.write(os.path.join(home.root, "config"),
               home.read(os.path.join(home.root, "config")) +
               ("\n[pe2]\necp_endpoint_url = %s\nusername = alice\nenable_keyring = False\n"
                "factor = off\nrole_arn = \nduration = 0\n" % IDP_A).encode())
    before_records = records()
    t = Terminal([aws, "--ca-bundle", CA, "--profile", "pe2", "login", "--no-refresh"],
                 home.env)
    seen = t.interact(answers_for(password="alice-pass"), timeout=90)
    t.wait()
    need(t.rc == 0 and seen == ["password"], "awscli-login config (factor off, duration 0): "
         "exit %s, prompts %r" % (t.rc, seen), t.transcript())
    _second_aws_works(home, aws2, "after the login", "pe")
    sent = new_records(before_records, "AssumeRoleWithSAML")
    # none from the profile: only the assertion's SessionDuration (alice: 3600) may go
    need(sent and all(r["form"].get("DurationSeconds") in (None, "3600") for r in sent),
         "duration = 0 reached STS as a duration", json.dumps(sent)[:2000])
    # disable never runs aws: no aws on PATH
    p = tool_plain(home, "plugin", "disable", env=dict(home.env, PATH="/nonexistent"))
    need(p.rc == 0, "plugin disable: exit %s" % p.rc, p.transcript())
    need(home.read(home.awsconf) == before, "plugin disable did not restore ~/.aws/config "
         "byte for byte", repr(home.read(home.awsconf)))
    need(not os.path.exists(module), "plugin disable left %s" % module)
    need(not os.path.exists(module2), "plugin disable left %s" % module2)
    _second_aws_works(home, aws2, "after disable", "pe")
    # under a name of its own (issue 22): `aws saml-login`, `aws saml-login logout`
    p = tool_plain(home, "plugin", "enable", "--aws", aws, "--command", "saml-login")
    need(p.rc == 0 and "`aws saml-login`" in p.stderr,
         "plugin enable --command saml-login: exit %s" % p.rc, p.transcript())
    t = Terminal([aws, "--ca-bundle", CA, "--profile", "pe", "saml-login", "--force",
                  "--no-refresh"], home.env)
    seen = t.interact(answers_for(password="alice-pass"), timeout=90)
    t.wait()
    need(t.rc == 0 and seen == ["password"], "aws saml-login: exit %s, prompts %r"
         % (t.rc, seen), t.transcript())
    p = run_plain([aws, "sts", "get-caller-identity", "--profile", "pe", "--output", "json"],
                  home.env)
    need(p.rc == 0 and json.loads(p.stdout)["Arn"] == ALICE_ARN,
         "after aws saml-login, get-caller-identity: exit %s" % p.rc, p.transcript())
    p = run_plain([aws, "--profile", "pe", "saml-login", "logout"], home.env)
    need(p.rc == 0 and "Logged out of profile pe." in p.stderr and
         creds_section(home, "pe") is None, "aws saml-login logout: exit %s" % p.rc,
         p.transcript())
    p = tool_plain(home, "plugin", "disable", env=dict(home.env, PATH="/nonexistent"))
    need(p.rc == 0 and home.read(home.awsconf) == before,
         "plugin disable after --command: exit %s" % p.rc, p.transcript())
    # an AWS CLI whose Python cannot take the module
    broken, broken_site = _throwaway_aws("plugin-venv-nosite", flags="-S")
    p = tool_plain(home, "plugin", "enable", "--aws", broken)
    need(p.rc == 3 and "undone" in p.stderr and len(p.stderr.strip().splitlines()) == 1,
         "enable against an AWS CLI that cannot import it: exit %s" % p.rc, p.transcript())
    need(home.read(home.awsconf) == before, "a failed enable changed ~/.aws/config",
         repr(home.read(home.awsconf)))
    need(not os.path.exists(os.path.join(broken_site, "aws_login.py")),
         "a failed enable left the module behind")
    p = run_plain([broken, "--version"], home.env)
    need(p.rc == 0, "aws --version after the failed enable: exit %s" % p.rc, p.transcript())
    need(not os.path.exists(module2), "the failed enable left %s" % module2)
    _second_aws_works(home, aws2, "after the failed enable")
    return ("enable, aws login (--ca-bundle), get-caller-identity, factor=off, disable, "
            "--command saml-login (login, logout), rollback; a second AWS CLI v1 on PATH "
            "works throughout")


def _second_aws(home):
    """The second AWS CLI v1 (interop/run: $INTEROP_CACHE/venv-cli2, its own venv)
    put first on the home's PATH, working and without the module: (its aws,
    where enable must put aws_login.py for it)."""
    aws2 = E.get("INTEROP_AWS2") or ""
    need(os.access(aws2, os.X_OK), "no second AWS CLI: INTEROP_AWS2=%r (interop/run installs "
         "it from interop/pins/cli2.txt)" % aws2)
    python2 = os.path.join(os.path.dirname(aws2), "python")
    site2 = subprocess.check_output([python2, "-c", "import sysconfig;print(sysconfig."
                                     "get_paths()['purelib'])"]).decode().strip()
    home.env["PATH"] = os.path.dirname(aws2) + os.pathsep + home.env["PATH"]
    p = subprocess.run([python2, "-c", "import aws_login; print(aws_login.__file__)"],
                       env=home.env, cwd="/", stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    need(p.returncode != 0, "the second AWS CLI's Python imports aws_login before enable",
         p.stdout.decode("utf-8", "replace"))
    _second_aws_works(home, aws2, "before enable")
    return aws2, os.path.join(site2, "aws_login.py")


def _second_aws_loads_it(home, aws, aws2, module2):
    """After enable: the second AWS CLI has its own copy, works, reaches the plugin,
    and `plugin status` says so."""
    need(os.path.isfile(module2), "plugin enable gave the second AWS CLI (%s) no module at %s"
         % (aws2, module2))
    _second_aws_works(home, aws2, "after enable")
    p = run_plain([aws2, "login"], dict(home.env, AWS_LOGIN_PLUGIN_PROBE="probe-2"))
    need(p.rc == 0 and p.stdout.split()[:1] == ["probe-2"] and module2 in p.stdout,
         "the second AWS CLI's `aws login` did not reach its own copy of the plugin",
         p.transcript())
    p = tool_plain(home, "plugin", "status", "--aws", aws)
    lines = [l.strip() for l in p.stdout.splitlines() if l.strip().startswith(aws2 + " ")]
    need(p.rc == 0 and len(lines) == 1 and "plugin loads (%s)" % module2 in lines[0],
         "plugin status does not show the second AWS CLI loading the plugin", p.transcript())


def _second_aws_works(home, aws2, when, profile=None):
    """`aws --version` runs; with ``profile``, `aws sts get-caller-identity` shows
    alice's role."""
    p = run_plain([aws2, "--version"], home.env)
    need(p.rc == 0 and "aws-cli/1." in p.stdout + p.stderr,
         "the second AWS CLI, %s: `aws --version` exit %s" % (when, p.rc), p.transcript())
    if profile:
        p = run_plain([aws2, "sts", "get-caller-identity", "--profile", profile, "--output",
                       "json"], home.env)
        need(p.rc == 0 and json.loads(p.stdout)["Arn"] == ALICE_ARN, "the second AWS CLI, %s: "
             "sts get-caller-identity exit %s" % (when, p.rc), p.transcript())


BUILD_PINS = os.path.join(HERE, "pins", "build.txt")


def check_pip_install():
    """`pip install .` in a fresh venv gives an `aws-login` command; the module stays
    one file and nothing else is installed with it."""
    src = os.path.join(STATE, "pipsrc")
    os.makedirs(src, exist_ok=True)
    for name in ("aws_login.py", "pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(os.path.join(os.path.dirname(TOOL), name), src)
    venv = os.path.join(STATE, "pipvenv")
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    before = set(subprocess.check_output([os.path.join(venv, "bin", "pip"), "freeze",
                                          "--all"]).decode().splitlines())
    # the build backend pip fetches for its isolated build: pinned (PIP_CONSTRAINT
    # reaches the pip that fills the build environment)
    p = subprocess.run([os.path.join(venv, "bin", "pip"), "install", "--no-input", "-q", src],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300,
                       env=dict(E, PIP_CONSTRAINT=BUILD_PINS))
    need(p.returncode == 0, "pip install .: exit %s" % p.returncode, p.stdout.decode()[-3000:])
    after = set(subprocess.check_output([os.path.join(venv, "bin", "pip"), "freeze",
                                         "--all"]).decode().splitlines())
    added = sorted(after - before)
    need(len(added) == 1 and added[0].startswith("aws-login-py"),
         "pip install . added more than the tool: %r" % added)
    site = subprocess.check_output([os.path.join(venv, "bin", "python"), "-c",
                                    "import aws_login; print(aws_login.__file__)"],
                                   cwd=venv).decode().strip()
    need(site.endswith("site-packages/aws_login.py"), "not one module file: %s" % site)
    home = Home("pip", os.path.join(venv, "bin", "python"))
    exe = os.path.join(venv, "bin", "aws-login")
    p = run_plain([exe, "--version"], home.env)
    need(p.rc == 0 and "0." in p.stdout, "aws-login --version: exit %s" % p.rc, p.transcript())
    p = run_plain([exe, "--profile", "pp", "configure", "--ecp-endpoint-url", IDP_A,
                   "--username", "alice", "--factor", "auto", "--ca-bundle", CA], home.env)
    need(p.rc == 0, "aws-login configure: exit %s" % p.rc, p.transcript())
    q = subprocess.run([exe, "--profile", "pp", "login", "--password-stdin", "--no-refresh"],
                       input=b"alice-pass\n", env=home.env, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, start_new_session=True, timeout=90)
    need(q.returncode == 0, "aws-login login --password-stdin: exit %s" % q.returncode,
         q.stderr.decode())
    rc, arn, out = caller_identity(home, "pp")
    need(rc == 0 and arn == ALICE_ARN, "after aws-login login: %s %s" % (rc, arn), out)
    demo_leaves_nothing(home, [exe, "demo"], "pip-installed")
    return "pip install . -> %s, module %s; aws-login demo leaves nothing" % (
        added[0], os.path.basename(site))


# --------------------------------------------------------------------------
# The credential server (exec --server): the AWS CLI and boto3 as consumers
# --------------------------------------------------------------------------

# The command of check 23 (stdlib only, run with the Python under test):
# "probe" asks the server with and without the token; "hold MODE FILE" writes
# "PID URI" to FILE, then exits (exit), dies by SIGTERM (term) or SIGKILL
# (kill), or waits to be killed (wait).
SERVER_CHILD = r'''
import json, os, signal, sys, time, urllib.error, urllib.request
uri = os.environ.get("AWS_CONTAINER_CREDENTIALS_FULL_URI")
token = os.environ.get("AWS_CONTAINER_AUTHORIZATION_TOKEN")
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
def ask(headers):
    try:
        with opener.open(urllib.request.Request(uri, headers=headers), timeout=30) as r:
            return [r.status, json.loads(r.read().decode())]
    except urllib.error.HTTPError as e:
        return [e.code, None]
if sys.argv[1] == "probe":
    names = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE")
    wrong = token[:-1] + ("A" if token[-1:] != "A" else "B")
    print(json.dumps({"uri": uri, "env": [n for n in names if n in os.environ],
                      "right": ask({"Authorization": token}), "none": ask({}),
                      "wrong": ask({"Authorization": wrong})}))
    sys.exit(0)
mode, path = sys.argv[2], sys.argv[3]
with open(path + ".tmp", "w") as f:
    f.write("%d %s\n" % (os.getpid(), uri))
os.rename(path + ".tmp", path)
if mode == "term":
    os.kill(os.getpid(), signal.SIGTERM)
elif mode == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
elif mode == "wait":
    time.sleep(600)
'''

# The command of check 22 (the venv's Python, boto3): GetCallerIdentity every
# second for SECONDS; the credentials come from the container provider.
BOTO3_CHILD = r'''
import json, sys, time
import boto3
session = boto3.session.Session()
sts = session.client("sts")
arns, errors, end = [], [], time.time() + float(sys.argv[1])
while time.time() < end:
    try:
        arns.append(sts.get_caller_identity()["Arn"])
    except Exception as e:
        errors.append("%s: %s" % (type(e).__name__, e))
    time.sleep(1)
print(json.dumps({"method": session.get_credentials().method, "arns": sorted(set(arns)),
                  "calls": len(arns), "errors": errors}))
'''


def server_env(home):
    """The venv's AWS CLI on PATH; keys and a profile in the environment that
    must not reach the command (the server's credentials must)."""
    env = dict(home.env)
    env["PATH"] = os.path.dirname(AWS) + os.pathsep + env["PATH"]
    env["AWS_PROFILE"] = "no-such-profile"
    env["AWS_ACCESS_KEY_ID"] = "AKIAOUTSIDEXXXXXXXXX"
    env["AWS_SECRET_ACCESS_KEY"] = "outside-secret"
    return env


def port_closed(port):
    import socket
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def listening_on(port):
    """Local addresses of TCP sockets listening on ``port`` (/proc/net/tcp, tcp6)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for row in f.read().splitlines()[1:]:
                fields = row.split()
                address, hex_port = fields[1].split(":")
                if int(hex_port, 16) == port and fields[3] == "0A":
                    found.append(address)
    return found


def sts_expiration(rec):
    m = re.search(r"<Expiration>([^<]+)</Expiration>", rec.get("response", ""))
    return iso_epoch(m.group(1)) if m else None


def tool_21_exec_server(py):
    """exec --server -- aws sts get-caller-identity: the AWS CLI, with other keys and a
    missing profile in its environment, gets the profile's credentials from the server."""
    home = Home("t21", py)
    configure_flags(home, "p21", IDP_A, "alice")
    login_ok(home, "p21", answers_for(password="alice-pass"), "--no-refresh")
    key = creds_value(home, "p21", "aws_access_key_id")
    env = server_env(home)
    before = records()
    p = tool_plain(home, "--profile", "p21", "exec", "--server", "--", "aws", "sts",
                   "get-caller-identity", "--output", "json", env=env)
    need(p.rc == 0, "exec --server -- aws sts get-caller-identity: exit %s" % p.rc, p.transcript())
    need(json.loads(p.stdout or "{}").get("Arn") == ALICE_ARN, "not the assumed role",
         p.transcript())
    need(p.stderr == "", "exec --server said something", p.transcript())
    gci = new_records(before, "GetCallerIdentity")
    need(len(gci) == 1 and signing_key(gci[0]) == key, "the AWS CLI did not sign with the "
         "profile's key (%r, expected %s)" % ([signing_key(r) for r in gci], key))
    need(not new_records(before, "AssumeRoleWithSAML"), "fresh stored credentials, yet the "
         "server logged in again")
    p = tool_plain(home, "--profile", "p21", "exec", "--server", "--", "sh", "-c", "exit 3",
                   env=env)
    need(p.rc == 3, "exec --server -- sh -c 'exit 3': exit %s" % p.rc, p.transcript())
    return "ARN %s" % ALICE_ARN


def tool_22_exec_server_renews(py):
    """erin's 20 s credentials (IdP B): boto3 in a command that runs 35 s keeps working
    through the server's renewals (from the saved IdP session), every call signed with
    credentials STS issued and not yet expired; no file is written."""
    home = Home("t22", py)
    configure_flags(home, "p22", IDP_B, "erin", "--factor", "auto")
    login_ok(home, "p22", answers_for(password="erin-pass"), "--no-refresh")
    creds_before = home.read(home.creds)
    mtime = os.stat(home.creds).st_mtime_ns
    child = os.path.join(home.dir, "boto3_child.py")
    home.write(child, BOTO3_CHILD.encode())
    before, idp_before = records(), len(access_log())
    started = time.time()
    p = tool_plain(home, "--profile", "p22", "exec", "--server", "--", sys.executable, child,
                   "35", env=server_env(home), timeout=180)
    need(p.rc == 0, "exec --server -- boto3 child: exit %s" % p.rc, p.transcript())
    try:
        out = json.loads(p.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise CheckFailed("the boto3 child printed no JSON", p.transcript())
    need(out["method"] == "container-role", "boto3 took its credentials from %r, not the "
         "container provider" % out["method"], p.transcript())
    need(not out["errors"] and out["arns"] == [ERIN_ARN] and out["calls"] >= 20,
         "boto3 calls: %d, ARNs %r, errors %r" % (out["calls"], out["arns"], out["errors"][:3]))
    issued = [r for r in new_records(before, "AssumeRoleWithSAML")
              if r["form"].get("RoleArn") == SHORT_LIVED_ROLE]
    keys = dict((issued_key(r), sts_expiration(r)) for r in issued)
    gci = new_records(before, "GetCallerIdentity")
    need(len(gci) == out["calls"], "%d GetCallerIdentity at the proxy, boto3 made %d"
         % (len(gci), out["calls"]))
    used = [signing_key(r) for r in gci]
    need(set(used) <= set(keys), "signed with keys STS did not issue after the login: %r"
         % sorted(set(used) - set(keys)))
    late = [(k, round(r["time"] - keys[k], 1)) for k, r in zip(used, gci) if r["time"] >= keys[k]]
    need(not late, "calls signed with expired credentials (key, seconds late): %r" % late)
    need(len(set(used)) >= 3, "only %d distinct keys in 35 s of 20 s credentials: the server "
         "did not renew" % len(set(used)))
    port = urllib.parse.urlsplit(IDP_B).port
    idp = [a for a in access_log()[idp_before:] if a["port"] == port]
    need(idp and all(a["user"] == "-" for a in idp), "IdP B requests (user per request) %r: "
         "expected the saved session only" % [a["user"] for a in idp])
    need(home.read(home.creds) == creds_before and os.stat(home.creds).st_mtime_ns == mtime,
         "the credentials file was written")
    need(not os.path.exists(os.path.join(home.root, "cache", "p22")), "a cache file was written")
    return "%d calls over %.0f s, %d keys, %d renewals" % (out["calls"], time.time() - started,
                                                         len(set(used)), len(issued))


def tool_23_server_token_and_lifetime(py):
    """The server answers only with the token (403 without it or with a wrong one), on
    127.0.0.1 only; when the command ends (exit, SIGTERM, SIGKILL) or exec itself is
    killed, no server process remains and the port is closed."""
    home = Home("t23", py)
    configure_flags(home, "p23", IDP_A, "alice")
    login_ok(home, "p23", answers_for(password="alice-pass"), "--no-refresh")
    key = creds_value(home, "p23", "aws_access_key_id")
    env = server_env(home)
    child = os.path.join(home.dir, "server_child.py")
    home.write(child, SERVER_CHILD.encode())
    p = tool_plain(home, "--profile", "p23", "exec", "--server", "--", py, child, "probe",
                   env=env)
    need(p.rc == 0, "probe: exit %s" % p.rc, p.transcript())
    probe = json.loads(p.stdout)
    need(probe["env"] == [], "the command's environment holds %r" % probe["env"])
    need(probe["right"][0] == 200 and probe["right"][1]["AccessKeyId"] == key
         and probe["right"][1]["RoleArn"] == "arn:aws:iam::123456789012:role/Admin"
         and re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", probe["right"][1]["Expiration"]),
         "with the token: %r" % (probe["right"],))
    need(probe["none"][0] == 403 and probe["wrong"][0] == 403,
         "without the token %s, with a wrong one %s (expected 403)"
         % (probe["none"][0], probe["wrong"][0]))
    need(re.match(r"http://127\.0\.0\.1:\d+/", probe["uri"]), "URI %r" % probe["uri"])
    for mode, status in (("exit", 0), ("term", 128 + signal.SIGTERM),
                         ("kill", 128 + signal.SIGKILL), ("wait", None)):
        started = os.path.join(home.dir, "started-" + mode)
        proc = subprocess.Popen([py, TOOL, "--profile", "p23", "exec", "--server", "--", py,
                                 child, "hold", mode, started], env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
        try:
            deadline = time.time() + 60
            while not os.path.exists(started) and proc.poll() is None and time.time() < deadline:
                time.sleep(0.05)
            need(os.path.exists(started), "%s: the command never started" % mode,
                 proc.poll() is not None and proc.communicate())
            child_pid, uri = open(started).read().split()
            port = urllib.parse.urlsplit(uri).port
            if mode == "wait":
                need(listening_on(port) == ["0100007F"], "the server listens on %r, not "
                     "127.0.0.1 only" % listening_on(port))
                proc.kill()     # exec itself killed: the server dies with it
                proc.wait(60)
                need(port_closed(port), "port %d still open after exec was killed" % port)
                # the command goes on alone (it holds the pipes): stopped here
                need(proc_alive(int(child_pid)), "the command died with exec")
                stop_pid(int(child_pid))
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        if status is not None:
            need(proc.returncode == status, "%s: exit %s, expected %s" % (mode, proc.returncode,
                                                                          status), err.decode())
        need(port_closed(port), "%s: port %d still open after exec ended" % (mode, port))
        left = home.leftover_pids()
        need(not left, "%s: processes left: %s" % (mode, ", ".join(
            "%d (%s)" % (pid, proc_cmdline(pid)) for pid in left)))
    return "403 without/with a wrong token; nothing left after exit, SIGTERM, SIGKILL, exec killed"


def server_checks(py):
    ver = python_version(py)
    for name, fn in [
        ("22 exec --server -- aws sts get-caller-identity: credentials from the server",
         tool_21_exec_server),
        ("23 exec --server: boto3 through erin's 20 s renewals, nothing written",
         tool_22_exec_server_renews),
        ("24 exec --server: 403 without the token; no server left however the command ends",
         tool_23_server_token_and_lifetime),
    ]:
        run_check("tool py%s: %s" % (ver, name), fn, py)


# --------------------------------------------------------------------------
# Proxies: Debian's squid between the tool and the HTTPS IdP
# --------------------------------------------------------------------------
# interop/run starts two squids on 127.0.0.1 (one open, one asking for Basic
# credentials) and keeps a third port closed.  STS here is plain http (the
# recording proxy), which the tool never sends through a proxy: with
# HTTP_PROXY set as well, squid's log must show no STS request.

SQUID = E.get("INTEROP_SQUID_URL")                  # no credentials asked
SQUID_AUTH = E.get("INTEROP_SQUID_AUTH_URL")        # Basic, basic_ncsa_auth
SQUID_USER = E.get("INTEROP_SQUID_USER")
SQUID_PASSWORD = E.get("INTEROP_SQUID_PASSWORD")
SQUID_TLS = E.get("INTEROP_SQUID_TLS_URL")          # SQUID_AUTH's twin behind TLS (https://)
SQUID_LOGS = {SQUID: E.get("INTEROP_SQUID_LOG"), SQUID_AUTH: E.get("INTEROP_SQUID_AUTH_LOG"),
              SQUID_TLS: E.get("INTEROP_SQUID_TLS_LOG")}
PROXY_DOWN = E.get("INTEROP_PROXY_DOWN_URL")        # nothing listens there


def need_squid():
    if not (SQUID and SQUID_AUTH and SQUID_TLS and PROXY_DOWN):
        raise Skip("no squid: interop/run did not start one (INTEROP_SQUID_URL unset)")


def squid_log(proxy):
    """squid's access log (its native format), one dict a line: code (e.g.
    TCP_TUNNEL/200), method, url (host:port for CONNECT), user."""
    try:
        with open(SQUID_LOGS[proxy], "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        w = line.split()
        if len(w) >= 8:
            out.append({"code": w[3], "method": w[5], "url": w[6], "user": w[7], "line": line})
    return out


def squid_lines_after(proxy, before, count=1, timeout=5.0):
    """The lines squid logged after the first ``before``, once there are ``count``
    (squid logs a tunnel when it closes), or all there are after ``timeout``."""
    deadline = time.time() + timeout
    while True:
        new = squid_log(proxy)[before:]
        if len(new) >= count or time.time() > deadline:
            return new
        time.sleep(0.1)


def host_port(url):
    return urllib.parse.urlsplit(url).netloc


def with_credentials(proxy, user, password):
    parts = urllib.parse.urlsplit(proxy)
    return "%s://%s:%s@%s" % (parts.scheme, urllib.parse.quote(user, safe=""),
                              urllib.parse.quote(password, safe=""), parts.netloc)


def error_line(t):
    lines = [l for l in t.stderr.splitlines() if l.strip()]
    need(len(lines) == 1, "%d stderr lines, expected one" % len(lines), t.transcript())
    return lines[0]


def proxy_home(label, py, profile):
    home = Home(label, py)
    configure_flags(home, profile, IDP_A, "alice")
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY",
                 "no_proxy"):
        home.env.pop(name, None)
    return home


def tool_p1_squid_tunnel(py):
    """Login through the open squid: CONNECT to IdP A (TCP_TUNNEL/200 in its
    log), the password inside TLS end to end; STS (plain http) direct, though
    HTTP_PROXY names squid too."""
    need_squid()
    home = proxy_home("p1", py, "px1")
    home.env.update(HTTPS_PROXY=SQUID, HTTP_PROXY=SQUID, http_proxy=SQUID)
    before = len(squid_log(SQUID))
    t = login_ok(home, "px1", answers_for(password="alice-pass"), "--no-refresh")
    need_creds(home, "px1")
    need(len(t.records) == 1, "%d AssumeRoleWithSAML at STS (the recording proxy), expected 1"
         % len(t.records))
    new = squid_lines_after(SQUID, before)
    idp = host_port(IDP_A)
    tunnels = [l for l in new if (l["method"], l["url"], l["code"])
               == ("CONNECT", idp, "TCP_TUNNEL/200")]
    need(tunnels, "squid logged no CONNECT %s TCP_TUNNEL/200" % idp,
         "\n".join(l["line"] for l in new))
    others = [l for l in new if l not in tunnels]
    need(not others, "squid saw more than the IdP's tunnels (STS must go direct)",
         "\n".join(l["line"] for l in others))
    return "%d CONNECT %s TCP_TUNNEL/200; STS direct" % (len(tunnels), idp)


def tool_p2_squid_basic_auth(py):
    """squid asking for Basic credentials: the right ones in HTTPS_PROXY log in
    (squid's log names the user); a wrong password, or none, exits 8 with one
    line naming the proxy and HTTPS_PROXY (407), before the IdP or a prompt."""
    need_squid()
    home = proxy_home("p2", py, "px2")
    home.env["HTTPS_PROXY"] = with_credentials(SQUID_AUTH, SQUID_USER, SQUID_PASSWORD)
    before = len(squid_log(SQUID_AUTH))
    login_ok(home, "px2", answers_for(password="alice-pass"), "--no-refresh")
    need_creds(home, "px2")
    new = squid_lines_after(SQUID_AUTH, before)
    need(any(l["code"] == "TCP_TUNNEL/200" and l["user"] == SQUID_USER for l in new),
         "squid logged no tunnel for user %s" % SQUID_USER, "\n".join(l["line"] for l in new))
    creds = home.read(home.creds)
    who = "the proxy %s (HTTPS_PROXY)" % host_port(SQUID_AUTH)
    wrong = "wrong-" + SQUID_PASSWORD[:6]
    for proxy, words in (
            (with_credentials(SQUID_AUTH, SQUID_USER, wrong),
             "%s refused the credentials in HTTPS_PROXY (HTTP 407)" % who),
            (SQUID_AUTH, "%s asks for credentials (HTTP 407): put them in HTTPS_PROXY as "
                         "http://USER:PASSWORD@%s" % (who, host_port(SQUID_AUTH)))):
        home.env["HTTPS_PROXY"] = proxy
        idp_before, before = len(access_log()), len(squid_log(SQUID_AUTH))
        t = home.run_tool("--profile", "px2", "login", "--force", "--no-refresh")
        need(t.rc == 8, "exit %s, expected 8" % t.rc, t.transcript())
        line = error_line(t)
        need(line == "aws_login: error: " + words, "error line %r, expected %r" % (line, words))
        need(not t.seen, "it prompted %r" % t.seen, t.transcript())
        need(wrong not in t.transcript() and SQUID_PASSWORD not in t.transcript(),
             "a proxy password shows in the output", t.transcript())
        need(len(access_log()) == idp_before, "the IdP got a request")
        need(home.read(home.creds) == creds, "the credentials file changed")
        new = squid_lines_after(SQUID_AUTH, before)
        need(any(l["code"] == "TCP_DENIED/407" for l in new), "squid logged no TCP_DENIED/407",
             "\n".join(l["line"] for l in new))
    return "user %s tunnelled; wrong and missing credentials: 407 named" % SQUID_USER


def tool_p3_no_proxy(py):
    """NO_PROXY forms as urllib matches them bypass squid (no line in its log),
    and one that does not match goes through it (the log's positive control)."""
    need_squid()
    home = proxy_home("p3", py, "px3")
    idp = host_port(IDP_A)
    home.env["HTTPS_PROXY"] = SQUID
    forms = [("NO_PROXY", idp, True), ("NO_PROXY", "127.0.0.1", True),
             ("no_proxy", ".0.0.1", True), ("NO_PROXY", "other.test, *", False),
             ("NO_PROXY", "*", True), ("NO_PROXY", "localhost,127.0.0.1:1", False)]
    through = []
    for variable, value, bypassed in forms:
        home.env.pop("NO_PROXY", None)
        home.env.pop("no_proxy", None)
        home.env[variable] = value
        before = len(squid_log(SQUID))
        login_ok(home, "px3", answers_for(password="alice-pass"), "--force", "--no-refresh")
        new = squid_lines_after(SQUID, before, timeout=0.5 if bypassed else 5.0)
        if bypassed:
            need(not new, "%s=%r: squid saw the login" % (variable, value),
                 "\n".join(l["line"] for l in new))
        else:
            need([l for l in new if l["url"] == idp], "%s=%r: squid did not see the login"
                 % (variable, value), "\n".join(l["line"] for l in new))
            through.append(value)
    return "bypassed: %s; through squid: %s" % (
        ", ".join(repr(v) for _, v, b in forms if b), ", ".join(repr(v) for v in through))


def tool_p4_proxy_down(py):
    """A proxy that is down (nothing listens): exit 8, one line naming it and the
    variable (HTTPS_PROXY or https_proxy), never the IdP; nothing written."""
    need_squid()
    home = proxy_home("p4", py, "px4")
    for variable in ("HTTPS_PROXY", "https_proxy"):
        home.env.pop("HTTPS_PROXY", None)
        home.env[variable] = PROXY_DOWN
        idp_before = len(access_log())
        t = home.run_tool("--profile", "px4", "login", "--no-refresh")
        need(t.rc == 8, "exit %s, expected 8" % t.rc, t.transcript())
        words = ("aws_login: error: connection refused by the proxy %s (%s): is the proxy up "
                 "and %s right?" % (host_port(PROXY_DOWN), variable, variable))
        line = error_line(t)
        need(line == words, "error line %r, expected %r" % (line, words))
        need(not t.seen, "it prompted %r" % t.seen, t.transcript())
        need(len(access_log()) == idp_before, "the IdP got a request")
        need(home.read(home.creds) is None, "a credentials file was written")
    return "connection refused by the proxy %s, named with its variable" % host_port(PROXY_DOWN)


def tool_p5_https_proxy(py):
    """An https:// proxy URL (squid's https_port, Basic auth): TLS to squid, its
    certificate checked against AWS_CA_BUNDLE (not the profile's ca_bundle,
    which is the IdP's: without it, exit 8 naming the proxy), then CONNECT and
    the proxy password inside it; https:// written for the plain squid: exit 8,
    'answers in plain HTTP', and squid logs no CONNECT of ours."""
    need_squid()
    home = proxy_home("p5", py, "px5")
    home.env["HTTPS_PROXY"] = with_credentials(SQUID_TLS, SQUID_USER, SQUID_PASSWORD)
    who = "the proxy %s (HTTPS_PROXY)" % host_port(SQUID_TLS)
    t = home.run_tool("--profile", "px5", "login", "--no-refresh")
    line = error_line(t)
    need(t.rc == 8 and line.startswith("aws_login: error: TLS certificate of %s not trusted"
                                       % who) and "AWS_CA_BUNDLE" in line,
         "without AWS_CA_BUNDLE: exit %s, %r" % (t.rc, line), t.transcript())
    home.env["AWS_CA_BUNDLE"] = CA
    before = len(squid_log(SQUID_TLS))
    login_ok(home, "px5", answers_for(password="alice-pass"), "--no-refresh")
    need_creds(home, "px5")
    new = squid_lines_after(SQUID_TLS, before)
    need(any((l["code"], l["method"], l["url"], l["user"]) == (
        "TCP_TUNNEL/200", "CONNECT", host_port(IDP_A), SQUID_USER) for l in new),
        "squid (TLS) logged no tunnel for user %s" % SQUID_USER,
        "\n".join(l["line"] for l in new))
    home.env["HTTPS_PROXY"] = with_credentials(SQUID_AUTH.replace("http:", "https:", 1),
                                               SQUID_USER, SQUID_PASSWORD)
    before = len(squid_log(SQUID_AUTH))
    t = home.run_tool("--profile", "px5", "login", "--force", "--no-refresh")
    line = error_line(t)
    need(t.rc == 8 and "the proxy %s (HTTPS_PROXY) answers in plain HTTP, not TLS"
         % host_port(SQUID_AUTH) in line, "https:// to the plain squid: exit %s, %r"
         % (t.rc, line), t.transcript())
    new = squid_lines_after(SQUID_AUTH, before, timeout=1.0)
    need(not [l for l in new if l["method"] == "CONNECT" or l["user"] != "-"],
         "the plain squid got a CONNECT or credentials", "\n".join(l["line"] for l in new))
    return "TLS to squid (AWS_CA_BUNDLE), user %s tunnelled inside; https:// to a plain " \
           "squid stops at its hello" % SQUID_USER


def proxy_checks(py):
    ver = python_version(py)
    for name, fn in [
        ("proxy 1: login through squid (CONNECT to the HTTPS IdP); plain-http STS direct",
         tool_p1_squid_tunnel),
        ("proxy 2: squid with Basic auth: login; wrong or no password -> exit 8, 407 named",
         tool_p2_squid_basic_auth),
        ("proxy 3: NO_PROXY forms bypass squid (its access log)", tool_p3_no_proxy),
        ("proxy 4: proxy down -> exit 8 naming the proxy and HTTPS_PROXY", tool_p4_proxy_down),
        ("proxy 5: https:// squid: TLS to it, CONNECT and password inside; its CA checked",
         tool_p5_https_proxy),
    ]:
        run_check("tool py%s: %s" % (ver, name), fn, py)


# --------------------------------------------------------------------------
# Every role from one login (issue 22 item 4)
# --------------------------------------------------------------------------

BOB_ROLES = [("p-ar-123456789012-Admin", "arn:aws:sts::123456789012:assumed-role/Admin/bob"),
             ("p-ar-210987654321-ReadOnly", BOB_READONLY_ARN)]


def tool_ar1_all_roles(py):
    """bob (two roles) with login --all-roles: one Password prompt, no menu, one
    assertion for both AssumeRoleWithSAML calls, each role in a profile of its
    own that the AWS CLI uses; status lists them, logout removes them."""
    home = Home("ar1", py)
    configure_flags(home, "p-ar", IDP_A, "bob")
    t = login_ok(home, "p-ar", answers_for(password="bob-pass"), "--all-roles", "--no-refresh")
    need(t.seen.count("password") == 1 and "selection" not in t.seen,
         "login --all-roles prompts %r" % t.seen, t.transcript())
    need(len(t.records) == 2, "%d AssumeRoleWithSAML calls recorded" % len(t.records))
    need(len(set(r["form"].get("SAMLAssertion") for r in t.records)) == 1,
         "the two calls sent different assertions")
    for profile, arn in BOB_ROLES:
        need_creds(home, profile)
        rc, got, out = caller_identity(home, profile)
        need(rc == 0 and got == arn, "aws --profile %s: rc %s arn %r" % (profile, rc, got), out)
        need(status_row_of(home, "p-ar", profile).get("logged_in") is True,
             "status does not list %s as logged in" % profile)
    t = home.run_tool("--profile", "p-ar", "logout")
    need(t.rc == 0, "logout exit %s" % t.rc, t.transcript())
    for profile, _ in BOB_ROLES:
        need(creds_section(home, profile) is None, "logout left [%s]" % profile,
             home.read(home.creds))
    return "2 roles, 1 password, 1 assertion; aws --profile works for each"


def status_row_of(home, parent, profile):
    t = home.run_tool("--profile", parent, "status", "--output", "json")
    need(t.rc == 0, "status exit %s" % t.rc, t.transcript())
    rows = [r for r in json.loads(t.stdout) if r.get("profile") == profile]
    need(len(rows) == 1, "status lists %s %d times" % (profile, len(rows)), t.stdout)
    return rows[0]


def all_roles_checks(py):
    ver = python_version(py)
    for name, fn in [
        ("all-roles 1: bob --all-roles asks once; aws --profile works for each written profile",
         tool_ar1_all_roles),
    ]:
        run_check("tool py%s: %s" % (ver, name), fn, py)


# --------------------------------------------------------------------------
# Issue 22 items 2 and 5: the region reaches the AWS CLI; the Duo device header
# --------------------------------------------------------------------------

IDP_DUO_LOG = os.path.join(os.path.dirname(IDP_ACCESS_LOG), "apache-duo.log")


def duo_log():
    """What the IdPs' Apache logged of each request's Duo headers (idp.sh's second
    CustomLog): [(port, factor, misspelled factor, device)], "-" for a header not sent."""
    try:
        with open(IDP_DUO_LOG, "rb") as f:
            return [tuple(line.split()) for line in f.read().decode("utf-8", "replace")
                    .splitlines() if len(line.split()) == 4]
    except FileNotFoundError:
        return []


def tool_25_region(py):
    """No AWS_DEFAULT_REGION, no --region: the AWS CLI fails for lack of a region
    (negative control) until configure's Region prompt writes the profile's region
    into the AWS config (one line, the rest byte-identical); a login puts it back
    when the user removed it."""
    home = Home("t25", py)
    del home.env["AWS_DEFAULT_REGION"]
    conf_before = b"# mine\n[profile other]\noutput = json\n"
    home.write(home.awsconf, conf_before)
    configure_flags(home, "pr", IDP_A, "alice")
    login_ok(home, "pr", answers_for(password="alice-pass"), "--no-refresh")
    rc, arn, out = caller_identity(home, "pr")
    need(rc != 0 and "You must specify a region" in out,
         "negative control: without a region the AWS CLI gave rc %s" % rc, out)
    need(home.read(home.awsconf) == conf_before, "a login without a region changed the AWS "
         "config", home.read(home.awsconf))
    t = home.run_tool("--profile", "pr", "configure", answers=configure_prompts(region=REGION))
    need(t.rc == 0 and t.seen == [name for name, _ in CONFIGURE_PROMPTS],
         "configure: exit %s, prompts %r" % (t.rc, t.seen), t.transcript())
    with_region = conf_before + b"\n[profile pr]\nregion = %s\n" % REGION.encode()
    need(home.read(home.awsconf) == with_region, "configure did not add just the region",
         "expected:\n%r\ngot:\n%r" % (with_region, home.read(home.awsconf)))
    rc, arn, out = caller_identity(home, "pr")
    need(rc == 0 and arn == ALICE_ARN, "with the region written: rc %s arn %r" % (rc, arn), out)
    home.write(home.awsconf, conf_before + b"\n[profile pr]\n# the user's\n")
    login_ok(home, "pr", answers_for(password="alice-pass"), "--force", "--no-refresh")
    need(home.read(home.awsconf) == conf_before + b"\n[profile pr]\nregion = %s\n# the user's\n"
         % REGION.encode(), "login did not put the region back", home.read(home.awsconf))
    rc, arn, out = caller_identity(home, "pr")
    need(rc == 0 and arn == ALICE_ARN, "after login: rc %s arn %r" % (rc, arn), out)
    return "AWS CLI v1 without --region: 'You must specify a region', then works"


def tool_26_duo_device(py):
    """duo_device reaches the IdP as X-Shibboleth-Duo-Device, with the factor in both
    spellings (the IdP's Apache logs the headers; SimpleSAMLphp itself ignores Duo)."""
    home = Home("t26", py)
    port = urllib.parse.urlsplit(IDP_A).port
    configure_flags(home, "pd", IDP_A, "alice", "--factor", "push")
    before = len(duo_log())
    login_ok(home, "pd", answers_for(password="alice-pass"), "--no-refresh")
    seen = [l for l in duo_log()[before:] if l[0] == str(port)]
    need(("%d" % port, "push", "push", "-") in seen,
         "negative control: no device configured, the IdP saw %r" % seen)
    configure_flags(home, "pd", IDP_A, "alice", "--duo-device", "phone2")
    before = len(duo_log())
    login_ok(home, "pd", answers_for(password="alice-pass"), "--force", "--no-refresh")
    seen = [l for l in duo_log()[before:] if l[0] == str(port)]
    need(("%d" % port, "push", "push", "phone2") in seen,
         "the IdP did not see X-Shibboleth-Duo-Device: phone2: %r" % seen)
    need(all(l[3] in ("phone2", "-") for l in seen), "another device value: %r" % seen)
    return "X-Shibboleth-Duo-Device: phone2 in the IdP's Apache log"


def home_files(home):
    """Every file under the home: {relative path: (bytes, mode)}."""
    found = {}
    for top, _, names in os.walk(home.dir):
        for name in names:
            path = os.path.join(top, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, home.dir)] = (f.read(), os.stat(path).st_mode)
    return found


def tool_27_doctor(py):
    """doctor against the real IdP over HTTPS: without the test CA it fails with
    exit 8 and gives the exact `configure --ca-bundle` command; with it, after a
    login, every check holds (exit 0). Each run writes nothing in the home."""
    home = Home("t27", py)
    t = home.run_tool("--profile", "p27", "configure", "--ecp-endpoint-url", IDP_A,
                      "--username", "alice")
    need(t.rc == 0, "configure exit %s" % t.rc, t.transcript())
    before = home_files(home)
    t = home.run_tool("--profile", "p27", "doctor")
    need(t.rc == 8, "doctor without the test CA: exit %s, expected 8" % t.rc, t.transcript())
    need("configure --ca-bundle" in t.stdout, "no `configure --ca-bundle` advice", t.transcript())
    need(home_files(home) == before, "doctor changed files in the home")
    configure_flags(home, "p27", IDP_A, "alice")
    login_ok(home, "p27", answers_for(password="alice-pass"), "--no-refresh")
    before = home_files(home)
    t = home.run_tool("--profile", "p27", "doctor")
    need(t.rc == 0, "doctor with the CA, logged in: exit %s" % t.rc, t.transcript())
    need("FAIL" not in t.stdout, "a check failed", t.stdout)
    need(home_files(home) == before, "doctor changed files in the home")
    need("alice-pass" not in t.stdout + t.stderr, "the password in doctor's output")
    return "%d lines; exit 8 and the --ca-bundle command without the CA, 0 with it" % (
        len(t.stdout.splitlines()))


def refuses(port):
    """Whether nothing listens on 127.0.0.1:``port``."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return False
    except OSError:
        return True


def demo_leaves_nothing(home, argv, how, stdin=None):
    """One `demo` run (``argv``): exit 0, its last line the assumed-role ARN,
    and nothing left: the home byte for byte, TMPDIR empty, the IdP's and STS's
    ports (its first line names them) closed, no process with the run's TMPDIR
    in its environment."""
    tmp = tempfile.mkdtemp(prefix="demo-tmp-", dir=os.path.join(STATE, "homes"))
    env = dict(home.env, TMPDIR=tmp)
    before = home_files(home)
    p = subprocess.run(argv, env=env, input=stdin, stdin=None if stdin else subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                       timeout=90)
    out = p.stdout.decode("utf-8", "replace")
    lines = out.strip().splitlines()
    need(p.returncode == 0 and lines and lines[-1].startswith("arn:aws:sts::111122223333:"
                                                                "assumed-role/"),
         "demo %s: exit %s" % (how, p.returncode), out + p.stderr.decode("utf-8", "replace"))
    need(home_files(home) == before, "demo %s changed the home" % how)
    need(os.listdir(tmp) == [], "demo %s left %r in TMPDIR" % (how, os.listdir(tmp)))
    ports = [int(port) for port in re.findall(r"http://127\.0\.0\.1:(\d+)/", lines[0])]
    need(len(ports) == 2, "demo %s named no IdP and STS ports" % how, out)
    need(all(refuses(port) for port in ports), "demo %s left its ports %r open" % (how, ports))
    left = [pid for pid in os.listdir("/proc") if pid.isdigit() and
            ("TMPDIR=" + tmp).encode() in _environ_of(pid)]
    need(not left, "demo %s left processes %r" % (how, left))
    return lines[-1]


def _environ_of(pid):
    try:
        with open("/proc/%s/environ" % pid, "rb") as f:
            return f.read()
    except OSError:
        return b""


def tool_28_demo(py):
    """`demo` in a fresh HOME (a credentials file of the user's in it), from the
    file and piped into `python3 -`: exit 0, the ARN last, and nothing left
    behind (home, TMPDIR, listening ports, processes)."""
    home = Home("t28", py)
    home.write(home.creds, b"[default]\naws_access_key_id = AKIAUSERSOWN\n")
    arn = demo_leaves_nothing(home, [py, TOOL, "demo"], "from the file")
    with open(TOOL, "rb") as f:
        demo_leaves_nothing(home, [py, "-", "demo"], "piped", stdin=f.read())
    return "file and piped: %s; nothing left" % arn


def tool_29_role_maximum(py):
    """bob's ReadOnly role refuses more than an hour (the STS front answers as
    real STS does; moto never checks): `duration = 7200` is refused, asked again
    once at 3600 with the same assertion and said once; the next login asks
    3600 at once, and the AWS CLI works with what was written."""
    home = Home("t29", py)
    role = "arn:aws:iam::210987654321:role/ReadOnly"
    configure_flags(home, "p29", IDP_A, "bob", "--duration", "7200", "--role-arn", role)
    t = login_ok(home, "p29", answers_for(password="bob-pass"))
    asked = [(r["form"].get("DurationSeconds"), r["status"]) for r in t.records]
    need(asked == [("7200", 400), ("3600", 200)], "asked %r" % asked, t.transcript())
    need(len(set(r["form"].get("SAMLAssertion") for r in t.records)) == 1,
         "the second ask sent another assertion")
    need(t.stderr.count("3600") >= 1, "the shorter session was not said", t.transcript())
    rc, arn, out = caller_identity(home, "p29")
    need(rc == 0 and arn == BOB_READONLY_ARN, "aws: rc %s arn %r" % (rc, arn), out)
    t = login_ok(home, "p29", answers_for(password="bob-pass"), "--force")
    asked = [(r["form"].get("DurationSeconds"), r["status"]) for r in t.records]
    need(asked == [("3600", 200)], "the next login asked %r" % asked, t.transcript())
    return "7200 refused, 3600 asked once with the same assertion, remembered"


def region_duo_checks(py):
    ver = python_version(py)
    for name, fn in [
        ("25 region: a profile's region reaches the AWS CLI v1 (no --region)", tool_25_region),
        ("26 duo_device: X-Shibboleth-Duo-Device seen by the IdP", tool_26_duo_device),
        ("27 doctor: the real IdP over HTTPS without and with the CA bundle", tool_27_doctor),
        ("28 demo: from the file and piped, nothing left behind", tool_28_demo),
        ("29 role maximum: a duration over it asked again once, then remembered",
         tool_29_role_maximum),
    ]:
        run_check("tool py%s: %s" % (ver, name), fn, py)


# --------------------------------------------------------------------------
# password_prompt: Debian's pinentry-tty answering for a credential_process
# with no terminal (issue 22, item 1)
# --------------------------------------------------------------------------

PINENTRY_TTY = "/usr/bin/pinentry-tty"


def aws_with_pinentry(home, profile, env, reply, timeout=90):
    """aws sts get-caller-identity with no terminal of its own (a session of its
    own); its credential_process finds pinentry (pinentry-tty) on PATH, which
    asks on the pty GPG_TTY names; ``reply`` is typed there once "Password:"
    shows.  Returns (rc, arn, stdout + stderr, what the pty showed)."""
    master, slave = os.openpty()
    env = dict(env, GPG_TTY=os.ttyname(slave), TERM="dumb")
    proc = subprocess.Popen([AWS, "sts", "get-caller-identity", "--profile", profile,
                             "--output", "json"], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    screen, deadline, typed = b"", time.time() + timeout, False
    try:
        while proc.poll() is None and time.time() < deadline:
            if select.select([master], [], [], 0.2)[0]:
                screen += os.read(master, 4096)
            if not typed and b"Password:" in screen:
                os.write(master, reply)
                typed = True
        out, err = proc.communicate(timeout=max(1, deadline - time.time()))
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        while select.select([master], [], [], 0)[0]:
            try:
                screen += os.read(master, 4096)
            except OSError:
                break
        os.close(master)
        os.close(slave)
    arn = None
    if proc.returncode == 0:
        try:
            arn = json.loads(out.decode())["Arn"]
        except (ValueError, KeyError):
            pass
    return proc.returncode, arn, (out + err).decode("utf-8", "replace"), screen


def tool_pp1_pinentry_tty(py):
    """password_prompt = pinentry, credential_process mode, the AWS CLI in a
    session of its own (no terminal): the tool speaks Assuan to Debian's
    pinentry-tty, which asks on the pty GPG_TTY names.  Ctrl-D there cancels
    (the AWS CLI fails, naming the cancel; nothing cached); the password
    typed there logs in, without echo, and the AWS CLI gets the role."""
    need(os.access(PINENTRY_TTY, os.X_OK),
         "no %s (interop/run installs Debian's pinentry-tty)" % PINENTRY_TTY)
    home = Home("pp1", py)
    bindir = os.path.join(home.dir, "bin")
    os.makedirs(bindir)
    os.symlink(PINENTRY_TTY, os.path.join(bindir, "pinentry"))
    configure_flags(home, "pp1", IDP_A, "alice", "--password-prompt", "pinentry",
                    "--credential-process", "true")
    env = dict(home.env, PATH=bindir + ":" + home.env["PATH"])
    cache = os.path.join(home.root, "cache", "pp1")

    before = records()
    rc, arn, out, screen = aws_with_pinentry(home, "pp1", env, b"\x04")
    need(rc != 0 and "cancelled" in out, "Ctrl-D at pinentry-tty: aws exit %s" % rc, out,
         screen.decode("utf-8", "replace"))
    need(not new_records(before, "AssumeRoleWithSAML"), "a cancelled prompt reached STS")
    need(not os.path.exists(cache), "a cancelled prompt left a cache")

    rc, arn, out, screen = aws_with_pinentry(home, "pp1", env, b"alice-pass\n")
    text = screen.decode("utf-8", "replace")
    need(rc == 0 and arn == ALICE_ARN, "aws via pinentry-tty: rc %s arn %r" % (rc, arn), out, text)
    need("aws_login needs the password of alice@" in text and "Password:" in text,
         "pinentry-tty did not show our question", text)
    need(b"alice-pass" not in screen, "the password was echoed on the pty", text)
    need("alice-pass" not in out, "the password is in the AWS CLI's output", out)
    sts = new_records(before, "AssumeRoleWithSAML")
    need(len(sts) == 1, "%d AssumeRoleWithSAML calls" % len(sts))
    need(issued_key(sts[0]) in home.read(cache).decode(), "the cache does not hold the credentials")
    need(not home.leftover_pids(), "processes left: %r" % home.leftover_pids())
    return "Ctrl-D -> cancelled, nothing cached; password on the pty -> %s" % arn


def prompt_checks(py):
    ver = python_version(py)
    run_check("tool py%s: prompt 1: credential_process with no terminal asks through Debian's "
              "pinentry-tty (GPG_TTY on a pty): Ctrl-D cancels, the password logs in"
              % ver, tool_pp1_pinentry_tty, py)


def tool_available(py):
    if not os.path.isfile(TOOL):
        return "%s does not exist" % TOOL
    p = subprocess.run([py, TOOL, "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env={"PATH": "/usr/bin:/bin", "HOME": os.path.join(STATE, "homes")}, timeout=60)
    if p.returncode != 0:
        return "--help exits %s: %s" % (p.returncode, p.stderr.decode()[-500:])
    return None


def _stop(signum, frame):
    raise KeyboardInterrupt("signal %d" % signum)


def main():
    # The tool runs in sessions of its own, so a Ctrl-C or TERM meant for us
    # does not reach it: kill what is still running before going.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _stop)
    try:
        return _main()
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        return 130
    finally:
        for t in list(LIVE):
            t.kill()
        cleanup_homes()


def _main():
    os.makedirs(os.path.join(STATE, "homes"), exist_ok=True)
    print("aws_login interop checks: tool %s, IdP A %s, IdP B %s, STS %s"
          % (TOOL, IDP_A, IDP_B, STS_URL), flush=True)
    for name, fn in [
        ("infra: IdP A ECP over HTTPS, assertion signature verifies", infra_idp_a),
        ("infra: IdP HTTPS refused without the test CA", infra_idp_tls),
        ("infra: IdP wrong password -> 200 Responder WRONGUSERPASS", infra_idp_wrong_password),
        ("infra: IdP B signed response + session reuse; IdP A ForceAuthn", infra_idp_b),
        ("infra: dave 900 s; erin 20 s (proxy drops DurationSeconds for role/ShortLived only)",
         infra_idp_dave),
        ("infra: proxy + moto STS + AWS CLI (bob ReadOnly, AccessDenied)", infra_sts),
        ("infra: pseudo-terminal driver (prompt, no-echo password)", infra_pty),
        ("sigv4: aws_login.sign_request vs botocore SigV4Auth, 200 seeded requests",
         check_sigv4_botocore),
    ]:
        run_check(name, fn)
    for py in PYTHONS:
        if not os.path.exists(py):
            run_check("tool %s" % py, lambda: need(False, "Python %s not found" % py))
            continue
        why = tool_available(py)
        if why:
            run_check("tool %s" % py, lambda: (_ for _ in ()).throw(Skip(why)))
            continue
        tool_checks(py)
        server_checks(py)
        proxy_checks(py)
        all_roles_checks(py)
        region_duo_checks(py)
        prompt_checks(py)
    run_check("plugin: AWS CLI v1 with plugins.login = aws_login", check_awscli_plugin)
    run_check("plugin enable/disable: throwaway venv, no PYTHONPATH, --ca-bundle, factor=off, "
              "--command saml-login, rollback", check_plugin_enable)
    run_check("pip: pip install . in a fresh venv gives aws-login", check_pip_install)
    run_check("fuzz: atheris on parse_ecp_answer + parse_sts_answer (%d s, live seeds)"
              % FUZZ_SECONDS, check_fuzz)
    if RESULTS["cleaned"]:
        print("[interop] cleanup stopped %d refresher(s) that checks left running"
              % RESULTS["cleaned"], flush=True)
    if E.get("INTEROP_T0"):
        t0, t1, t2, now = (int(E["INTEROP_T0"]), int(E["INTEROP_T1"]), int(E["INTEROP_T2"]),
                           int(time.time()))
        print("[interop] wall time %ds (install %ds, start %ds, checks %ds)"
              % (now - t0, t1 - t0, t2 - t1, now - t2), flush=True)
    line = "%d passed, %d failed" % (RESULTS["passed"], RESULTS["failed"])
    if RESULTS["skipped"]:
        line += ", %d skipped" % RESULTS["skipped"]
    print(line, flush=True)
    return 1 if RESULTS["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
