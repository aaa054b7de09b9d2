#!/usr/bin/env python3
"""aws_login: temporary AWS credentials from a SAML ECP identity provider.

    $ python3 aws_login.py configure          # ECP endpoint, username, Duo factor, role
    $ python3 aws_login.py login              # password (+ Duo), pick a role
    $ aws s3 ls --profile default             # the AWS CLI reads ~/.aws/credentials
    $ python3 aws_login.py logout --forget    # remove them, forget the IdP session

One file, standard library only, CPython 3.6 and later, so it can be copied
onto locked-down hosts, piped into ``python3 -``, or vendored.  It speaks the
SAML ECP profile to the IdP (HTTP Basic, Duo factor as HTTP headers, the IdP
session kept in a cookie jar), reads the roles from the assertion, calls STS
AssumeRoleWithSAML and writes the temporary credentials where the AWS CLI and
SDKs read them.  The settings file is awscli-login's (``~/.aws-login/config``).

Heavy modules (ssl, urllib, xml, argparse) are imported inside the functions
that need them: importing this module does no work and touches nothing.
"""

import os
import sys
import time

__version__ = "0.1.0"

__all__ = [
    "AwsLoginError", "UsageError", "ConfigError", "AuthenticationError",
    "IdPError", "RoleError", "STSError", "NetworkError",
    "CredentialsFileError", "NotLoggedInError", "NoTerminalError",
    "Profile", "Role", "Credentials", "SamlAnswer", "Terminal",
    "read_profile", "build_authn_request", "parse_ecp_answer",
    "parse_role_value", "choose_role", "sts_endpoint",
    "assume_role_with_saml", "parse_sts_answer", "ini_replace_section",
    "ini_remove_section", "ini_set_options", "write_credentials",
    "remove_credentials", "login", "logout", "configure", "main",
]


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------
# One hierarchy; each class carries the process exit code that main() uses.
# The README's table of exit codes is this list.

class AwsLoginError(Exception):
    """Base class: a message a person can act on, and an exit code."""
    exit_code = 1
    calm = False        # print without the "error:" prefix


class UsageError(AwsLoginError):
    """The command line is wrong."""
    exit_code = 2


class ConfigError(AwsLoginError):
    """A profile setting is missing or invalid."""
    exit_code = 3


class AuthenticationError(AwsLoginError):
    """The IdP refused the username, password or second factor."""
    exit_code = 4


class IdPError(AwsLoginError):
    """The IdP answered something that is not a usable SAML ECP answer."""
    exit_code = 5


class RoleError(AwsLoginError):
    """The assertion offers no usable role, or not the one asked for."""
    exit_code = 6


class STSError(AwsLoginError):
    """STS refused the request; ``code`` is AWS's error code."""
    exit_code = 7

    def __init__(self, message, code=None):
        AwsLoginError.__init__(self, message)
        self.code = code


class NetworkError(AwsLoginError):
    """A connection, TLS or timeout failure."""
    exit_code = 8


class CredentialsFileError(AwsLoginError):
    """A file could not be read or written, or must not be overwritten."""
    exit_code = 9


class NotLoggedInError(AwsLoginError):
    """Nothing to do: the profile holds no credentials of ours."""
    exit_code = 10
    calm = True


class NoTerminalError(AwsLoginError):
    """A value must be asked for, but there is no terminal to ask on."""
    exit_code = 11


EXIT_INTERRUPTED = 130


# ---------------------------------------------------------------------------
# Constants
# ---------------------------------------------------------------------------

KEYRING_SERVICE = "awscli_login"        # awscli-login's, so entries carry over
FACTORS = ("auto", "push", "passcode", "sms", "phone")
# The Shibboleth Duo plugin reads the first spelling, older IdPs the second.
DUO_FACTOR_HEADERS = ("X-Shibboleth-Duo-Factor", "X-Shiboleth-Duo-Factor")
DUO_PASSCODE_HEADERS = ("X-Shibboleth-Duo-Passcode", "X-Shiboleth-Duo-Passcode")

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
SAMLP_NS = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML_NS = "urn:oasis:names:tc:SAML:2.0:assertion"
ECP_NS = "urn:oasis:names:tc:SAML:2.0:profiles:SSO:ecp"
STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"
PAOS_BINDING = "urn:oasis:names:tc:SAML:2.0:bindings:PAOS"
STATUS_SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"

ROLE_ATTRIBUTE = "https://aws.amazon.com/SAML/Attributes/Role"
SESSION_NAME_ATTRIBUTE = "https://aws.amazon.com/SAML/Attributes/RoleSessionName"
SESSION_DURATION_ATTRIBUTE = "https://aws.amazon.com/SAML/Attributes/SessionDuration"

# partition -> (SAML ACS URL, STS host suffix, region used when none is set)
PARTITIONS = {
    "aws": ("https://signin.aws.amazon.com/saml", "amazonaws.com", None),
    "aws-cn": ("https://signin.amazonaws.cn/saml", "amazonaws.com.cn", "cn-north-1"),
    "aws-us-gov": ("https://signin.amazonaws-us-gov.com/saml", "amazonaws.com",
                   "us-gov-west-1"),
}
REGION_PREFIX = {"aws-cn": "cn-", "aws-us-gov": "us-gov-"}

CONNECT_TIMEOUT = 15        # seconds to reach a server
READ_TIMEOUT = 180          # a Duo push or phone call holds the IdP's answer
MAX_ANSWER_BYTES = 4 << 20  # real ECP answers are tens of KB
STS_ATTEMPTS = 4            # throttling and 5xx are retried with backoff
LOCK_TIMEOUT = 30
DURATION_MIN, DURATION_MAX = 900, 43200

# Our own keys in a credentials section: they mark it as ours.
EXPIRATION_KEY = "aws_login_expiration"
ROLE_KEY = "aws_login_role_arn"

_debug_enabled = False


def debug(message):
    """Trace to stderr under --debug.  Never pass a secret here."""
    if _debug_enabled:
        sys.stderr.write("aws_login: debug: %s\n" % message)


def warn(message):
    sys.stderr.write("aws_login: warning: %s\n" % message)


# ---------------------------------------------------------------------------
# Settings (profiles)
# ---------------------------------------------------------------------------
# ~/.aws-login/config, awscli-login's format: one section per profile name.

def login_root():
    """awscli-login's state directory, moved by AWSCLI_LOGIN_ROOT."""
    root = os.environ.get("AWSCLI_LOGIN_ROOT")
    return os.path.expanduser(root) if root else os.path.expanduser("~/.aws-login")


def config_path():
    return os.path.join(login_root(), "config")


def credentials_path():
    path = os.environ.get("AWS_SHARED_CREDENTIALS_FILE")
    return os.path.expanduser(path) if path else os.path.expanduser("~/.aws/credentials")


def profile_name(explicit=None):
    name = (explicit or os.environ.get("AWS_PROFILE")
            or os.environ.get("AWS_DEFAULT_PROFILE") or "default")
    if any(c in name for c in "[]\r\n") or name != name.strip():
        raise UsageError("invalid profile name %r" % name)
    return name


def _host_port(url):
    from urllib.parse import urlsplit
    return urlsplit(url).netloc.rpartition("@")[2]


def _is_loopback(host):
    import ipaddress
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(value, what="ECP endpoint URL"):
    """https, or http only to this machine (a password must not cross a network in clear)."""
    from urllib.parse import urlsplit
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port      # raises on a bad port
    except ValueError:
        raise ConfigError("%s %r is not a valid URL" % (what, value))
    if parts.scheme not in ("http", "https") or not host:
        raise ConfigError("%s %r must start with https://" % (what, value))
    if parts.scheme == "http" and not _is_loopback(host):
        raise ConfigError("%s %r uses plain http; use https (http is allowed "
                          "only for a server on this machine)" % (what, value))
    return value


