#!/usr/bin/env python3
"""aws_login.sign_request against botocore's SigV4Auth, byte for byte.

    python sigv4_compare.py TOOL [--count N] [--seed S] [--python PY ...] [--show K]

Run under a Python that has botocore (the interop venv).  Generates N
requests from a fixed seed (GET/POST; services sts, iam, ec2 - not s3, whose
paths are not normalised; several regions; paths with spaces, dots, double
slashes, reserved and non-ASCII characters; query strings with repeated keys,
blank values, a blank key, reserved and non-ASCII characters; headers in mixed
case with runs of spaces; bodies; with and without a session token; fixed
timestamps), signs each with aws_login.sign_request (the file TOOL, imported
with importlib) and with botocore.auth.SigV4Auth.add_auth, and compares the
Authorization headers.

Both sides get the same header set.  botocore signs every header of the
request except SIGNED_HEADERS_BLACKLIST (user-agent, expect, x-amzn-trace-id,
...), so the generator uses none of those; it does not use Date either (with a
Date header botocore signs Date instead of X-Amz-Date) nor
X-Amz-Content-SHA256 (botocore signs its value instead of hashing the body).
Host: botocore derives it from the URL (lower case, default port dropped);
aws_login takes the URL's netloc as written, which is what urllib sends.  So
where the two derivations differ (an explicit :443/:80, upper-case host) the
generator passes the same explicit Host to both.

Timestamp: SigV4Auth.add_auth takes it from botocore.auth.get_current_datetime
(a name imported into botocore.auth); it is patched to return the case's fixed
naive-UTC datetime, so the whole public add_auth path runs.  aws_login gets
the same instant as its ``when``.

The query string reaches botocore in two ways, both its own: as
``AWSRequest(params=[(key, value), ...])`` (half the cases) or inside the URL
(already percent-encoded, as botocore's serializers build it).  aws_login
always gets the URL.

--python PY: also sign every case with aws_login under that Python (a child
process; botocore is not needed there) and compare too.

Prints one JSON object: {"count", "identical", "mismatch_count", "differs_in":
{part of the canonical request: cases}, "mismatches": [...first K with both
canonical requests...], "pythons": {...}}.  Exit 0 if all identical.
"""
import argparse
import base64
import datetime
import importlib.util
import json
import random
import subprocess
import sys
from unittest import mock
from urllib.parse import quote

SERVICES = {
    "sts": ["sts.amazonaws.com", "sts.{region}.amazonaws.com"],
    "iam": ["iam.amazonaws.com"],
    "ec2": ["ec2.{region}.amazonaws.com"],
}
REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2", "us-gov-west-1", "cn-north-1", "eu-central-2"]
PATH_SEGMENTS = ["", "a", "b c", "a.b", ".", "..", "x..y", "...", "ünï", "路径", "-_.~",
                 "!$&'()*+,;=:@", "a%b", "é é", "CamelCase", "%2F", "a b.c"]
QUERY_KEYS = ["Action", "Version", "a", "A", "b", "Z", "a b", "a.b", "a-b", "a_b", "a~b",
              "a/b", "a:b", "a+b", "a=b", "é", "z", "ключ", "", "1", "Filter.1.Name",
              "X-Amz-Expires", "k", "k!", "k*"]
QUERY_VALUES = ["", "1", "x y", "a+b", "/", "ü", "%", "&=", "~-._", "*", "'", "()",
                "2011-06-15", "GetCallerIdentity", "a/b/c", "日本", "  spaced  ", "%20",
                "v=1&w=2", "é", "Z", "a"]
HEADER_NAMES = ["Content-Type", "content-type", "X-Amz-Target", "x-amz-target",
                "X-Custom-Header", "x-MiXeD-cAsE", "Accept", "ACCEPT-LANGUAGE",
                "X-Amz-Meta-Thing", "Content-MD5", "X-Empty", "x-amz-user-agent",
                "X-Forwarded-For", "If-None-Match"]
HEADER_VALUES = ["application/x-www-form-urlencoded; charset=utf-8", "  leading",
                 "trailing   ", "  many   inner    spaces  ", "a\tb", "", "AmazonSTS.Get",
                 "text/xml", "1, 2,  3", "\"etag\"", "UPPER lower", "x" * 80, "ü-ß"]
