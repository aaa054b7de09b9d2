#!/usr/bin/env python3
"""Recording HTTP proxy in front of moto_server's STS (standard library only).

    sts_proxy.py --listen-port P --upstream http://127.0.0.1:M --records DIR
                 [--short-lived-role ARN ...]

Every request it forwards is saved as DIR/NNNNNN.json (written atomically):
method, path, headers, the body exactly as received (base64 and, when it is
form data, the decoded fields), the body actually handed to moto when it
differs, the upstream status and response body.  Checks read these records to
see exactly which SAMLAssertion reached "STS".

AssumeRoleWithSAML adaptation (moto 5.2 limits, see interop/README.md):
moto reads the role from the *first* item of the *first* Role value and
answers HTTP 500 when the Role attribute has several values.  So the proxy
hands moto a copy of the assertion whose Role attribute holds only the pair
the client asked for, written "role_arn,principal_arn".  The original bytes
stay in the record (for the signature check).  When the RoleArn/PrincipalArn
pair is not among the assertion's Role values, the proxy answers as real STS
would (403 AccessDenied) without asking moto.  moto checks no signature
unless told to (POST /moto-api/reset-auth, see checks.py's moto_auth): the
client's Host header is forwarded unchanged so that SigV4 signatures made for
the proxy's address still verify at moto.

Errors: moto's auth errors come wrapped as <ErrorResponse><Errors><Error>, the
EC2/IAM query shape; real STS sends <ErrorResponse xmlns="https://sts.amazonaws.com/
doc/2011-06-15/"><Error>...</Error><RequestId>.  The proxy hands the client
the real STS shape with moto's Code, Message and Type (the record keeps
moto's bytes as upstream_response).

Short-lived role (--short-lived-role ARN, for the refresher checks): real STS
never issues credentials for less than 900 s, and aws_login clamps the IdP's
SessionDuration to 900..43200 when it sends DurationSeconds, so a refresher
(which renews at half the lifetime of sessions under 40 minutes) would first
renew after 7.5 minutes.  moto 5.2 computes the Expiration of
AssumeRoleWithSAML from the assertion's SessionDuration attribute alone
(moto/sts/models.py assume_role_with_saml; it never reads DurationSeconds).
For the role(s) named here, and only for them, the proxy removes
DurationSeconds from what it hands moto, so the lifetime is the assertion's
SessionDuration (20 s for the interop user erin) whatever a later moto does
with DurationSeconds.  This stands in for a short-lived role; it is not what
real STS would do with this request.  The record keeps what the client sent
(form) and notes what was dropped (dropped_duration_seconds).

Role maximum (--max-duration ARN=SECONDS): real STS refuses a DurationSeconds
over the role's MaxSessionDuration with a ValidationError; moto never checks.
For the role(s) named, the proxy answers that refusal itself (record:
emulated) and forwards nothing.
"""
import argparse
import base64
import http.client
import http.server
import json
import os
import re
import sys
import threading
import time
import urllib.parse

ROLE_ATTR = "https://aws.amazon.com/SAML/Attributes/Role"

_lock = threading.Lock()
_seq = [0]


DURATION_REFUSED = (
    '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender'
    '</Type><Code>ValidationError</Code><Message>The requested DurationSeconds exceeds the '
    'MaxSessionDuration set for this role.</Message></Error><RequestId>'
    '00000000-0000-0000-0000-000000000029</RequestId></ErrorResponse>')


def next_seq(records):
    with _lock:
        _seq[0] += 1
        return _seq[0]


def write_record(records, seq, rec):
    path = os.path.join(records, "%06d.json" % seq)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(rec, f, indent=1, sort_keys=True)
    os.rename(tmp, path)