def check_factor(value):
    factor = value.strip().lower()
    if factor not in FACTORS:
        raise ConfigError("Duo factor %r is not one of %s" % (value, ", ".join(FACTORS)))
    return factor


def _role_arn_match(value):
    import re
    return re.match(r"arn:(aws|aws-cn|aws-us-gov):iam::(\d{12}):role/([\w+=,.@/-]{1,512})$",
                    value)


def check_role_arn(value):
    value = value.strip()
    if not _role_arn_match(value):
        raise ConfigError("%r is not a role ARN (arn:aws:iam::123456789012:role/Name; "
                          "partitions aws, aws-cn, aws-us-gov)" % value)
    return value


def check_bool(value, what="value"):
    word = str(value).strip().lower()
    if word in ("1", "true", "yes", "on", "y"):
        return True
    if word in ("0", "false", "no", "off", "n", ""):
        return False
    raise ConfigError("%s %r is not true or false" % (what, value))


def check_duration(value):
    try:
        seconds = int(str(value).strip())
    except ValueError:
        raise ConfigError("duration %r is not a whole number of seconds" % (value,))
    if not DURATION_MIN <= seconds <= DURATION_MAX:
        raise ConfigError("duration %d is outside %d..%d seconds"
                          % (seconds, DURATION_MIN, DURATION_MAX))
    return seconds


def check_region(value):
    import re
    region = value.strip()
    if not re.match(r"[a-z]{2}(-[a-z]+)+-\d{1,2}$", region):
        raise ConfigError("region %r is not an AWS region name (like us-east-1)" % value)
    return region


def check_ca_bundle(value):
    path = os.path.expanduser(value.strip())
    if not os.path.isfile(path):
        raise ConfigError("CA bundle %s is not a file" % path)
    return path


def check_header_name(value):
    import re
    if not re.match(r"[A-Za-z0-9-]+$", value.strip()):
        raise ConfigError("%r is not an HTTP header name" % value)
    return value.strip()


# option -> (configure prompt or None, checker).  The five prompts are
# awscli-login's, word for word.
OPTIONS = [
    ("ecp_endpoint_url", "ECP Endpoint URL", check_url),
    ("username", "Username", lambda v: v.strip()),
    ("enable_keyring", "Enable Keyring", lambda v: check_bool(v, "enable_keyring")),
    ("factor", "Duo Factor", check_factor),
    ("role_arn", "Role ARN", check_role_arn),
    ("duration", None, check_duration),
    ("ca_bundle", None, check_ca_bundle),
    ("region", None, check_region),
    ("http_header_factor", None, check_header_name),
    ("http_header_passcode", None, check_header_name),
    ("verify_ssl_certificate", None, lambda v: check_bool(v, "verify_ssl_certificate")),
    ("password", None, lambda v: v),
    ("passcode", None, lambda v: v.strip()),
]
CHECKS = dict((name, check) for name, _, check in OPTIONS)


class Profile(object):
    """One profile's settings, checked and typed; unset options are None."""

    def __init__(self, name, options=None, source=None):
        self.name = name
        self.source = source
        self.ecp_endpoint_url = self.username = self.factor = None
        self.role_arn = self.duration = self.ca_bundle = self.region = None
        self.http_header_factor = self.http_header_passcode = None
        self.password = self.passcode = None
        self.enable_keyring = False
        self.verify_ssl_certificate = True
        for key, value in (options or {}).items():
            if key in CHECKS and value is not None and (value.strip() or key == "password"):
                try:
                    setattr(self, key, CHECKS[key](value))
                except ConfigError as e:
                    raise ConfigError("%s, in [%s] of %s" % (e, name, source or "settings"))

    def __repr__(self):     # never show the password or passcode
        return "Profile(%r, ecp_endpoint_url=%r, username=%r)" % (
            self.name, self.ecp_endpoint_url, self.username)


def _parse_ini(text, path, default_section="DEFAULT"):
    import configparser
    parser = configparser.RawConfigParser(strict=False, default_section=default_section)
    try:
        parser.read_string(text, source=path)
    except configparser.Error as e:
        raise CredentialsFileError("cannot parse %s: %s" % (path, str(e).splitlines()[0]))
    return parser


def _read_text(path):
    """A file's text exactly as it is (CRLF kept), or None when it is absent."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise CredentialsFileError("cannot read %s: %s" % (path, e.strerror))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise CredentialsFileError("%s is not UTF-8 text; not touching it" % path)


def read_profile(name, require_endpoint=True):
    """The named profile's settings from ~/.aws-login/config."""
    path = config_path()
    text = _read_text(path) or ""
    parser = _parse_ini(text, path)
    if not parser.has_section(name):
        if require_endpoint:
            raise ConfigError("profile %r is not configured: run  python3 aws_login.py "
                              "--profile %s configure" % (name, name))
        return Profile(name, source=path)
    profile = Profile(name, dict(parser.items(name)), source=path)
    if require_endpoint and not profile.ecp_endpoint_url:
        raise ConfigError("profile %r has no ecp_endpoint_url: run  python3 aws_login.py "
                          "--profile %s configure" % (name, name))
    return profile


# ---------------------------------------------------------------------------
# Terminal (prompts, menu, spinner)
# ---------------------------------------------------------------------------
# Prompts and menus go to the controlling terminal, never stdin or stdout, so
# that `curl ... | python3 - login` works and stdout stays clean.

class Terminal(object):
    """The user's terminal (/dev/tty), opened only when something must be asked."""

    def __init__(self, path="/dev/tty"):
        self.path = path
        self._fd = None

    def _open(self, what):
        if self._fd is None:
            try:
                self._fd = os.open(self.path, os.O_RDWR | os.O_NOCTTY)
            except OSError:
                raise NoTerminalError("cannot ask for %s: there is no terminal; "
                                      "set it in the profile or run on a terminal" % what)
        return self._fd

    def available(self):
        try:
            self._open("input")
            return True
        except NoTerminalError:
            return False

    def close(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def write(self, text):
        if self._fd is not None:
            os.write(self._fd, text.encode("utf-8", "replace"))

    def _readline(self):
        chunks = []
        while True:
            chunk = os.read(self._fd, 1024)
            if not chunk:
                raise AwsLoginError("input ended before an answer was given")
            chunks.append(chunk)
            if chunk.endswith(b"\n"):
                return b"".join(chunks).decode("utf-8", "replace").rstrip("\r\n")

    def ask(self, prompt, what):
        """One line of input after ``prompt``; leading and trailing space removed."""
        self._open(what)
        self.write(prompt)
        return self._readline().strip()

    def secret(self, prompt, what):
        """Input without echo (getpass reads the terminal, as we do)."""
        self._open(what)
        if self.path != "/dev/tty":
            return self._secret_on(prompt)
        import getpass
        return getpass.getpass(prompt)

    def _secret_on(self, prompt):
        import termios
        old = termios.tcgetattr(self._fd)
        new = list(old)
        new[3] &= ~termios.ECHO
        self.write(prompt)
        termios.tcsetattr(self._fd, termios.TCSAFLUSH, new)
        try:
            return self._readline()
        finally:
            termios.tcsetattr(self._fd, termios.TCSAFLUSH, old)
            self.write("\n")

    def choose(self, lines, count):
        """Show a menu and return the index chosen, asking again on a bad answer."""
        self._open("a role")
        self.write("".join(line + "\n" for line in lines))
        while True:
            answer = self.ask("Selection: ", "a role")
            if answer.isdigit() and int(answer) < count:
                return int(answer)
            self.write("Please enter a number from 0 to %d.\n" % (count - 1))

    def waiting(self, label):
        """A context manager showing ``label... 12s`` while a slow call runs."""
        return _Spinner(self if self.available() else None, label)


class _Spinner(object):
    def __init__(self, terminal, label):
        self.terminal = terminal
        self.label = label
        self._thread = None
        self._stop = None

    def __enter__(self):
        if self.terminal is not None:
            import threading
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._run, name="spinner")
            self._thread.daemon = True
            self._thread.start()
        return self

    def _run(self):
        started = time.time()
        while not self._stop.wait(1.0):
            self.terminal.write("\r%s... %ds" % (self.label, time.time() - started))

    def __exit__(self, *exc):
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self.terminal.write("\r\x1b[K")
        return False