BODIES = [None, b"", b"Action=GetCallerIdentity&Version=2011-06-15",
          "Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2FX".encode(),
          b'{"json": true, "text": "\xc3\xbc"}', bytes(range(256)), b"\x00" * 3]
TIMES = [datetime.datetime(2015, 8, 30, 12, 36, 0), datetime.datetime(2026, 11, 27, 10, 44, 59),
         datetime.datetime(2000, 1, 1, 0, 0, 0), datetime.datetime(2038, 1, 19, 3, 14, 8),
         datetime.datetime(2024, 2, 29, 23, 59, 59)]
ACCESS_KEYS = ["AKIDEXAMPLE", "ASIAQXZ7EXAMPLE12345", "AKIAIOSFODNN7EXAMPLE"]
SECRETS = ["wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "s3cr3t/with+plus=and/slash",
           "ü-non-ascii-secret"]


def enc(text):
    return quote(text, safe="-_.~")


def make_case(rng, n):
    service = rng.choice(sorted(SERVICES))
    region = rng.choice(REGIONS)
    host = rng.choice(SERVICES[service]).format(region=region)
    scheme = rng.choice(["https", "https", "http"])
    explicit_host = None
    r = rng.random()
    if r < 0.08:
        host = "127.0.0.1:%d" % rng.choice([18411, 8443, 4566])
    elif r < 0.14:      # explicit default port: the two derive Host differently
        host += ":443" if scheme == "https" else ":80"
        explicit_host = host
    elif r < 0.18:      # upper case in the URL: likewise
        host = host.upper()
        explicit_host = host
    segments = [rng.choice(PATH_SEGMENTS) for _ in range(rng.randint(0, 4))]
    path = "/" + "/".join(segments)
    if rng.random() < 0.2:
        path = path.replace("/", "//", 1)
    if rng.random() < 0.2:
        path += "/"
    if rng.random() < 0.1:
        path = ""
    pairs = []
    for _ in range(rng.choice([0, 0, 1, 2, 3, 5])):
        key = rng.choice(QUERY_KEYS)
        pairs.append((key, rng.choice(QUERY_VALUES)))
        if rng.random() < 0.25:
            pairs.append((key, rng.choice(QUERY_VALUES)))      # repeated key
    query = "&".join("%s=%s" % (enc(k), enc(v)) for k, v in pairs)
    url = "%s://%s%s%s" % (scheme, host, quote(path, safe="/!$&'()*+,;=:@%"),
                           "?" + query if query else "")
    headers = {}
    used = set()
    for _ in range(rng.randint(0, 4)):
        name = rng.choice(HEADER_NAMES)
        if name.lower() in used:
            continue
        used.add(name.lower())
        headers[name] = rng.choice(HEADER_VALUES)
    if explicit_host:
        headers[rng.choice(["Host", "host", "HOST"])] = explicit_host
    body = rng.choice(BODIES)
    token = None
    if rng.random() < 0.5:
        token = base64.b64encode(bytes(rng.getrandbits(8) for _ in range(rng.randint(16, 120)))).decode()
    return {
        "n": n, "method": rng.choice(["GET", "POST", "post"]), "url": url, "pairs": pairs,
        "params": bool(pairs) and rng.random() < 0.5,
        "headers": headers, "body_b64": None if body is None else base64.b64encode(body).decode(),
        "access_key": rng.choice(ACCESS_KEYS), "secret": rng.choice(SECRETS), "token": token,
        "region": region, "service": service,
        "when": rng.choice(TIMES).strftime("%Y-%m-%dT%H:%M:%S"),
    }


def cases(count, seed):
    rng = random.Random(seed)
    return [make_case(rng, n) for n in range(count)]


def body_of(case):
    return None if case["body_b64"] is None else base64.b64decode(case["body_b64"])


def when_of(case):
    return datetime.datetime.strptime(case["when"], "%Y-%m-%dT%H:%M:%S")


