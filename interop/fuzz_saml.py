#!/usr/bin/env python3
"""atheris fuzz target: aws_login's parsers of what the IdP and STS send.

    python fuzz_saml.py TOOL CRASH_DIR [libFuzzer options] [CORPUS_DIR ...]
    e.g. python fuzz_saml.py aws_login.py /tmp/crashes -max_total_time=60 \
             -print_final_stats=1 /tmp/corpus

Every input goes, as the body of the answer, to

    aws_login._parse_ecp_answer(aws_login._HttpAnswer(200, {'Content-Type': 'text/xml'},
                               data, 'https://idp.example/ecp'),
                               'https://signin.aws.amazon.com/saml')
    aws_login._parse_sts_answer(200, data)

aws_login.AwsLoginError (and its subclasses) is the expected way to refuse an
answer.  Anything else is a crash.  The target catches it itself, so one run
goes on for the whole -max_total_time and counts every distinct crash site
(exception type + innermost frame in aws_login) instead of stopping at the
first: for each new site it writes CRASH_DIR/<site-hash>.json (type, message,
site, traceback, the input in base64), and CRASH_DIR/counts.json holds how
many inputs hit each site (rewritten at most once a second).  libFuzzer's own
crash handling (a timeout, an out-of-memory, a signal) still applies; the
caller treats a non-zero exit as a crash as well.

TOOL is imported under atheris.instrument_imports (as module "aws_login", via
a symlink in a temp dir), so coverage guides the mutations inside it.
"""
import base64
import hashlib
import json
import os
import sys
import tempfile
import time
import traceback

if len(sys.argv) < 3:
    sys.exit(__doc__)
TOOL = os.path.abspath(sys.argv[1])
CRASH_DIR = os.path.abspath(sys.argv[2])
LIBFUZZER_ARGV = [sys.argv[0]] + sys.argv[3:]

import atheris  # noqa: E402

_shim = tempfile.mkdtemp(prefix="fuzz-saml-")
os.symlink(TOOL, os.path.join(_shim, "aws_login.py"))
sys.path.insert(0, _shim)
sys.dont_write_bytecode = True
with atheris.instrument_imports(include=["aws_login"]):
    import aws_login  # noqa: E402

ECP_URL = "https://idp.example/ecp"
ACS = "https://signin.aws.amazon.com/saml"
EXPECTED = aws_login.AwsLoginError

os.makedirs(CRASH_DIR, exist_ok=True)
_counts = {}
_last_flush = [0.0]


def _site(exc):
    """(type, file:line of the innermost frame in aws_login, else the innermost)."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if os.path.realpath(f.filename) == os.path.realpath(TOOL)
            or f.filename.endswith("aws_login.py")]
    f = (ours or frames)[-1]
    return "%s at %s:%d (%s)" % (type(exc).__name__, os.path.basename(f.filename), f.lineno,
                                 f.name)


def _record(target, data, exc):
    site = "%s: %s" % (target, _site(exc))
    key = hashlib.sha256(site.encode()).hexdigest()[:16]
    if site not in _counts:
        _counts[site] = 0
        with open(os.path.join(CRASH_DIR, key + ".json"), "w") as f:
            json.dump({"target": target, "site": site, "type": type(exc).__name__,
                       "message": str(exc)[:500], "input_b64": base64.b64encode(data).decode(),
                       "input_len": len(data),
                       "traceback": "".join(traceback.format_exception(
                           type(exc), exc, exc.__traceback__))[-4000:]}, f, indent=1)
        sys.stderr.write("fuzz_saml: NEW CRASH SITE %s (%d-byte input, %s)\n"
                         % (site, len(data), key))
    _counts[site] += 1
    now = time.time()
    if now - _last_flush[0] >= 1.0:
        _flush()
        _last_flush[0] = now


def _flush():
    tmp = os.path.join(CRASH_DIR, "counts.json.tmp")
    with open(tmp, "w") as f:
        json.dump(_counts, f, indent=1)
    os.rename(tmp, os.path.join(CRASH_DIR, "counts.json"))


def TestOneInput(data):
    try:
        aws_login._parse_ecp_answer(
            aws_login._HttpAnswer(200, {"Content-Type": "text/xml"}, data, ECP_URL), ACS)
    except EXPECTED:
        pass
    except Exception as e:      # noqa: BLE001 - anything else is what we look for
        _record("parse_ecp_answer", data, e)
    try:
        aws_login._parse_sts_answer(200, data)
    except EXPECTED:
        pass
    except Exception as e:      # noqa: BLE001
        _record("parse_sts_answer", data, e)


def describe_seeds(dirs):
    """One line per seed and parser: accepted, refused (AwsLoginError) or a crash."""
    for d in dirs:
        for name in sorted(os.listdir(d)):
            with open(os.path.join(d, name), "rb") as f:
                data = f.read()
            for target, call in (
                    ("parse_ecp_answer", lambda: aws_login._parse_ecp_answer(
                        aws_login._HttpAnswer(200, {"Content-Type": "text/xml"}, data, ECP_URL),
                        ACS)),
                    ("parse_sts_answer", lambda: aws_login._parse_sts_answer(200, data))):
                try:
                    got = call()
                    what = "accepted"
                    if hasattr(got, "roles"):
                        what += " (%d role(s))" % len(got.roles)
                except EXPECTED as e:
                    what = "refused (%s: %s)" % (type(e).__name__, str(e)[:100])
                except Exception as e:      # noqa: BLE001
                    what = "CRASH (%s: %s)" % (type(e).__name__, e)
                sys.stderr.write("fuzz_saml: seed %s: %s %s\n" % (name, target, what))


def main():
    _flush()
    describe_seeds([a for a in sys.argv[3:] if not a.startswith("-") and os.path.isdir(a)])
    atheris.Setup(LIBFUZZER_ARGV, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