# ---------------------------------------------------------------------------
# HTTP (TLS, cookies, timeouts)
# ---------------------------------------------------------------------------

class HttpAnswer(object):
    def __init__(self, status, headers, body, url):
        self.status = status
        self.headers = headers
        self.body = body
        self.url = url

    @property
    def content_type(self):
        return (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()


def make_ssl_context(profile=None):
    """System roots, plus ca_bundle or AWS_CA_BUNDLE; verification off only when asked."""
    import ssl
    context = ssl.create_default_context()
    bundle = (profile and profile.ca_bundle) or os.environ.get("AWS_CA_BUNDLE")
    if bundle:
        try:
            context.load_verify_locations(cafile=os.path.expanduser(bundle))
        except (OSError, ssl.SSLError) as e:
            raise ConfigError("cannot load CA bundle %s: %s" % (bundle, e))
    if profile is not None and not profile.verify_ssl_certificate:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _describe_network_error(reason, url):
    """One actionable sentence for a failed connection."""
    import socket
    import ssl
    host = _host_port(url)
    if isinstance(reason, socket.timeout):
        return "no answer from %s in time (timed out)" % host
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused by %s: is the URL right and the server up?" % host
    if isinstance(reason, socket.gaierror):
        return "cannot resolve the host name of %s: check the URL and DNS" % host
    verify = getattr(reason, "verify_message", None)
    if isinstance(reason, ssl.CertificateError) or verify or (
            isinstance(reason, ssl.SSLError)
            and "CERTIFICATE_VERIFY_FAILED" in str(reason)):
        detail = verify or str(reason)
        return ("TLS certificate of %s not trusted (%s): if your site uses a private CA, "
                "set ca_bundle in the profile or AWS_CA_BUNDLE" % (host, detail))
    if isinstance(reason, ssl.SSLError):
        return "TLS failure talking to %s: %s" % (host, reason)
    return "cannot reach %s: %s" % (host, getattr(reason, "strerror", None) or reason)


def http_request(url, data=None, headers=None, ssl_context=None, cookie_jar=None,
                 read_timeout=READ_TIMEOUT, max_bytes=MAX_ANSWER_BYTES):
    """POST (or GET) once; never follows a redirect; any status comes back as an answer.

    Connect and read have separate timeouts: reaching the server should be
    quick, while a Duo push keeps the IdP's answer waiting for a person.
    HTTPS_PROXY and NO_PROXY are honoured (urllib's ProxyHandler)."""
    import http.client
    import urllib.error
    import urllib.request

    def connection(base):
        class Connection(base):
            def connect(self):
                base.connect(self)
                self.sock.settimeout(read_timeout)
        return Connection

    class HTTPSHandler(urllib.request.HTTPSHandler):
        def https_open(self, req):
            return self.do_open(connection(http.client.HTTPSConnection), req,
                                context=ssl_context)

    class HTTPHandler(urllib.request.HTTPHandler):
        def http_open(self, req):
            return self.do_open(connection(http.client.HTTPConnection), req)

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None     # a 3xx comes back as an answer: a password never follows it

    handlers = [HTTPSHandler(), HTTPHandler(), NoRedirect()]
    if cookie_jar is not None:
        handlers.append(urllib.request.HTTPCookieProcessor(cookie_jar))
    opener = urllib.request.build_opener(*handlers)
    request = urllib.request.Request(url, data=data, headers=headers or {},
                                     method="POST" if data is not None else "GET")
    debug("%s %s" % (request.get_method(), url))
    started = time.time()
    try:
        try:
            response = opener.open(request, timeout=CONNECT_TIMEOUT)
        except urllib.error.HTTPError as e:
            response = e
        status = response.getcode()
        body = response.read(max_bytes + 1)
        response.close()
    except urllib.error.URLError as e:
        raise NetworkError(_describe_network_error(e.reason, url))
    except (OSError, ValueError) as e:       # timeouts while reading; CertificateError (3.6)
        raise NetworkError(_describe_network_error(e, url))
    except http.client.HTTPException as e:
        raise NetworkError("%s gave a broken HTTP answer (%s)" % (_host_port(url),
                                                                 type(e).__name__))
    if len(body) > max_bytes:
        raise IdPError("%s sent an answer over %d bytes; refusing it"
                       % (_host_port(url), max_bytes))
    debug("HTTP %s from %s, %d bytes, %.2fs" % (status, _host_port(url), len(body),
                                                time.time() - started))
    return HttpAnswer(status, response.headers, body, url)


# ---------------------------------------------------------------------------
# Files: atomic, locked, private writes
# ---------------------------------------------------------------------------

def private_dir(path):
    """Create ``path`` (0700) if needed; refuse one that another user owns."""
    try:
        os.makedirs(path, 0o700)
    except FileExistsError:
        pass
    except OSError as e:
        raise CredentialsFileError("cannot create %s: %s" % (path, e.strerror))
    st = os.stat(path)
    if st.st_uid != os.getuid():
        raise CredentialsFileError("%s belongs to another user; refusing to use it" % path)
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)       # ours: nobody else needs to list it
    return path


class _DirectoryLock(object):
    """flock on the directory itself: no stray lock file beside the user's files."""

    def __init__(self, directory, timeout=LOCK_TIMEOUT):
        self.directory = directory
        self.timeout = timeout
        self.fd = None

    def __enter__(self):
        import fcntl
        self.fd = os.open(self.directory, os.O_RDONLY)
        deadline = time.time() + self.timeout
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except (BlockingIOError, PermissionError):
                if time.time() > deadline:
                    os.close(self.fd)
                    raise CredentialsFileError("%s stayed locked by another process for %ds"
                                               % (self.directory, self.timeout))
                time.sleep(0.02)

    def __exit__(self, *exc):
        os.close(self.fd)       # closing releases the lock
        return False


def atomic_write(path, text):
    """Replace ``path`` with ``text`` (mode 0600) so that no reader ever sees half of it."""
    import tempfile
    directory = os.path.dirname(path)
    fd, temp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                                dir=directory)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def update_file(path, edit):
    """Apply ``edit(text) -> text`` to a file under a lock, atomically, mode 0600.

    A symlink is followed to its target, so the link stays a link.  ``edit``
    sees "" for a missing file and may raise to leave the file untouched.
    Returns True when the file changed."""
    real = os.path.realpath(path)
    directory = os.path.dirname(real)
    if not os.path.isdir(directory):
        private_dir(directory)
    try:
        with _DirectoryLock(directory):
            old = _read_text(real)
            new = edit(old or "")
            if new == old or (old is None and new == ""):
                return False
            atomic_write(real, new)
            return True
    except OSError as e:
        raise CredentialsFileError("cannot write %s: %s" % (path, e.strerror or e))


# ---------------------------------------------------------------------------
# INI text editing (pure)
# ---------------------------------------------------------------------------
# configparser reads and renders; these edits splice text, so every byte of
# the file outside the section touched stays as it was (comments, spacing,
# CRLF, other profiles, a missing final newline).

def _newline(text):
    return "\r\n" if "\r\n" in text else "\n"


def _header_name(line):
    stripped = line.rstrip("\r\n")
    if stripped.startswith("[") and "]" in stripped:
        return stripped[1:stripped.index("]")]
    return None


def _is_content(line):
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith(("#", ";"))


def _sections(lines, name):
    """(header, end of the last key line, end of block) for each section ``name``."""
    spans = []
    for i, line in enumerate(lines):
        if _header_name(line) == name:
            end = i + 1
            while end < len(lines) and _header_name(lines[end]) is None:
                end += 1
            last = i + 1
            for j in range(i + 1, end):
                if _is_content(lines[j]):
                    last = j + 1
            spans.append((i, last, end))
    return spans