def load_tool(path):
    spec = importlib.util.spec_from_file_location("aws_login_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tool_sign(tool, case):
    """(Authorization, canonical request) from aws_login."""
    creds = tool.Credentials(case["access_key"], case["secret"], case["token"], None)
    when = when_of(case).replace(tzinfo=datetime.timezone.utc)
    out = tool.sign_request(case["method"], case["url"], dict(case["headers"]), body_of(case),
                            creds, case["region"], case["service"], when)
    unsigned = dict((k, v) for k, v in out.items() if k != "Authorization")
    canonical = tool._canonical_request(case["method"], case["url"], unsigned, body_of(case))[0]
    return out["Authorization"], canonical


def botocore_sign(case):
    """(Authorization, canonical request) from botocore.auth.SigV4Auth.add_auth."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    seen = {}

    class Recording(SigV4Auth):
        def canonical_request(self, request):
            seen["canonical"] = SigV4Auth.canonical_request(self, request)
            return seen["canonical"]

    url = case["url"]
    params = None
    if case["params"]:
        url = url.split("?", 1)[0]
        params = [tuple(p) for p in case["pairs"]]
    request = AWSRequest(method=case["method"], url=url, headers=dict(case["headers"]),
                         data=body_of(case), params=params)
    signer = Recording(Credentials(case["access_key"], case["secret"], case["token"]),
                       case["service"], case["region"])
    with mock.patch("botocore.auth.get_current_datetime", lambda *a, **k: when_of(case)):
        signer.add_auth(request)
    return request.headers["Authorization"], seen["canonical"]


def split_canonical(text):
    """method, URI, query, headers block, signed headers, payload hash."""
    lines = text.split("\n")
    return {"method": lines[0], "canonical URI": lines[1], "canonical query": lines[2],
            "canonical headers": "\n".join(lines[3:-3]), "signed headers": lines[-2],
            "payload hash": lines[-1]}


def differing_parts(a, b):
    pa, pb = split_canonical(a), split_canonical(b)
    return [k for k in pa if pa[k] != pb[k]] or ["string to sign / key"]


CHILD = r"""
import base64, datetime, importlib.util, json, sys
spec = importlib.util.spec_from_file_location("aws_login_under_test", sys.argv[1])
tool = importlib.util.module_from_spec(spec); spec.loader.exec_module(tool)
out = []
for case in json.load(sys.stdin):
    body = None if case["body_b64"] is None else base64.b64decode(case["body_b64"])
    when = datetime.datetime.strptime(case["when"], "%Y-%m-%dT%H:%M:%S").replace(
        tzinfo=datetime.timezone.utc)
    creds = tool.Credentials(case["access_key"], case["secret"], case["token"], None)
    h = tool.sign_request(case["method"], case["url"], dict(case["headers"]), body, creds,
                          case["region"], case["service"], when)
    out.append(h["Authorization"])
json.dump(out, sys.stdout)
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tool")
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--seed", type=int, default=20261127)
    ap.add_argument("--python", action="append", default=[])
    ap.add_argument("--show", type=int, default=3, help="mismatches to report in full")
    a = ap.parse_args()
    tool = load_tool(a.tool)
    all_cases = cases(a.count, a.seed)
    result = {"count": len(all_cases), "identical": 0, "mismatches": [], "mismatch_count": 0,
              "differs_in": {}, "seed": a.seed, "pythons": {}}
    reference = []
    for case in all_cases:
        t_auth, t_canon = tool_sign(tool, case)
        b_auth, b_canon = botocore_sign(case)
        reference.append(b_auth)
        if t_auth == b_auth:
            result["identical"] += 1
            continue
        result["mismatch_count"] += 1
        for part in differing_parts(t_canon, b_canon):
            result["differs_in"][part] = result["differs_in"].get(part, 0) + 1
        if len(result["mismatches"]) < a.show:
            result["mismatches"].append({
                "case": case, "aws_login_authorization": t_auth, "botocore_authorization": b_auth,
                "aws_login_canonical": t_canon, "botocore_canonical": b_canon})
    for py in a.python:
        p = subprocess.run([py, "-c", CHILD, a.tool], input=json.dumps(all_cases).encode(),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        if p.returncode != 0:
            result["pythons"][py] = {"error": p.stderr.decode("utf-8", "replace")[-2000:]}
            continue
        got = json.loads(p.stdout.decode())
        diff = [c["n"] for c, x, y in zip(all_cases, got, reference) if x != y]
        result["pythons"][py] = {"identical": len(all_cases) - len(diff), "differ": diff[:20]}
    json.dump(result, sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")
    ok = result["identical"] == result["count"] and all(
        v.get("identical") == result["count"] for v in result["pythons"].values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