def reduce_assertion(xml_text, role_arn, principal_arn):
    """Return (new_xml_text or None if pair not found, note)."""
    attr_re = re.compile(
        r'(<(?P<p>[\w.-]+:)?Attribute\b[^>]*\bName="%s"[^>]*>)(?P<inner>.*?)(</(?P=p)?Attribute>)'
        % re.escape(ROLE_ATTR), re.S)
    m = attr_re.search(xml_text)
    if not m:
        return None, "no Role attribute"
    inner = m.group("inner")
    val_re = re.compile(
        r'<(?P<tag>(?:[\w.-]+:)?AttributeValue)\b(?P<attrs>[^>]*)>(?P<text>.*?)</(?P=tag)>', re.S)
    for v in val_re.finditer(inner):
        parts = [x.strip() for x in v.group("text").split(",")]
        if sorted(parts) == sorted([role_arn, principal_arn]):
            one = "<%s%s>%s,%s</%s>" % (v.group("tag"), v.group("attrs"), role_arn,
                                       principal_arn, v.group("tag"))
            new = xml_text[:m.start("inner")] + one + xml_text[m.end("inner"):]
            return new, "reduced %d Role value(s) to the chosen one" % len(list(val_re.finditer(inner)))
    return None, "RoleArn/PrincipalArn pair not in the assertion's Role values"


ACCESS_DENIED = (
    '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
    "<Error><Type>Sender</Type><Code>AccessDenied</Code>"
    "<Message>Not authorized to perform sts:AssumeRoleWithSAML</Message></Error>"
    "<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>")


# moto's auth errors (SignatureDoesNotMatch, InvalidClientTokenId, AccessDenied
# from its IAM emulation) come as <ErrorResponse><Errors><Error>..., the shape
# of the EC2/IAM-style query APIs.  Real STS sends <ErrorResponse
# xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>...</Error>
# <RequestId>...</RequestId></ErrorResponse> (no <Errors>).  The proxy hands the
# client the real shape with moto's Code, Message and Type; the record keeps
# moto's bytes (upstream_response).
_MOTO_ERRORS = re.compile(
    r"^\s*(?:<\?xml[^>]*\?>\s*)?<ErrorResponse>\s*<Errors>\s*(<Error>.*?</Error>)\s*</Errors>"
    r"\s*(?:<RequestId>(.*?)</RequestId>\s*)?</ErrorResponse>\s*$", re.S)