def _delete_span(lines, start, stop):
    """Delete lines[start:stop] with the blank lines after it, and, at the end of
    the file, the blank lines before it: what appending a section added."""
    while stop < len(lines) and not lines[stop].strip():
        stop += 1
    if stop == len(lines) and start > 0 and not lines[start - 1].strip():
        start -= 1
    del lines[start:stop]


def render_section(name, values, newline="\n"):
    """A section's text as configparser writes it, with the file's line ending."""
    import configparser
    import io
    parser = configparser.RawConfigParser()
    parser.optionxform = str
    parser.add_section(name)
    for key, value in values:
        if any(c in value for c in "\r\n"):
            raise CredentialsFileError("refusing to write a value with a line break")
        parser.set(name, key, value)
    out = io.StringIO()
    parser.write(out)
    return out.getvalue().rstrip("\n").replace("\n", newline) + newline


def _append(text, section_text):
    """Add a section so that removing it gives back ``text`` byte for byte."""
    if text and not text.endswith(("\n", "\r")):
        return section_text + _newline(text) + text     # the user's last line stays last
    if text:
        text += _newline(text)  # one blank line between sections; removal takes it back
    return text + section_text


def ini_replace_section(text, name, values):
    """``text`` with section ``name`` holding exactly ``values`` (pairs), in place."""
    newline = _newline(text)
    rendered = render_section(name, values, newline)
    lines = text.splitlines(True)
    spans = _sections(lines, name)
    if not spans:
        return _append(text, rendered)
    for start, last, _ in reversed(spans[1:]):      # a duplicate section would shadow ours
        _delete_span(lines, start, last)
    start, last, _ = spans[0]
    if last == len(lines) and not lines[-1].endswith(("\n", "\r")):
        rendered = rendered[:-len(newline)]         # keep a missing final newline missing
    lines[start:last] = [rendered]
    return "".join(lines)


def ini_remove_section(text, name):
    """``text`` without section ``name`` (every copy of it)."""
    lines = text.splitlines(True)
    for start, last, _ in reversed(_sections(lines, name)):
        _delete_span(lines, start, last)
    return "".join(lines)


def _option_key(line):
    if line[:1].isspace() or not _is_content(line):
        return None
    cut = min([i for i in (line.find("="), line.find(":")) if i >= 0] or [-1])
    return line[:cut].strip().lower() if cut > 0 else None


def ini_set_options(text, name, values):
    """``text`` with options set (value) or removed (None) in section ``name``.

    Other options, comments and their order stay; a new option goes after the
    section's last option."""
    newline = _newline(text)
    lines = text.splitlines(True)
    spans = _sections(lines, name)
    if not spans:
        present = [(k, v) for k, v in values.items() if v is not None]
        return _append(text, render_section(name, present, newline)) if present else text
    start, last, _ = spans[0]
    kept, done = [], set()
    i = start + 1
    while i < last:
        line, key = lines[i], _option_key(lines[i])
        i += 1
        if key not in values:
            kept.append(line)
            continue
        while i < last and lines[i][:1].isspace() and lines[i].strip():
            i += 1                          # the old value's continuation lines
        if key not in done and values[key] is not None:
            kept.append("%s = %s%s" % (key, values[key], newline))
        done.add(key)
    if kept and not kept[-1].endswith(("\n", "\r")):
        kept[-1] += newline
    for key, value in values.items():
        if key not in done and value is not None:
            kept.append("%s = %s%s" % (key, value, newline))
    lines[start + 1:last] = kept
    return "".join(lines)


# ---------------------------------------------------------------------------
# ECP (client -> IdP)
# ---------------------------------------------------------------------------

def build_authn_request(acs_url, request_id, issue_instant):
    """The SOAP envelope holding the AuthnRequest we send on AWS's behalf (PROTOCOL §1)."""
    from xml.sax.saxutils import quoteattr
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<S:Envelope xmlns:S="%s">'
        '<S:Body>'
        '<samlp:AuthnRequest xmlns:samlp="%s" xmlns:saml="%s" ID=%s Version="2.0" '
        'IssueInstant=%s AssertionConsumerServiceURL=%s ProtocolBinding="%s">'
        '<saml:Issuer>urn:amazon:webservices</saml:Issuer>'
        '<samlp:NameIDPolicy AllowCreate="1"/>'
        '</samlp:AuthnRequest>'
        '</S:Body>'
        '</S:Envelope>' % (SOAP_NS, SAMLP_NS, SAML_NS, quoteattr(request_id),
                           quoteattr(issue_instant), quoteattr(acs_url), PAOS_BINDING)
    ).encode("utf-8")


def duo_headers(factor, passcode=None, factor_header=None, passcode_header=None):
    """Duo's factor (and code) as HTTP headers, both spellings unless the profile names one."""
    headers = {}
    if factor:
        for name in ([factor_header] if factor_header else DUO_FACTOR_HEADERS):
            headers[name] = factor
    if passcode:
        for name in ([passcode_header] if passcode_header else DUO_PASSCODE_HEADERS):
            headers[name] = passcode
    return headers


def basic_authorization(username, password):
    import base64
    token = base64.b64encode(("%s:%s" % (username, password)).encode("utf-8"))
    return "Basic " + token.decode("ascii")


# ---------------------------------------------------------------------------
# SAML (IdP -> client)
# ---------------------------------------------------------------------------

class Role(tuple):
    """An AWS role the assertion offers: ``Role(arn, principal_arn)``."""
    __slots__ = ()

    def __new__(cls, arn, principal_arn):
        return tuple.__new__(cls, (arn, principal_arn))

    arn = property(lambda self: self[0])
    principal_arn = property(lambda self: self[1])
    partition = property(lambda self: self.arn.split(":")[1])
    account = property(lambda self: self.arn.split(":")[4])
    name = property(lambda self: self.arn.split(":", 5)[5][len("role/"):])

    def __repr__(self):
        return "Role(%r, %r)" % self


def parse_role_value(value):
    """``role,provider`` or ``provider,role`` -> Role, or None when malformed."""
    import re
    parts = [p.strip() for p in value.split(",")]
    if len(parts) != 2:
        return None
    provider_re = r"arn:(aws|aws-cn|aws-us-gov):iam::(\d{12}):saml-provider/[\w+=,.@-]{1,128}$"
    for role, provider in (parts, parts[::-1]):
        r, p = _role_arn_match(role), re.match(provider_re, provider)
        if r and p and r.group(1) == p.group(1) and r.group(2) == p.group(2):
            return Role(role, provider)
    return None


class SamlAnswer(object):
    """What a successful ECP exchange yields."""

    def __init__(self, response_xml, roles, skipped, session_duration, session_name):
        self.response_xml = response_xml        # bytes of samlp:Response, for STS
        self.roles = roles
        self.skipped = skipped                  # malformed Role values
        self.session_duration = session_duration
        self.session_name = session_name


def _scan_response_bytes(body):
    """Expat pass over the raw answer: refuse DTDs, find the samlp:Response's bytes.

    STS checks the IdP's XML signature on what it receives; re-serialising
    with ElementTree renames prefixes and breaks it (PROTOCOL §2).  So we cut
    the element's original bytes and add only the namespace declarations it
    inherits from the envelope (exclusive C14N renders those the same way).
    Returns (bytes, reason) where bytes is None when there is no such element."""
    import xml.parsers.expat

    def refuse(*args):
        raise IdPError("the IdP's answer contains a DTD; refusing it (a SAML answer never has one)")

    parser = xml.parsers.expat.ParserCreate()
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    scopes = [{}]
    path = []
    found = {}

    def start(name, attrs):
        scope = dict(scopes[-1])
        own = {}
        for key, value in attrs.items():
            if key == "xmlns" or key.startswith("xmlns:"):
                own[key[6:]] = value
        scope.update(own)
        scopes.append(scope)
        prefix, _, local = name.rpartition(":")
        path.append((scope.get(prefix), local))
        if ("start" not in found and path == [(SOAP_NS, "Envelope"), (SOAP_NS, "Body"),
                                               (SAMLP_NS, "Response")]):
            found["start"] = parser.CurrentByteIndex
            found["name"] = name
            found["inherited"] = dict((p, u) for p, u in scopes[-2].items() if p not in own)
            found["depth"] = len(path)

    def end(name):
        if found.get("depth") == len(path) and "end" not in found:
            found["end"] = parser.CurrentByteIndex
        path.pop()
        scopes.pop()

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(body, True)
    except xml.parsers.expat.ExpatError as e:
        raise IdPError("the IdP's answer is not well-formed XML (%s)" % e)
    if "end" not in found:
        return None
    start_at, end_at = found["start"], found["end"]
    if body[end_at:end_at + 2] != b"</":
        raise IdPError("the IdP's SAML Response is empty")
    end_at = body.index(b">", end_at) + 1
    from xml.sax.saxutils import quoteattr
    declarations = "".join(
        " xmlns%s=%s" % (":" + p if p else "", quoteattr(u))
        for p, u in sorted(found["inherited"].items()))
    head = len("<" + found["name"])
    element = body[start_at:end_at]
    return element[:head] + declarations.encode("utf-8") + element[head:]


def _looks_like_html(answer):
    start = answer.body[:512].lstrip().lower()
    return (answer.content_type in ("text/html", "application/xhtml+xml")
            or start.startswith((b"<!doctype html", b"<html")))


def parse_ecp_answer(answer, expected_acs):
    """Classify the IdP's answer; return a SamlAnswer or raise.

    Wrong credentials come back as 401 (Shibboleth), a SAML Responder status
    with 200 (SimpleSAMLphp), a SOAP Fault, or an HTML login page; all are
    AuthenticationError.  Anything else unusable is IdPError."""
    import xml.etree.ElementTree as ET
    host = _host_port(answer.url)
    if 300 <= answer.status < 400:
        target = answer.headers.get("Location") or "?"
        raise IdPError("the IdP redirected to %s instead of answering; the redirect was not "
                       "followed (check ecp_endpoint_url)" % (_host_port(target) or target))
    if answer.status == 401:
        raise AuthenticationError("the IdP refused the username or password (HTTP 401)")
    if _looks_like_html(answer):
        if answer.status >= 400:
            raise IdPError("the IdP answered HTTP %d with an HTML page: check "
                           "ecp_endpoint_url" % answer.status)
        raise AuthenticationError(
            "the IdP answered with an HTML page instead of SAML: the login was refused, "
            "or ecp_endpoint_url is not the IdP's ECP endpoint")
    if not answer.body.strip():
        raise IdPError("the IdP sent an empty answer (HTTP %d)" % answer.status)
    try:
        response_xml = _scan_response_bytes(answer.body)
        root = ET.fromstring(answer.body)
    except IdPError:
        if answer.status >= 500:
            raise IdPError("the IdP failed (HTTP %d) and sent no SAML" % answer.status)
        raise
    except ET.ParseError as e:
        raise IdPError("the IdP's answer is not well-formed XML (%s)" % e)
    soap = "{%s}" % SOAP_NS
    if root.tag != soap + "Envelope":
        raise IdPError("the IdP's answer is not a SOAP envelope (HTTP %d)" % answer.status)
    fault = root.find(soap + "Body/" + soap + "Fault")
    if fault is not None:
        reason = (fault.findtext("faultstring") or fault.findtext("faultcode") or "").strip()
        raise AuthenticationError("the IdP refused the login: %s" % (reason or "SOAP Fault"))
    response = root.find("%sBody/{%s}Response" % (soap, SAMLP_NS))
    if response is None or response_xml is None:
        raise IdPError("the IdP's answer (HTTP %d) holds no SAML Response" % answer.status)
    ecp = root.find("%sHeader/{%s}Response" % (soap, ECP_NS))
    acs = ecp.get("AssertionConsumerServiceURL") if ecp is not None else None
    if acs is not None and acs != expected_acs:
        raise IdPError("the IdP would deliver the assertion to %s, not %s: refusing it "
                       "(ECP guards against this)" % (acs, expected_acs))
    code = response.find("{%s}Status/{%s}StatusCode" % (SAMLP_NS, SAMLP_NS))
    value = code.get("Value", "") if code is not None else ""
    if value != STATUS_SUCCESS:
        message = (response.findtext("{%s}Status/{%s}StatusMessage" % (SAMLP_NS, SAMLP_NS))
                   or "").strip()
        codes = [c.get("Value", "").rpartition(":")[2] for c in code.iter()] if code is not None else []
        detail = "/".join(c for c in codes if c) or "no status"
        text = "the IdP refused the login (%s%s)" % (detail, ": " + message if message else "")
        if codes and codes[0] in ("Requester", "VersionMismatch"):
            raise IdPError(text)
        raise AuthenticationError(text)
    if ecp is None:
        raise IdPError("the IdP's answer has no ecp:Response header; refusing it")
    if response.find("{%s}EncryptedAssertion" % SAML_NS) is not None:
        raise IdPError("the IdP encrypted the assertion, which this tool cannot read: ask "
                       "the IdP admin not to encrypt assertions for urn:amazon:webservices")
    assertion = response.find("{%s}Assertion" % SAML_NS)
    if assertion is None:
        raise IdPError("the IdP reported success but sent no assertion")
    attributes = {}
    for attribute in assertion.iter("{%s}Attribute" % SAML_NS):
        attributes.setdefault(attribute.get("Name"), []).extend(
            (v.text or "").strip() for v in attribute.findall("{%s}AttributeValue" % SAML_NS))
    roles, skipped = [], []
    for value in attributes.get(ROLE_ATTRIBUTE, []):
        role = parse_role_value(value)
        if role is None:
            skipped.append(value)
        elif role not in roles:
            roles.append(role)
    duration = None
    for value in attributes.get(SESSION_DURATION_ATTRIBUTE, [])[:1]:
        duration = int(value) if value.isdigit() else None
    names = attributes.get(SESSION_NAME_ATTRIBUTE) or [None]
    debug("IdP %s: %d role(s), %d skipped" % (host, len(roles), len(skipped)))
    return SamlAnswer(response_xml, roles, skipped, duration, names[0])


def role_menu(roles):
    """The seed's menu, grouped by account: (lines, roles in menu order)."""
    groups = []
    for role in roles:
        key = (role.partition, role.account)
        for group in groups:
            if group[0] == key:
                group[1].append(role)
                break
        else:
            groups.append((key, [role]))
    lines = ["Please choose the role you would like to assume:"]
    ordered = []
    for (partition, account), members in groups:
        suffix = "" if partition == "aws" else " (%s)" % partition
        lines.append("    Account: %s%s" % (account, suffix))
        for role in members:
            lines.append("        [ %d ]: %s" % (len(ordered), role.name))
            ordered.append(role)
    return lines, ordered


def choose_role(roles, wanted=None, terminal=None):
    """The role to assume: the one asked for, the only one, or the user's pick."""
    if not roles:
        raise RoleError("the IdP's answer lists no AWS roles for this user: ask the IdP "
                        "admin to release the https://aws.amazon.com/SAML/Attributes/Role "
                        "attribute")
    if wanted:
        for role in roles:
            if role.arn == wanted:
                return role
        raise RoleError("the IdP does not offer role %s; it offers: %s"
                        % (wanted, ", ".join(r.arn for r in roles)))
    if len(roles) == 1:
        return roles[0]
    lines, ordered = role_menu(roles)
    return ordered[(terminal or Terminal()).choose(lines, len(ordered))]


# ---------------------------------------------------------------------------
# STS
# ---------------------------------------------------------------------------