def sts_error_shape(data):
    """Real STS's error XML for moto's <Errors>-wrapped one, else None."""
    m = _MOTO_ERRORS.match(data.decode("utf-8", "replace"))
    if not m:
        return None
    return ('<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">%s'
            "<RequestId>%s</RequestId></ErrorResponse>"
            % (m.group(1), m.group(2) or "00000000-0000-0000-0000-000000000000")).encode("utf-8")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "interop-sts-proxy/1"

    def log_message(self, fmt, *args):
        sys.stderr.write("[sts-proxy] %s %s\n" % (self.address_string(), fmt % args))

    def _handle(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        seq = next_seq(self.server.records)
        rec = {
            "seq": seq, "time": time.time(), "method": self.command, "path": self.path,
            "headers": dict(self.headers.items()),
            "body_b64": base64.b64encode(body).decode("ascii"),
        }
        fields = None
        ctype = self.headers.get("Content-Type", "")
        if body and "x-www-form-urlencoded" in ctype:
            try:
                fields = urllib.parse.parse_qs(body.decode("utf-8"), keep_blank_values=True)
                rec["form"] = {k: v[0] if len(v) == 1 else v for k, v in fields.items()}
            except Exception as e:  # record anyway
                rec["form_error"] = repr(e)
        action = (fields or {}).get("Action", [None])[0]
        if action is None and "?" in self.path:
            action = urllib.parse.parse_qs(self.path.split("?", 1)[1]).get("Action", [None])[0]
        rec["action"] = action
        forward = body
        if action == "AssumeRoleWithSAML" and fields:
            role = fields.get("RoleArn", [""])[0]
            principal = fields.get("PrincipalArn", [""])[0]
            asked = fields.get("DurationSeconds", ["0"])[0]
            limit = self.server.max_durations.get(role)
            if limit is not None and asked.isdigit() and int(asked) > limit:
                # what real STS answers over a role's MaxSessionDuration (moto never checks)
                rec["proxy_note"] = "DurationSeconds %s over this role's maximum %d" % (asked, limit)
                self._reply(seq, rec, 400, DURATION_REFUSED.encode(), "text/xml", emulated=True)
                return
            try:
                xml_text = base64.b64decode(fields.get("SAMLAssertion", [""])[0]).decode("utf-8")
            except Exception as e:
                xml_text = None
                rec["proxy_note"] = "SAMLAssertion not base64 UTF-8: %r" % (e,)
            if xml_text is not None:
                new, note = reduce_assertion(xml_text, role, principal)
                rec["proxy_note"] = note
                if new is None:
                    self._reply(seq, rec, 403, ACCESS_DENIED.encode(), "text/xml", emulated=True)
                    return
                changed = new != xml_text
                if changed:
                    fields["SAMLAssertion"] = [base64.b64encode(new.encode("utf-8")).decode("ascii")]
                if role in self.server.short_lived and "DurationSeconds" in fields:
                    # stands in for a short-lived role: see the module docstring
                    rec["dropped_duration_seconds"] = fields.pop("DurationSeconds")[0]
                    rec["proxy_note"] += "; DurationSeconds dropped (short-lived role)"
                    changed = True
                if changed:
                    forward = urllib.parse.urlencode(
                        [(k, x) for k, v in fields.items() for x in v]).encode("ascii")
                    rec["forwarded_body_b64"] = base64.b64encode(forward).decode("ascii")
        # The client's Host goes upstream unchanged: SigV4 signs it, and moto
        # (with signature checking on) verifies what it receives.
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("content-length", "connection",
                                        "proxy-connection", "keep-alive", "transfer-encoding")}
        headers["Content-Length"] = str(len(forward))
        if not any(k.lower() == "host" for k in headers):
            headers["Host"] = "%s:%d" % (self.server.up_host, self.server.up_port)
        try:
            conn = http.client.HTTPConnection(self.server.up_host, self.server.up_port, timeout=60)
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for k, v in headers.items():
                conn.putheader(k, v)
            conn.endheaders(forward)
            resp = conn.getresponse()
            data = resp.read()
            status = resp.status
            rtype = resp.getheader("Content-Type", "text/xml")
            conn.close()
        except Exception as e:
            rec["upstream_error"] = repr(e)
            self._reply(seq, rec, 502, ("proxy: upstream error %r\n" % (e,)).encode(), "text/plain")
            return
        if status >= 400:
            real = sts_error_shape(data)
            if real is not None:
                rec["upstream_response"] = data.decode("utf-8", "replace")
                rec["proxy_note"] = ((rec.get("proxy_note") or "") + "; " if rec.get("proxy_note")
                                     else "") + "error reshaped to real STS's <ErrorResponse><Error>"
                data, rtype = real, "text/xml"
        self._reply(seq, rec, status, data, rtype)

    def _reply(self, seq, rec, status, data, ctype, emulated=False):
        rec["status"] = status
        rec["emulated"] = emulated
        rec["response"] = data.decode("utf-8", "replace")
        write_record(self.server.records, seq, rec)
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--listen-host", default="127.0.0.1")
    ap.add_argument("--listen-port", type=int, required=True)
    ap.add_argument("--upstream", required=True, help="http://127.0.0.1:PORT of moto_server")
    ap.add_argument("--records", required=True)
    ap.add_argument("--short-lived-role", action="append", default=[], metavar="ARN",
                    help="drop DurationSeconds from AssumeRoleWithSAML for this role "
                         "(moto then uses the assertion's SessionDuration); repeatable")
    ap.add_argument("--max-duration", action="append", default=[], metavar="ARN=SECONDS",
                    help="refuse AssumeRoleWithSAML for this role when DurationSeconds is "
                         "over SECONDS, in real STS's words (a role's MaxSessionDuration)")
    a = ap.parse_args()
    up = urllib.parse.urlsplit(a.upstream)
    os.makedirs(a.records, exist_ok=True)
    srv = http.server.ThreadingHTTPServer((a.listen_host, a.listen_port), Handler)
    srv.daemon_threads = True
    srv.records = a.records
    srv.short_lived = set(a.short_lived_role)
    srv.max_durations = dict((arn, int(seconds)) for arn, _, seconds in
                             (m.rpartition("=") for m in a.max_duration))
    srv.up_host, srv.up_port = up.hostname, up.port or 80
    sys.stderr.write("[sts-proxy] listening on %s:%d -> %s, records in %s, short-lived roles %s\n"
                     % (a.listen_host, a.listen_port, a.upstream, a.records,
                        ", ".join(sorted(srv.short_lived)) or "none"))
    sys.stderr.flush()
    srv.serve_forever()


if __name__ == "__main__":
    main()