class Credentials(object):
    """Temporary AWS credentials; ``expires_at`` is an aware UTC datetime."""

    def __init__(self, access_key_id, secret_access_key, session_token, expires_at,
                 assumed_role_arn=None):
        self.access_key_id = access_key_id
        self.secret_access_key = secret_access_key
        self.session_token = session_token
        self.expires_at = expires_at
        self.assumed_role_arn = assumed_role_arn

    def __repr__(self):     # keep the secret and the token out of tracebacks
        return "Credentials(%r, expires_at=%s)" % (self.access_key_id, self.expires_at)


def parse_timestamp(text):
    """ISO 8601 in UTC, with or without fractions (real STS: whole seconds; moto: µs)."""
    import datetime
    import re
    m = re.match(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)$",
                 (text or "").strip())
    if not m:
        raise ValueError("not an ISO 8601 time: %r" % text)
    fields = [int(x) for x in m.groups()[:6]]
    micro = int((m.group(7) or "0")[:6].ljust(6, "0"))
    when = datetime.datetime(*fields, microsecond=micro, tzinfo=datetime.timezone.utc)
    zone = m.group(8)
    if zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        zone = zone[1:].replace(":", "")
        when -= sign * datetime.timedelta(hours=int(zone[:2]), minutes=int(zone[2:]))
    return when


def format_timestamp(when):
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def sts_endpoint(partition="aws", region=None, environ=None):
    """STS URL: AWS_ENDPOINT_URL_STS / AWS_ENDPOINT_URL, else by partition and region."""
    environ = os.environ if environ is None else environ
    custom = environ.get("AWS_ENDPOINT_URL_STS") or environ.get("AWS_ENDPOINT_URL")
    if custom:
        return check_url(custom, "STS endpoint URL")
    _, suffix, default_region = PARTITIONS[partition]
    prefix = REGION_PREFIX.get(partition)
    if region and prefix and not region.startswith(prefix):
        region = None           # a region of another partition: use this one's
    if region and not prefix and region.startswith(("cn-", "us-gov-")):
        region = None
    region = region or default_region
    if not region:
        return "https://sts.amazonaws.com/"
    return "https://sts.%s.%s/" % (region, suffix)


def _sts_advice(code, message):
    if code == "ValidationError" and "DurationSeconds" in message:
        return "lower `duration` in the profile to the role's maximum session duration"
    if code in ("ExpiredTokenException", "InvalidIdentityToken"):
        return "the assertion was refused: check this machine's clock, and log in again"
    if code == "AccessDenied":
        return "the role's trust policy does not allow this SAML provider"
    return None


def parse_sts_answer(status, body, action="AssumeRoleWithSAML"):
    """Credentials from an STS XML answer, or STSError with AWS's code and message."""
    import xml.etree.ElementTree as ET
    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        raise STSError("STS answered HTTP %d with a DTD; refusing it" % status)
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        raise STSError("STS answered HTTP %d with something that is not XML" % status)
    ns = "{%s}" % STS_NS
    error = root.find("%sError" % ns)
    if error is None and root.tag in ("ErrorResponse", ns + "ErrorResponse"):
        error = root.find("Error")
    if error is not None or status >= 400:
        get = lambda tag: ((error.findtext(ns + tag) or error.findtext(tag) or "").strip()
                           if error is not None else "")
        code, message = get("Code") or "HTTP %d" % status, get("Message")
        text = "STS refused %s: %s%s" % (action, code, ": " + message if message else "")
        advice = _sts_advice(code, message)
        raise STSError(text + (" (%s)" % advice if advice else ""), code)
    result = root.find("%s%sResult" % (ns, action))
    creds = result.find(ns + "Credentials") if result is not None else None
    if creds is None:
        raise STSError("STS's answer to %s holds no credentials" % action)
    fields = [(creds.findtext(ns + t) or "").strip() for t in
              ("AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration")]
    if not all(fields):
        raise STSError("STS's answer to %s lacks part of the credentials" % action)
    try:
        expires_at = parse_timestamp(fields[3])
    except ValueError:
        raise STSError("STS sent an expiration time that is not a time: %r" % fields[3])
    arn = (result.findtext("%sAssumedRoleUser/%sArn" % (ns, ns)) or "").strip() or None
    return Credentials(fields[0], fields[1], fields[2], expires_at, arn)


def _retryable(error):
    return isinstance(error, NetworkError) or getattr(error, "code", None) in (
        "Throttling", "ThrottlingException", "RequestLimitExceeded", "ServiceUnavailable",
        "InternalFailure", "HTTP 500", "HTTP 502", "HTTP 503", "HTTP 504")


def assume_role_with_saml(role, saml_response, duration=None, endpoint=None,
                          ssl_context=None):
    """STS AssumeRoleWithSAML (an unsigned call), retrying throttling with backoff."""
    import base64
    import random
    from urllib.parse import urlencode
    form = [("Action", "AssumeRoleWithSAML"), ("Version", "2011-06-15"),
            ("RoleArn", role.arn), ("PrincipalArn", role.principal_arn),
            ("SAMLAssertion", base64.b64encode(saml_response).decode("ascii"))]
    if duration:
        form.append(("DurationSeconds", str(duration)))
    endpoint = endpoint or sts_endpoint(role.partition)
    body = urlencode(form).encode("ascii")
    headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
               "Accept": "text/xml"}
    for attempt in range(STS_ATTEMPTS):
        try:
            answer = http_request(endpoint, body, headers, ssl_context=ssl_context,
                                  read_timeout=60)
            return parse_sts_answer(answer.status, answer.body)
        except (STSError, NetworkError) as e:
            # A refused connection never reached STS; a timeout might have.
            if attempt + 1 == STS_ATTEMPTS or not _retryable(e) or (
                    isinstance(e, NetworkError) and "refused" not in str(e)):
                raise
            delay = min(8.0, 0.5 * 2 ** attempt) * random.uniform(0.5, 1.0)
            debug("STS: %s; retrying in %.1fs" % (e, delay))
            time.sleep(delay)


# ---------------------------------------------------------------------------
# Credential store
# ---------------------------------------------------------------------------

def _credentials_section(text, profile, path):
    parser = _parse_ini(text, path, default_section="\x00")
    return dict(parser.items(profile)) if parser.has_section(profile) else None


def is_ours(section):
    return EXPIRATION_KEY in section or ROLE_KEY in section


def holds_long_term_keys(section):
    """A section with an access key and no session token that we did not write."""
    return bool(section and "aws_access_key_id" in section
                and not section.get("aws_session_token") and not is_ours(section))


def check_credentials_writable(profile, force=False, path=None):
    """Refuse, before anything is asked, to overwrite someone's long-term keys."""
    path = path or credentials_path()
    section = _credentials_section(_read_text(path) or "", profile, path)
    if holds_long_term_keys(section) and not force:
        raise CredentialsFileError(
            "[%s] in %s holds long-term access keys that aws_login did not write; "
            "refusing to overwrite them (use another profile, or --force)" % (profile, path))


def write_credentials(profile, credentials, role_arn, force=False, path=None):
    """Write [profile] into the shared credentials file; every other byte stays."""
    path = path or credentials_path()
    values = [("aws_access_key_id", credentials.access_key_id),
              ("aws_secret_access_key", credentials.secret_access_key),
              ("aws_session_token", credentials.session_token),
              ("aws_security_token", credentials.session_token),   # for old boto
              (EXPIRATION_KEY, format_timestamp(credentials.expires_at)),
              (ROLE_KEY, role_arn)]

    def edit(text):
        if holds_long_term_keys(_credentials_section(text, profile, path)) and not force:
            raise CredentialsFileError(
                "[%s] in %s holds long-term access keys that aws_login did not write; "
                "refusing to overwrite them (use another profile, or --force)" % (profile, path))
        new = ini_replace_section(text, profile, values)
        written = _credentials_section(new, profile, path) or {}
        if any(written.get(k) != v for k, v in values):     # never write what won't read back
            raise CredentialsFileError("cannot write [%s] cleanly into %s" % (profile, path))
        return new

    update_file(path, edit)


def remove_credentials(profile=None, path=None, force=False):
    """Remove [profile] (or, with profile None, every section we wrote); return the names."""
    path = path or credentials_path()
    removed = []

    def edit(text):
        parser = _parse_ini(text, path, default_section="\x00")
        names = [profile] if profile is not None else parser.sections()
        for name in names:
            if not parser.has_section(name):
                continue
            section = dict(parser.items(name))
            if is_ours(section) or (force and profile is not None):
                text = ini_remove_section(text, name)
                removed.append(name)
            elif profile is not None:
                raise CredentialsFileError(
                    "[%s] in %s was not written by aws_login; leaving it (use --force "
                    "to remove it)" % (name, path))
        return text

    if os.path.exists(path):
        update_file(path, edit)
    return removed


# ---------------------------------------------------------------------------
# IdP session (cookie jar) and keyring
# ---------------------------------------------------------------------------

def cookie_dir():
    return os.path.join(login_root(), "cookies")


def cookie_path(endpoint_url, username):
    """One jar per (IdP host, username): ``cookies/user@host%3Aport``."""
    from urllib.parse import quote
    return os.path.join(cookie_dir(), "%s@%s" % (quote(username, safe=""),
                                                 quote(_host_port(endpoint_url), safe="")))


def _jars_for(endpoint_url):
    """(mtime, username, path) of the saved IdP sessions for this IdP, newest first."""
    from urllib.parse import quote, unquote
    suffix = "@" + quote(_host_port(endpoint_url), safe="")
    found = []
    try:
        names = os.listdir(cookie_dir())
    except OSError:
        return found
    for name in names:
        if name.endswith(suffix) and not name.startswith("."):
            path = os.path.join(cookie_dir(), name)
            found.append((os.path.getmtime(path), unquote(name[:-len(suffix)]), path))
    return sorted(found, reverse=True)


def load_cookies(path):
    import http.cookiejar
    jar = http.cookiejar.LWPCookieJar()
    if os.path.exists(path):
        try:
            jar.load(path, ignore_discard=True)
        except (OSError, http.cookiejar.LoadError) as e:
            warn("ignoring the unreadable IdP session %s (%s)" % (path, e))
    return jar


def save_cookies(jar, path):
    """Mode 0600 in a 0700 directory, written atomically; session cookies included."""
    private_dir(os.path.dirname(path))
    atomic_write(path, "#LWP-Cookies-2.0\n" + jar.as_lwp_str(ignore_discard=True))


_keyring_missing_said = []


def _keyring():
    try:
        import keyring
        return keyring
    except Exception:       # not installed, or a broken backend that fails on import
        if not _keyring_missing_said:
            warn("enable_keyring is set but the keyring module is not available; "
                 "asking for the password instead")
            _keyring_missing_said.append(True)
        return None


def keyring_user(profile, username):
    return "%s@%s" % (username, _host_port(profile.ecp_endpoint_url))


def keyring_get(profile, username):
    module = _keyring() if profile.enable_keyring else None
    if module is None:
        return None
    try:
        return module.get_password(KEYRING_SERVICE, keyring_user(profile, username))
    except Exception as e:
        warn("cannot read the keyring (%s); asking for the password" % type(e).__name__)
        return None


def keyring_set(profile, username, password):
    module = _keyring() if profile.enable_keyring else None
    if module is not None:
        try:
            module.set_password(KEYRING_SERVICE, keyring_user(profile, username), password)
        except Exception as e:
            warn("cannot store the password in the keyring (%s)" % type(e).__name__)


# ---------------------------------------------------------------------------
# Login: the story from IdP to credentials file
# ---------------------------------------------------------------------------

class IdPSession(object):
    """An ECP conversation with one IdP for one user, with its cookie jar."""

    def __init__(self, profile, username, terminal, ssl_context, acs_url):
        self.profile = profile
        self.username = username
        self.terminal = terminal
        self.ssl_context = ssl_context
        self.acs_url = acs_url
        self.jar_path = cookie_path(profile.ecp_endpoint_url, username)
        self.jar = load_cookies(self.jar_path)

    def _post(self, headers, label=None):
        import secrets
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        envelope = build_authn_request(self.acs_url, "_" + secrets.token_hex(16), now)
        headers = dict(headers, **{"Content-Type": "text/xml"})
        url = self.profile.ecp_endpoint_url
        if label:
            with self.terminal.waiting(label):
                answer = http_request(url, envelope, headers, self.ssl_context, self.jar)
        else:
            answer = http_request(url, envelope, headers, self.ssl_context, self.jar)
        return parse_ecp_answer(answer, self.acs_url)

    def reuse(self):
        """The saved IdP session, with no password and no Duo header; None if refused."""
        if not len(self.jar):
            return None
        try:
            saml = self._post({})
            debug("IdP session reused")
            return saml
        except (AuthenticationError, IdPError) as e:
            debug("IdP session not accepted: %s" % e)
            return None

    def authenticate(self, password, factor, passcode):
        headers = {"Authorization": basic_authorization(self.username, password)}
        headers.update(duo_headers(factor, passcode, self.profile.http_header_factor,
                                   self.profile.http_header_passcode))
        label = ("Waiting for Duo approval" if factor in ("auto", "push", "phone")
                 else "Waiting for the IdP")
        return self._post(headers, label)

    def save(self):
        save_cookies(self.jar, self.jar_path)


def _ask_username(profile, terminal):
    if profile.username:
        return profile.username
    jars = _jars_for(profile.ecp_endpoint_url)
    if jars:
        default = jars[0][1]
    else:
        import getpass
        default = getpass.getuser()
    answer = terminal.ask("Username [%s]: " % default, "the username")
    return answer or default


def _password_login(session, profile, terminal):
    """Authenticate with a password: configured, from the keyring, or asked."""
    username = session.username
    what = "the password of %s" % keyring_user(profile, username)
    password, source = profile.password, "profile"
    if password is None:
        password, source = keyring_get(profile, username), "keyring"
    if password is None:
        password, source = terminal.secret("Password: ", what), "prompt"
    factor = profile.factor
    if factor is None:
        factor = terminal.ask("Factor: ", "the Duo factor").lower() or "auto"
        check_factor(factor)
    passcode = profile.passcode
    if factor == "passcode" and not passcode:
        passcode = terminal.ask("Code: ", "the Duo passcode")
    try:
        saml = session.authenticate(password, factor, passcode)
    except AuthenticationError as e:
        if source != "keyring":
            raise
        terminal_ok = terminal.available()
        warn("the IdP refused the password stored in the keyring (%s)%s"
             % (e, "; enter the current one" if terminal_ok else ""))
        if not terminal_ok:
            raise
        password, source = terminal.secret("Password: ", what), "prompt"
        if factor == "passcode" and not profile.passcode:
            passcode = terminal.ask("Code: ", "the Duo passcode")
        saml = session.authenticate(password, factor, passcode)
    if source == "prompt" and profile.enable_keyring:
        keyring_set(profile, username, password)
    return saml


def login(profile, terminal=None, role_arn=None, force=False):
    """Log ``profile`` in: IdP (session reuse, else password and Duo), role, STS, file.

    Returns (Credentials, Role).  Nothing is written unless every step succeeded."""
    terminal = terminal or Terminal()
    check_credentials_writable(profile.name, force)
    wanted = role_arn or profile.role_arn
    partition = wanted.split(":")[1] if wanted else "aws"
    ssl_context = make_ssl_context(profile)
    if not profile.verify_ssl_certificate:
        warn("TLS CERTIFICATE CHECKING IS OFF for profile %r (verify_ssl_certificate = "
             "false): anyone on the network path can read your password and your "
             "credentials" % profile.name)
    username = _ask_username(profile, terminal)
    session = IdPSession(profile, username, terminal, ssl_context, PARTITIONS[partition][0])
    saml = session.reuse() or _password_login(session, profile, terminal)
    for value in saml.skipped:
        warn("skipping a malformed Role value from the IdP: %r" % value[:200])
    role = choose_role(saml.roles, wanted, terminal)
    duration = profile.duration
    if duration is None and saml.session_duration:
        duration = min(max(saml.session_duration, DURATION_MIN), DURATION_MAX)
    endpoint = sts_endpoint(role.partition, profile.region or os.environ.get("AWS_REGION")
                            or os.environ.get("AWS_DEFAULT_REGION"))
    credentials = assume_role_with_saml(role, saml.response_xml, duration, endpoint,
                                        ssl_context)
    write_credentials(profile.name, credentials, role.arn, force)
    session.save()
    return credentials, role


def logout(profile_name_, all_profiles=False, forget=False, force=False, profile=None):
    """Remove credentials (and with ``forget`` the IdP session); return what was done."""
    removed = remove_credentials(None if all_profiles else profile_name_, force=force)
    forgotten = []
    if forget:
        if all_profiles:
            jars = [os.path.join(cookie_dir(), n) for n in _listdir(cookie_dir())]
        elif profile is not None and profile.ecp_endpoint_url:
            jars = ([cookie_path(profile.ecp_endpoint_url, profile.username)]
                    if profile.username else
                    [path for _, _, path in _jars_for(profile.ecp_endpoint_url)])
        else:
            jars = []
        for path in jars:
            try:
                os.unlink(path)
                forgotten.append(path)
            except FileNotFoundError:
                pass
    return removed, forgotten


def _listdir(path):
    try:
        return [n for n in os.listdir(path) if not n.startswith(".")]
    except OSError:
        return []


def configure(name, terminal=None, values=None):
    """Set a profile's options: from ``values`` (flags) or by asking, awscli-login style."""
    path = config_path()
    current = read_profile(name, require_endpoint=False)
    if values:
        checked = {}
        for key, value in values.items():
            checked[key] = CHECKS[key](value) if value != "" else None
    else:
        terminal = terminal or Terminal()
        checked = {}
        for key, prompt, check in OPTIONS:
            if prompt is None:
                continue
            shown = getattr(current, key)
            while True:
                answer = terminal.ask("%s [%s]: " % (prompt, shown), prompt)
                if not answer:
                    break
                try:
                    checked[key] = check(answer)
                    break
                except ConfigError as e:
                    terminal.write("%s\n" % e)
    if checked.get("enable_keyring"):
        _keyring()
    text = dict((k, None if v is None else
                 ("true" if v is True else "false" if v is False else str(v)))
                for k, v in checked.items())
    private_dir(login_root())
    update_file(path, lambda old: ini_set_options(old, name, text))
    return checked


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------

def _local_time(when):
    return when.astimezone().strftime("%Y-%m-%d %H:%M %Z")


def _cmd_configure(args):
    flags = {}
    for key, _, _ in OPTIONS:
        value = getattr(args, key, None)
        if value is not None:
            flags[key] = value
    configure(args.profile, values=flags)
    sys.stderr.write("Saved profile %r in %s\n" % (args.profile, config_path()))


def _cmd_login(args):
    profile = read_profile(args.profile)
    role_arn = check_role_arn(args.role_arn) if args.role_arn else None
    credentials, role = login(profile, role_arn=role_arn, force=args.force)
    sys.stderr.write("Logged in as %s in account %s (profile %s); the credentials "
                     "expire at %s.\n" % (role.name, role.account, profile.name,
                                         _local_time(credentials.expires_at)))


def _cmd_logout(args):
    profile = None
    if args.forget and not args.all:
        profile = read_profile(args.profile, require_endpoint=False)
    removed, forgotten = logout(args.profile, args.all, args.forget, args.force, profile)
    for name in removed:
        sys.stderr.write("Logged out of profile %s.\n" % name)
    if forgotten:
        sys.stderr.write("Forgot %d saved IdP session(s).\n" % len(forgotten))
    if not removed and not forgotten:
        raise NotLoggedInError("Not logged in%s: nothing to remove."
                               % ("" if args.all else " to profile %s" % args.profile))


def build_parser():
    import argparse
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--profile", default=argparse.SUPPRESS,
                        help="profile name (default: $AWS_PROFILE, $AWS_DEFAULT_PROFILE, "
                             "or 'default')")
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="trace what happens, with tracebacks on errors")
    parser = argparse.ArgumentParser(
        prog="aws_login.py", parents=[common],
        description="Temporary AWS credentials from a SAML ECP identity provider.",
        epilog="Exit codes: 0 ok, 1 unexpected, 2 usage, 3 configuration, 4 authentication "
               "refused, 5 IdP answer unusable, 6 role, 7 STS refused, 8 network or TLS, "
               "9 files, 10 not logged in, 11 no terminal, 130 interrupted.")
    parser.add_argument("--version", action="version", version="%(prog)s " + __version__)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = commands.add_parser("configure", parents=[common], help="set a profile's options",
                            description="Set a profile's options: asks for each one, or "
                            "takes flags (no prompts) for scripted set-up.")
    p.add_argument("--ecp-endpoint-url", dest="ecp_endpoint_url", metavar="URL")
    p.add_argument("--username")
    p.add_argument("--enable-keyring", dest="enable_keyring", nargs="?", const="true",
                   metavar="BOOL")
    p.add_argument("--factor", choices=FACTORS)
    p.add_argument("--role-arn", dest="role_arn", metavar="ARN")
    p.add_argument("--duration", metavar="SECONDS")
    p.add_argument("--ca-bundle", dest="ca_bundle", metavar="PATH")
    p.add_argument("--region")
    p.add_argument("--http-header-factor", dest="http_header_factor", metavar="NAME")
    p.add_argument("--http-header-passcode", dest="http_header_passcode", metavar="NAME")
    p.add_argument("--verify-ssl-certificate", dest="verify_ssl_certificate", metavar="BOOL")
    p.set_defaults(func=_cmd_configure)

    p = commands.add_parser("login", parents=[common], help="log in and write credentials",
                            description="Authenticate to the IdP, choose a role and write "
                            "temporary credentials for the profile.")
    p.add_argument("--role-arn", dest="role_arn", metavar="ARN",
                   help="assume this role (it must be in the assertion)")
    p.add_argument("--force", action="store_true",
                   help="overwrite a section holding long-term keys")
    p.set_defaults(func=_cmd_login)

    p = commands.add_parser("logout", parents=[common], help="remove credentials",
                            description="Remove the profile's credentials.  The IdP session "
                            "is kept (the next login asks only for the role) unless --forget.")
    p.add_argument("--all", action="store_true", help="every profile aws_login wrote")
    p.add_argument("--forget", action="store_true",
                   help="also forget the saved IdP session (recommended on shared hosts)")
    p.add_argument("--force", action="store_true",
                   help="remove the section even if aws_login did not write it")
    p.set_defaults(func=_cmd_logout)
    return parser


def main(argv=None):
    """Run one command; return the exit code.  Only here do errors become text."""
    global _debug_enabled
    parser = build_parser()
    args = parser.parse_args(argv)
    _debug_enabled = getattr(args, "debug", False)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return UsageError.exit_code
    try:
        args.profile = profile_name(getattr(args, "profile", None))
        return args.func(args) or 0
    except AwsLoginError as e:
        if _debug_enabled:
            import traceback
            traceback.print_exc()
        sys.stderr.write(("%s\n" if e.calm else "aws_login: error: %s\n") % e)
        return e.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("\naws_login: interrupted\n")
        return EXIT_INTERRUPTED
    except Exception as e:
        if _debug_enabled:
            raise
        sys.stderr.write("aws_login: unexpected error: %s (run with --debug for the "
                         "traceback)\n" % type(e).__name__)
        return 1


if __name__ == "__main__":
    sys.exit(main())
