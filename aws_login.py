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

# The API for vendoring (README, "From Python"); every other name may change.
__all__ = [
    # log in and get credentials
    "get_credentials", "cached_credentials", "login", "login_all_roles", "logout",
    "configure",
    "read_profile", "stored_credentials",
    # use them
    "sign_request", "get_caller_identity", "assume_role", "console_url", "env_lines",
    # the records these take and give
    "Profile", "Credentials", "Role", "Terminal",
    # errors
    "AwsLoginError", "UsageError", "ConfigError", "AuthenticationError", "IdPError",
    "RoleError", "STSError", "SignInError", "NetworkError", "CredentialsFileError",
    "NotLoggedInError", "NoTerminalError", "InteractionRequired", "CommandNotFoundError",
    # entry points
    "main", "awscli_initialize",
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
    transient = False   # worth trying again later: network down, a server's 5xx, throttling

    def __init__(self, message, transient=None):
        Exception.__init__(self, message)
        if transient is not None:
            self.transient = transient


class UsageError(AwsLoginError):
    """The command line is wrong."""
    exit_code = 2


class ConfigError(AwsLoginError):
    """A profile setting is missing or invalid."""
    exit_code = 3


class AuthenticationError(AwsLoginError):
    """The IdP refused the username, password or second factor.

    ``kind`` is "refused" when the IdP said no (a stored password that gets
    this is not sent again) or "timeout" when no answer came in time (a Duo
    push nobody approved)."""
    exit_code = 4

    def __init__(self, message, kind="refused", transient=None):
        AwsLoginError.__init__(self, message, transient)
        self.kind = kind


class IdPError(AwsLoginError):
    """The IdP answered something that is not a usable SAML ECP answer."""
    exit_code = 5


class RoleError(AwsLoginError):
    """The assertion offers no usable role, or not the one asked for."""
    exit_code = 6


class STSError(AwsLoginError):
    """STS refused the request; ``code`` is AWS's error code.  ``kind`` is
    "duration" when the DurationSeconds asked is over the role's maximum (or
    a chained role's hour), else None."""
    exit_code = 7

    def __init__(self, message, code=None, transient=None, kind=None):
        AwsLoginError.__init__(self, message, transient)
        self.code = code
        self.kind = kind


class SignInError(STSError):
    """AWS sign-in (the console's federation endpoint) gave no sign-in token."""


class NetworkError(AwsLoginError):
    """A connection, TLS or timeout failure; ``kind`` is one of "timeout",
    "refused" (the connection), "dns", "untrusted" (the certificate), "tls",
    "broken" (not HTTP), "proxy" (HTTPS_PROXY's proxy: not reached, or no
    tunnel through it) or "other"."""
    exit_code = 8
    transient = True

    def __init__(self, message, kind="other", transient=None):
        AwsLoginError.__init__(self, message, transient)
        self.kind = kind


class CredentialsFileError(AwsLoginError):
    """A file could not be read or written, or must not be overwritten."""
    exit_code = 9


class NotLoggedInError(AwsLoginError):
    """Nothing to do: the profile holds no credentials of ours."""
    exit_code = 10


class NoTerminalError(AwsLoginError):
    """A value must be asked for, but there is no terminal to ask on."""
    exit_code = 11


class InteractionRequired(NoTerminalError):
    """Renewing needs a person (the IdP session ended and no password is stored).

    ``reason`` is what is missing, without the hint of what to run: a
    terminal that can ask right away says only that."""

    def __init__(self, message, reason=None):
        NoTerminalError.__init__(self, message)
        self.reason = reason or message


class CommandNotFoundError(AwsLoginError):
    """exec: the command to run does not exist (the shell's 127)."""
    exit_code = 127


_EXIT_INTERRUPTED = 130
# The reader of our output has gone (`status | head -1`): the status a shell
# shows for a tool that SIGPIPE ended (128 + 13), as `cat` or `ls` leave it.
# We exit with it rather than die of the signal: every lock is let go and
# every file written whole on the way out.
_EXIT_PIPE_CLOSED = 141


# ---------------------------------------------------------------------------
# Constants
# ---------------------------------------------------------------------------

_KEYRING_SERVICE = "awscli_login"        # awscli-login's, so entries carry over
_FACTORS = ("auto", "push", "passcode", "sms", "phone")
# awscli-login's words for "no Duo factor at all" (no header, no prompt): factor = off
_FACTOR_OFF_WORDS = ("off", "0", "no", "false", "disable")
# How the password and Duo passcode are asked where there is no terminal
# (password_prompt); the four programs are the ones `auto` tries, in order.
_PROMPT_PROGRAMS = ("pinentry", "zenity", "kdialog", "osascript")
_PASSWORD_PROMPTS = ("auto", "terminal") + _PROMPT_PROGRAMS + ("none",)
# The Shibboleth Duo plugin reads the first spelling, older IdPs the second.
_DUO_FACTOR_HEADERS = ("X-Shibboleth-Duo-Factor", "X-Shiboleth-Duo-Factor")
_DUO_PASSCODE_HEADERS = ("X-Shibboleth-Duo-Passcode", "X-Shiboleth-Duo-Passcode")
# The device came with the Shibboleth plugin's non-browser flow, after the old
# misspelled IdPs: it has one spelling.
_DUO_DEVICE_HEADER = "X-Shibboleth-Duo-Device"

_SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
_SAMLP_NS = "urn:oasis:names:tc:SAML:2.0:protocol"
_SAML_NS = "urn:oasis:names:tc:SAML:2.0:assertion"
_ECP_NS = "urn:oasis:names:tc:SAML:2.0:profiles:SSO:ecp"
_STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"
_PAOS_BINDING = "urn:oasis:names:tc:SAML:2.0:bindings:PAOS"
_STATUS_SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"

_ROLE_ATTRIBUTE = "https://aws.amazon.com/SAML/Attributes/Role"
_SESSION_NAME_ATTRIBUTE = "https://aws.amazon.com/SAML/Attributes/RoleSessionName"
_SESSION_DURATION_ATTRIBUTE = "https://aws.amazon.com/SAML/Attributes/SessionDuration"

# partition -> (SAML ACS URL, STS host suffix, region used when none is set)
_PARTITIONS = {
    "aws": ("https://signin.aws.amazon.com/saml", "amazonaws.com", None),
    "aws-cn": ("https://signin.amazonaws.cn/saml", "amazonaws.com.cn", "cn-north-1"),
    "aws-us-gov": ("https://signin.amazonaws-us-gov.com/saml", "amazonaws.com",
                   "us-gov-west-1"),
}
_REGION_PREFIX = {"aws-cn": "cn-", "aws-us-gov": "us-gov-"}
# partition -> (federation endpoint, console): the sign-in URL is built from a
# getSigninToken call to the partition's federation endpoint
_CONSOLES = {
    "aws": ("https://signin.aws.amazon.com/federation", "https://console.aws.amazon.com/"),
    "aws-cn": ("https://signin.amazonaws.cn/federation", "https://console.amazonaws.cn/"),
    "aws-us-gov": ("https://signin.amazonaws-us-gov.com/federation",
                   "https://console.amazonaws-us-gov.com/"),
}

_CONNECT_TIMEOUT = 15        # seconds to reach a server: the name lookup and every address
_MIN_ADDRESS_TIME = 2.0      # the least a silent address gets before the next one is tried
_READ_TIMEOUT = 180          # a Duo push or phone call holds the IdP's answer
_PROBE_TIME_LIMIT = 30       # configure's try of the endpoint: no Duo push holds that answer
_MAX_ANSWER_BYTES = 4 << 20  # real ECP answers are tens of KB
# Bounds on the XML a server sends, far above any real answer (a SAML answer
# nests about 10 deep and has tens of namespace declarations in scope; a
# user in 10,000 groups gets about 10,000 elements).
_MAX_XML_DEPTH = 100         # elements open at once
_MAX_XML_NAMESPACES = 256    # namespace declarations in scope at once
_MAX_XML_ELEMENTS = 100000   # elements in one answer
_STS_ATTEMPTS = 4            # throttling and 5xx are retried with backoff
_LOCK_TIMEOUT = 30
_DURATION_MIN, _DURATION_MAX = 900, 43200
_CHAINED_MAX = 3600          # AWS caps a chained role's session at one hour

# Our own keys in a credentials section: they mark it as ours.
_EXPIRATION_KEY = "aws_login_expiration"
_ROLE_KEY = "aws_login_role_arn"
_CHAIN_KEY = "aws_login_chained_role_arn"


# ---------------------------------------------------------------------------
# Helpers: the run's own state, text for a terminal, messages, named records
# ---------------------------------------------------------------------------

class _Run(object):
    """What this process knows of its own run, in one record: main() makes a
    new one for each run (a library caller keeps the defaults); no other
    module-level name changes while the tool runs.

    ``program`` is how the person runs this tool, for the commands that hints
    and help name: "aws" (the AWS CLI plugin), "aws-login" (the installed
    command), a path to this file, or None (worked out from sys.argv)."""

    def __init__(self, program=None, debug=False):
        self.program = program
        self.debug = debug              # --debug: a trace, and tracebacks
        self.stamp = False              # the refresher's log: every line timestamped
        self.core_limit = None          # the soft RLIMIT_CORE we started with, for `exec`
        self.said = set()               # warnings given once in a run
        self.locks = {}                 # profile locks held: (path, pid, thread) -> [fd, depth]
        self.trust_hints = {}           # SSLContext -> what to do when it trusts no certificate
        self.code_fd = None             # piped into python3 -: our code, marshalled (_code_fd)


_run = _Run()

# Characters a terminal obeys or that rearrange what it shows: C0 controls
# (ESC, CR, LF, BS...), DEL, C1 controls (CSI is U+009B), the Unicode line and
# paragraph separators, and the bidi embeddings, overrides and isolates.
_CONTROL_CODES = (list(range(0x20)) + list(range(0x7f, 0xa0)) + [0x2028, 0x2029]
                  + list(range(0x202a, 0x202f)) + list(range(0x2066, 0x206a)))
_ESCAPES = dict((c, "\\x%02x" % c if c < 0x100 else "\\u%04x" % c) for c in _CONTROL_CODES)
_ESCAPES.update({9: "\\t", 10: "\\n", 13: "\\r"})


def _visible(text):
    """``text`` with every control, line-breaking and bidi character written as an
    escape (ESC becomes the four characters \\x1b): a server's words reach a
    terminal or a log as one inert line."""
    return str(text).translate(_ESCAPES)


def _debug(message):
    """Trace to stderr under --debug.  Never pass a secret here."""
    if _run.debug:
        sys.stderr.write("aws_login: debug: %s\n" % _visible(message))


def _warn(message, once=False):
    """One line on stderr; with ``once``, only the first time in this run."""
    if once:
        if message in _run.said:
            return
        _run.said.add(message)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ ", time.gmtime()) if _run.stamp else ""
    sys.stderr.write("%saws_login: warning: %s\n" % (stamp, _visible(message)))


def _reader_gone(stream):
    """True when ``stream`` (standard output or error) is a pipe or socket whose
    reader has gone, as after `| head -1`: a BrokenPipeError is then the reader's
    doing, not a bug.  Asked of the descriptor itself, so that a broken pipe
    elsewhere (a child's, a socket's) is still reported as one; argparse, from
    3.11 on, drops its own write error, and this is all there is to ask."""
    import select
    try:
        fd = stream.fileno()
    except (AttributeError, ValueError, OSError):       # replaced, or closed
        return False
    if not hasattr(select, "poll"):     # no poll (Windows): EPIPE on output is the reader's
        return True
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    # Linux says POLLERR for a pipe with no reader, BSD kernels POLLHUP.
    return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))


def _quiet(stream):
    """The rest of ``stream``, whose reader has gone, to /dev/null: the
    interpreter's exit would try what is still buffered again and print
    "Exception ignored ... BrokenPipeError"."""
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, stream.fileno())
    os.close(null)


def _output_closed():
    """The end of a run whose output's reader has gone: quietly, with 141."""
    for stream in (sys.stdout, sys.stderr):
        if _reader_gone(stream):
            _quiet(stream)
    return _EXIT_PIPE_CLOSED


def _say_error(text):
    """Text of main()'s for stderr; a reader gone there (`2>&1 | head -0`)
    leaves it unsaid, and the error keeps its exit code."""
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except BrokenPipeError:
        _quiet(sys.stderr)


def _own_file():
    """(path, module name) of this file when it can be imported by a fresh
    interpreter, else (None, None): piped into `python3 -` there is no file."""
    path = os.path.abspath(__file__) if "__file__" in globals() else ""
    module = os.path.splitext(os.path.basename(path))[0]
    if os.path.isfile(path) and path.endswith(".py") and module.isidentifier():
        return path, module
    return None, None


def _how_run(absolute=False):
    """How the person runs this tool: "aws" (the AWS CLI plugin), "aws-login"
    (the installed command), the path of this file (as typed, or
    ``absolute``), or None when piped into ``python3 -``."""
    how = _run.program
    if how is None:
        arg0 = sys.argv[0] if sys.argv else ""
        own = _own_file()[0]
        if os.path.basename(arg0) in ("aws-login", "aws-login.exe"):
            how = "aws-login"
        elif own and arg0.endswith(".py") and os.path.abspath(arg0) == own:
            how = arg0
        else:
            how = own
    if absolute and how not in (None, "aws", "aws-login"):
        how = os.path.abspath(how)
    return how


def _program():
    """The command that runs this tool, as hints and help name it: "aws" (the
    plugin), "aws-login", ``python3 FILE``; None when piped (no file to name)."""
    how = _how_run()
    if how in (None, "aws", "aws-login"):
        return how
    import shlex
    return "python3 " + shlex.quote(how)


def _run_hint(profile, command="login"):
    """``run `...` `` naming the command as the person runs this tool (the AWS
    CLI plugin, the installed ``aws-login``, or ``python3 FILE``); piped into
    ``python3 -`` there is no file to name, so it says to save one."""
    import shlex
    words = ("" if profile == "default" else "--profile %s " % shlex.quote(profile)) + command
    program = _program()
    if program == "aws":
        first, _, rest = command.partition(" ")
        if first in ("login", "logout", "configure"):
            name = _plugin_command()
            aws = {"login": name, "configure": name + " configure",
                   "logout": "logout" if name == "login" else name + " logout"}[first]
            return "run `aws %s`" % (words[:len(words) - len(command)] + aws
                                      + (" " + rest if rest else ""))
        program = "python3 " + shlex.quote(_own_file()[0] or "aws_login.py")
    if program is None:
        return ("save this script as aws_login.py and run `python3 aws_login.py %s`, or "
                "pipe it again to `python3 - %s`" % (words, words))
    return "run `%s %s`" % (program, words)


def _no_core_dumps():
    """A core dump of ours would hold the password or the keys: our processes
    make none (the soft limit only; `exec` gives the command the old one)."""
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
        resource.setrlimit(resource.RLIMIT_CORE, (0, hard))
        _run.core_limit = soft
    except (ImportError, ValueError, OSError):
        pass


def _give_back_core_limit(resource=None):
    """The soft core limit we started with, for a command about to be run
    (``resource``, imported already, between fork and exec)."""
    if _run.core_limit is not None:
        if resource is None:
            import resource
        resource.setrlimit(resource.RLIMIT_CORE,
                           (_run.core_limit, resource.getrlimit(resource.RLIMIT_CORE)[1]))


def _named_tuple(name, fields, doc):
    """A tuple class whose items have names (collections.namedtuple, which the
    isolated start would have to import)."""
    namespace = {"__slots__": (), "__doc__": doc, "_fields": fields,
                 "__new__": lambda cls, *values: tuple.__new__(cls, values),
                 "__repr__": lambda self: "%s(%s)" % (name, ", ".join(
                     "%s=%r" % pair for pair in zip(fields, self)))}
    for index, field in enumerate(fields):
        namespace[field] = property(lambda self, index=index: self[index])
    return type(name, (tuple,), namespace)


# ---------------------------------------------------------------------------
# Files: atomic, locked, private writes
# ---------------------------------------------------------------------------

def _private_dir(path):
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


def _listdir(path):
    """The names in folder ``path`` that do not start with a dot, sorted; [] when
    it cannot be listed."""
    try:
        return sorted(n for n in os.listdir(path) if not n.startswith("."))
    except OSError:
        return []


def _remove(path):
    """Delete ``path`` if it is there (and may be deleted)."""
    try:
        os.unlink(path)
    except OSError:
        pass


class _DirectoryLock(object):
    """flock on the directory itself: no stray lock file beside the user's files."""

    def __init__(self, directory, timeout=_LOCK_TIMEOUT):
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


def _check_owner(path):
    """Refuse a file or folder that another user owns: never follow or write theirs."""
    try:
        owner = os.stat(path).st_uid
    except FileNotFoundError:
        return
    if owner != os.getuid():
        raise CredentialsFileError("%s belongs to another user (uid %d); refusing to use it"
                                   % (path, owner))


def _remove_stale_temps(directory, base):
    """Temp files a killed writer left (they may hold secrets); a live one is younger."""
    prefix = "." + base + "."
    for name in os.listdir(directory):
        if name.startswith(prefix) and name.endswith(".tmp"):
            path = os.path.join(directory, name)
            try:
                if time.time() - os.lstat(path).st_mtime > 60:
                    os.unlink(path)
            except OSError:
                pass


def _atomic_write(path, text, mode=0o600):
    """Replace ``path`` with ``text`` (str or bytes; mode 0600 unless ``mode``) so
    that no reader ever sees half of it."""
    import tempfile
    directory = os.path.dirname(path)
    fd, temp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                                dir=directory)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(text if isinstance(text, bytes) else text.encode("utf-8"))
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


def _update_file(path, edit, keep_mode=False):
    """Apply ``edit(text) -> text`` to a file under a lock, atomically, mode 0600
    (with ``keep_mode``, the mode the file had, when it was there).

    A symlink is followed to its target, so the link stays a link.  ``edit``
    sees "" for a missing file and may raise to leave the file untouched.
    Returns True when the file changed."""
    real = os.path.realpath(path)
    directory = os.path.dirname(real)
    if not os.path.isdir(directory):
        _private_dir(directory)
    for mine in (directory, real):
        _check_owner(mine)
    try:
        with _DirectoryLock(directory):
            _remove_stale_temps(directory, os.path.basename(real))
            old = _read_text(real)
            new = edit(old or "")
            if new == old or (old is None and new == ""):
                return False
            mode = os.stat(real).st_mode & 0o777 if keep_mode and old is not None else 0o600
            _atomic_write(real, new, mode)
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


def _lines(text):
    """Lines as configparser's read_string sees them: ended by \\n only (a CR of
    CRLF stays at the end of its line; str.splitlines would also cut at \\x0c,
    \\x1c, U+2028 and more, inside a comment or a value)."""
    lines = text.split("\n")
    last = lines.pop()
    return [line + "\n" for line in lines] + ([last] if last else [])


def _header_name(line):
    """The section a line opens, as configparser reads it (indent and a BOM allowed)."""
    stripped = line.strip().lstrip("\ufeff")
    if stripped.startswith("[") and stripped.endswith("]") and len(stripped) > 2:
        return stripped[1:-1]
    return None


def _is_content(line):
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith(("#", ";"))


_SectionSpan = _named_tuple("_SectionSpan", ("header", "last", "end"), """Where a section
    lies in a file's lines: its header line, the end of its last key line, the end of
    its block.""")


def _sections(lines, name):
    """A _SectionSpan for each section ``name``, in file order."""
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
            spans.append(_SectionSpan(i, last, end))
    return spans


def _delete_span(lines, start, stop):
    """Delete lines[start:stop] with the blank lines after it, and, at the end of
    the file, the blank lines before it: what appending a section added."""
    while stop < len(lines) and not lines[stop].strip():
        stop += 1
    if stop == len(lines) and start > 0 and not lines[start - 1].strip():
        start -= 1
    del lines[start:stop]


def _render_section(name, values, newline="\n"):
    """A section's text as configparser writes it, with the file's line ending."""
    import configparser
    import io
    parser = configparser.RawConfigParser()
    parser.optionxform = str
    parser.add_section(name)
    for key, value in values:
        if _breaks_lines(value):
            raise CredentialsFileError("refusing to write a value with a line break or "
                                       "a control character")
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


def _ini_replace_section(text, name, values):
    """``text`` with section ``name`` holding exactly ``values`` (pairs), in place."""
    newline = _newline(text)
    rendered = _render_section(name, values, newline)
    lines = _lines(text)
    spans = _sections(lines, name)
    if not spans:
        return _append(text, rendered)
    for span in reversed(spans[1:]):      # a duplicate section would shadow ours
        _delete_span(lines, span.header, span.last)
    start, last = spans[0].header, spans[0].last
    if last == len(lines) and not lines[-1].endswith(("\n", "\r")):
        rendered = rendered[:-len(newline)]         # keep a missing final newline missing
    lines[start:last] = [rendered]
    return "".join(lines)


def _ini_remove_section(text, name):
    """``text`` without section ``name`` (every copy of it)."""
    lines = _lines(text)
    for span in reversed(_sections(lines, name)):
        _delete_span(lines, span.header, span.last)
    return "".join(lines)


def _option_key(line):
    if line[:1].isspace() or not _is_content(line):
        return None
    cut = min([i for i in (line.find("="), line.find(":")) if i >= 0] or [-1])
    return line[:cut].strip().lower() if cut > 0 else None


def _ini_set_options(text, name, values):
    """``text`` with options set (value) or removed (None) in section ``name``.

    Other options, comments and their order stay; a new option goes after the
    section's last option."""
    for value in values.values():
        if value is not None and _breaks_lines(value):
            raise ConfigError("refusing a value with a line break or a control character")
    newline = _newline(text)
    lines = _lines(text)
    spans = _sections(lines, name)
    if not spans:
        present = [(k, v) for k, v in values.items() if v is not None]
        return _append(text, _render_section(name, present, newline)) if present else text
    start, last = spans[0].header, spans[0].last
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
# Settings (profiles)
# ---------------------------------------------------------------------------
# ~/.aws-login/config, awscli-login's format: one section per profile name.

def _login_root():
    """awscli-login's state folder: ``~/.aws-login``, or ``$AWSCLI_LOGIN_ROOT/.aws-login``
    (awscli-login reads that variable as a stand-in for the home folder)."""
    root = os.environ.get("AWSCLI_LOGIN_ROOT")
    return os.path.join(os.path.expanduser(root) if root else os.path.expanduser("~"),
                        ".aws-login")


def _config_path():
    return os.path.join(_login_root(), "config")


def _breaks_lines(text):
    """True when ``text`` holds a control character or anything that some reader
    takes for the end of a line (str.splitlines splits on \\x0c, \\x1c, \\x85,
    U+2028...): such a name or value would cut an INI file differently for
    configparser, botocore and us."""
    return any(ord(c) < 32 or 127 <= ord(c) < 160 or c in "\u2028\u2029" for c in text)


def _profile_name(explicit=None):
    name = (explicit or os.environ.get("AWS_PROFILE")
            or os.environ.get("AWS_DEFAULT_PROFILE") or "default")
    if (any(c in name for c in "[]") or _breaks_lines(name) or name != name.strip()
            or not name):
        raise UsageError("invalid profile name %r" % name)
    if name == "DEFAULT":
        raise UsageError("DEFAULT is reserved (its options apply to every profile); "
                         "choose another profile name")
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


def _check_url(value, what="ECP endpoint URL"):
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
    if "@" in parts.netloc:
        raise ConfigError("%s must not carry a username or password; set username in "
                          "the profile instead" % what)
    if parts.scheme == "http" and not _is_loopback(host):
        raise ConfigError("%s %r uses plain http; use https (http is allowed "
                          "only for a server on this machine)" % (what, value))
    return value


def _check_factor(value):
    """A Duo factor, or ``off`` (no Duo header is sent) for any of awscli-login's
    words that turn it off."""
    factor = value.strip().lower()
    if factor in _FACTOR_OFF_WORDS:
        return "off"
    if factor not in _FACTORS:
        raise ConfigError("Duo factor %r is not one of %s, or off"
                          % (value, ", ".join(_FACTORS)))
    return factor


def _role_arn_match(value):
    import re
    # ASCII: a Python \w or \d also takes letters and digits of every script
    return re.fullmatch(r"arn:(aws|aws-cn|aws-us-gov):iam::(\d{12}):role/([\w+=,.@/-]{1,512})",
                        value, flags=re.ASCII)


def _check_role_arn(value):
    value = value.strip()
    if not _role_arn_match(value):
        raise ConfigError("%r is not a role ARN (arn:aws:iam::123456789012:role/Name; "
                          "partitions aws, aws-cn, aws-us-gov)" % value)
    return value


def _check_bool(value, what=None):
    word = str(value).strip().lower()
    if word in ("1", "true", "yes", "on", "y"):
        return True
    if word in ("0", "false", "no", "off", "n", ""):
        return False
    raise ConfigError("%s%r is not true or false" % (what + " " if what else "", value))


def _check_duration(value):
    """Seconds, or None for 0: awscli-login writes ``duration = 0`` for "not set"
    (STS then uses the role's default, or the assertion's SessionDuration)."""
    try:
        seconds = int(str(value).strip())
    except ValueError:
        raise ConfigError("duration %r is not a whole number of seconds" % (value,))
    if seconds == 0:
        return None
    if not _DURATION_MIN <= seconds <= _DURATION_MAX:
        raise ConfigError("duration %d is outside %d..%d seconds"
                          % (seconds, _DURATION_MIN, _DURATION_MAX))
    return seconds


def _check_region(value):
    import re
    region = value.strip()
    if not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d{1,2}", region, flags=re.ASCII):
        raise ConfigError("region %r is not an AWS region name (like us-east-1)" % value)
    return region


def _check_ca_bundle(value):
    path = os.path.expanduser(value.strip())
    if not os.path.isfile(path):
        raise ConfigError("CA bundle %s is not a file" % path)
    return path


def _check_external_id(value):
    import re
    if not re.fullmatch(r"[\w+=,.@:/-]{2,1224}", value.strip(), flags=re.ASCII):
        raise ConfigError("%r is not a valid external ID" % value)
    return value.strip()


def _check_passcode(value):
    """A Duo passcode travels as an HTTP header value: printable ASCII, no spaces.
    The value is never repeated in the error (it is a secret)."""
    code = value.strip()
    if not code or not all("!" <= c <= "~" for c in code):
        raise ConfigError("the Duo passcode must be printable ASCII without spaces")
    return code


def _check_duo_device(value):
    """A Duo device (``phone2``, or a device ID) travels as an HTTP header value."""
    device = value.strip()
    if not device or not all("!" <= c <= "~" for c in device):
        raise ConfigError("Duo device %r is not printable ASCII without spaces" % value)
    return device


def _check_password_prompt(value):
    choice = value.strip().lower()
    if choice not in _PASSWORD_PROMPTS:
        raise ConfigError("password_prompt %r is not one of %s"
                          % (value, ", ".join(_PASSWORD_PROMPTS)))
    return choice


def _check_header_name(value):
    import re
    if not re.match(r"[A-Za-z0-9-]+$", value.strip()):
        raise ConfigError("%r is not an HTTP header name" % value)
    return value.strip()


def _check_text(value):
    return value.strip()


def _check_password(value):
    return value or None        # an empty password is no password: it is never sent


_PATTERN_FIELDS = ("profile", "account", "role")


def _check_profile_pattern(value):
    """A `login --all-roles` profile name pattern: text and {profile}, {account},
    {role}; {role} is required, or every role would get the same profile."""
    import string
    value = value.strip()
    try:
        fields = [f for _, f, spec, conv in string.Formatter().parse(value) if f is not None]
    except ValueError as e:
        raise ConfigError("%r is not a pattern (%s)" % (value, e))
    if any(f not in _PATTERN_FIELDS for f in fields) or "role" not in fields or any(
            c in value for c in "[]") or _breaks_lines(value):
        raise ConfigError("%r: a pattern of {profile}, {account} and {role} ({role} "
                          "required) is expected" % value)
    return value


_Option = _named_tuple("_Option", ("name", "prompt", "check", "default", "flag", "plugin",
                                   "help"), """One profile option: its name in the settings
    file, the question interactive `configure` asks (awscli-login's words) or None, the
    check every value goes through, the value when unset, the metavar of its `configure`
    flag (None: no flag, for a secret must not be on a command line), whether `aws login
    configure` offers it (False for what the AWS CLI's own global options set), and its
    help: the README's Settings table and `configure --help` are these words.""")

# Every profile option, once: Profile, configure (prompts and flags), the AWS CLI
# plugin's `aws login configure` and the README's Settings table come from here.
_OPTIONS = (
    _Option("ecp_endpoint_url", "ECP Endpoint URL", _check_url, None, "URL", True,
            "the IdP's ECP endpoint (required); https, or http only to a loopback host"),
    _Option("username", "Username", _check_text, None, "NAME", True,
            "IdP username; asked for when missing"),
    _Option("enable_keyring", "Enable Keyring", _check_bool, False, "BOOL", True,
            "keep the password in the system keyring (service `awscli_login`, user "
            "`username@host[:port]`)"),
    _Option("factor", "Duo Factor", _check_factor, None, "FACTOR", True,
            "Duo factor: `auto`, `push`, `passcode`, `sms` or `phone`; `off` (or "
            "awscli-login's `0`, `no`, `false`, `disable`): no Duo header, no prompt; blank: "
            "asked on a terminal, else `auto`"),
    _Option("duo_device", None, _check_duo_device, None, "DEVICE", True,
            "the Duo device to push to or call (`phone2`, or a device ID), for users with "
            "several; sent as `X-Shibboleth-Duo-Device` with the factor (default: Duo's "
            "first)"),
    _Option("role_arn", "Role ARN", _check_role_arn, None, "ROLE", True,
            "the role to assume (aws, aws-cn or aws-us-gov partition); it must be in the "
            "assertion; `configure` also takes a name as `login --role` does, asks the IdP "
            "which role it is and stores its ARN"),
    _Option("duration", None, _check_duration, None, "SECONDS", True,
            "session length in seconds, 900 to 43200; `0` means not set (awscli-login's "
            "default) (default: the IdP's `SessionDuration`, else STS's default); over the "
            "role's maximum, STS is asked again once (the IdP's `SessionDuration` if lower, "
            "else 3600), and the length that worked is kept in `~/.aws-login/duration/` "
            "for the next login; a chained role gets 3600 at most"),
    _Option("http_header_factor", None, _check_header_name, None, "NAME", True,
            "your IdP's own Duo factor header name (default: both spellings of "
            "`X-Shibboleth-Duo-Factor`)"),
    _Option("http_header_passcode", None, _check_header_name, None, "NAME", True,
            "your IdP's own Duo passcode header name (default: both spellings of "
            "`X-Shibboleth-Duo-Passcode`)"),
    _Option("verify_ssl_certificate", None, _check_bool, True, "BOOL", True,
            "`false` turns TLS checking of the IdP off (as in awscli-login; AWS's endpoints "
            "are still checked), with a loud warning on every login"),
    _Option("verify_aws_certificate", None, _check_bool, True, "BOOL", True,
            "`false` turns TLS checking of AWS's endpoints off (STS, `whoami`, `console`'s "
            "sign-in): for a lab's own STS only; a warning on every use"),
    _Option("ca_bundle", None, _check_ca_bundle, None, "PATH", False,
            "a PEM file of extra CAs, added to the system roots (else `AWS_CA_BUNDLE`); "
            "interactive `configure` asks for it when the IdP's certificate is not trusted"),
    _Option("region", "Region", _check_region, None, "REGION", False,
            "STS region (else `AWS_REGION`, `AWS_DEFAULT_REGION`; default: the global "
            "endpoint, or the partition's first region); `login` and `configure` also write "
            "it to the profile in `~/.aws/config` when that has none, for the AWS CLI"),
    _Option("password", None, _check_password, None, None, False,
            "read for compatibility; prefer the keyring"),
    _Option("passcode", None, _check_passcode, None, None, False,
            "a Duo passcode, read for compatibility"),
    _Option("password_prompt", None, _check_password_prompt, "auto", "PROMPT", True,
            "how the password and Duo passcode are asked where there is no terminal "
            "(credential_process from an IDE, the refresher, the credential server): `auto` "
            "(the terminal, else GnuPG's `pinentry` when there is a display, else `zenity`, "
            "`kdialog` or `osascript`), `terminal` (no program), `pinentry`, `zenity`, "
            "`kdialog` or `osascript` (that program, display or not), `none` (a renewal "
            "never asks, not even on a terminal); the role is never asked this way"),
    _Option("refresh", None, _check_bool, True, "BOOL", True,
            "`false`: `login` starts no refresher (file mode)"),
    _Option("chain_role_arn", None, _check_role_arn, None, "ARN", True,
            "role chaining: after the SAML role, a signed `sts:AssumeRole` into this role; "
            "login, the refresher and credential-process all do it; AWS caps chained "
            "sessions at one hour"),
    _Option("chain_external_id", None, _check_external_id, None, "ID", True,
            "the external ID the chained role's trust policy asks for"),
    _Option("all_roles_profile", None, _check_profile_pattern, "{profile}-{account}-{role}",
            "PATTERN", True,
            "the profile each role of `login --all-roles` is written to: {profile}, "
            "{account} (its alias when ~/.aws-login/alias has one) and {role} (its "
            "name, a path's `/` as `-`)"),
)
_OPTION = dict((option.name, option) for option in _OPTIONS)


def _check_option(key, value):
    """Text ``value`` of option ``key`` through the option's check; the error
    names the option."""
    try:
        return _OPTION[key].check(value)
    except ConfigError as e:
        if key in str(e):
            raise
        raise ConfigError("%s: %s" % (key, e))


class Profile(object):
    """One profile's settings, checked and typed; unset options have their
    defaults (None for most).  ``given`` names the flag that set an option for
    this run only (``login --ca-bundle``), so messages can name it."""

    password_source = "profile"     # "prompt": a person gave it (kept in the keyring)

    def __init__(self, name, options=None, source=None):
        self.name = name
        self.source = source
        self.given = {}
        for option in _OPTIONS:
            setattr(self, option.name, option.default)
        for key, value in (options or {}).items():
            if key in _OPTION and value is not None and value.strip():
                try:
                    setattr(self, key, _check_option(key, value))
                except ConfigError as e:
                    raise ConfigError("%s, in [%s] of %s" % (e, name, source or "settings"))

    def override(self, key, value, flag):
        """Set option ``key`` for this run from ``flag`` (checked as a setting is)."""
        setattr(self, key, _check_option(key, value) if isinstance(value, str) else value)
        self.given[key] = flag

    def where(self, key):
        """Where option ``key`` was set, for a message: the flag, or the settings."""
        if key in self.given:
            return "the %s flag" % self.given[key]
        return "%s in profile %s" % (key, self.name)

    def __repr__(self):     # never show the password or passcode
        return "Profile(%r, ecp_endpoint_url=%r, username=%r)" % (
            self.name, self.ecp_endpoint_url, self.username)


def _parse_ini(text, path, default_section="DEFAULT"):
    import configparser
    parser = configparser.RawConfigParser(strict=False, default_section=default_section)
    try:
        parser.read_string(text.lstrip("\ufeff"), source=path)
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
    path = _config_path()
    _check_owner(path)           # it decides where the password goes
    text = _read_text(path) or ""
    parser = _parse_ini(text, path)
    if not parser.has_section(name):
        if require_endpoint:
            raise ConfigError("profile %r is not configured: %s"
                              % (name, _run_hint(name, "configure")))
        return Profile(name, source=path)
    profile = Profile(name, dict(parser.items(name)), source=path)
    if require_endpoint and not profile.ecp_endpoint_url:
        raise ConfigError("profile %r has no ecp_endpoint_url: %s"
                          % (name, _run_hint(name, "configure")))
    return profile


# ---------------------------------------------------------------------------
# Terminal (prompts, menu, spinner)
# ---------------------------------------------------------------------------
# Prompts and menus go to the controlling terminal, never stdin or stdout, so
# that `curl ... | python3 - login` works and stdout stays clean.

# What to do when the password must be asked and there is no terminal.
_PASSWORD_HINT = ("give it on standard input (login --password-stdin), or set "
                  "enable_keyring and log in once on a terminal")


class Terminal(object):
    """The user's terminal (/dev/tty), opened only when something must be asked.
    Every question goes through ask() or secret(): the same answers to
    Ctrl-C (interrupted), Ctrl-D and no terminal (NoTerminalError).

    ``prompt`` is a password_prompt choice: where there is no terminal,
    secret() (the password, the Duo passcode; never the role or username)
    asks through the program it names (_PromptProgram), if any."""

    def __init__(self, path="/dev/tty", prompt="terminal"):
        self.path = path
        self.prompt = prompt
        self._fd = None
        self._program = None        # found on first need (a PATH search)

    def _open(self, what, hint=None):
        if self._fd is None:
            try:
                if self.path is None:       # Terminal(None): a caller with nobody to ask
                    raise OSError("no terminal")
                self._fd = os.open(self.path, os.O_RDWR | os.O_NOCTTY)
            except OSError:
                raise NoTerminalError("cannot ask for %s: there is no terminal; %s"
                                      % (what, hint or "set it in the profile or run "
                                         "on a terminal"))
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
        """Our own prompt text, as it is (it may move the cursor)."""
        if self._fd is not None:
            os.write(self._fd, text.encode("utf-8", "replace"))

    def tell(self, line):
        """One line that may carry a server's words: escaped, then a newline."""
        self.write(_visible(line) + "\n")

    def _readline(self, what):
        chunks = []
        while True:
            chunk = os.read(self._fd, 1024)
            if not chunk:       # Ctrl-D at the start of a line, or the terminal closed
                raise NoTerminalError("no answer was given for %s (end of input)" % what)
            chunks.append(chunk)
            if chunk.endswith(b"\n"):
                return b"".join(chunks).decode("utf-8", "replace").rstrip("\r\n")

    def ask(self, prompt, what, hint=None):
        """One line of input after ``prompt``; leading and trailing space removed."""
        self._open(what, hint)
        self.write(prompt)
        return self._readline(what).strip()

    def program(self):
        """The program secret() asks through: one when there is no terminal and
        ``prompt`` names one that is there, else None."""
        if self._program is None:
            self._program = (not self.available() and _prompt_program(self.prompt)) or False
        return self._program or None

    def asks_secrets(self, person):
        """Whether a password or passcode can be asked now: of ``person`` at the
        terminal, or (a renewal nobody started too) through the program."""
        return (person and self.available()) or self.program() is not None

    def secret(self, prompt, what, hint=None, deadline=None):
        """One line of input after ``prompt``, not echoed; where there is no
        terminal, the program's answer, given by ``deadline`` (a
        time.monotonic() value; by default a renewal's time limit from now)."""
        program = self.program()
        if program is not None:
            return program.ask(prompt, what, deadline or _RenewalSchedule.deadline())
        import termios
        self._open(what, hint)
        old = termios.tcgetattr(self._fd)
        new = list(old)
        new[3] &= ~termios.ECHO
        try:        # a Ctrl-C at any moment finds echo restored
            termios.tcsetattr(self._fd, termios.TCSAFLUSH, new)     # before the prompt shows
            self.write(prompt)
            return self._readline(what)
        finally:
            termios.tcsetattr(self._fd, termios.TCSAFLUSH, old)
            self.write("\n")

    def choose(self, lines, count, default=None):
        """Show a menu and return the index chosen, asking again on a bad answer;
        Enter alone chooses ``default`` when there is one."""
        hint = "name the role with --role, or set role_arn in the profile"
        self._open("a role", hint)
        self.write("".join(line + "\n" for line in lines))
        prompt = "Selection: " if default is None else "Selection [%d]: " % default
        while True:
            answer = self.ask(prompt, "a role", hint)
            if not answer and default is not None:
                return default
            if answer and all(c in "0123456789" for c in answer) and int(answer) < count:
                return int(answer)
            self.write("Please enter a number from 0 to %d.\n" % (count - 1))

    def waiting(self, label):
        """A context manager showing ``label... 12s`` while a slow call runs."""
        return _Spinner(self if self.available() else None, label)


def _prompt_program(choice):
    """The _PromptProgram that password_prompt ``choice`` names, or None.
    ``auto`` takes pinentry, zenity, kdialog, then osascript, and only with a
    display to show them on (X11, Wayland, or macOS); a named one is taken as
    it is (pinentry-tty and pinentry-curses need no display)."""
    import shutil
    if choice == "auto":
        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
                or sys.platform == "darwin"):
            return None
        kinds = _PROMPT_PROGRAMS
    else:
        kinds = [choice] if choice in _PROMPT_PROGRAMS else []
    for kind in kinds:
        path = shutil.which(kind)
        if path:
            return _PromptProgram(kind, path)
    return None


def _assuan_escape(text):
    """Assuan's escapes for a command's argument: %, CR and LF as %XX."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _assuan_unescape(data):
    """The bytes of an Assuan data line, its %XX escapes undone."""
    import re
    return re.sub(br"%([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), data)


class _PromptProgram(object):
    """A program that asks a person for one secret where there is no terminal:
    GnuPG's pinentry, spoken to in Assuan on its stdin and stdout, or zenity,
    kdialog or osascript, which print the answer.  Its argv carries only the
    question; the secret never goes through an argv or an environment.  A
    program not done by the deadline is killed (a renewal nobody started is
    bounded, _RenewalSchedule.TIME_LIMIT)."""

    CANCELLED = "83886179"      # GPG_ERR_CANCELED, in pinentry's ERR line
    MAX_LINE = 64 * 1024        # an Assuan line is 1,000 bytes at most

    def __init__(self, kind, path):
        self.kind = kind
        self.path = path

    def ask(self, prompt, what, deadline):
        import subprocess
        question = "aws_login needs %s." % what
        _debug("asking for %s with %s" % (what, self.path))
        try:
            proc = subprocess.Popen(
                self._argv(question), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                stdin=subprocess.PIPE if self.kind == "pinentry" else subprocess.DEVNULL,
                start_new_session=True)
        except OSError as e:
            raise NoTerminalError("cannot ask for %s: %s did not start (%s)"
                                  % (what, self.path, e.strerror or e))
        try:
            if self.kind == "pinentry":
                answer = self._assuan(proc, prompt.strip(), question, what, deadline)
            else:
                answer = self._printed(proc, what, deadline)
        finally:
            self._end(proc)
        return answer

    def _argv(self, question):
        if self.kind == "zenity":
            return [self.path, "--entry", "--hide-text", "--title=aws_login",
                    "--text=" + question]
        if self.kind == "kdialog":
            return [self.path, "--title", "aws_login", "--password", question]
        if self.kind == "osascript":
            quoted = '"%s"' % question.replace("\\", "\\\\").replace('"', '\\"')
            return [self.path, "-e", 'display dialog %s default answer "" with hidden answer '
                    'with title "aws_login"' % quoted, "-e", "text returned of result"]
        return [self.path]

    def _unanswered(self, what):
        return NoTerminalError("nobody answered %s's question for %s in time (a renewal "
                               "nobody started has %d s in all)"
                               % (self.kind, what, _RenewalSchedule.TIME_LIMIT))

    def _cancelled(self, what, detail):
        return NoTerminalError("the %s prompt for %s was cancelled (%s)"
                               % (self.kind, what, detail))

    def _printed(self, proc, what, deadline):
        import subprocess
        try:
            out = proc.communicate(timeout=max(0.0, deadline - time.monotonic()))[0]
        except subprocess.TimeoutExpired:
            raise self._unanswered(what)
        if proc.returncode != 0:
            raise self._cancelled(what, "or not shown: exit %d" % proc.returncode)
        return out.decode("utf-8", "replace").rstrip("\r\n")

    def _assuan(self, proc, prompt, question, what, deadline):
        lines = self._lines(proc, what, deadline)
        if not next(lines).startswith("OK"):
            raise NoTerminalError("%s does not speak Assuan: cannot ask for %s"
                                  % (self.path, what))
        commands = ["SETTITLE aws_login", "SETDESC " + _assuan_escape(question),
                    "SETPROMPT " + _assuan_escape(prompt)]
        # gpg-agent's way: a text pinentry (pinentry-tty, -curses) asks on the
        # terminal GPG_TTY names; its stdin and stdout are the Assuan pipe.
        for option, variable in (("ttyname", "GPG_TTY"), ("ttytype", "TERM")):
            if os.environ.get("GPG_TTY") and os.environ.get(variable):
                commands.insert(0, "OPTION %s=%s" % (option, _assuan_escape(os.environ[variable])))
        for command in commands:
            self._send(proc, command, what)
            self._reply(lines)      # an old pinentry's ERR to SETTITLE does no harm
        self._send(proc, "GETPIN", what)
        ok, data = self._reply(lines)
        if not ok:
            raise self._cancelled(what, data if data.split(" ")[0] != self.CANCELLED
                                  else "by the person")
        try:
            self._send(proc, "BYE", what)
            self._reply(lines)
        except NoTerminalError:
            pass                # the answer is in: how pinentry leaves does not matter
        return _assuan_unescape(data.encode("latin-1")).decode("utf-8", "replace")

    def _send(self, proc, line, what):
        try:
            proc.stdin.write(line.encode("utf-8") + b"\n")
            proc.stdin.flush()
        except OSError:
            raise NoTerminalError("%s ended before it was asked for %s" % (self.path, what))

    @staticmethod
    def _reply(lines):
        """(True, the data lines joined) up to OK, or (False, the error) at ERR;
        status (S) and comment (#) lines are passed over."""
        data = []
        for line in lines:
            if line.startswith("D "):
                data.append(line[2:])
            elif line == "OK" or line.startswith("OK "):
                return True, "".join(data)
            elif line.startswith("ERR "):
                return False, line[4:]

    def _lines(self, proc, what, deadline):
        """pinentry's lines, as text (Latin-1: data stays escaped), each by ``deadline``."""
        import select
        fd, buffer = proc.stdout.fileno(), b""
        while True:
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                yield line.decode("latin-1")
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise self._unanswered(what)
            chunk = os.read(fd, 4096)
            if not chunk or len(buffer) > self.MAX_LINE:
                raise NoTerminalError("%s ended without an answer for %s" % (self.path, what))
            buffer += chunk

    @staticmethod
    def _end(proc):
        """The program and whatever it started gone, and reaped."""
        import signal
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass


def _ask_until_valid(terminal, prompt, what, check, empty=None):
    """``check(answer)`` of the first answer it accepts: a value it refuses
    (ConfigError, or a role name that names no role) is shown and the question
    asked again; an empty answer gives ``empty``, unchecked."""
    while True:
        answer = terminal.ask(prompt, what)
        if not answer:
            return empty
        try:
            return check(answer)
        except (ConfigError, RoleError, UsageError) as e:
            terminal.tell(str(e))


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

class _HttpHeaders(object):
    """An answer's header fields: names case-insensitive, repeats kept (Set-Cookie)."""

    def __init__(self, fields):
        self.fields = fields        # [(name, value)] in the order received

    def get(self, name, default=None):
        values = self.get_all(name)
        return values[0] if values else default

    def get_all(self, name):
        name = name.lower()
        return [v for k, v in self.fields if k.lower() == name]

    def items(self):
        return list(self.fields)


class _BrokenAnswer(Exception):
    """An answer that is not HTTP/1.x; ``reason`` names what is wrong."""

    def __init__(self, reason, detail=""):
        Exception.__init__(self, "%s: %s" % (reason, detail) if detail else reason)
        self.reason = reason


class _AnswerTooLarge(Exception):
    """An answer's body, a chunked one's framing included, runs past the limit."""


_MAX_LINE = 65536               # one status or header line
_MAX_HEADERS = 100              # header lines of one answer, folded ones included
_MAX_HEAD_BYTES = 256 << 10     # the status and header lines, 1xx answers' included
_MAX_PROXY_HEAD_BYTES = 16 << 10    # a proxy's answer to CONNECT
_MAX_CHUNK_SIZE_DIGITS = 16     # hex digits of a chunk size: 2**64 - 1


def _read_line(answer, room=_MAX_LINE):
    """One line of at most _MAX_LINE bytes; one longer than ``room`` comes back
    cut at ``room + 1`` bytes, for the caller to refuse."""
    line = answer.readline(min(room, _MAX_LINE) + 1)
    if len(line) > _MAX_LINE:
        raise _BrokenAnswer("LineTooLong")
    if not line:
        raise _BrokenAnswer("RemoteDisconnected", "the connection closed mid-answer")
    return line


class _Reader(object):
    """Reads part of an answer within ``room`` bytes, every line and chunk
    charged; ``over`` (an exception) is raised before reading what would not fit."""

    def __init__(self, answer, room, over):
        self.answer, self.room, self.over = answer, room, over

    def take(self, count):
        if count > self.room:
            raise self.over
        self.room -= count

    def line(self):
        line = _read_line(self.answer, self.room)
        self.take(len(line))
        return line

    def read(self, size):
        self.take(size)
        data = self.answer.read(size)
        if len(data) < size:
            raise _BrokenAnswer("IncompleteRead")
        return data


def _is_digits(text):
    """ASCII digits only: str.isdigit() and int() also take '²' and '٣'."""
    return bool(text) and not text.strip("0123456789")


def _read_head(answer, max_bytes=_MAX_HEAD_BYTES):
    """(status, _HttpHeaders) of an answer, past any 1xx interim answer; the
    lines of all of them within ``max_bytes``."""
    lines = _Reader(answer, max_bytes, _BrokenAnswer("HeadTooLong"))
    while True:
        line = lines.line().decode("iso-8859-1")
        words = line.rstrip("\r\n").split(None, 2)
        if (len(words) < 2 or not words[0].startswith("HTTP/1.") or len(words[1]) != 3
                or not _is_digits(words[1])):
            raise _BrokenAnswer("BadStatusLine", line)
        fields = _read_fields(lines)
        if not 100 <= int(words[1]) < 200:
            return int(words[1]), _HttpHeaders(fields)


def _read_fields(lines):
    """[(name, value)] of the header lines up to the blank one.  An obsolete
    folded line continues the value before it (RFC 9112 5.2) and counts as a
    line; the pieces are joined once, at the end."""
    fields, count = [], 0
    while True:
        line = lines.line()
        if line in (b"\r\n", b"\n"):
            return [(name, " ".join(pieces)) for name, pieces in fields]
        count += 1
        if count > _MAX_HEADERS:
            raise _BrokenAnswer("TooManyHeaders")
        text = line.decode("iso-8859-1").rstrip("\r\n")
        if text[:1] in (" ", "\t") and fields:
            fields[-1][1].append(text.strip())
            continue
        name, colon, value = text.partition(":")
        if not colon or not name.strip():
            raise _BrokenAnswer("BadHeaderLine", text)
        fields.append((name.strip(), [value.strip()]))


def _read_body(answer, headers, limit):
    """The body, read to its framing's end; _AnswerTooLarge, before reading
    further, once it would run past ``limit`` bytes."""
    if "chunked" in (headers.get("Transfer-Encoding") or "").lower():
        return _read_chunked(answer, limit)
    length = headers.get("Content-Length")
    if length is None:
        body = answer.read(limit + 1)       # to the end of the connection
        if len(body) > limit:
            raise _AnswerTooLarge()
        return body
    if not _is_digits(length.strip()):
        raise _BrokenAnswer("BadContentLength", length)
    digits = length.strip().lstrip("0") or "0"
    if len(digits) > len(str(limit)) or int(digits) > limit:   # int() of 5000 digits fails
        raise _AnswerTooLarge()
    return _Reader(answer, limit, _AnswerTooLarge()).read(int(digits))


def _read_chunked(answer, limit):
    """A chunked body (RFC 9112 7.1): its size lines, line ends and trailer
    fields count against ``limit`` as its data does, so that the cap holds
    for a body of one-byte chunks with long extensions too."""
    wire, body = _Reader(answer, limit, _AnswerTooLarge()), bytearray()
    size = _chunk_size(wire.line())
    while size:
        body += wire.read(size)
        wire.line()                 # the line end after the data
        size = _chunk_size(wire.line())
    while wire.line() not in (b"\r\n", b"\n"):
        pass                        # trailer fields
    return bytes(body)


def _chunk_size(line):
    """The size on a chunk's first line: hex digits, of bounded length (int()
    would take '-1', '+a', '0x1' and '1_0'), then maybe ';' and an extension."""
    digits = line.split(b";", 1)[0].strip()
    if (not 0 < len(digits) <= _MAX_CHUNK_SIZE_DIGITS
            or digits.strip(b"0123456789abcdefABCDEF")):
        raise _BrokenAnswer("IncompleteRead", "a bad chunk size")
    return int(digits, 16)


def _request_head(method, target, headers):
    """The request line and header fields as bytes; ValueError for what HTTP
    cannot carry (a line break in a value: the value is not repeated)."""
    if any(c <= " " or c == "\x7f" for c in target):
        raise ValueError("the request target holds a space or a control character")
    lines = ["%s %s HTTP/1.1" % (method, target)]
    for name, value in headers.items():
        value = str(value)
        if (not name or any(c <= " " or c in ':\x7f' for c in name)
                or any(c in "\r\n\x00" for c in value)):
            raise ValueError("a header field HTTP cannot carry")
        lines.append("%s: %s" % (name, value))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class _HttpAnswer(object):
    def __init__(self, status, headers, body, url):
        self.status = status
        self.headers = headers
        self.body = body
        self.url = url

    @property
    def content_type(self):
        return (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()


def _system_roots(ssl):
    """(cafile, capath) of the system's CA certificates.

    A hashed folder (update-ca-certificates, c_rehash) is read lazily, one
    certificate per lookup, while the bundle file is parsed whole (tens of
    milliseconds on every start).  So the folder serves alone when the bundle
    lies in it (the same tool built both); otherwise both are loaded, as
    OpenSSL's defaults are."""
    paths = ssl.get_default_verify_paths()
    capath = paths.capath and os.path.realpath(paths.capath)
    cafile = paths.cafile and os.path.realpath(paths.cafile)
    if capath and (cafile is None or os.path.dirname(cafile) == capath):
        try:
            names = os.listdir(capath)
        except OSError:
            names = []
        hashed = any(len(n) > 9 and n[8] == "." and n[9:].isdigit()
                     and all(c in "0123456789abcdef" for c in n[:8]) for n in names)
        if hashed:
            return cafile, capath
    return cafile, None


def _make_ssl_context(profile=None, verify=True):
    """System roots, plus ca_bundle or AWS_CA_BUNDLE; verification off only when
    ``verify`` is False.  What to do about a certificate it does not trust,
    naming where the bundle came from, is kept in _run.trust_hints."""
    import ssl
    cafile, capath = _system_roots(ssl)
    context = ssl.create_default_context(capath=capath) if capath else \
        ssl.create_default_context()
    bundle = (profile and profile.ca_bundle) or os.environ.get("AWS_CA_BUNDLE")
    where = profile.where("ca_bundle") if profile and profile.ca_bundle else "AWS_CA_BUNDLE"
    if bundle and os.path.realpath(os.path.expanduser(bundle)) == cafile:
        bundle = None           # the system's own bundle: trusted already
    _run.trust_hints[context] = (
        "the CA bundle %s (%s) does not hold the CA that signed it" % (bundle, where)
        if bundle else "if your site uses a private CA, %s, or set AWS_CA_BUNDLE" % _run_hint(
            profile.name if profile else "default", "configure --ca-bundle PATH"))
    if bundle:
        try:
            context.load_verify_locations(cafile=os.path.expanduser(bundle))
        except (OSError, ssl.SSLError) as e:
            raise ConfigError("cannot load the CA bundle %s (%s): %s" % (bundle, where, e))
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _idp_ssl_context(profile):
    """TLS for the profile's IdP: checked unless verify_ssl_certificate = false
    (or login --no-verify-ssl), which is said loudly once in a run."""
    if not profile.verify_ssl_certificate:
        _warn("TLS CERTIFICATE CHECKING IS OFF for the IdP of profile %s (%s): anyone on the "
              "network path can read your password and your SAML assertion"
              % (profile.name, profile.where("verify_ssl_certificate")), once=True)
    return _make_ssl_context(profile, profile.verify_ssl_certificate)


def _aws_ssl_context(profile, idp_context=None):
    """TLS for AWS's endpoints (STS, the console's sign-in): the keys and the
    assertion go there, so verify_ssl_certificate, the IdP's setting as in
    awscli-login, never reaches them; only verify_aws_certificate = false does,
    said on every use (each renewal of a credential server too).
    ``idp_context``, the IdP's, serves when it checks as this one would (the
    same roots, loaded once)."""
    import ssl
    if not profile.verify_aws_certificate:
        _warn("TLS CERTIFICATE CHECKING IS OFF for AWS's endpoints (%s): anyone on the network "
              "path can take your AWS credentials" % profile.where("verify_aws_certificate"))
    elif idp_context is not None and idp_context.verify_mode == ssl.CERT_REQUIRED:
        return idp_context
    context = _make_ssl_context(profile, profile.verify_aws_certificate)
    if not profile.verify_ssl_certificate:
        _run.trust_hints[context] += (" (%s turns off the IdP's check alone; for a lab's own "
                                      "STS, set verify_aws_certificate = false)"
                                      % profile.where("verify_ssl_certificate"))
    return context


def _network_error_kind(reason):
    """The NetworkError kind of a failed connection's ``reason`` (an exception)."""
    import socket
    import ssl
    if isinstance(reason, socket.timeout):
        return "timeout"
    if isinstance(reason, ConnectionRefusedError):
        return "refused"
    if isinstance(reason, socket.gaierror):
        return "dns"
    if isinstance(reason, ssl.CertificateError) or getattr(reason, "verify_message", None) or (
            isinstance(reason, ssl.SSLError)
            and getattr(reason, "reason", None) == "CERTIFICATE_VERIFY_FAILED"):
        return "untrusted"
    if isinstance(reason, ssl.SSLError):
        return "tls"
    return "other"


# OpenSSL's words for a TLS hello answered in plain text: the port speaks HTTP.
_PLAIN_HTTP_REASONS = ("WRONG_VERSION_NUMBER", "PACKET_LENGTH_TOO_LONG", "RECORD_LAYER_FAILURE",
                       "HTTP_REQUEST")


def _lookup_detail(reason):
    import socket
    return " (no answer from DNS in time)" if reason.errno == socket.EAI_AGAIN else ""


def _describe_network_error(reason, url, ssl_context=None, proxy=None):
    """One actionable sentence for a failed connection (to ``proxy`` when given)."""
    if proxy is not None:
        return _describe_proxy_error(reason, proxy)
    host = _host_port(url)
    kind = _network_error_kind(reason)
    if kind == "timeout":
        return "no answer from %s in time (timed out)" % host
    if kind == "refused":
        return "connection refused by %s: is the URL right and the server up?" % host
    if kind == "dns":
        return "cannot resolve the host name of %s%s: check the URL and DNS" % (
            host, _lookup_detail(reason))
    if kind == "untrusted":
        detail = getattr(reason, "verify_message", None) or str(reason)
        hint = _run.trust_hints.get(ssl_context) or "if your site uses a private CA, set " \
            "ca_bundle in the profile or AWS_CA_BUNDLE"
        return "TLS certificate of %s not trusted (%s): %s" % (host, detail, hint)
    if kind == "tls" and getattr(reason, "reason", None) in _PLAIN_HTTP_REASONS:
        return ("%s answers in plain HTTP, not TLS: check the port in the URL (http:// is "
                "allowed only to this machine)" % host)
    if kind == "tls":
        return "TLS failure talking to %s: %s" % (host, reason)
    return "cannot reach %s: %s" % (host, getattr(reason, "strerror", None) or reason)


def _describe_proxy_error(reason, proxy):
    """One actionable sentence for a failure to reach ``proxy`` or to open a
    tunnel through it: it names the proxy and its variable, never the server."""
    who, variable = _proxy_label(proxy), proxy.variable
    kind = _network_error_kind(reason)
    if kind == "timeout":
        return "no answer from %s in time (timed out)" % who
    if kind == "refused":
        return "connection refused by %s: is the proxy up and %s right?" % (who, variable)
    if kind == "dns":
        return "cannot resolve the host name of %s%s: check %s and DNS" % (
            who, _lookup_detail(reason), variable)
    if kind == "untrusted":
        detail = getattr(reason, "verify_message", None) or str(reason)
        bundle = os.environ.get("AWS_CA_BUNDLE")
        return "TLS certificate of %s not trusted (%s): %s" % (who, detail, (
            "the CA bundle %s (AWS_CA_BUNDLE) does not hold the CA that signed it" % bundle
            if bundle else "if the proxy's CA is a private one, set AWS_CA_BUNDLE"))
    if kind == "tls" and getattr(reason, "reason", None) in _PLAIN_HTTP_REASONS:
        return ("%s answers in plain HTTP, not TLS; nothing was sent to it: if it is a plain "
                "proxy, write http:// in %s (a password there then crosses in clear)"
                % (who, variable))
    if kind == "tls":
        return "TLS failure talking to %s: %s" % (who, reason)
    return "cannot reach %s: %s" % (who, getattr(reason, "strerror", None) or reason)


def _network_error(reason, url, ssl_context=None, proxy=None):
    """The NetworkError of a failed connection: kind "proxy" whatever went
    wrong while ``proxy`` (when given) was being reached."""
    return NetworkError(_describe_network_error(reason, url, ssl_context, proxy),
                        "proxy" if proxy is not None else _network_error_kind(reason))


class _Connection(object):
    """The socket of one exchange, shared with the watchdog that hangs it up
    when the deadline passes.  Hanging up and closing exclude each other: a
    descriptor closed by its owner may at once be another connection's (in
    `exec --server`, a client's), and a late hang-up must never shut that."""

    def __init__(self):
        import threading
        self.sock, self.hung_up, self._closed = None, False, False
        self._lock = threading.Lock()

    def hang_up(self):
        """The deadline passed: shut the socket down so that a blocked read
        returns.  A duplicate of the descriptor is shut down and closed (an
        SSLSocket's own shutdown would unwrap it under its reader); the socket
        stays for its owner to close."""
        import socket
        with self._lock:
            self.hung_up = True
            if self._closed or self.sock is None:
                return      # not connected yet (the connect timeout bounds that)
            try:
                duplicate = socket.fromfd(self.sock.fileno(), socket.AF_INET,
                                          socket.SOCK_STREAM)
            except (OSError, ValueError):
                return      # being wrapped in TLS: the detached socket has no descriptor
            try:
                duplicate.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            duplicate.close()

    def close(self, *files):
        """Close ``files`` (made from the socket), then the socket."""
        with self._lock:
            self._closed = True
            for thing in files + (self.sock,):
                try:
                    if thing is not None:
                        thing.close()
                except OSError:
                    pass


def _resolve(host, port, seconds):
    """getaddrinfo's TCP addresses of ``host`` within ``seconds``.  It has no
    timeout of its own, so a name is looked up in a daemon thread, left behind
    if the resolver is late (it ends with the resolver's own timeouts); an
    address literal needs no lookup and no thread."""
    import socket
    import threading
    try:
        return socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST)
    except socket.gaierror:
        pass        # a name, not an address
    answer = []

    def look_up():
        try:
            answer.append(socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM))
        except Exception as e:      # raised again in the caller's thread
            answer.append(e)
    thread = threading.Thread(target=look_up, name="getaddrinfo %s" % host)
    thread.daemon = True
    thread.start()
    thread.join(max(0.0, seconds))
    if not answer:
        raise socket.gaierror(socket.EAI_AGAIN, "no answer from DNS in time")
    if isinstance(answer[0], Exception):
        raise answer[0]
    return answer[0]


def _connect(host, port, until):
    """A TCP socket connected to ``host``: its addresses in the resolver's
    order, the next one at once after a refusal, the name lookup and all
    addresses by ``until`` (a time.monotonic() value).  A silent address gets
    its share of the time left, but at least _MIN_ADDRESS_TIME (a slow link's
    handshake), so that one which drops packets leaves time for the next.
    (socket.create_connection gives every address the whole timeout.)"""
    import socket
    addresses = _resolve(host, port, until - time.monotonic())
    error = socket.timeout("timed out")
    for index, (family, kind, protocol, _, address) in enumerate(addresses):
        left = until - time.monotonic()
        if left <= 0:
            break
        sock = socket.socket(family, kind, protocol)
        sock.settimeout(max(left / (len(addresses) - index), min(left, _MIN_ADDRESS_TIME)))
        try:
            sock.connect(address)
            return sock
        except OSError as e:
            sock.close()
            error = e
    raise error


# ---- Proxies: HTTPS_PROXY and NO_PROXY, read as urllib.request reads them

_Proxy = _named_tuple("_Proxy", ("host", "port", "tls", "authorization", "variable"), """The
HTTPS proxy of a request: where it listens, whether its URL says https (TLS to
the proxy, the CONNECT inside), the Proxy-Authorization its URL's user and
password make (or None), and the variable it came from, for messages.""")


def _netloc(host, port):
    return ("[%s]:%d" if ":" in host else "%s:%d") % (host, port)      # an IPv6 literal


def _proxy_label(proxy):
    return "the proxy %s (%s)" % (_netloc(proxy.host, proxy.port), proxy.variable)


def _proxy_setting(name):
    """(variable, value) of NAME_proxy as urllib.request.getproxies_environment
    picks it, or None: a variable of any spelling with a value counts, but one
    ending in lower-case "_proxy" decides, even when empty (then no proxy)."""
    wanted = name + "_proxy"
    chosen = None
    for variable, value in os.environ.items():
        if variable.lower() == wanted and value:
            chosen = (variable, value)
    for variable, value in os.environ.items():
        if variable.lower() == wanted and variable.endswith("_proxy"):
            chosen = (variable, value) if value else None
    return chosen


def _bypasses_proxy(host, no_proxy):
    """Whether NO_PROXY's value names ``host`` (the URL's host[:port] as written),
    as urllib.request.proxy_bypass_environment decides (Python 3.8-3.13): `*`
    alone, or an entry equal to the host with or without its port, or to a
    part of it after a dot (a leading dot is ignored).  IPv6 hosts are named
    `[::1]` or `[::1]:443`; address ranges are not understood."""
    if no_proxy == "*":
        return True
    host = host.lower()
    before, colon, port = host.rpartition(":")
    bare = before if colon and port and all(c in "0123456789" for c in port) else host
    for name in no_proxy.split(","):
        if not name.strip():
            continue
        name = name.strip().lstrip(".").lower()
        if name in (bare, host) or bare.endswith("." + name) or host.endswith("." + name):
            return True
    return False


def _proxy_for(url):
    """The _Proxy for an https ``url`` (HTTPS_PROXY, unless NO_PROXY names the
    host), else None; ConfigError for a proxy URL that is not http or https.
    The default ports are curl's: 1080, and 443 for https."""
    from urllib.parse import unquote, urlsplit
    setting = url.lower().startswith("https:") and _proxy_setting("https")
    if not setting:
        return None
    no_proxy = _proxy_setting("no")
    if no_proxy and _bypasses_proxy(unquote(_host_port(url)), no_proxy[1]):
        return None
    variable, value = setting
    try:
        parts = urlsplit(value if "://" in value else "http://" + value)
        port = parts.port
    except ValueError:
        parts = port = None
    if parts is None or parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        # The value is not repeated: it may hold a password.
        raise ConfigError("%s is not a proxy URL this tool can use: write http://HOST:PORT, "
                          "or https://HOST:PORT for TLS to the proxy" % variable)
    authorization = None
    if parts.username is not None:
        authorization = _basic_authorization(unquote(parts.username),
                                             unquote(parts.password or ""))
    tls = parts.scheme.lower() == "https"
    return _Proxy(parts.hostname, port or (443 if tls else 1080), tls, authorization, variable)


def _proxy_context():
    """TLS to an https:// proxy is always checked, against the system's CAs and
    AWS_CA_BUNDLE (as botocore checks a proxy): verify_ssl_certificate and
    ca_bundle are the IdP's settings, and the proxy sees the proxy password."""
    return _make_ssl_context()


def _open_tunnel(sock, host, port, authorization):
    """CONNECT through an HTTPS proxy; the proxy's answer status (2xx: the
    tunnel is open)."""
    target = _netloc(host, port)
    request = "CONNECT %s HTTP/1.1\r\nHost: %s\r\n" % (target, target)
    if authorization:
        request += "Proxy-Authorization: %s\r\n" % authorization
    sock.sendall((request + "\r\n").encode("ascii"))
    answer = sock.makefile("rb")
    try:
        status, _ = _read_head(answer, _MAX_PROXY_HEAD_BYTES)
    finally:
        answer.close()
    return status


def _tunnel_refused(status, proxy, target):
    """The NetworkError for a proxy's answer other than 2xx to CONNECT."""
    who = _proxy_label(proxy)
    if status == 407 and proxy.authorization:
        text = "%s refused the credentials in %s (HTTP 407)" % (who, proxy.variable)
    elif status == 407:
        text = "%s asks for credentials (HTTP 407): put them in %s as %s://USER:PASSWORD@%s" % (
            who, proxy.variable, "https" if proxy.tls else "http",
            _netloc(proxy.host, proxy.port))
    else:
        text = "%s refused the tunnel (HTTP %d) to %s" % (who, status, target)
    return NetworkError(text, "proxy", transient=status >= 500)


def _reach(connection, host, port, proxy, connect_timeout, stop_at):
    """Connect ``connection.sock`` to host:port, or to ``proxy`` and through it
    (TLS to the proxy when its URL says https, then CONNECT).  The name
    lookup and the connect end by the connect timeout; each read of the
    tunnel's exchange has that timeout too, and the request's deadline
    bounds all."""
    until = min(stop_at, time.monotonic() + connect_timeout)
    connection.sock = _connect(proxy.host if proxy else host, proxy.port if proxy else port,
                               until)
    connection.sock.settimeout(max(0.01, min(connect_timeout, stop_at - time.monotonic())))
    if proxy is None:
        return
    if proxy.tls:
        connection.sock = _proxy_context().wrap_socket(connection.sock,
                                                       server_hostname=proxy.host)
    status = _open_tunnel(connection.sock, host, port, proxy.authorization)
    if not 200 <= status < 300:
        raise _tunnel_refused(status, proxy, _netloc(host, port))


class _TunnelledTls(object):
    """TLS to the server inside the TLS connection to an https:// proxy.  The
    ssl module wraps only a socket's own descriptor, which carries the proxy's
    TLS already; so this TLS runs on memory buffers (ssl.MemoryBIO) pumped
    through the proxy's connection.  It has what _http_request uses of a socket."""

    def __init__(self, outer, context, server_hostname):
        import ssl
        self.outer = outer
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing,
                                    server_hostname=server_hostname)
        self._pump(self.tls.do_handshake)

    def _pump(self, operation, *args):
        """Run a TLS operation to its end: send what it wrote, feed it what it reads."""
        import ssl
        while True:
            try:
                result = operation(*args)
            except ssl.SSLWantReadError:
                self._send()
                data = self.outer.recv(65536)
                if data:
                    self.incoming.write(data)
                elif self.incoming.eof:     # told already: never spin on a closed connection
                    raise ConnectionResetError("the connection closed mid-answer")
                else:
                    self.incoming.write_eof()
                continue
            self._send()
            return result

    def _send(self):
        data = self.outgoing.read()
        if data:
            self.outer.sendall(data)

    def sendall(self, data):
        data = memoryview(data)
        while len(data):
            data = data[self._pump(self.tls.write, data):]

    def recv(self, size):
        import ssl
        try:
            return self._pump(self.tls.read, size)
        except ssl.SSLEOFError:
            return b""      # a close without close_notify, as SSLSocket lets it pass

    def makefile(self, mode="rb"):
        import io
        tunnel = self

        class Reader(io.RawIOBase):
            def readable(self):
                return True

            def readinto(self, buffer):
                data = tunnel.recv(len(buffer))
                buffer[:len(data)] = data
                return len(data)
        return io.BufferedReader(Reader())

    def settimeout(self, seconds):
        self.outer.settimeout(seconds)

    def fileno(self):
        return self.outer.fileno()

    def close(self):
        self.outer.close()


def _request_bytes(url, method, data, headers, cookie_jar):
    """The request line and header fields for ``url`` as bytes: ours (Host,
    User-Agent, length, the jar's cookies) added to ``headers``.  ConfigError
    for what HTTP cannot carry; the value itself is not repeated (a passcode)."""
    from urllib.parse import urlsplit
    parts = urlsplit(url)
    host = _host_port(url)
    headers = dict(headers or {})
    headers.setdefault("Host", host)
    headers.setdefault("User-Agent", "aws_login/%s" % __version__)
    headers.setdefault("Accept-Encoding", "identity")
    headers.setdefault("Connection", "close")
    if data is not None:
        headers["Content-Length"] = str(len(data))
    if cookie_jar is not None:
        cookie = cookie_jar.header_for(url)
        if cookie:
            headers["Cookie"] = cookie
    target = (parts.path or "/") + ("?" + parts.query if parts.query else "")
    try:
        return _request_head(method, target, headers)
    except (ValueError, UnicodeError):
        raise ConfigError("cannot send the request to %s: a header value holds "
                          "characters HTTP does not allow (check the passcode and "
                          "the header names in the profile)" % host)


# RFC 6265 (6.1) asks a jar to hold at least these; as limits, they keep a
# hostile IdP from growing the jar file and the Cookie header without end.
_MAX_COOKIE_BYTES = 4096        # one cookie: name, value and attributes
_MAX_COOKIES_PER_DOMAIN = 50
_MAX_JAR_BYTES = 64 << 10       # every cookie's _Cookie.size: bounds any Cookie header too
_LAST_COOKIE_TIME = 253402300799    # 9999-12-31 23:59:59 UTC: the LWP file's last year


class _Cookie(object):
    """One cookie the IdP set: ``domain`` is a host (``host_only``) or a domain.
    ``used`` orders cookies by their last use (set or sent), as eviction needs."""

    def __init__(self, name, value, domain, host_only, path, secure, expires):
        self.name, self.value, self.domain, self.host_only = name, value, domain, host_only
        self.path, self.secure, self.expires = path, secure, expires
        self.used = 0

    @property
    def size(self):
        """The length of ``NAME=VALUE; Domain=D; Path=P``, more than the cookie
        takes in a Cookie header."""
        return len(self.name) + len(self.value) + len(self.domain) + len(self.path) + 17

    def breaks_lines(self):
        return _breaks_lines(self.name + self.value + self.domain + self.path)

    def matches(self, host, path, https):
        if self.host_only and host != self.domain:
            return False
        if not self.host_only and host != self.domain and not host.endswith("." + self.domain):
            return False
        if self.secure and not https:
            return False
        return path == self.path or path.startswith(self.path.rstrip("/") + "/")


class _CookieJar(object):
    """The IdP session: the cookies an IdP sets, sent back to it.

    RFC 6265's rules, as far as a single IdP needs them (host-only and domain
    cookies, paths, Secure, Expires and Max-Age), and its minimums as limits.
    Kept in the file format of http.cookiejar.LWPCookieJar (earlier versions
    wrote it, and read ours)."""

    def __init__(self):
        self.cookies = {}       # (domain, path, name) -> Cookie, in order of creation
        self._uses = 0

    def _use(self, cookie):
        self._uses += 1
        cookie.used = self._uses

    def __len__(self):
        return len(self.live())

    def live(self, now=None):
        now = time.time() if now is None else now
        return [c for c in self.cookies.values() if c.expires is None or c.expires > now]

    def header_for(self, url):
        """The Cookie header for a request to ``url``, or None."""
        from urllib.parse import urlsplit
        parts = urlsplit(url)
        host, path = (parts.hostname or "").lower(), parts.path or "/"
        chosen = sorted((c for c in self.live() if c.matches(host, path, parts.scheme ==
                                                             "https")),
                        key=lambda c: -len(c.path))
        for cookie in chosen:
            self._use(cookie)
        return "; ".join("%s=%s" % (c.name, c.value) for c in chosen) or None

    def take(self, url, set_cookie_headers, now=None):
        """Store the cookies of an answer's Set-Cookie headers."""
        from urllib.parse import urlsplit
        parts = urlsplit(url)
        host, path = (parts.hostname or "").lower(), parts.path or "/"
        now = time.time() if now is None else now
        for header in set_cookie_headers:
            cookie = _parse_set_cookie(header, host, path, now)
            if cookie is None:
                continue
            key = (cookie.domain, cookie.path, cookie.name)
            if cookie.expires is not None and cookie.expires <= now:
                self.cookies.pop(key, None)         # the server ends it
            else:
                self.cookies[key] = cookie          # a replaced one keeps its place
                self._use(cookie)
        self._evict(now)

    def _evict(self, now):
        """RFC 6265 5.3: expired cookies go; then, least recently used first,
        those of a domain over _MAX_COOKIES_PER_DOMAIN; then any, until the
        jar is within _MAX_JAR_BYTES."""
        kept, per_domain, size = set(), {}, 0
        for key, c in sorted(self.cookies.items(), key=lambda item: -item[1].used):
            if c.expires is not None and c.expires <= now:
                continue
            per_domain[c.domain] = per_domain.get(c.domain, 0) + 1
            if per_domain[c.domain] > _MAX_COOKIES_PER_DOMAIN:
                continue
            size += c.size
            if size > _MAX_JAR_BYTES:
                break
            kept.add(key)
        for key in [k for k in self.cookies if k not in kept]:
            del self.cookies[key]

    def lwp_text(self):
        """The jar as LWPCookieJar writes it, session cookies included."""
        lines = ["#LWP-Cookies-2.0"]
        for c in sorted(self.live(), key=lambda c: (c.domain, c.path, c.name)):
            if c.breaks_lines():
                continue        # a line break would add a line of its own
            words = [(c.name, c.value), ("path", c.path),
                     ("domain", c.domain if c.host_only else "." + c.domain), ("path_spec", None)]
            if not c.host_only:
                words.append(("domain_dot", None))
            if c.secure:
                words.append(("secure", None))
            if c.expires is not None:
                words.append(("expires", time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(
                    min(c.expires, _LAST_COOKIE_TIME)))))
            else:
                words.append(("discard", None))
            words.append(("version", "0"))
            lines.append("Set-Cookie3: " + "; ".join(
                k if v is None else "%s=%s" % (k, _lwp_quote(v)) for k, v in words))
        return "\n".join(lines) + "\n"

    def load_lwp(self, text, now=None):
        """Add the cookies of an LWP file's text, within the jar's limits; lines
        that do not parse, or hold a control character, are skipped."""
        for line in text.split("\n"):
            if not line.startswith("Set-Cookie3:"):
                continue
            words = _lwp_words(line[len("Set-Cookie3:"):])
            if not words or words[0][1] is None:
                continue
            (name, value), attrs = words[0], dict((k.lower(), v) for k, v in words[1:])
            domain = (attrs.get("domain") or "").lower()
            if not domain or not attrs.get("path", "/").startswith("/"):
                continue
            expires = None
            if attrs.get("expires"):
                expires = _iso_epoch(attrs["expires"])
                if expires is None:
                    continue
            cookie = _Cookie(name, value, domain.lstrip("."), not domain.startswith("."),
                             attrs.get("path") or "/", "secure" in attrs, expires)
            if cookie.breaks_lines() or len(name) + len(value) + 1 > _MAX_COOKIE_BYTES:
                continue
            self.cookies[(cookie.domain, cookie.path, name)] = cookie
            self._use(cookie)
        self._evict(time.time() if now is None else now)


def _lwp_quote(value):
    if value and all(c.isalnum() or c in "!#$%&'*+-.^_`|~/:" for c in value):
        return value
    return '"%s"' % value.replace("\\", "\\\\").replace('"', '\\"')


def _lwp_words(text):
    """[(key, value or None)] of ``k1=v1; k2="v 2"; flag`` (LWP's header words)."""
    import re
    words = []
    for m in re.finditer(r'\s*([^=;\s]+)\s*(?:=\s*("(?:[^"\\]|\\.)*"|[^;]*))?\s*(?:;|$)', text):
        key, value = m.group(1), m.group(2)
        if value is not None and value.startswith('"') and len(value) > 1:
            value = re.sub(r'\\(.)', r"\1", value[1:-1])
        elif value is not None:
            value = value.strip()
        words.append((key, value))
    return words


def _iso_epoch(text):
    """Seconds since the epoch of ``YYYY-MM-DD HH:MM:SSZ`` (LWP's expires), or None."""
    import calendar
    try:
        return calendar.timegm(time.strptime(text.strip().rstrip("Z"), "%Y-%m-%d %H:%M:%S"))
    except (ValueError, OverflowError):
        return None


_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


def _http_date(text):
    """Seconds since the epoch of an HTTP date (a Date header, a cookie's Expires:
    ``Wed, 09 Jun 2027 10:18:14 GMT``, with dashes or a two-digit year as old
    servers write it, or asctime's form), or None."""
    import calendar
    import re
    text = text or ""
    m = re.search(r"(\d{1,2})[ -]([A-Za-z]{3})[A-Za-z]*[ -](\d{2,4}) (\d{1,2}):(\d\d):(\d\d)",
                  text)
    if m:
        day, month, year, clock = m.group(1), m.group(2), m.group(3), m.groups()[3:]
    else:       # asctime's: Sun Nov  6 08:49:37 1994
        m = re.search(r"([A-Za-z]{3}) +(\d{1,2}) (\d{1,2}):(\d\d):(\d\d) (\d{4})", text)
        if not m:
            return None
        day, month, year, clock = m.group(2), m.group(1), m.group(6), m.groups()[2:5]
    if month.lower() not in _MONTHS:
        return None
    year = int(year)
    year += 2000 if year < 70 else 1900 if year < 100 else 0
    try:
        return calendar.timegm((year, _MONTHS.index(month.lower()) + 1, int(day),
                                int(clock[0]), int(clock[1]), int(clock[2])))
    except (ValueError, OverflowError):
        return None


def _parse_set_cookie(header, host, request_path, now):
    """A Cookie from a Set-Cookie header the IdP at ``host`` sent, or None.
    A control character anywhere refuses it (a tab only between the parts):
    a CR in the Path would cut a line of the LWP file in two, and
    LWPCookieJar would read the second as a cookie of the IdP's making."""
    if len(header) > _MAX_COOKIE_BYTES or _breaks_lines(header.replace("\t", " ")):
        return None
    first, _, rest = header.partition(";")
    name, sep, value = first.partition("=")
    name, value = name.strip(), value.strip()
    if not sep or not name or _breaks_lines(name + value):
        return None
    attrs = {}
    for part in rest.split(";"):
        key, _, val = part.partition("=")
        key, val = key.strip(), val.strip()
        if _breaks_lines(key + val):
            return None
        attrs[key.lower()] = val
    domain = attrs.get("domain", "").strip().lstrip(".").lower()
    if domain and (host == domain or (host.endswith("." + domain) and "." in domain)):
        host_only = False
    elif domain:
        return None             # another site's cookie
    else:
        domain, host_only = host, True
    path = attrs.get("path", "")
    if not path.startswith("/"):
        path = request_path[:request_path.rfind("/")] or "/"
    expires = _max_age_expiry(attrs.get("max-age", ""), now)
    if expires is None and attrs.get("expires"):
        expires = _http_date(attrs["expires"])
    if expires is not None:
        expires = min(expires, _LAST_COOKIE_TIME)
    return _Cookie(name, value, domain, host_only, path, "secure" in attrs, expires)


def _max_age_expiry(text, now):
    """The expiry time of a Max-Age (RFC 6265 5.2.2): ASCII digits, maybe after
    one '-' (zero or less: it expires now), else None (the attribute is ignored)."""
    digits = text[1:] if text.startswith("-") else text
    if not _is_digits(digits):
        return None
    if text.startswith("-") or not digits.strip("0"):
        return now
    if len(digits.lstrip("0")) > 12:       # past _LAST_COOKIE_TIME from any now
        return _LAST_COOKIE_TIME
    return min(now + int(digits), _LAST_COOKIE_TIME)


def _http_request(url, data=None, headers=None, ssl_context=None, cookie_jar=None,
                  read_timeout=_READ_TIMEOUT, max_bytes=_MAX_ANSWER_BYTES,
                  connect_timeout=_CONNECT_TIMEOUT, deadline=None):
    """POST (or GET) once; never follows a redirect; any status comes back as an answer.

    Connect and read have separate timeouts: reaching the server should be
    quick, while a Duo push keeps the IdP's answer waiting for a person.  The
    whole exchange must also end by a deadline on the monotonic clock (connect
    plus read timeout from now, or ``deadline``, a time.monotonic() value, if
    sooner): a server sending a byte now and then would otherwise hold us, and
    the renewal lock, forever.  The connect timeout bounds the name lookup
    and every address together.  HTTPS goes through HTTPS_PROXY unless NO_PROXY
    names the host (with TLS to the proxy too when its URL says https); plain
    http (allowed only to this machine) never goes through a proxy, which
    would see the password or the assertion in clear.
    ``cookie_jar`` (a _CookieJar) sends its cookies and keeps the answer's."""
    import threading
    from urllib.parse import urlsplit
    host = _host_port(url)
    stop_at = time.monotonic() + connect_timeout + read_timeout
    if deadline is not None:
        stop_at = min(stop_at, deadline)
    left = stop_at - time.monotonic()
    if left <= 0:
        raise NetworkError("no time left to ask %s: the time limit for this renewal is "
                           "over" % host, "timeout")
    parts = urlsplit(url)
    https = parts.scheme.lower() == "https"
    proxy = _proxy_for(url)
    method = "POST" if data is not None else "GET"
    head = _request_bytes(url, method, data, headers, cookie_jar)
    _debug("%s %s" % (method, url.split("?")[0] + ("?..." if "?" in url else "")))
    port = parts.port or (443 if https else 80)
    connection = _Connection()
    started = time.monotonic()
    watchdog = threading.Timer(left, connection.hang_up)
    watchdog.daemon = True
    watchdog.start()
    failure = cause = None
    answer = None
    via = proxy         # a failure is the proxy's until its tunnel is open
    try:
        _reach(connection, parts.hostname, port, proxy, connect_timeout, stop_at)
        via = None
        if https:
            ssl_context = ssl_context or _make_ssl_context()
            if proxy and proxy.tls:
                connection.sock = _TunnelledTls(connection.sock, ssl_context, parts.hostname)
            else:
                connection.sock = ssl_context.wrap_socket(connection.sock,
                                                          server_hostname=parts.hostname)
        connection.sock.settimeout(max(0.01, min(read_timeout, stop_at - time.monotonic())))
        connection.sock.sendall(head + (data or b""))
        answer = connection.sock.makefile("rb")
        status, response_headers = _read_head(answer)
        body = _read_body(answer, response_headers, max_bytes)
    except _AnswerTooLarge as e:
        failure = IdPError("%s sent an answer over %d bytes; refusing it" % (host, max_bytes))
        cause = e
    except _BrokenAnswer as e:
        failure = NetworkError("%s gave a broken HTTP answer (%s)" % (
            _proxy_label(via) if via else host, e.reason), "proxy" if via else "broken")
        cause = e
    except (OSError, ValueError) as e:  # refused, DNS, TLS, timeouts; CertificateError (3.6)
        failure, cause = _network_error(e, url, ssl_context, via), e
    finally:
        watchdog.cancel()
        connection.close(answer)
    if connection.hung_up:
        raise NetworkError("no complete answer from %s within %ds (timed out)" % (
            _proxy_label(via) if via else host, round(stop_at - started)),
            "proxy" if via else "timeout")
    if failure is not None:
        raise failure from cause        # the cause stays in --debug's traceback
    if cookie_jar is not None:
        cookie_jar.take(url, response_headers.get_all("Set-Cookie"))
    _debug("HTTP %s from %s, %d bytes, %.2fs" % (status, host, len(body),
                                                 time.monotonic() - started))
    return _HttpAnswer(status, response_headers, body, url)


# ---------------------------------------------------------------------------
# ECP (client -> IdP)
# ---------------------------------------------------------------------------

def _xml_attribute(value):
    """``value`` as a double-quoted XML attribute (xml.sax.saxutils.quoteattr's
    output; that module imports urllib.request)."""
    for raw, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;"),
                        ("\n", "&#10;"), ("\r", "&#13;"), ("\t", "&#9;")):
        value = value.replace(raw, entity)
    return '"%s"' % value


def _build_authn_request(acs_url, request_id, issue_instant):
    """The SOAP envelope holding the AuthnRequest we send on AWS's behalf: PAOS
    binding, AWS's sign-in URL as the ACS, urn:amazon:webservices as the issuer
    (SAML ECP profile, section 4.2.4)."""
    quoteattr = _xml_attribute
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
        '</S:Envelope>' % (_SOAP_NS, _SAMLP_NS, _SAML_NS, quoteattr(request_id),
                           quoteattr(issue_instant), quoteattr(acs_url), _PAOS_BINDING)
    ).encode("utf-8")


def _duo_headers(factor, passcode=None, factor_header=None, passcode_header=None,
                 device=None):
    """Duo's factor (and code, and device) as HTTP headers, the factor and code in
    both spellings unless the profile names one."""
    headers = {}
    if passcode:
        passcode = _check_passcode(passcode)
    if factor and factor != "off":
        for name in ([factor_header] if factor_header else _DUO_FACTOR_HEADERS):
            headers[name] = factor
        if device:
            headers[_DUO_DEVICE_HEADER] = _check_duo_device(device)
    if passcode:
        for name in ([passcode_header] if passcode_header else _DUO_PASSCODE_HEADERS):
            headers[name] = passcode
    return headers


def _basic_authorization(username, password):
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


def _parse_role_value(value):
    """``role,provider`` or ``provider,role`` -> Role, or None when malformed."""
    import re
    parts = [p.strip() for p in value.split(",")]
    if len(parts) != 2:
        return None
    provider_re = r"arn:(aws|aws-cn|aws-us-gov):iam::(\d{12}):saml-provider/[\w+=,.@-]{1,128}"
    for role, provider in (parts, parts[::-1]):
        r, p = _role_arn_match(role), re.fullmatch(provider_re, provider, flags=re.ASCII)
        if r and p and r.group(1) == p.group(1) and r.group(2) == p.group(2):
            return Role(role, provider)
    return None


class _SamlAnswer(object):
    """What a successful ECP exchange yields."""

    def __init__(self, response_xml, roles, skipped, session_duration, session_name,
                 not_on_or_after=None):
        self.response_xml = response_xml        # bytes of samlp:Response, for STS
        self.roles = roles
        self.skipped = skipped                  # malformed Role values
        self.session_duration = session_duration
        self.session_name = session_name
        self.not_on_or_after = not_on_or_after  # epoch seconds STS takes it until, or None


# XML that servers send (the IdP's answers and SOAP faults, STS's answers) is
# read in two passes: expat first, which refuses what ElementTree would
# expand and what would cost memory out of proportion to the bytes, then
# ElementTree on the same bytes.

_RESPONSE_PATH = ((_SOAP_NS, "Envelope"), (_SOAP_NS, "Body"), (_SAMLP_NS, "Response"))


def _scan_xml(body, error, who, path=None):
    """Expat pass over a server's answer; raises ``error`` (the caller's class).

    Refuses a DTD in any encoding (so no entity is ever declared, let alone
    expanded), nesting deeper than _MAX_XML_DEPTH, more than _MAX_XML_NAMESPACES
    declarations in scope, and more than _MAX_XML_ELEMENTS elements.  Prefixes
    are bound in one dict with an undo list per open element, so memory
    follows the answer's size, not prefixes times depth.  With ``path`` (a
    tuple of (namespace, local name) from the root), returns where the first
    element at that path lies: a dict with its byte offsets "start" and "end"
    (of its end tag), its qualified "name", the declarations it "inherited",
    and the document's declared "encoding"; else None."""
    import xml.parsers.expat

    def refuse_dtd(*args):
        raise error("%s holds a DTD; refusing it (a SAML or STS answer never has one)" % who)

    parser = xml.parsers.expat.ParserCreate()
    parser.StartDoctypeDeclHandler = refuse_dtd
    parser.EntityDeclHandler = refuse_dtd
    bindings = {}       # prefix ("" for the default) -> namespace URI, as now in effect
    undo = []           # per open element: [(prefix, URI it hid, or None)]
    names = []          # per open element: (namespace URI, local name)
    count = {"elements": 0, "declarations": 0}
    found = {}

    def declaration(version, encoding, standalone):
        found["encoding"] = encoding

    def start(name, attrs):
        count["elements"] += 1
        if len(names) >= _MAX_XML_DEPTH:
            raise error("%s nests elements more than %d deep; refusing it"
                        % (who, _MAX_XML_DEPTH))
        if count["elements"] > _MAX_XML_ELEMENTS:
            raise error("%s holds more than %d elements; refusing it"
                        % (who, _MAX_XML_ELEMENTS))
        own = [(key[6:], value) for key, value in attrs.items()
               if key == "xmlns" or key.startswith("xmlns:")]
        count["declarations"] += len(own)
        if count["declarations"] > _MAX_XML_NAMESPACES:
            raise error("%s declares more than %d XML namespaces at once; refusing it"
                        % (who, _MAX_XML_NAMESPACES))
        undo.append([(prefix, bindings.get(prefix)) for prefix, _ in own])
        bindings.update(own)
        prefix, _, local = name.rpartition(":")
        names.append((bindings.get(prefix), local))
        if path and len(names) == len(path) and "start" not in found and tuple(names) == path:
            mine = set(prefix for prefix, _ in own)
            found["start"] = parser.CurrentByteIndex
            found["name"] = name
            found["inherited"] = dict((p, u) for p, u in bindings.items() if p not in mine)
            found["depth"] = len(names)

    def end(name):
        if found.get("depth") == len(names) and "end" not in found:
            found["end"] = parser.CurrentByteIndex
        names.pop()
        hidden = undo.pop()
        count["declarations"] -= len(hidden)
        for prefix, uri in hidden:
            if uri is None:
                del bindings[prefix]
            else:
                bindings[prefix] = uri

    parser.XmlDeclHandler = declaration
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(body, True)
    except xml.parsers.expat.ExpatError as e:
        raise error("%s is not well-formed XML (%s)" % (who, e))
    except (LookupError, ValueError) as e:     # an encoding expat cannot use
        raise error("%s declares an encoding that cannot be read (%s)" % (who, e))
    return found if "end" in found else None


def _read_server_xml(body, error, who, path=None):
    """(ElementTree root, _scan_xml's answer for ``path``) of XML a server sent.

    Every XML answer from a server is read here, so the expat pass always
    runs before ElementTree sees the bytes."""
    import xml.etree.ElementTree as ET
    span = _scan_xml(body, error, who, path)
    try:
        root = ET.fromstring(body)
    except (ET.ParseError, UnicodeError, LookupError, ValueError) as e:   # 3.6: UnicodeError
        raise error("%s is not well-formed XML (%s)" % (who, e))
    return root, span


def _response_bytes(body, span):
    """The samlp:Response's original bytes, from _scan_xml's span of it.

    STS checks the IdP's XML signature on what it receives; re-serialising
    with ElementTree renames prefixes and breaks it.  So we cut
    the element's original bytes and add only the namespace declarations it
    inherits from the envelope (exclusive C14N renders those the same way)."""
    start_at, end_at = span["start"], span["end"]
    # An element with content ends where its end tag starts; expat puts the end
    # of an empty element (<p:Response/>) after it, which may be another's end tag.
    try:
        end_tag = b"</" + span["name"].encode("ascii")
    except UnicodeError:            # a prefix in another script: the bytes vary by encoding
        end_tag = b"</"
    if not body.startswith(end_tag, end_at):
        raise IdPError("the IdP's SAML Response is empty")
    end_at = body.index(b">", end_at) + 1
    quoteattr = _xml_attribute
    declarations = "".join(
        " xmlns%s=%s" % (":" + p if p else "", quoteattr(u))
        for p, u in sorted(span["inherited"].items()))
    head = len("<" + span["name"])
    element = body[start_at:end_at]
    element = element[:head] + declarations.encode("ascii", "xmlcharrefreplace") + element[head:]
    encoding = span.get("encoding")
    if encoding and encoding.lower().replace("_", "-") not in ("utf-8", "utf8"):
        # Cut from the envelope, the element would lose its declared encoding.
        element = ('<?xml version="1.0" encoding="%s"?>' % encoding).encode("ascii") + element
    return element


def _looks_like_html(answer):
    start = answer.body[:512].lstrip().lower()
    return (answer.content_type in ("text/html", "application/xhtml+xml")
            or start.startswith((b"<!doctype html", b"<html")))


def _parse_ecp_answer(answer, expected_acs):
    """Classify the IdP's answer; return a _SamlAnswer or raise.

    Wrong credentials come back as 401 (Shibboleth), a SAML Responder status
    with 200 (SimpleSAMLphp), a SOAP Fault, or an HTML login page; all are
    AuthenticationError.  Anything else unusable is IdPError."""
    _classify_http(answer)
    try:
        root, span = _read_server_xml(answer.body, IdPError, "the IdP's answer", _RESPONSE_PATH)
        response_xml = _response_bytes(answer.body, span) if span else None
    except IdPError:
        if answer.status >= 500:
            raise IdPError("the IdP failed (HTTP %d) and sent no SAML" % answer.status,
                           transient=True)
        raise
    assertion = _checked_assertion(root, response_xml is not None, answer.status,
                                   expected_acs)
    saml = _read_attributes(assertion, response_xml)
    _debug("IdP %s: %d role(s), %d skipped, session name %r, session duration %s" % (
        _host_port(answer.url), len(saml.roles), len(saml.skipped), saml.session_name,
        saml.session_duration))
    return saml


def _classify_http(answer):
    """Raise for an answer that is no SAML by its HTTP alone: a redirect, a 401,
    an HTML page, nothing at all."""
    if 300 <= answer.status < 400:
        target = answer.headers.get("Location") or "?"
        raise IdPError("the IdP redirected to %s instead of answering; the redirect was not "
                       "followed (check ecp_endpoint_url)" % (_host_port(target) or target))
    if answer.status == 401:
        refused = AuthenticationError("the IdP refused the username or password (HTTP 401)",
                                      kind="refused")
        refused.http_status = 401       # authenticate() names the Duo factor it sent
        raise refused
    if _looks_like_html(answer):
        if answer.status >= 500:
            raise IdPError("the IdP failed (HTTP %d)" % answer.status, transient=True)
        if answer.status >= 400:
            raise IdPError("the IdP answered HTTP %d with an HTML page: check "
                           "ecp_endpoint_url" % answer.status)
        raise AuthenticationError(
            "the IdP answered with an HTML page instead of SAML: the login was refused, "
            "or ecp_endpoint_url is not the IdP's ECP endpoint", kind="refused")
    if not answer.body.strip():
        raise IdPError("the IdP sent an empty answer (HTTP %d)" % answer.status,
                       transient=answer.status >= 500)


def _checked_assertion(root, has_response_bytes, status, expected_acs):
    """The saml:Assertion of a SOAP envelope whose ECP header names
    ``expected_acs`` and whose Response succeeded; else the refusal or fault."""
    soap = "{%s}" % _SOAP_NS
    if root.tag != soap + "Envelope":
        raise IdPError("the IdP's answer is not a SOAP envelope (HTTP %d)" % status)
    fault = root.find(soap + "Body/" + soap + "Fault")
    if fault is not None:
        reason = (fault.findtext("faultstring") or fault.findtext("faultcode") or "").strip()
        raise AuthenticationError("the IdP refused the login: %s" % (reason or "SOAP Fault"),
                                  kind="refused")
    response = root.find("%sBody/{%s}Response" % (soap, _SAMLP_NS))
    if response is None or not has_response_bytes:
        raise IdPError("the IdP's answer (HTTP %d) holds no SAML Response" % status)
    ecp = root.find("%sHeader/{%s}Response" % (soap, _ECP_NS))
    acs = ecp.get("AssertionConsumerServiceURL") if ecp is not None else None
    if ecp is not None and acs != expected_acs:
        raise IdPError("the IdP would deliver the assertion to %s, not %s: refusing it "
                       "(ECP guards against this)" % (acs, expected_acs))
    code = response.find("{%s}Status/{%s}StatusCode" % (_SAMLP_NS, _SAMLP_NS))
    value = code.get("Value", "") if code is not None else ""
    if value != _STATUS_SUCCESS:
        message = (response.findtext("{%s}Status/{%s}StatusMessage" % (_SAMLP_NS, _SAMLP_NS))
                   or "").strip()
        codes = ([c.get("Value", "").rpartition(":")[2] for c in code.iter()]
                 if code is not None else [])
        detail = "/".join(c for c in codes if c) or "no status"
        text = "the IdP refused the login (%s%s)" % (detail, ": " + message if message else "")
        if codes and codes[0] in ("Requester", "VersionMismatch"):
            raise IdPError(text)
        raise AuthenticationError(text, kind="refused")
    if ecp is None:
        raise IdPError("the IdP's answer has no ecp:Response header; refusing it")
    if response.find("{%s}EncryptedAssertion" % _SAML_NS) is not None:
        raise IdPError("the IdP encrypted the assertion, which this tool cannot read: ask "
                       "the IdP admin not to encrypt assertions for urn:amazon:webservices")
    assertion = response.find("{%s}Assertion" % _SAML_NS)
    if assertion is None:
        raise IdPError("the IdP reported success but sent no assertion")
    return assertion


def _read_attributes(assertion, response_xml):
    """The _SamlAnswer of an assertion: roles (malformed ones skipped), session
    duration and name, from its own AttributeStatement only (not Advice or
    ds:Object, which STS does not read as the assertion's)."""
    attributes = {}
    for attribute in assertion.findall("{%s}AttributeStatement/{%s}Attribute"
                                       % (_SAML_NS, _SAML_NS)):
        attributes.setdefault(attribute.get("Name"), []).extend(
            (v.text or "").strip() for v in attribute.findall("{%s}AttributeValue" % _SAML_NS))
    roles, skipped = [], []
    for value in attributes.get(_ROLE_ATTRIBUTE, []):
        role = _parse_role_value(value)
        if role is None:
            skipped.append(value)
        elif role not in roles:
            roles.append(role)
    duration = None
    for value in attributes.get(_SESSION_DURATION_ATTRIBUTE, [])[:1]:
        duration = int(value) if value and all(c in "0123456789" for c in value) else None
    names = attributes.get(_SESSION_NAME_ATTRIBUTE) or [None]
    return _SamlAnswer(response_xml, roles, skipped, duration, names[0],
                       _assertion_deadline(assertion))


def _assertion_deadline(assertion):
    """The earliest NotOnOrAfter of the assertion's Conditions and bearer
    SubjectConfirmationData (epoch seconds): STS refuses it from then on.  None
    when it names none that reads as a time."""
    found = [assertion.find("{%s}Conditions" % _SAML_NS)] + assertion.findall(
        "{%s}Subject/{%s}SubjectConfirmation/{%s}SubjectConfirmationData"
        % (_SAML_NS, _SAML_NS, _SAML_NS))
    times = []
    for element in found:
        try:
            times.append(_parse_timestamp(element.get("NotOnOrAfter")).timestamp())
        except (AttributeError, ValueError):
            pass
    return min(times) if times else None


# ---------------------------------------------------------------------------
# Roles: the menu, names for roles, the role chosen last
# ---------------------------------------------------------------------------

def _read_aliases():
    """Account names from ~/.aws-login/alias (awscli-login's: [accounts] ID = name)."""
    path = os.path.join(_login_root(), "alias")
    text = _read_text(path)
    if not text:
        return {}
    try:
        parser = _parse_ini(text, path, default_section="\x00")
    except CredentialsFileError as e:
        _warn("ignoring %s (%s)" % (path, e))
        return {}
    return dict(parser.items("accounts")) if parser.has_section("accounts") else {}


def _role_menu(roles, aliases=None, chain_role_arn=None, last=None):
    """awscli-login's menu, grouped by account: (lines, roles in menu order).  The
    role whose ARN is ``last`` (chosen the time before) is marked."""
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
    if chain_role_arn:
        lines.append("    (then, through it, %s)" % chain_role_arn)
    ordered = []
    aliases = aliases or {}
    for (partition, account), members in groups:
        suffix = "" if partition == "aws" else " (%s)" % partition
        name = aliases.get(account)
        shown = "%s (%s)" % (name, account) if name else account
        lines.append("    Account: %s%s" % (shown, suffix))
        for role in members:
            mark = " (last chosen)" if last and role.arn.lower() == last.lower() else ""
            lines.append("        [ %d ]: %s%s" % (len(ordered), role.name, mark))
            ordered.append(role)
    return lines, ordered


def _names_role(role, words, aliases):
    """True when ``words`` (lower case) name ``role``: its ARN; its name with or
    without the path; or ACCOUNT/NAME or ALIAS/NAME, the name again with or
    without the path."""
    names = (role.name.lower(), role.name.rsplit("/", 1)[-1].lower())
    if words == role.arn.lower() or words in names:
        return True
    owner, _, rest = words.partition("/")
    alias = (aliases.get(role.account) or "").strip().lower()
    return rest in names and (owner == role.account or bool(alias) and owner == alias)


def _match_role(roles, wanted, aliases=None):
    """The one role of ``roles`` that ``wanted`` names (see _names_role), in any
    case.  RoleError when none does (listing the roles offered) or several do
    (listing them)."""
    words = wanted.strip().lower()
    found = [role for role in roles if _names_role(role, words, aliases or {})]
    if len(found) == 1:
        return found[0]
    if found:
        raise RoleError("role %s is ambiguous: it names %s; give ACCOUNT/NAME or the ARN"
                        % (wanted, ", ".join(r.arn for r in found)))
    raise RoleError("the IdP does not offer role %s; it offers: %s"
                    % (wanted, ", ".join(r.arn for r in roles)))


def _check_role_name(value):
    """A role as `login --role` takes it: an ARN (checked), or a name that
    _match_role reads.  A name goes into error messages: one line of printable text."""
    value = value.strip()
    if value.lower().startswith("arn:"):
        _check_role_arn(value.lower())
        return value
    if not value or _breaks_lines(value) or len(value) > 1024:
        raise UsageError("--role: %r is not a role name, ACCOUNT/NAME, ALIAS/NAME or ARN"
                         % value[:100])
    return value


def _choose_role(roles, wanted=None, terminal=None, chain_role_arn=None, last=None):
    """The role to assume: the one asked for (_match_role), the only one, or the
    user's pick, where Enter picks the role whose ARN is ``last``."""
    if not roles:
        raise RoleError("the IdP's answer lists no AWS roles for this user: ask the IdP "
                        "admin to release the https://aws.amazon.com/SAML/Attributes/Role "
                        "attribute")
    if wanted:
        exact = [role for role in roles if role.arn == wanted]
        return exact[0] if exact else _match_role(roles, wanted, _read_aliases())
    if len(roles) == 1:
        return roles[0]
    lines, ordered = _role_menu(roles, _read_aliases(), chain_role_arn, last)
    default = [i for i, role in enumerate(ordered) if last and role.arn.lower() == last.lower()]
    return ordered[(terminal or Terminal()).choose(lines, len(ordered),
                                                   default[0] if default else None)]


def _last_role_path(name):
    return os.path.join(_login_root(), "role", _quote_name(name))


def _last_role(name):
    """The ARN of the role last chosen for profile ``name`` at the menu or with
    `login --role`, or None."""
    try:
        with open(_last_role_path(name)) as f:
            if os.fstat(f.fileno()).st_uid != os.getuid():
                return None
            arn = f.read(2048).strip()
    except (OSError, ValueError):
        return None
    return arn if _role_arn_match(arn) else None


def _remember_role(name, arn):
    """Keep ``arn`` as profile ``name``'s menu default; failing that is only a warning."""
    try:
        _private_dir(_login_root())
        _private_dir(os.path.dirname(_last_role_path(name)))
        _update_file(_last_role_path(name), lambda old: arn + "\n")
    except (AwsLoginError, OSError) as e:
        _warn("cannot remember the role chosen (%s); the menu will have no default" % e)


# ---------------------------------------------------------------------------
# STS
# ---------------------------------------------------------------------------

class Credentials(object):
    """Temporary AWS credentials; ``expires_at`` is an aware UTC datetime."""
    sts_date = None     # STS's clock when it answered (epoch seconds, its Date header)

    def __init__(self, access_key_id, secret_access_key, session_token, expires_at,
                 assumed_role_arn=None):
        self.access_key_id = access_key_id
        self.secret_access_key = secret_access_key
        self.session_token = session_token
        self.expires_at = expires_at
        self.assumed_role_arn = assumed_role_arn

    def __repr__(self):     # keep the secret and the token out of tracebacks
        return "Credentials(%r, expires_at=%s)" % (self.access_key_id, self.expires_at)


def _parse_timestamp(text):
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
        try:
            when -= sign * datetime.timedelta(hours=int(zone[:2]), minutes=int(zone[2:]))
        except OverflowError:
            raise ValueError("time out of range: %r" % text)
    return when


def _format_timestamp(when):
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _utc(epoch):
    import datetime
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc)


def _sts_endpoint(partition="aws", region=None, environ=None):
    """STS URL: AWS_ENDPOINT_URL_STS / AWS_ENDPOINT_URL, else by partition and region."""
    environ = os.environ if environ is None else environ
    for variable in ("AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL"):
        if environ.get(variable):
            return _check_url(environ[variable], "STS endpoint URL (%s)" % variable)
    _, suffix, default_region = _PARTITIONS[partition]
    prefix = _REGION_PREFIX.get(partition)
    if region and prefix and not region.startswith(prefix):
        region = None           # a region of another partition: use this one's
    if region and not prefix and region.startswith(("cn-", "us-gov-")):
        region = None
    region = region or default_region
    if not region:
        return "https://sts.amazonaws.com/"
    return "https://sts.%s.%s/" % (region, suffix)


def _sts_post(endpoint, body, headers, ssl_context=None, deadline=None):
    """POST a query to STS; a failure to reach it names STS, the URL and where
    the URL came from (the variable that set it)."""
    try:
        return _http_request(endpoint, body, headers, ssl_context=ssl_context,
                             read_timeout=60, deadline=deadline)
    except NetworkError as e:
        origin = [v for v in ("AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL")
                  if os.environ.get(v)][:1]
        raise NetworkError("STS at %s%s: %s" % (
            endpoint, " (set by %s)" % origin[0] if origin else "", e), e.kind) from e


def _refuses_duration(code, message):
    """AWS's refusal of a DurationSeconds over the role's MaxSessionDuration ("The
    requested DurationSeconds exceeds the MaxSessionDuration set for this role.")
    or a chained role's hour; a value out of 900-43200 names `durationSeconds`."""
    return code == "ValidationError" and "DurationSeconds" in (message or "")


def _sts_advice(code, message, action="AssumeRoleWithSAML"):
    if _refuses_duration(code, message):
        return "lower `duration` in the profile to the role's maximum session duration"
    if code == "ExpiredTokenException":
        return "the assertion had expired: check this machine's clock, and log in again"
    if code == "InvalidIdentityToken":
        return ("the assertion was refused: the IdP's metadata in IAM may be out of date, "
                "or the assertion was already used; log in again")
    if code == "AccessDenied" and action == "AssumeRole":
        return ("the chained role's trust policy does not allow the SAML role, or "
                "chain_external_id is wrong")
    if code == "AccessDenied":
        return "the role's trust policy does not allow this SAML provider"
    return None


def _parse_sts_answer(status, body, action="AssumeRoleWithSAML", headers=None):
    """Credentials from an STS XML answer, or STSError with AWS's code and message."""
    error_type = _error_type(headers)
    if status >= 500 and b"Error" not in body[:500] and not error_type:
        raise STSError("STS failed (HTTP %d)" % status, "HTTP %d" % status, transient=True)
    if body[:512].lstrip().lower().startswith(b"<!doctype html"):   # a proxy's page
        raise STSError("STS answered HTTP %d with an HTML page; refusing it" % status)
    if status >= 400 and not body.strip() and error_type:
        root = None
    else:
        root, _ = _read_server_xml(body, STSError, "STS's answer (HTTP %d)" % status)
    return _sts_credentials(root, status, action, error_type)


def _error_type(headers):
    """The error code in X-Amzn-ErrorType (``Code:namespace-URL``), or None."""
    value = headers.get("X-Amzn-ErrorType") if headers is not None else None
    return value.split(":")[0].strip() or None if value else None


def _local(tag):
    return tag.rpartition("}")[2]


def _sts_error_element(root):
    """The Error element wherever AWS puts it: ``ErrorResponse/Error`` (STS),
    ``ErrorResponse/Errors/Error`` or ``Response/Errors/Error`` (other query
    APIs, moto), in STS's namespace or none."""
    if root is None:
        return None
    if _local(root.tag) == "Error":
        return root
    for child in root:
        if _local(child.tag) == "Error":
            return child
        if _local(child.tag) == "Errors":
            for grandchild in child:
                if _local(grandchild.tag) == "Error":
                    return grandchild
    return None


def _sts_credentials(root, status, action, error_type=None):
    """_parse_sts_answer's reading of the parsed answer."""
    ns = "{%s}" % _STS_NS
    error = _sts_error_element(root)
    if error is not None or status >= 400:
        def get(tag):
            for child in (error if error is not None else ()):
                if _local(child.tag) == tag:
                    return (child.text or "").strip()
            return ""
        code = get("Code") or error_type or "HTTP %d" % status
        message = get("Message")
        text = "STS refused %s: %s%s" % (action, code, ": " + message if message else "")
        advice = _sts_advice(code, message, action)
        raise STSError(text + (" (%s)" % advice if advice else ""), code,
                       transient=status >= 500 or code in _STS_TRANSIENT_CODES,
                       kind="duration" if _refuses_duration(code, message) else None)
    result = root.find("%s%sResult" % (ns, action))
    creds = result.find(ns + "Credentials") if result is not None else None
    if creds is None:
        raise STSError("STS's answer to %s holds no credentials" % action)
    fields = [(creds.findtext(ns + t) or "").strip() for t in
              ("AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration")]
    if not all(fields):
        raise STSError("STS's answer to %s lacks part of the credentials" % action)
    try:
        expires_at = _parse_timestamp(fields[3])
    except ValueError:
        raise STSError("STS sent an expiration time that is not a time: %r" % fields[3])
    arn = (result.findtext("%sAssumedRoleUser/%sArn" % (ns, ns)) or "").strip() or None
    return Credentials(fields[0], fields[1], fields[2], expires_at, arn)


_STS_TRANSIENT_CODES = ("Throttling", "ThrottlingException", "RequestLimitExceeded",
                        "ServiceUnavailable", "InternalFailure", "IDPCommunicationError")
_MIN_LIFETIME = 5            # seconds; real STS issues 900 at least
_CLOCK_SKEW_MAX = 300        # seconds between this machine's clock and STS's that pass unremarked


def _check_lifetime(credentials, sent_at, sts_date=None, now=None):
    """``credentials``, if they are still valid ``now`` and expire _MIN_LIFETIME
    seconds or more after the request for them was sent (``sent_at``, so a slow
    answer does not shorten them).  Otherwise a transient STSError, since renewing
    such credentials at once would only get more of them: it names this
    machine's clock when STS's own (``sts_date``, its Date header) is far from
    it, else STS."""
    now = time.time() if now is None else now
    expires = credentials.expires_at.timestamp()
    if expires > now and expires - sent_at >= _MIN_LIFETIME:
        return credentials
    when = _format_timestamp(credentials.expires_at)
    skew = now - sts_date if sts_date is not None else 0.0
    if abs(skew) > _CLOCK_SKEW_MAX:
        text = ("this machine's clock is %d s %s STS's: by this clock the credentials STS "
                "sent, which expire at %s, %s; set the clock right (NTP)" % (
                    round(abs(skew)), "ahead of" if skew > 0 else "behind", when,
                    "have expired" if expires <= now else "are about to expire"))
    elif expires <= now:
        text = "STS sent credentials that expire at %s, which is not in the future%s" % (
            when, " (STS's clock agrees with this machine's)" if sts_date is not None else "")
    else:
        text = ("STS sent credentials that expire at %s, %d s after they were asked for "
                "(%d s at least are needed)" % (when, expires - sent_at, _MIN_LIFETIME))
    raise STSError(text, transient=True)


def _assume_role_with_saml(role, saml_response, duration=None, endpoint=None,
                           ssl_context=None, deadline=None):
    """STS AssumeRoleWithSAML (an unsigned call), retrying throttling with backoff
    (never past ``deadline``, a time.monotonic() value)."""
    import base64
    import random
    from urllib.parse import urlencode
    form = [("Action", "AssumeRoleWithSAML"), ("Version", "2011-06-15"),
            ("RoleArn", role.arn), ("PrincipalArn", role.principal_arn),
            ("SAMLAssertion", base64.b64encode(saml_response).decode("ascii"))]
    if duration:
        form.append(("DurationSeconds", str(duration)))
    endpoint = endpoint or _sts_endpoint(role.partition)
    body = urlencode(form).encode("ascii")
    headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
               "Accept": "text/xml"}
    for attempt in range(_STS_ATTEMPTS):
        sent_at = time.time()
        try:
            answer = _sts_post(endpoint, body, headers, ssl_context, deadline)
            credentials = _parse_sts_answer(answer.status, answer.body, headers=answer.headers)
            break
        except (STSError, NetworkError) as e:
            # A refused connection never reached STS; a timeout might have.
            delay = min(8.0, 0.5 * 2 ** attempt) * random.uniform(0.5, 1.0)
            if attempt + 1 == _STS_ATTEMPTS or not e.transient or (
                    isinstance(e, NetworkError) and e.kind != "refused") or (
                    deadline is not None and time.monotonic() + delay >= deadline):
                raise
            _debug("STS: %s; retrying in %.1fs" % (e, delay))
            time.sleep(delay)
    # Checked once, not retried here: the caller backs off (the refresher does).
    credentials.sts_date = _http_date(answer.headers.get("Date"))
    return _check_lifetime(credentials, sent_at, credentials.sts_date)


# SigV4, by hand (hmac, hashlib).  Checked against AWS's own test suite and,
# in the interop suite, byte for byte against botocore's SigV4Auth.

def _uri_encode(text, safe="-_.~"):
    from urllib.parse import quote
    return quote(text, safe=safe)


def _normalize_path(path):
    """Remove dot segments and repeated slashes, as every service but S3 expects."""
    import posixpath
    import re
    if not path:
        return "/"
    collapsed = re.sub("/+", "/", path)
    normal = posixpath.normpath(collapsed)
    if collapsed.endswith("/") and normal != "/":
        normal += "/"
    return normal


def _canonical_request(method, url, headers, body):
    """(canonical request, signed header names) per SigV4; ``headers`` is a dict."""
    import hashlib
    from urllib.parse import urlsplit, parse_qsl
    parts = urlsplit(url)
    path = _uri_encode(_normalize_path(parts.path), safe="/-_.~")
    query = "&".join("%s=%s" % pair for pair in sorted(
        (_uri_encode(k), _uri_encode(v))        # sorted after encoding, as AWS does
        for k, v in parse_qsl(parts.query, keep_blank_values=True)))
    canonical = {}
    for name, value in headers.items():
        key = name.lower().strip()
        value = " ".join(str(value).split())
        canonical[key] = canonical[key] + "," + value if key in canonical else value
    names = sorted(canonical)
    payload = hashlib.sha256(body or b"").hexdigest()
    text = "\n".join([method.upper(), path, query,
                      "".join("%s:%s\n" % (n, canonical[n]) for n in names),
                      ";".join(names), payload])
    return text, ";".join(names)


def _string_to_sign(amz_date, scope, canonical):
    import hashlib
    return "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                      hashlib.sha256(canonical.encode("utf-8")).hexdigest()])


def sign_request(method, url, headers, body, credentials, region, service, when=None):
    """Sign one request with SigV4: the headers to send (the given ones included).

    ``when`` is a UTC datetime (now by default).  The session token, if any,
    is signed with the rest, as STS and IAM expect."""
    import datetime
    import hashlib
    import hmac
    from urllib.parse import urlsplit
    when = when or datetime.datetime.now(datetime.timezone.utc)
    amz_date = when.strftime("%Y%m%dT%H%M%SZ")
    out = dict(headers)
    if not any(k.lower() == "host" for k in out):
        out["Host"] = urlsplit(url).netloc
    out["X-Amz-Date"] = amz_date
    if credentials.session_token:
        out["X-Amz-Security-Token"] = credentials.session_token
    canonical, signed = _canonical_request(method, url, out, body)
    scope = "%s/%s/%s/aws4_request" % (amz_date[:8], region, service)
    key = ("AWS4" + credentials.secret_access_key).encode("utf-8")
    for part in (amz_date[:8], region, service, "aws4_request"):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    signature = hmac.new(key, _string_to_sign(amz_date, scope, canonical).encode("utf-8"),
                         hashlib.sha256).hexdigest()
    out["Authorization"] = ("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, "
                            "Signature=%s" % (credentials.access_key_id, scope, signed,
                                              signature))
    return out


def _signing_region(endpoint, partition, region):
    """The region STS signatures name: the endpoint's own, else the partition's."""
    import re
    m = re.match(r"https?://sts\.([a-z0-9-]+)\.amazonaws\.com", endpoint)
    return (m.group(1) if m else None) or region or _PARTITIONS[partition][2] or "us-east-1"


def _sts_signed_call(action, params, credentials, endpoint, region, ssl_context=None,
                     deadline=None):
    """A SigV4-signed STS query (form POST); returns the parsed XML root."""
    from urllib.parse import urlencode
    body = urlencode([("Action", action), ("Version", "2011-06-15")] + list(params)).encode()
    headers = sign_request("POST", endpoint, {
        "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}, body,
        credentials, region, "sts")
    headers.pop("Host", None)       # _http_request sends the same one
    answer = _sts_post(endpoint, body, headers, ssl_context, deadline)
    if answer.status >= 400:
        _parse_sts_answer(answer.status, answer.body, action, answer.headers)  # AWS's words
    root, _ = _read_server_xml(answer.body, STSError,
                               "STS's answer to %s (HTTP %d)" % (action, answer.status))
    return root


def get_caller_identity(credentials, endpoint, region, ssl_context=None):
    ns = "{%s}" % _STS_NS
    root = _sts_signed_call("GetCallerIdentity", [], credentials, endpoint, region, ssl_context)
    result = root.find(ns + "GetCallerIdentityResult")
    if result is None:
        raise STSError("STS's answer to GetCallerIdentity holds no identity")
    return dict((k, (result.findtext(ns + k) or "").strip()) for k in ("Account", "Arn",
                                                                        "UserId"))


def assume_role(credentials, role_arn, session_name, endpoint, region, duration=None,
                external_id=None, ssl_context=None, deadline=None):
    """Role chaining: a signed sts:AssumeRole with the SAML role's credentials."""
    params = [("RoleArn", role_arn), ("RoleSessionName", session_name)]
    if duration:
        params.append(("DurationSeconds", str(duration)))
    if external_id:
        params.append(("ExternalId", external_id))
    root = _sts_signed_call("AssumeRole", params, credentials, endpoint, region, ssl_context,
                            deadline)
    return _sts_credentials(root, 200, "AssumeRole")


# ---------------------------------------------------------------------------
# The IdP login: the saved session, the password (keyring), the refused mark
# ---------------------------------------------------------------------------

def _cookie_dir():
    return os.path.join(_login_root(), "cookies")


def _cookie_path(endpoint_url, username):
    """One jar per (IdP host, username): ``cookies/user@host%3Aport``."""
    from urllib.parse import quote
    return os.path.join(_cookie_dir(), "%s@%s" % (quote(username, safe=""),
                                                  quote(_host_port(endpoint_url), safe="")))


_SavedSession = _named_tuple("_SavedSession", ("mtime", "username", "path"),
                       """A saved IdP session (cookie jar) of one user at one IdP.""")


def _jars_for(endpoint_url):
    """The SavedSessions for this IdP, newest first."""
    from urllib.parse import quote, unquote
    suffix = "@" + quote(_host_port(endpoint_url), safe="")
    found = []
    try:
        names = os.listdir(_cookie_dir())
    except OSError:
        return found
    for name in names:
        if name.endswith(suffix) and not name.startswith("."):
            path = os.path.join(_cookie_dir(), name)
            found.append(_SavedSession(os.path.getmtime(path), unquote(name[:-len(suffix)]),
                                       path))
    return sorted(found, reverse=True)


def _load_cookies(path):
    """The IdP session saved at ``path`` (an empty jar when there is none)."""
    jar = _CookieJar()
    try:
        if os.stat(path).st_uid != os.getuid():
            _warn("ignoring %s: it belongs to another user" % path)
            return jar
    except OSError:
        return jar
    try:
        text = _read_text(path) or ""
    except CredentialsFileError as e:
        _warn("ignoring the unreadable IdP session %s (%s)" % (path, e))
        return jar
    if not text.startswith("#LWP-Cookies-2.0"):
        _warn("ignoring the unreadable IdP session %s (not an LWP cookie file)" % path)
        return jar
    jar.load_lwp(text)
    return jar


def _save_cookies(jar, path):
    """Mode 0600 in a 0700 directory, written atomically; session cookies included."""
    _private_dir(os.path.dirname(path))
    text = jar.lwp_text()
    _update_file(path, lambda old: text)


def _keyring(say=True):
    """The keyring module, or None (said once, with ``say``)."""
    try:
        import keyring
        return keyring
    except Exception:       # not installed, or a broken backend that fails on import
        if say:
            _warn("enable_keyring is set but the keyring module is not available; "
                  "asking for the password instead", once=True)
        return None


def _keyring_user(profile, username):
    return "%s@%s" % (username, _host_port(profile.ecp_endpoint_url))


def _keyring_get(profile, username):
    module = _keyring() if profile.enable_keyring else None
    if module is None:
        return None
    try:
        return module.get_password(_KEYRING_SERVICE, _keyring_user(profile, username))
    except Exception as e:
        _warn("cannot read the keyring (%s); asking for the password" % type(e).__name__)
        return None


def _keyring_set(profile, username, password):
    """Store the password; True when the keyring took it."""
    module = _keyring() if profile.enable_keyring else None
    if module is not None:
        try:
            module.set_password(_KEYRING_SERVICE, _keyring_user(profile, username), password)
            return True
        except Exception as e:
            _warn("cannot store the password in the keyring (%s)" % type(e).__name__)
    return False


# A stored password the IdP refused is never sent again without a person:
# directory services lock an account after a few refusals, and every `aws`
# call (credential_process) or renewal would send it once more.  The mark
# names the profile, the source and user@host, and is tied to the password
# itself by an HMAC under a random key of ours (refused.key, 0600 in our 0700
# folder): a new password, whoever put it in the keyring or the settings, is
# tried, the refused one never, whatever else changes.  Without the key the
# mark tells nothing of the password (no password, no plain hash, which a
# dictionary would undo).

_REFUSED_HEADER = "# aws_login: the IdP refused this stored password; `login` asks for it"
_PASSWORD_SOURCES = ("keyring", "profile")      # where a stored password comes from
_MARK_PREFIX = "hmac-sha256 "


def _refused_dir():
    return os.path.join(_login_root(), "refused")


def _refused_path(name, source):
    """The mark on profile ``name``'s password from ``source`` (keyring or profile)."""
    return os.path.join(_refused_dir(), "%s.%s" % (_quote_name(name), source))


def _key_of(text):
    """The 32 bytes a key file's ``text`` holds, or None."""
    try:
        key = bytes.fromhex((text or "").strip())
    except ValueError:
        return None
    return key if len(key) == 32 else None


def _refused_key(make=False):
    """The key of the marks' HMACs (32 random bytes), made with ``make`` when
    there is none yet (under the folder's lock: two processes agree on one);
    else None."""
    path = os.path.join(_login_root(), "refused.key")
    if make:
        import secrets
        _private_dir(_login_root())
        _update_file(path, lambda old: old if _key_of(old) else secrets.token_hex(32) + "\n")
    _check_owner(path)
    return _key_of(_read_text(path))


def _password_mark(key, profile, username, password):
    """The HMAC that ties a mark to ``password`` of username@host."""
    import hashlib
    import hmac
    message = "%s\n%s" % (_keyring_user(profile, username), password)
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).hexdigest()


def _refused_text(profile, username, key, password):
    return "%s\nuser %s\n%s%s\n" % (_REFUSED_HEADER, _keyring_user(profile, username),
                                    _MARK_PREFIX, _password_mark(key, profile, username,
                                                                 password))


def _stored_where(profile, source):
    return "the keyring" if source == "keyring" else "the settings of profile %s" % profile.name


def _refused_earlier(profile, username, source, password):
    """True when the IdP refused ``password``, stored in ``source``, and no person
    has given one since.  A mark without an HMAC to check (an earlier version's,
    or its key gone) holds, as marks did then, until a person logs in."""
    import hmac
    text = _read_text(_refused_path(profile.name, source))
    lines = (text or "").split("\n") + [""]
    if lines[:2] != [_REFUSED_HEADER, "user " + _keyring_user(profile, username)]:
        return False            # no mark, or another user's or IdP's: not this password
    key = _refused_key()
    if key is None or not lines[2].startswith(_MARK_PREFIX):
        return True
    return hmac.compare_digest(lines[2][len(_MARK_PREFIX):].encode("utf-8"),
                               _password_mark(key, profile, username, password).encode("ascii"))


def _mark_refused(profile, username, source, password):
    key = _refused_key(make=True)
    _private_dir(_refused_dir())
    _update_file(_refused_path(profile.name, source),
                 lambda old: _refused_text(profile, username, key, password))


def _clear_refused(profile, source):
    try:
        os.unlink(_refused_path(profile.name, source))
    except FileNotFoundError:
        pass


def _refused_error(profile, source, refusal=None):
    """InteractionRequired for a stored password refused now (``refusal``, the
    AuthenticationError) or earlier."""
    reason = ("the IdP refused the password stored in %s%s, so it is not sent again until "
              "you log in (repeated refusals can lock the account)"
              % (_stored_where(profile, source), "" if refusal else " earlier"))
    return InteractionRequired("%s: %s%s" % (reason, _run_hint(profile.name),
                                             "; %s" % refusal if refusal else ""), reason)


def _person_password_worked(profile, username, password):
    """A password a person gave was accepted: keep it in the keyring (when enabled)
    and lift the marks it answers."""
    if profile.enable_keyring and _keyring_set(profile, username, password):
        _clear_refused(profile, "keyring")
    if os.path.exists(_refused_path(profile.name, "profile")):
        try:
            configured = read_profile(profile.name, require_endpoint=False).password
        except AwsLoginError:
            configured = None
        if configured == password:
            _clear_refused(profile, "profile")
        elif configured is not None and _refused_earlier(profile, username, "profile",
                                                         configured):
            _warn("the password in the settings of profile %s is still the one the IdP "
                  "refused, and is not sent again: change or remove it there"
                  % profile.name)


class _IdPSession(object):
    """An ECP conversation with one IdP for one user, with its cookie jar."""

    def __init__(self, profile, username, terminal, ssl_context, acs_url, deadline=None):
        self.profile = profile
        self.deadline = deadline        # time.monotonic() by which every answer must be in
        self.username = username
        self.terminal = terminal
        self.ssl_context = ssl_context
        self.acs_url = acs_url
        self.jar_path = _cookie_path(profile.ecp_endpoint_url, username)
        self.jar = _load_cookies(self.jar_path)
        self.saved = len(self.jar) > 0      # an IdP session was saved before this login

    def send(self, headers, label=None):
        """The IdP's answer (an _HttpAnswer) to an AuthnRequest with ``headers``."""
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        envelope = _build_authn_request(self.acs_url, "_" + os.urandom(16).hex(), now)
        headers = dict(headers, **{"Content-Type": "text/xml"})
        url = self.profile.ecp_endpoint_url
        if label:
            with self.terminal.waiting(label):
                return _http_request(url, envelope, headers, self.ssl_context, self.jar,
                                     deadline=self.deadline)
        return _http_request(url, envelope, headers, self.ssl_context, self.jar,
                             deadline=self.deadline)

    def _post(self, headers, label=None):
        return _parse_ecp_answer(self.send(headers, label), self.acs_url)

    def reuse(self, probe=False):
        """The saved IdP session, with no password and no Duo header; None when
        the IdP wants the password.

        With no saved session and ``probe``, the same request still goes out
        before a person is asked anything: an IdP that cannot be reached, whose
        certificate is not trusted, or that answers what no ECP endpoint would
        (a redirect, a 404, a server error) fails now, not after the password."""
        if not len(self.jar) and not probe:
            return None
        try:
            saml = self._post({})
            _debug("IdP session reused")
            return saml
        except AuthenticationError as e:
            _debug("IdP session not accepted: %s" % e)
            return None
        except IdPError as e:
            if e.transient or not len(self.jar):
                raise       # the IdP is down, or this is no ECP endpoint: a password won't help
            _debug("IdP session not accepted: %s" % e)
            return None     # the cookies we sent may be what it did not like

    def authenticate(self, password, factor, passcode):
        headers = {"Authorization": _basic_authorization(self.username, password)}
        headers.update(_duo_headers(factor, passcode, self.profile.http_header_factor,
                                    self.profile.http_header_passcode,
                                    self.profile.duo_device))
        label = ("Waiting for Duo approval" if factor in ("auto", "push", "phone")
                 else "Waiting for the IdP")
        try:
            return self._post(headers, label)
        except AuthenticationError as e:
            if getattr(e, "http_status", None) != 401 or factor in (None, "off"):
                raise
            # Shibboleth's Duo plugin answers 401 for a refused factor too.
            raise AuthenticationError("the IdP refused the password or the Duo %s (HTTP 401)"
                                      % ("passcode" if factor == "passcode" else
                                         "factor %s" % factor), kind=e.kind)
        except NetworkError as e:
            if e.kind != "timeout":
                raise
            # Not transient: retrying would send the person another push.
            what = "Duo %s" % factor if factor not in (None, "off") else "login"
            raise AuthenticationError("no answer from the IdP in time: the %s was not "
                                      "approved, or the IdP hangs" % what, kind="timeout")

    def save(self):
        """Keep the IdP session for the next login; failing that is only a warning."""
        try:
            _save_cookies(self.jar, self.jar_path)
        except (AwsLoginError, OSError) as e:
            _warn("cannot save the IdP session (%s); the next login will ask again" % e)


def _username(profile, terminal, interactive):
    """The configured username, else the last one used with this IdP (asked to confirm)."""
    if profile.username:
        return profile.username
    jars = _jars_for(profile.ecp_endpoint_url)
    default = jars[0].username if jars else None
    if not interactive:
        if default:
            return default
        raise InteractionRequired("profile %s has no username configured; log in on a "
                                  "terminal first" % profile.name)
    if default is None:
        import getpass
        default = getpass.getuser()
    return terminal.ask("Username [%s]: " % default, "the username") or default


def _ask_factor(terminal):
    return _ask_until_valid(terminal, "Factor: ", "the Duo factor", _check_factor, "auto")


def _ask_password(terminal, what, deadline=None):
    """The password, typed at the terminal (or given to the prompt program).
    An empty one is never sent (one more refusal toward a locked account): it
    is asked for again."""
    while True:
        password = terminal.secret("Password: ", what, _PASSWORD_HINT, deadline)
        if password:
            return password
        terminal.write("The password is empty; type it, or press Ctrl-C to stop.\n")


def _password_login(session, profile, terminal, interactive=True):
    """Authenticate with a password: configured, from the keyring, or asked.

    Without a person (``interactive`` false) only a stored password will do,
    with the configured factor (a push then reaches the user's phone), unless
    the terminal has a prompt program (password_prompt) to ask through.  A
    stored password the IdP refuses is marked and not sent again until a
    person gives one (_refused_earlier)."""
    username = session.username
    what = "the password of %s" % _keyring_user(profile, username)
    need_person = ("%s and no password is stored (see enable_keyring)" % (
        "the IdP session of %s has ended" if session.saved else
        "no IdP session of %s is saved") % _keyring_user(profile, username))
    password, source = profile.password, profile.password_source
    if not password:
        password, source = _keyring_get(profile, username) or None, "keyring"
    if (password is not None and source in _PASSWORD_SOURCES
            and _refused_earlier(profile, username, source, password)):
        if not terminal.asks_secrets(interactive):
            raise _refused_error(profile, source)
        _warn("the IdP refused the password stored in %s earlier, so it is not sent "
              "again; enter the current one" % _stored_where(profile, source))
        password = None
    if password is None:
        if not interactive and terminal.program() is None:
            raise InteractionRequired("%s: %s" % (need_person, _run_hint(profile.name)),
                                      need_person)
        password, source = _ask_password(terminal, what, session.deadline), "prompt"
    # Unset and nobody to ask (a pipe, CI): auto, as awscli-login does.
    factor = profile.factor or (_ask_factor(terminal) if interactive and terminal.available()
                                else "auto")
    passcode = profile.passcode
    if factor == "passcode" and not passcode:
        if not interactive and terminal.program() is None:
            reason = "the Duo factor of profile %s is passcode, which needs a person" % (
                profile.name)
            raise InteractionRequired("%s: %s" % (reason, _run_hint(profile.name)), reason)
        passcode = terminal.secret("Code: ", "the Duo passcode", deadline=session.deadline)
    try:
        saml = session.authenticate(password, factor, passcode)
    except AuthenticationError as e:
        if source not in _PASSWORD_SOURCES or e.kind != "refused":
            raise           # a person's typo, or a Duo push nobody approved
        _mark_refused(profile, username, source, password)
        if not terminal.asks_secrets(interactive):
            raise _refused_error(profile, source, e)
        _warn("the IdP refused the password stored in %s (%s); enter the current one"
              % (_stored_where(profile, source), e))
        password, source = _ask_password(terminal, what, session.deadline), "prompt"
        if factor == "passcode" and not profile.passcode:
            passcode = terminal.secret("Code: ", "the Duo passcode", deadline=session.deadline)
        saml = session.authenticate(password, factor, passcode)
    if source == "prompt":
        _person_password_worked(profile, username, password)
    return saml


# ---------------------------------------------------------------------------
# Fetching credentials: IdP (saved session, else password and Duo), role, STS
# ---------------------------------------------------------------------------

def _profile_region(profile):
    """The profile's region, else AWS_REGION, else AWS_DEFAULT_REGION (checked: it
    becomes part of the STS host name)."""
    region = profile.region or os.environ.get("AWS_REGION") or os.environ.get(
        "AWS_DEFAULT_REGION")
    return _check_region(region) if region else None


def _profile_partition(profile, role_arn=None):
    """The partition whose sign-in URL the AuthnRequest names: the role's, else the
    region's (cn-..., us-gov-...), else aws."""
    match = _role_arn_match((role_arn or profile.role_arn or "").lower())
    if match:
        return match.group(1)
    return _region_partition(_profile_region(profile) or "")


def _region_partition(region):
    """The partition a region is in: cn-... aws-cn, us-gov-... aws-us-gov, else aws."""
    for partition, prefix in _REGION_PREFIX.items():
        if region.startswith(prefix):
            return partition
    return "aws"


def _idp_session(profile, username, terminal, deadline=None, acs_url=None):
    """An _IdPSession with the profile's IdP, as its settings say (TLS, and the
    ACS URL of its partition unless ``acs_url`` is given)."""
    return _IdPSession(profile, username, terminal, _idp_ssl_context(profile),
                       acs_url or _PARTITIONS[_profile_partition(profile)][0], deadline)


def _fetch_saml(profile, terminal, interactive=True, deadline=None, acs_url=None):
    """The IdP's SAML answer for the profile's user: the saved session, else the
    password and Duo.  Returns (_SamlAnswer, _IdPSession); whoever finishes the
    login saves the session (_fetch_credentials, _roles_offered)."""
    username = _username(profile, terminal, interactive)
    session = _idp_session(profile, username, terminal, deadline, acs_url)
    probe = interactive and terminal.available()     # someone may be asked for a password
    saml = session.reuse(probe) or _password_login(session, profile, terminal, interactive)
    if saml.skipped and not saml.roles:
        raise RoleError("the IdP's answer lists no usable AWS role: %d malformed Role "
                        "value(s), the first %r" % (len(saml.skipped), saml.skipped[0][:100]))
    for value in saml.skipped:
        _warn("skipping a malformed Role value from the IdP: %r" % value[:200])
    return saml, session


def _roles_offered(profile, terminal):
    """The roles the IdP offers the profile's user (a login to the IdP only,
    asking on ``terminal`` when someone is there); the session is kept."""
    saml, session = _fetch_saml(profile, terminal, terminal.available())
    session.save()
    return saml.roles


def _fetch_credentials(profile, terminal=None, role_arn=None, interactive=True, deadline=None):
    """IdP (session reuse, else password and Duo), role, STS; then the IdP
    session is saved for the next login.  Writes no credentials.

    ``deadline`` (a time.monotonic() value) bounds every request of the
    login; without it each request has its own time limit.

    Returns (Credentials, Role)."""
    terminal = terminal or Terminal()
    wanted = role_arn or profile.role_arn
    saml, session = _fetch_saml(profile, terminal, interactive, deadline,
                                _PARTITIONS[_profile_partition(profile, role_arn)][0])
    if not interactive and not wanted and len(saml.roles) > 1:
        raise InteractionRequired("the IdP offers %d roles and profile %s names none (set "
                                  "role_arn): log in on a terminal to choose"
                                  % (len(saml.roles), profile.name))
    last = _last_role(profile.name) if interactive else None
    role = _choose_role(saml.roles, wanted, terminal, profile.chain_role_arn, last)
    if interactive and len(saml.roles) > 1 and (role_arn or not wanted) and role.arn != last:
        _remember_role(profile.name, role.arn)       # a person chose it: the menu's next default
    region = _profile_region(profile)
    endpoint = _sts_endpoint(role.partition, region)
    aws_tls = _aws_ssl_context(profile, session.ssl_context)
    credentials = _assume_within_maximum(profile, role, saml, endpoint, aws_tls, deadline)
    if profile.chain_role_arn:
        sent_at = time.time()
        chained = assume_role(
            credentials, profile.chain_role_arn,
            _session_name(saml.session_name or session.username), endpoint,
            _signing_region(endpoint, role.partition, region),
            _chained_duration(profile, _wanted_duration(profile, saml)),
            profile.chain_external_id, aws_tls, deadline)
        # The same STS told its clock a moment ago, in the SAML call's answer.
        credentials = _check_lifetime(chained, sent_at, credentials.sts_date)
    session.save()
    return credentials, role


def _session_name(name):
    import re
    cleaned = re.sub(r"[^\w+=,.@-]", "-", name or "aws_login", flags=re.ASCII)[:64]
    return cleaned if len(cleaned) >= 2 else "aws_login"


# ---------------------------------------------------------------------------
# Session length: what STS is asked, and the role's real maximum
# ---------------------------------------------------------------------------
# A role's MaxSessionDuration (1 to 12 hours) cannot be read before the role
# is assumed (iam:GetRole needs credentials), so a `duration` over it is
# learned from STS's refusal: asked again once with the same assertion, and
# the length that worked is kept per profile and role in
# ~/.aws-login/duration/PROFILE, next to the role chosen last (role/PROFILE),
# as lines "ROLE_ARN ASKED GOT".  The settings file stays the user's.


def _duration_path(name):
    return os.path.join(_login_root(), "duration", _quote_name(name))


def _wanted_duration(profile, saml):
    """The session length the profile asks for: `duration`, else the IdP's
    SessionDuration (brought within STS's bounds), else None (STS's default)."""
    if profile.duration is not None or not saml.session_duration:
        return profile.duration
    return min(max(saml.session_duration, _DURATION_MIN), _DURATION_MAX)


def _durations_learned(name):
    """{(role ARN, seconds asked): seconds STS gave} for profile ``name``."""
    try:
        with open(_duration_path(name)) as f:
            if os.fstat(f.fileno()).st_uid != os.getuid():
                return {}
            lines = f.read(65536).splitlines()
    except (OSError, ValueError):
        return {}
    learned = {}
    for line in lines:
        words = line.split()
        if len(words) == 3 and _role_arn_match(words[0]) and all(
                _is_digits(w) for w in words[1:]):
            learned[(words[0], int(words[1]))] = int(words[2])
    return learned


def _learn_duration(name, role_arn, asked, got):
    """Keep ``got`` as what profile ``name`` asks for ``role_arn`` when its
    `duration` is ``asked``; failing that is only a warning."""
    def edit(old):
        kept = [line for line in (old or "").splitlines()
                if line.split()[:1] != [role_arn]]
        return "".join(line + "\n" for line in kept + ["%s %d %d" % (role_arn, asked, got)])
    try:
        _private_dir(_login_root())
        _private_dir(os.path.dirname(_duration_path(name)))
        _update_file(_duration_path(name), edit)
    except (AwsLoginError, OSError) as e:
        _warn("cannot remember the session length that worked (%s)" % e)


def _shorter_duration(refused, session_duration):
    """The one length asked again after STS refused ``refused`` seconds as over
    the role's maximum: the IdP's SessionDuration when lower, else an hour
    (every role allows one), or None when nothing shorter is worth asking."""
    if session_duration and _DURATION_MIN <= session_duration < refused:
        return session_duration
    return 3600 if refused > 3600 else None


def _assume_within_maximum(profile, role, saml, endpoint, ssl_context, deadline):
    """AssumeRoleWithSAML at the length the profile asks (or the one learned for
    it), asked again once, shorter, when that is over the role's maximum."""
    asked = _wanted_duration(profile, saml)
    duration = _durations_learned(profile.name).get((role.arn, asked), asked) \
        if asked else None
    try:
        return _assume_role_with_saml(role, saml.response_xml, duration, endpoint,
                                      ssl_context, deadline)
    except STSError as e:
        shorter = _shorter_duration(duration, saml.session_duration) \
            if e.kind == "duration" and duration else None
        if not shorter:
            raise
    credentials = _assume_role_with_saml(role, saml.response_xml, shorter, endpoint,
                                         ssl_context, deadline)
    _warn("role %s (account %s) refused a %d s session (over its maximum); it got %d s, "
          "and profile %s asks for %d s from now on (a new `duration` is tried again)"
          % (role.name, role.account, duration, shorter, profile.name, shorter))
    _learn_duration(profile.name, role.arn, asked, shorter)
    return credentials


def _chained_duration(profile, wanted):
    """The chained role's length: ``wanted``, an hour at most, as AWS caps it;
    said when the profile's `duration` asks more."""
    if _chain_cap_note(profile):        # the profile asks more than the cap
        _warn("profile %s asks for a %d s session, but AWS caps a chained role's at one "
              "hour: asking %d s for %s" % (profile.name, profile.duration, _CHAINED_MAX,
                                            profile.chain_role_arn), once=True)
    return min(wanted or _CHAINED_MAX, _CHAINED_MAX)


# ---------------------------------------------------------------------------
# Every role from one login (`login --all-roles`)
# ---------------------------------------------------------------------------
# One IdP login, one AssumeRoleWithSAML per role with the same assertion, each
# role to a profile of its own (all_roles_profile), always in file mode (such
# a profile has no settings for a credential_process to read).  The profiles
# written are listed in ~/.aws-login/all-roles/PROFILE, lines "NAME ROLE_ARN",
# which `status` and `logout` of PROFILE read.  PROFILE's one refresher renews
# them all with one IdP login, as the login did: a renewal that needs the
# password sends one Duo push, not one per role.

# Seconds an assertion must still have before it is sent: a request is given
# about that long (STS's read timeout), and STS refuses it after NotOnOrAfter.
_ASSERTION_MARGIN = 60


def _all_roles_dir():
    return os.path.join(_login_root(), "all-roles")


def _all_roles_path(name):
    return os.path.join(_all_roles_dir(), _quote_name(name))


def _written_profiles(name):
    """[(profile, role ARN)] that `login --all-roles` of profile ``name`` wrote."""
    try:
        with open(_all_roles_path(name)) as f:
            if os.fstat(f.fileno()).st_uid != os.getuid():
                return []
            lines = f.read(1 << 20).splitlines()
    except (OSError, ValueError):
        return []
    written = []
    for line in lines:
        profile, _, arn = line.rpartition(" ")
        if _role_arn_match(arn) and profile and not any(c in profile for c in "[]"):
            written.append((profile, arn))
    return written


def _record_written(name, pairs):
    """List ``pairs`` (profile, role ARN) as written by profile ``name``, with
    those listed before that this login did not write again."""
    names = set(profile for profile, _ in pairs)
    every = [p for p in _written_profiles(name) if p[0] not in names] + list(pairs)
    _private_dir(_login_root())
    _private_dir(_all_roles_dir())
    _update_file(_all_roles_path(name),
                 lambda old: "".join("%s %s\n" % pair for pair in every))


def _profile_word(text):
    """An account alias or a role name (path and all) as part of a profile name."""
    import re
    return re.sub(r"[^\w.+=@-]", "-", text, flags=re.ASCII)


def _all_roles_names(profile, roles):
    """[(profile name, Role)] for ``roles``, named by all_roles_profile; a
    ConfigError when two roles would share a profile."""
    aliases = _read_aliases()
    pairs, seen = [], {}
    for role in roles:
        name = profile.all_roles_profile.format(
            profile=profile.name, role=_profile_word(role.name),
            account=_profile_word((aliases.get(role.account) or "").strip() or role.account))
        clash = seen.get(name.lower()) or (name in (profile.name, "DEFAULT") and
                                           "a name that is taken")
        if clash:
            raise ConfigError("all_roles_profile %r gives role %s profile %s, %s: change "
                              "the pattern" % (profile.all_roles_profile, role.arn, name, clash))
        seen[name.lower()] = "as it gives role %s" % role.arn
        pairs.append((name, role))
    return pairs


def _fresh_saml(saml, session, profile, terminal, interactive):
    """``saml`` while STS will still take it, else another from the IdP session."""
    left = saml.not_on_or_after - time.time() if saml.not_on_or_after else None
    if left is None or left > _ASSERTION_MARGIN:
        return saml
    _debug("the assertion expires in %d s; asking the IdP for another" % left)
    return session.reuse() or _password_login(session, profile, terminal, interactive)


def _assume_every_role(profile, terminal, interactive, deadline, only=None):
    """One IdP login, then every role the IdP offers (or, with ``only``, each
    (profile, role ARN) of it that the IdP still offers).  Stores nothing.
    Returns ([(profile name, Credentials, Role)], [(Role, STSError)]): STS's
    refusal of one role does not stop the others."""
    if profile.chain_role_arn:
        raise UsageError("--all-roles does not chain roles: profile %s has chain_role_arn"
                         % profile.name)
    saml, session = _fetch_saml(profile, terminal, interactive, deadline)
    if not saml.roles:
        _choose_role(saml.roles)        # its RoleError says what the IdP admin must do
    pairs = _all_roles_names(profile, saml.roles)
    if only is not None:
        pairs = [(name, role) for name, role in pairs if (name, role.arn) in only]
    region = _profile_region(profile)
    aws_tls = _aws_ssl_context(profile, session.ssl_context)
    written, refused = [], []
    for name, role in pairs:
        if written or refused:      # the first goes out as soon as the IdP answered
            saml = _fresh_saml(saml, session, profile, terminal, interactive)
        try:
            credentials = _assume_within_maximum(profile, role, saml, _sts_endpoint(
                role.partition, region), aws_tls, deadline)
        except STSError as e:
            refused.append((role, e))
            continue
        written.append((name, credentials, role))
    session.save()
    return written, refused


def _say_refused(refused):
    for role, error in refused:
        _warn("role %s (account %s): %s; its profile is not written"
              % (role.name, role.account, error))


def login_all_roles(profile=None, terminal=None, force=False, interactive=True,
                    deadline=None):
    """Log in once and write every role the IdP offers to a profile of its own
    (all_roles_profile), in file mode.  Returns [(profile name, Credentials,
    Role)].  A role STS refuses is a warning, unless STS refuses them all."""
    profile = _as_profile(profile)
    person, deadline = _who_waits(interactive, terminal, deadline)
    with _login_lock(profile.name, person, deadline):
        written, refused = _assume_every_role(profile, terminal or Terminal(), interactive,
                                              deadline)
        _say_refused(refused)
        if not written:
            raise refused[0][1]
        for name, _, _ in written:
            _FileStore(name).check_writable(force)
        for name, credentials, role in written:
            _FileStore(name).write(credentials, role.arn, force)
        _record_written(profile.name, [(name, role.arn) for name, _, role in written])
        return written


def _logout_written(name, force=False):
    """Remove the profiles `login --all-roles` of profile ``name`` wrote, and
    their list: the names removed."""
    removed = []
    for profile, _ in _written_profiles(name):
        try:
            removed += _FileStore(profile).remove(force)
        except CredentialsFileError as e:
            _warn("%s" % e)
    _remove(_all_roles_path(name))
    return removed


# ---------------------------------------------------------------------------
# Credential store: where a profile's credentials live, in either mode
# ---------------------------------------------------------------------------
# A profile is in `process` mode when ~/.aws/config runs us as its
# credential_process, else in `file` mode; never both, as keys in the shared
# credentials file would shadow the credential_process.  The two stores below
# are the only code that reads or writes credentials: every command, the
# refresher and the credential server ask _credential_store().

_CACHE_HEADER = "# aws_login credential cache 1"
_LOGGED_OUT = "# aws_login: logged out; `login` logs in again"


def _quote_name(name):
    """A profile name as a file name, without importing urllib (the fast path)."""
    safe = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
    return "".join(c if c in safe else "%%%02X" % b for c, b in
                   ((chr(b), b) for b in name.encode("utf-8")))


def _unquote_name(file_name):
    from urllib.parse import unquote
    return unquote(file_name)


def _credentials_path():
    path = os.environ.get("AWS_SHARED_CREDENTIALS_FILE")
    return os.path.expanduser(path) if path else os.path.expanduser("~/.aws/credentials")


def _aws_config_path():
    path = os.environ.get("AWS_CONFIG_FILE")
    return os.path.expanduser(path) if path else os.path.expanduser("~/.aws/config")


def _aws_config_section(name):
    return name if name == "default" else "profile " + name


def _cache_dir():
    return os.path.join(_login_root(), "cache")


def _profile_mode(name):
    """``process`` when ~/.aws/config runs aws_login as the credential_process, else ``file``."""
    path = _aws_config_path()
    parser = _parse_ini(_read_text(path) or "", path, default_section="\x00")
    section = _aws_config_section(name)
    command = parser.get(section, "credential_process", fallback="") \
        if parser.has_section(section) else ""
    return "process" if "aws_login" in command and "credential-process" in command else "file"


_StoredRole = _named_tuple("_StoredRole", ("role_arn", "expires"), """The SAML role of
    credentials we stored for a profile, and when they expire (an aware datetime, or
    None when that cannot be read).""")


def _credentials_section(text, profile, path):
    parser = _parse_ini(text, path, default_section="\x00")
    return dict(parser.items(profile)) if parser.has_section(profile) else None


def _is_ours(section):
    return _EXPIRATION_KEY in section or _ROLE_KEY in section


def _holds_long_term_keys(section):
    """A section with an access key and no session token that we did not write."""
    return bool(section and "aws_access_key_id" in section
                and not section.get("aws_session_token") and not _is_ours(section))


def _expiry(text):
    try:
        return _parse_timestamp(text)
    except ValueError:
        return None


class _FileStore(object):
    """File mode: the profile's section of the shared credentials file."""

    mode = "file"

    def __init__(self, name):
        self.name = name
        self.path = _credentials_path()

    def section(self):
        """The profile's section as a dict (ours or not), or None."""
        return _credentials_section(_read_text(self.path) or "", self.name, self.path)

    def _refuse_long_term_keys(self, section, force):
        if _holds_long_term_keys(section) and not force:
            raise CredentialsFileError(
                "[%s] in %s holds long-term access keys that aws_login did not write; "
                "refusing to overwrite them (use another profile, or --force)"
                % (self.name, self.path))

    def check_writable(self, force=False):
        """Refuse, before anything is asked, to overwrite long-term keys."""
        self._refuse_long_term_keys(self.section(), force)

    def write(self, credentials, role_arn, force=False, chain_role_arn=None,
              expect_role=None):
        """Write the section; every other byte of the file stays.  With
        ``expect_role`` (the refresher), only while the section still holds our
        credentials for that role: a logout or another login wins."""
        values = [("aws_access_key_id", credentials.access_key_id),
                  ("aws_secret_access_key", credentials.secret_access_key),
                  ("aws_session_token", credentials.session_token),
                  ("aws_security_token", credentials.session_token),   # for old boto
                  (_EXPIRATION_KEY, _format_timestamp(credentials.expires_at)),
                  (_ROLE_KEY, role_arn)]
        if chain_role_arn:
            values.append((_CHAIN_KEY, chain_role_arn))

        def edit(text):
            current = _credentials_section(text, self.name, self.path)
            if expect_role and (current is None or current.get(_ROLE_KEY) != expect_role):
                raise NotLoggedInError("profile %s was logged out or logged in to another "
                                       "role" % self.name)
            self._refuse_long_term_keys(current, force)
            new = _ini_replace_section(text, self.name, values)
            written = _credentials_section(new, self.name, self.path) or {}
            if any(written.get(k) != v for k, v in values):    # never write what won't read back
                raise CredentialsFileError("cannot write [%s] cleanly into %s"
                                           % (self.name, self.path))
            return new

        _update_file(self.path, edit)

    def read(self):
        """Credentials in the section (ours or not: whoami signs with any), or None."""
        section = self.section()
        if not section or not section.get("aws_access_key_id") or not section.get(
                "aws_secret_access_key"):
            return None
        return Credentials(section["aws_access_key_id"], section["aws_secret_access_key"],
                           section.get("aws_session_token"),
                           _expiry(section.get(_EXPIRATION_KEY)),
                           assumed_role_arn=section.get(_CHAIN_KEY) or section.get(_ROLE_KEY))

    def role(self):
        """The _StoredRole of credentials we wrote, or None."""
        section = self.section()
        if section is None or not _is_ours(section):
            return None
        return _StoredRole(section.get(_ROLE_KEY), _expiry(section.get(_EXPIRATION_KEY)))

    def remove(self, force=False):
        """Remove the section (ours, or any with ``force``): the names removed."""
        return self._remove([self.name], force)

    def _remove(self, names, force=False):
        removed = []

        def edit(text):
            parser = _parse_ini(text, self.path, default_section="\x00")
            for name in names or parser.sections():
                if not parser.has_section(name):
                    continue
                if _is_ours(dict(parser.items(name))) or (force and names):
                    text = _ini_remove_section(text, name)
                    removed.append(name)
                elif names:
                    raise CredentialsFileError(
                        "[%s] in %s was not written by aws_login; leaving it (use --force "
                        "to remove it)" % (name, self.path))
            return text

        if os.path.exists(self.path):
            _update_file(self.path, edit)
        return removed

    @classmethod
    def remove_all(cls):
        """Remove every section we wrote: the names removed."""
        return cls("default")._remove([])


_CacheEntry = _named_tuple("_CacheEntry", ("expires", "role_arn", "json"), """The
    credential_process cache of a profile: expiry (epoch seconds), the role, the JSON
    line to print.""")


def _cache_entry(path, posix):
    """(expires, role ARN, JSON line) of the credential_process cache at ``path``,
    or None: none, another user's, over 64 KiB, or not what we write.

    The configured command runs this very function, its source embedded, before
    it loads anything else (_cached_answer_code): so it imports nothing, and
    takes ``posix`` (the os module, or posix, which holds the same functions)."""
    try:
        fd = posix.open(path, posix.O_RDONLY)
        try:
            mine = posix.fstat(fd).st_uid == posix.getuid()
            data = posix.read(fd, 65536)
        finally:
            posix.close(fd)
        lines = data.decode("utf-8").split("\n")
        if (mine and len(data) < 65536 and len(lines) > 3 and lines[0] == _CACHE_HEADER
                and lines[1][:8] == "expires " and lines[2][:5] == "role "
                and lines[3][:1] == "{"):
            return int(lines[1][8:]), lines[2][5:], lines[3]
    except (OSError, ValueError):       # a UnicodeDecodeError is a ValueError
        pass
    return None


def _credential_process_json(credentials):
    """The credential_process contract of the AWS CLI and SDKs: Version 1, and an
    ISO 8601 UTC Expiration ending in Z."""
    import json
    return json.dumps({"Version": 1, "AccessKeyId": credentials.access_key_id,
                       "SecretAccessKey": credentials.secret_access_key,
                       "SessionToken": credentials.session_token,
                       "Expiration": _format_timestamp(credentials.expires_at)})


class _ProcessStore(object):
    """Process mode: the credential_process cache in ~/.aws-login/cache, 0600."""

    mode = "process"

    def __init__(self, name):
        self.name = name
        self.path = os.path.join(_cache_dir(), _quote_name(name))

    def check_writable(self, force=False):
        return None         # the cache is ours alone

    def write(self, credentials, role_arn, force=False, chain_role_arn=None):
        _private_dir(_login_root())
        _private_dir(_cache_dir())
        text = "%s\nexpires %d\nrole %s\n%s\n" % (
            _CACHE_HEADER, credentials.expires_at.timestamp(), role_arn,
            _credential_process_json(credentials))
        _update_file(self.path, lambda old: text)

    def cached(self):
        """The _CacheEntry, or None."""
        entry = _cache_entry(self.path, os)
        return _CacheEntry(*entry) if entry else None

    def read(self):
        import json
        cached = self.cached()
        if not cached:
            return None
        data = json.loads(cached.json)
        return Credentials(data["AccessKeyId"], data["SecretAccessKey"], data["SessionToken"],
                           _parse_timestamp(data["Expiration"]),
                           assumed_role_arn=cached.role_arn)

    def role(self):
        cached = self.cached()
        return _StoredRole(cached.role_arn, _utc(cached.expires)) if cached else None

    def logged_out(self):
        return (_read_text(self.path) or "").startswith(_LOGGED_OUT)

    def remove(self, force=False):
        """Mark the cache logged out, not delete it: credential_process would
        quietly log in again from the IdP session.  Logged out stays out until
        `login`.  The names removed."""
        if self.cached() is None:
            return []
        _update_file(self.path, lambda old: _LOGGED_OUT + "\n")
        return [self.name]

    def forget(self):
        """Delete cached credentials: the settings they were made with changed.
        A logged-out mark stays."""
        if self.cached() is not None:
            _remove(self.path)

    @staticmethod
    def names():
        """The profiles that have a cache."""
        return [_unquote_name(n) for n in _listdir(_cache_dir())]


def _credential_store(name, mode=None):
    """Where profile ``name``'s credentials live (its mode, or ``mode``): the one
    place that decides; login, logout, status and the readers ask the store."""
    return (_ProcessStore if (mode or _profile_mode(name)) == "process" else _FileStore)(name)


def _set_mode(name, mode, command=None):
    """Put profile ``name`` in ``file`` or ``process`` mode (``command``: the
    credential_process line), cleaning up after the other."""
    path = _aws_config_path()
    section = _aws_config_section(name)
    if mode == "process":
        command = command or _credential_process_command(name)
        if not os.path.isdir(os.path.dirname(path)):
            _private_dir(os.path.dirname(path))
        _update_file(path, lambda text: _ini_set_options(text, section,
                                                         {"credential_process": command}))
        _stop_refresher(name)
        store = _FileStore(name)
        current = store.section()
        if current is not None and _is_ours(current):
            store.remove()
        elif current is not None:
            _warn("[%s] in %s holds keys; they shadow the credential_process for this "
                  "profile until you remove them" % (name, store.path))
    elif _profile_mode(name) == "process":
        def edit(text):
            text = _ini_set_options(text, section, {"credential_process": None})
            spans = _sections(_lines(text), section)
            if spans and spans[0].last == spans[0].header + 1:
                text = _ini_remove_section(text, section)    # the header we added, alone
            return text
        _update_file(path, edit)
        _remove(_ProcessStore(name).path)      # file mode has no cache


def _with_region(text, section, region, path):
    """The AWS config ``text`` with ``region`` in ``section``, unless that has one."""
    parser = _parse_ini(text, path, default_section="\x00")
    if parser.has_section(section) and parser.get(section, "region", fallback="").strip():
        return text
    return _ini_set_options(text, section, {"region": region})


def _share_region(name, region):
    """Give the AWS CLI profile ``name``'s region when its own profile has none:
    recent AWS CLIs no longer fall back to us-east-1 ("You must specify a
    region").  One line is added; every other byte, and the file's mode, stay."""
    path = _aws_config_path()
    if _update_file(path, lambda text: _with_region(text, _aws_config_section(name), region,
                                                    path), keep_mode=True):
        _debug("wrote region %s to [%s] in %s" % (region, _aws_config_section(name), path))


# ---------------------------------------------------------------------------
# Starting ourselves again: the bootstrap of the refresher and credential_process
# ---------------------------------------------------------------------------
# The refresher and the configured credential_process command start a fresh
# interpreter that loads this very file, from bytecode of our own.

def _python_executable():
    """A Python to start: ours, unless we run inside a frozen program (AWS CLI v2)."""
    exe = sys.executable or ""
    if os.path.basename(exe).startswith("python"):
        return exe
    import shutil
    return shutil.which("python3") or shutil.which("python") or exe


def _no_file():
    return ConfigError("this needs aws_login.py saved as a file with an importable name; "
                       "save it and run it from that copy")


def _bootstrap_argv(call, args=(), isolated=True, prelude="", code_fd=None):
    """argv for a fresh interpreter that loads this very file (from cached
    bytecode) and runs ``module.call``.

    ``isolated`` starts it with ``-I -S``: no PYTHON* variables, no user site,
    no site-packages and their .pth files (tens of milliseconds on many
    Pythons), which the cached credential_process path and the sleeping
    refresher never need; main() starts again without them when a renewal
    may need site-packages (keyring).  The file is loaded by its path, not
    imported by name, and the current folder is not on sys.path: no file that
    someone else put in the current folder or beside this one (``ssl.py``, an
    ``aws_login/`` package, a ``__pycache__``) can stand in for a module.
    Bytecode comes from our own 0700 folder on 3.8+; on 3.6 and 3.7, from
    ``__pycache__`` only in a folder nobody else can write to, else the file
    is compiled afresh.  ``prelude`` is code run before the file is loaded.
    Piped into python3 - there is no file: with ``code_fd`` (_code_fd) the
    interpreter loads our code from that descriptor, else ConfigError."""
    import json
    path, module = _own_file()
    if path is None and code_fd is None:
        raise _no_file()
    if path is None:
        load = ("import marshal,posix;f=%d;posix.lseek(f,0,0);c=marshal.loads(b''.join("
                "iter(lambda:posix.read(f,1<<20),b'')));m=type(sys)('aws_login');"
                "sys.modules['aws_login']=m;exec(c,m.__dict__);" % code_fd)
        return [sys.executable] + (["-I", "-S"] if isolated else []) + [
            "-c", "import sys;%s%ssys.exit(m.%s)" % (prelude, load, call)] + list(args)
    try:
        cache = _ensure_bytecode(path)
    except Exception as e:      # a slower start, but a start
        _debug("no cached bytecode: %s" % e)
        cache = False
    name, where = json.dumps(module), json.dumps(path)
    # importlib.machinery is loaded already; importlib.util would cost milliseconds.
    load = ("import importlib.machinery as b;l=b.SourceFileLoader(%s,%s);m=type(sys)(%s);"
            "m.__file__=%s;m.__loader__=l;m.__spec__=b.ModuleSpec(%s,l,origin=%s);"
            "sys.modules[%s]=m;" % (name, where, name, where, name, where, name))
    if cache is False:
        load += "exec(compile(open(%s,'rb').read(),%s,'exec'),m.__dict__);" % (where, where)
    elif cache:     # the prefix serves our file only: the standard library keeps its own
        load += ("sys.pycache_prefix=%s;c=l.get_code(%s);sys.pycache_prefix=None;"
                 "exec(c,m.__dict__);" % (json.dumps(cache), name))
    else:
        load += "exec(l.get_code(%s),m.__dict__);" % name
    code = "import sys;sys.path[:]=[p for p in sys.path if p];%s%ssys.exit(m.%s)" % (
        prelude, load, call)
    return [_python_executable()] + (["-I", "-S"] if isolated else []) + ["-c", code] + list(args)


def _code_fd():
    """A descriptor of this module's code, marshalled, that a fresh interpreter
    of this very Python can load (_bootstrap_argv) when there is no file to
    load, piped into `python3 -`: the refresher then starts as it does from a
    file, small.  The file behind it, in our 0700 folder, is unlinked at once.
    None when the module's code cannot be found."""
    if _run.code_fd is not None:
        return _run.code_fd
    frame = sys._getframe()
    while frame is not None and not (frame.f_globals is globals()
                                     and frame.f_code.co_name == "<module>"):
        frame = frame.f_back
    if frame is None or not sys.executable:
        return None
    import marshal
    import tempfile
    fd, path = tempfile.mkstemp(prefix=".code-", dir=_private_dir(_run_dir()))
    os.unlink(path)
    data = marshal.dumps(frame.f_code)
    while data:
        data = data[os.write(fd, data):]
    os.set_inheritable(fd, True)
    _run.code_fd = fd
    return fd


def _restart_with_site(argv):
    """Started isolated by our own command (-I -S) and now needing more than the
    standard library (keyring lives in site-packages): the same call again in
    an interpreter with the normal start-up.  Does nothing otherwise."""
    if not (sys.flags.no_site and sys.argv[:1] == ["-c"] and _own_file()[0]):
        return
    again = _bootstrap_argv("main(None,%r)" % (_how_run(absolute=True),), argv, isolated=False)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(again[0], again)


def _others_can_write(directory):
    """True when a user other than us (and root) could create files in ``directory``."""
    try:
        st = os.stat(directory)
    except OSError:
        return True
    return st.st_uid not in (0, os.getuid()) or bool(st.st_mode & 0o022)


def _ensure_bytecode(path):
    """Compile ``path`` once so that a fresh interpreter loads it from cache,
    even under PYTHONDONTWRITEBYTECODE.  Compiling costs tens of milliseconds
    and megabytes on every start otherwise.

    Returns the cache prefix to use (our 0700 ``pycache`` folder, 3.8+); None
    to use ``__pycache__`` beside the file (3.6, 3.7, in a folder only we can
    write to); False when no cache can be trusted (3.6, 3.7 elsewhere).
    Raises when our folder cannot be made (then compile afresh)."""
    import importlib.util
    import py_compile
    if sys.version_info < (3, 8):
        folder = os.path.dirname(path)
        pycache = os.path.join(folder, "__pycache__")
        if _others_can_write(folder) or (os.path.exists(pycache)
                                         and _others_can_write(pycache)):
            return False
        target, prefix = importlib.util.cache_from_source(path), None
    else:
        prefix = os.path.join(_login_root(), "pycache")
        saved = sys.pycache_prefix
        try:
            sys.pycache_prefix = prefix
            target = importlib.util.cache_from_source(path)
        finally:
            sys.pycache_prefix = saved
        _private_dir(_login_root())
        _private_dir(prefix)
        folder = os.path.dirname(target)
        os.makedirs(folder, 0o700, exist_ok=True)
        while folder.startswith(prefix + os.sep):     # makedirs leaves the umask's modes
            os.chmod(folder, 0o700)
            folder = os.path.dirname(folder)
    try:
        if not os.path.exists(target) or os.stat(target).st_mtime < os.stat(path).st_mtime:
            py_compile.compile(path, cfile=target, doraise=True)
            if prefix is not None:
                os.chmod(target, 0o600)
    except (OSError, py_compile.PyCompileError) as e:
        _debug("cannot cache bytecode at %s: %s" % (target, e))
    return prefix


def _credential_process_command(name):
    """The credential_process line for ``name``: an isolated interpreter that
    answers from a fresh cache by itself (_cached_answer_code), else loads this
    file's cached bytecode and runs main(), naming the command as the person
    runs this tool in its hints.

    ``python3 aws_login.py`` would compile the whole file on every `aws` call."""
    import shlex
    if _own_file()[0] is None:
        raise _no_file()      # the line must name a file
    return " ".join(shlex.quote(word) for word in _bootstrap_argv(
        "main(None,%r)" % (_how_run(absolute=True),), ["--profile", name, "credential-process"],
        prelude=_cached_answer_code(name)))


def _source_of(function):
    """The source text of one of our top-level functions, read from our file."""
    with open(_own_file()[0], encoding="utf-8") as f:
        lines = f.read().split("\n")
    start = end = function.__code__.co_firstlineno - 1
    while end + 1 < len(lines) and (not lines[end + 1] or lines[end + 1][0] == " "):
        end += 1
    return "\n".join(lines[start:end + 1]).rstrip() + "\n"


def _cached_answer_code(name):
    """Code for the configured command to run before it loads this file: it
    prints the cache and exits when _cache_entry() reads it and _fresh() says it
    may be handed out, the two functions' own source embedded, with the
    constants they read; anything else (no cache, stale, logged out, not ours,
    malformed) falls through to main().  Loading this file costs about as much
    as the rest of the isolated start, and this is the answer to nearly every
    `aws` call.  A reader gone ends it as it ends main(): quietly, with 141."""
    import json
    # posix, not os: importing os is a third of what this saves.  The folder is
    # _login_root()'s when that needs no expanduser(); otherwise main() answers.
    body = ("_CACHE_HEADER=%s\n_MIN_LEFT=%d\n%s%s"
            "e=p.environ;r=e.get(b'AWSCLI_LOGIN_ROOT') or e.get(b'HOME')\n"
            "if r and r[:1]!=b'~' and sys.argv[1:]==['--profile',%s,'credential-process']:\n"
            " a=_cache_entry(r+b'/.aws-login/cache/'+%s,p)\n"
            " if a and _fresh(a[0],time.time()):\n"
            "  try:sys.stdout.write(a[2]+'\\n');sys.stdout.flush()\n"
            "  except BrokenPipeError:p.dup2(p.open(%s,p.O_WRONLY),1);sys.exit(%d)\n"
            "  sys.exit(0)\n") % (
                json.dumps(_CACHE_HEADER), _MIN_LEFT, _source_of(_fresh),
                _source_of(_cache_entry), json.dumps(name),
                repr(_quote_name(name).encode("ascii")), json.dumps(os.devnull),
                _EXIT_PIPE_CLOSED)
    return "import posix as p,time;exec(%s);" % json.dumps(body)


# ---------------------------------------------------------------------------
# Renewal: one schedule for the refresher, the credential server and credential_process
# ---------------------------------------------------------------------------
# botocore asks for credentials again when 15 minutes are left and fails under
# 10, so whatever we hand out has 15 minutes or more to go (_fresh), and a
# renewal is due 20 minutes before expiry, which leaves 5 for retries.

_MIN_LEFT = 15 * 60


def _fresh(expires, now):
    """True while credentials that expire at ``expires`` (epoch seconds) may be
    handed out at ``now``: _MIN_LEFT or more to go.  The configured command runs
    this very function, its source embedded (_cached_answer_code)."""
    return expires - now >= _MIN_LEFT


class _RenewalSchedule(object):
    """When to renew one set of credentials, and what a renewal's success or
    failure does next: the refresher, the credential server and
    credential_process all follow it.

    A renewal is due RENEW_BEFORE seconds before expiry, or at half the
    lifetime of a session shorter than twice that (the two rules meet at 40
    minutes).  A failure that may pass (network, 5xx, throttling) is tried
    again after 10 s, then 20, 40... up to RETRY_MAX, never later than expiry;
    one that will not pass, or one at expiry, ends the renewals unless the
    schedule is ``persistent`` (the credential server's: a person may log in
    meanwhile).  Two renewals are MIN_INTERVAL apart at least, whatever
    happens; a renewal nobody started has TIME_LIMIT seconds in all
    (deadline()); a loop sleeps SLICE at most, so that it reads the wall clock
    again soon after a machine's sleep."""

    RENEW_BEFORE = 20 * 60
    RETRY_MAX = 300.0
    MIN_INTERVAL = 2.0          # at most half of _MIN_LIFETIME
    TIME_LIMIT = 90
    SLICE = 30.0

    def __init__(self, issued_at, expires_at, persistent=False):
        self.persistent = persistent
        self.renewed(issued_at, expires_at)

    @classmethod
    def renewal_time(cls, issued_at, expires_at):
        lifetime = expires_at - issued_at
        if lifetime >= 2 * cls.RENEW_BEFORE:
            return expires_at - cls.RENEW_BEFORE
        return issued_at + lifetime / 2.0

    @classmethod
    def deadline(cls):
        """The time.monotonic() by which a renewal nobody started must be done."""
        return time.monotonic() + cls.TIME_LIMIT

    def renewed(self, now, expires_at):
        """Credentials that expire at ``expires_at`` were issued at ``now``."""
        self.expires_at = expires_at
        self.failures = 0
        self.next_at = max(self.renewal_time(now, expires_at), now + self.MIN_INTERVAL)

    def failed(self, error, now):
        """A renewal failed at ``now`` with ``error`` (an AwsLoginError): True to
        try again at next_at, False to give up."""
        if not self.persistent and (not error.transient or now >= self.expires_at):
            return False
        self.failures += 1
        delay = min(self.RETRY_MAX, 5.0 * 2 ** self.failures)
        if self.expires_at > now:
            delay = min(delay, self.expires_at - now)
        self.next_at = now + max(self.MIN_INTERVAL, delay)
        return True

    def due(self, now):
        return now >= self.next_at

    def sleep(self, now):
        """Seconds to sleep from ``now``: until the next renewal, SLICE at most."""
        return max(0.0, min(self.SLICE, self.next_at - now))


class _PersonLoggingIn(InteractionRequired):
    """A person's login holds the profile's lock (a login at its prompt): a
    renewal nobody started does not wait for it.  It passes once that login
    is done."""
    transient = True

    def __init__(self, name, pid):
        InteractionRequired.__init__(
            self, "a login of profile %s (pid %d) is waiting for its person at a terminal; "
            "answer it there, or try again when it is done" % (name, pid))
        self.pid = pid


def _person_mark(pid, start_time, machine):
    """What the profile's lock file says while a person's login holds it: the
    login's pid, when it started (_process_start) and on which machine
    (_this_machine()).  A renewal nobody started reads it (_person_at_lock)."""
    host, boot_id = machine
    return ("person\npid %d\nstart_time %s\nhost %s\nboot_id %s\n"
            % (pid, start_time, host, boot_id)).encode("ascii", "replace")


def _person_at_lock(data):
    """The pid of the person's login that ``data`` (the lock file's bytes) names,
    if it runs on this machine now; else None.  A mark from another host (an
    NFS home) cannot be checked, and one of a dead login is stale: neither
    stops a renewal from waiting for the lock."""
    lines = data.decode("ascii", "replace").split("\n")
    if lines[0] != "person":
        return None
    fields = dict(line.partition(" ")[::2] for line in lines[1:])
    pid = fields.get("pid", "")
    if not pid.isdigit() or int(pid) <= 0 or not fields.get("start_time"):
        return None
    if (fields.get("host"), fields.get("boot_id")) != _this_machine():
        return None
    if _process_start(int(pid)) != fields["start_time"]:
        return None
    return int(pid)


class _profile_lock(object):
    """One login or renewal of a profile at a time: `aws` runs in parallel must
    not each log in (one Duo push each), and two logins must not cross their
    credentials and refreshers.  A flock on a 0600 file in our 0700 cache
    folder, re-entrant within a thread; ``waiting()`` runs once when another
    process holds it.  The refresher never takes it: it checks the role in
    the credentials file before it writes.

    ``person``: the holder may ask a person on a terminal; the file names it
    (_person_mark) while it holds the lock, and it waits as long as it takes
    (the person can press Ctrl-C).  Anyone else given a ``deadline`` (a
    time.monotonic() value), a renewal nobody started, waits until then at
    most (then CredentialsFileError), and not at all behind a person's login
    (_PersonLoggingIn)."""

    POLL = 0.1          # seconds between two tries of a wait with a deadline

    def __init__(self, name, waiting=None, person=False, deadline=None):
        self.name = name
        self.path = os.path.join(_cache_dir(), "." + _quote_name(name) + ".lock")
        self.waiting = waiting
        self.person = person
        self.deadline = deadline

    def _key(self):
        import _thread
        return self.path, os.getpid(), _thread.get_ident()

    def __enter__(self):
        held = _run.locks.get(self._key())
        if held:
            held[1] += 1
            if self.person and not held[2]:     # a renewal that now asks a person
                held[2] = self._mark(held[0])
            return self
        _private_dir(_login_root())
        _private_dir(_cache_dir())
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            self._take(fd)
            marked = self._mark(fd) if self.person else self._unmark(fd)
        except BaseException:
            os.close(fd)
            raise
        _run.locks[self._key()] = [fd, 1, marked]
        return self

    def _take(self, fd):
        import fcntl
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except (BlockingIOError, PermissionError):
            pass
        if self.person or self.deadline is None:
            if self.waiting:
                self.waiting()
            fcntl.flock(fd, fcntl.LOCK_EX)  # bounded by the holder's timeouts, or Ctrl-C
            return
        seen = pid = None
        waiting = self.waiting
        while True:
            content = self._content()
            if content != seen:     # on macOS each check of a pid runs ps
                seen, pid = content, _person_at_lock(content)
            if pid is not None:
                raise _PersonLoggingIn(self.name, pid)
            if waiting:                 # once, and only when it does wait
                waiting, _ = None, waiting()
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise CredentialsFileError(
                    "another login or renewal of profile %s held its lock %s past the %d s "
                    "a renewal nobody started has; try again later"
                    % (self.name, self.path, _RenewalSchedule.TIME_LIMIT), transient=True)
            time.sleep(min(self.POLL, left))
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except (BlockingIOError, PermissionError):
                pass

    def _content(self):
        """The lock file's bytes, read through a new descriptor: on NFS, an open
        fetches what another host wrote since."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return b""
        try:
            return os.read(fd, 1024)
        finally:
            os.close(fd)

    @staticmethod
    def _mark(fd):
        start = _process_start(os.getpid())
        if not start:
            return False        # nothing a waiter could check
        mark = _person_mark(os.getpid(), start, _this_machine())
        os.ftruncate(fd, 0)
        os.pwrite(fd, mark, 0)
        return True

    @staticmethod
    def _unmark(fd):
        """A mark left by a login that was killed goes; it names a dead pid anyway."""
        if os.fstat(fd).st_size:
            os.ftruncate(fd, 0)
        return False

    def __exit__(self, *exc):
        held = _run.locks[self._key()]
        held[1] -= 1
        if not held[1]:
            del _run.locks[self._key()]
            if held[2]:
                os.ftruncate(held[0], 0)    # before the lock goes: no one is asked now
            os.close(held[0])
        return False


def _who_waits(interactive=True, terminal=None, deadline=None):
    """(person, deadline) of a login or renewal about to take the profile's lock.
    With ``interactive`` and a terminal it is a person's: it waits for the
    lock as long as it takes, and ``deadline`` bounds its requests alone.
    Otherwise nobody started it: ``deadline``, by default
    _RenewalSchedule.deadline() from now, bounds it all, the wait included."""
    if interactive:
        ours = terminal is None
        terminal = terminal or Terminal()
        try:
            if terminal.available():
                return True, deadline
        finally:
            if ours:
                terminal.close()
    return False, deadline or _RenewalSchedule.deadline()


def _login_lock(name, person=False, deadline=None):
    """The profile's lock for a login, which says on stderr when it waits."""
    return _profile_lock(name, lambda: sys.stderr.write(
        "Another login of profile %s is in progress; waiting for it to finish.\n" % name),
        person, deadline)


def _credential_process(name):
    """The JSON for credential_process: from the cache while it is fresh, else
    renewed as the refresher does, else (on a terminal) by asking."""
    store = _ProcessStore(name)
    cached = store.cached()
    if cached and _fresh(cached.expires, time.time()):
        return cached.json
    if store.logged_out():
        raise NotLoggedInError("profile %s is logged out: %s" % (name, _run_hint(name)))
    person, deadline = _who_waits()
    try:
        # quiet: botocore hides our stderr anyway
        with _profile_lock(name, person=person, deadline=deadline):
            cached = store.cached()       # another process may have renewed meanwhile
            if cached and _fresh(cached.expires, time.time()):
                return cached.json
            return _renew_for_process(name, cached, deadline)
    except _PersonLoggingIn:
        cached = store.cached()
        if cached and cached.expires > time.time():
            return cached.json          # still valid; botocore asks again before expiry
        raise


def _renew_for_process(name, cached, deadline=None):
    """Renewed credentials as JSON: without a person if it can be done, else
    asking on the terminal, else through the prompt program (password_prompt:
    the password and passcode only, within ``deadline``)."""
    profile = read_profile(name)
    role_arn = (cached.role_arn if cached else None) or profile.role_arn
    terminal = Terminal(prompt=profile.password_prompt)
    try:
        credentials, _ = login(profile, terminal, role_arn=role_arn, interactive=False,
                               mode="process", deadline=deadline or _RenewalSchedule.deadline())
    except InteractionRequired as e:
        if profile.password_prompt == "none" or not terminal.available():
            raise
        # botocore swallows our stderr: say it where the person is looking.
        terminal.tell("aws_login: profile %s needs you to log in again (%s)" % (name, e.reason))
        credentials, _ = login(profile, terminal, role_arn=role_arn, mode="process")
    finally:
        terminal.close()
    return _credential_process_json(credentials)


# ---------------------------------------------------------------------------
# Refresher: a forked loop that renews before expiry (file mode)
# ---------------------------------------------------------------------------

def _run_dir():
    return os.path.join(_login_root(), "run")


def _log_dir():
    return os.path.join(_login_root(), "log")


def _pid_path(name):
    return os.path.join(_run_dir(), _quote_name(name) + ".pid")


def _log_path(name):
    return os.path.join(_log_dir(), _quote_name(name) + ".log")


def _refresher_state(name):
    """The profile's _RefresherState from its pid file, or None when there is none.

    The refresher holds a lock on its pid file for its whole life, so a pid
    left by a dead one is never taken for a live process."""
    try:
        fd = os.open(_pid_path(name), os.O_RDONLY)
    except OSError:
        return None
    try:
        data = os.read(fd, 8192)
        alive = _locked_by_another(fd)
    finally:
        os.close(fd)
    return _parse_pid_file(data, alive)


class _RefresherState(object):
    """What a refresher's pid file says: ``pid``, ``next_at`` (its next renewal,
    epoch seconds), ``alive`` (someone holds the file's lock: a refresher holds
    it for its whole life, on whichever host shares this folder), ``host`` and
    ``boot_id`` of the machine it runs on, its ``start_time`` there (see
    _process_start) and its ``role_arn``.  The last four are None in a file
    that an earlier version wrote."""
    __slots__ = ("pid", "next_at", "alive", "host", "boot_id", "start_time", "role_arn")

    def __init__(self, pid, next_at, alive, host=None, boot_id=None, start_time=None,
                 role_arn=None):
        self.pid, self.next_at, self.alive = pid, next_at, alive
        self.host, self.boot_id, self.start_time = host, boot_id, start_time
        self.role_arn = role_arn

    def __repr__(self):
        return "_RefresherState(%s)" % ", ".join(
            "%s=%r" % (key, getattr(self, key)) for key in self.__slots__)

    @property
    def local(self):
        """True: written on this machine since its last boot; False: on another
        one; None: the file does not say."""
        if self.host is None:
            return None
        return (self.host, self.boot_id) == _this_machine()


_PID_FILE_KEYS = ("host", "boot_id", "start_time", "role")


def _locked_by_another(fd):
    """True when another process holds a lock on ``fd``'s file: a live
    refresher or server holds its record's for its whole life."""
    import fcntl
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except OSError:
        return True


def _parse_pid_file(data, alive):
    """_RefresherState from a pid file's bytes (see _record), or None when they
    name no process.  A file of an earlier version is its first line alone."""
    lines = data.decode("ascii", "replace").split("\n")
    words = lines[0].split()
    if not words or not words[0].isdigit() or int(words[0]) <= 0:
        return None             # kill() takes 0 and -1 for groups of processes
    try:
        next_at = float(words[1]) if len(words) > 1 else None
    except ValueError:
        return None
    fields = {}
    for line in lines[1:]:
        key, _, value = line.partition(" ")
        if key in _PID_FILE_KEYS and key not in fields and \
                all(" " <= c <= "~" for c in value):
            fields[key] = value
    host = fields.get("host") or None
    return _RefresherState(int(words[0]), next_at, alive, host,
                           fields.get("boot_id", "") if host else None,
                           fields.get("start_time") if host else None, fields.get("role"))


_PROC = "/proc"      # Linux's process table; where there is none, `ps` answers


def _this_machine():
    """(host name, boot id) of the machine we run on.  The boot id changes at
    every boot (pids start over); it is "" where the system offers none."""
    try:
        with open(os.path.join(_PROC, "sys/kernel/random/boot_id")) as f:
            boot_id = f.read().strip()
    except OSError:
        boot_id = ""
    return os.uname().nodename, boot_id


def _process_start(pid):
    """When process ``pid`` of this machine started, as text, or None (no such
    process, or no way to tell): clock ticks since boot (field 22 of
    /proc/PID/stat) on Linux, else what `ps -o lstart=` says (to the second)."""
    if not os.path.isdir(_PROC):
        return _ps_column(pid, "lstart")
    try:
        with open("%s/%d/stat" % (_PROC, pid), "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()    # after the name, field 3
        return fields[22 - 3].decode("ascii")
    except (OSError, IndexError, UnicodeDecodeError):
        return None


def _ps_column(pid, column):
    import subprocess
    try:
        out = subprocess.check_output(["ps", "-o", column + "=", "-p", str(pid)],
                                      stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.decode("utf-8", "replace").strip() or None


def _runs_refresher(pid, name):
    """Whether process ``pid`` of this machine is profile ``name``'s refresher:
    its command line runs _refresher_loop for the profile, or it holds the
    profile's pid file open (piped into `python3 -`, or before its exec, the
    refresher has the login's command line)."""
    if not os.path.isdir(_PROC):
        command = _ps_column(pid, "command") or ""
        return "_refresher_loop(" in command and (" %s " % name) in command
    try:
        with open("%s/%d/cmdline" % (_PROC, pid), "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return False
    for i in range(len(argv) - 2):
        if argv[i] == b"-c" and b"_refresher_loop(" in argv[i + 1] and \
                argv[i + 2] == name.encode("utf-8"):
            return True
    return _holds_open(pid, _pid_path(name))


def _holds_open(pid, path):
    try:
        target = os.stat(path)
        fds = os.listdir("%s/%d/fd" % (_PROC, pid))
    except OSError:
        return False
    for fd in fds:
        try:
            st = os.stat("%s/%d/fd/%s" % (_PROC, pid, fd))
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (target.st_dev, target.st_ino):
            return True
    return False


def _may_signal(state, name):
    """Only a process of this machine that started when the pid file says and
    that is the profile's refresher (_runs_refresher).  A file of an earlier
    version names no machine: there only /proc can prove it."""
    local = state.local
    if local is None:
        return os.path.isdir(_PROC) and _runs_refresher(state.pid, name)
    if not local or not state.start_time or _process_start(state.pid) != state.start_time:
        return False
    return _runs_refresher(state.pid, name)


def _left_running(name, state):
    if state.local is False:
        where = ("runs on host %s, not here" % state.host if state.host != _this_machine()[0]
                 else "runs on another machine also named %s" % state.host)
    else:
        where = "cannot be proved to run here"
    return ("profile %s's refresher (pid %d) %s: it was not signalled; it stops by itself "
            "within %d s of finding its credentials removed or replaced by another role"
            % (name, state.pid, where, _RenewalSchedule.SLICE))


def _stop_refresher(name, wait=2.0):
    """Stop the profile's refresher when it provably runs here (_may_signal):
    SIGTERM, then, if /proc still shows it after ``wait`` seconds, SIGKILL.
    Another live refresher is left alone with a warning: it stops by itself
    within _RenewalSchedule.SLICE of finding its credentials gone.  Returns the pid
    stopped, or None."""
    state = _refresher_state(name)
    if not state or not state.alive:
        return None
    if not _may_signal(state, name):
        _warn(_left_running(name, state))
        return None
    import signal
    try:
        os.kill(state.pid, signal.SIGTERM)
    except OSError:
        return None
    deadline = time.time() + wait
    while time.time() < deadline:
        current = _refresher_state(name)
        if not current or not current.alive:
            return state.pid
        time.sleep(0.02)
    current = _refresher_state(name)
    if os.path.isdir(_PROC) and current and current.alive and current.pid == state.pid \
            and _may_signal(current, name):
        try:
            os.kill(state.pid, signal.SIGKILL)
        except OSError:
            pass
    return state.pid


class _RefresherJob(object):
    """What a refresher is started with, each input by name and checked on
    arrival, for it crosses an exec as one JSON argument: the SAML ``role_arn``
    it keeps fresh; when the credentials were ``issued_at`` and ``expires_at``
    (epoch seconds); ``program``, how the person runs this tool (for the hints
    in its log); this login's own --ca-bundle and --region (``ca_bundle``,
    ``region``); the descriptor of the pid file it holds locked (``lock_fd``)
    and its ``start_time``; and, piped into python3 -, the descriptor of our
    marshalled code (``code_fd``, _code_fd); for `login --all-roles`,
    ``all_roles``, the [profile, role ARN] pairs it wrote and that are renewed
    together."""

    def __init__(self, role_arn, issued_at, expires_at, program=None, ca_bundle=None,
                 region=None, lock_fd=None, start_time="", code_fd=None, all_roles=None):
        import math
        self.role_arn = _check_role_arn(role_arn)
        try:
            self.all_roles = [[str(name), _check_role_arn(arn)] for name, arn in all_roles] \
                if all_roles else None
        except (TypeError, ValueError, ConfigError):
            raise ConfigError("a refresher's inputs are not what login gives it")
        self.issued_at, self.expires_at = float(issued_at), float(expires_at)
        self.program, self.start_time = program, start_time or ""
        self.ca_bundle = _check_ca_bundle(ca_bundle) if ca_bundle else None
        self.region = _check_region(region) if region else None
        self.lock_fd, self.code_fd = lock_fd, code_fd
        if not (math.isfinite(self.issued_at) and math.isfinite(self.expires_at)
                and all(text is None or isinstance(text, str) and text.isprintable()
                        for text in (program, start_time))
                and all(fd is None or type(fd) is int and fd >= 0 for fd in (lock_fd, code_fd))):
            raise ConfigError("a refresher's inputs are not what login gives it")

    def to_json(self):
        import json
        return json.dumps(vars(self), sort_keys=True)

    @classmethod
    def from_json(cls, text):
        import json
        try:
            return cls(**json.loads(text))
        except (ValueError, TypeError):     # not JSON, not an object, unknown names
            raise ConfigError("a refresher's inputs are not what login gives it")

    def profile(self, name):
        """The profile's settings now, with this login's own --ca-bundle and --region."""
        profile = read_profile(name)
        if self.ca_bundle:
            profile.override("ca_bundle", self.ca_bundle, "--ca-bundle")
        if self.region:
            profile.override("region", self.region, "--region")
        return profile


class _Refresher(object):
    """Renews one profile's credentials on the _RenewalSchedule, asking nobody
    but through password_prompt's program (the password and passcode only).

    ``step()`` is one wake-up and returns how long to sleep (None: stop);
    ``clock`` is the wall clock, read afresh at every step, so a laptop that
    slept past the renewal time renews as soon as it wakes."""

    def __init__(self, name, job, clock=time.time, log=None, in_child=False,
                 close_in_child=()):
        """``in_child``: each renewal runs in a child process (renew_in_child),
        which first closes the descriptors ``close_in_child``."""
        self.name = name
        self.job = job
        self.role_arn = job.role_arn
        self.clock = clock
        self.log = log or (lambda message: None)
        self.schedule = _RenewalSchedule(job.issued_at, job.expires_at)
        self.child = None           # pid of a renewal in progress (renew_in_child)
        self.close_in_child = tuple(close_in_child)
        self.renew = self.renew_in_child if in_child else self.renew_here

    def renew_here(self):
        """Renew and store; return the new expiry (epoch seconds)."""
        profile = self.job.profile(self.name)
        if self.job.all_roles:
            return self.renew_every_role(profile)
        credentials, role = _fetch_credentials(profile, Terminal(None, profile.password_prompt),
                                               self.role_arn, interactive=False,
                                               deadline=_RenewalSchedule.deadline())
        _FileStore(self.name).write(credentials, role.arn, expect_role=self.role_arn,
                                    chain_role_arn=profile.chain_role_arn)
        return credentials.expires_at.timestamp()

    def kept(self):
        """The (profile, role ARN) pairs of `login --all-roles` still holding our
        credentials of that role: the others were logged out or replaced."""
        return [(name, arn) for name, arn in self.job.all_roles
                if (_FileStore(name).role() or (None,))[0] == arn]

    def renew_every_role(self, profile):
        """One IdP login for every profile still kept; the earliest new expiry."""
        terminal = Terminal(None, profile.password_prompt)
        written, refused = _assume_every_role(profile, terminal, False,
                                              _RenewalSchedule.deadline(), self.kept())
        _say_refused(refused)
        if not written:
            raise refused[0][1] if refused else NotLoggedInError("no role left to renew")
        for name, credentials, role in written:
            try:
                _FileStore(name).write(credentials, role.arn, expect_role=role.arn)
            except NotLoggedInError:
                pass        # logged out meanwhile: that one is done
        return min(credentials.expires_at.timestamp() for _, credentials, _ in written)

    def renew_in_child(self):
        """renew() in a forked child, so that the loop never loads ssl and xml and
        stays small while it sleeps; the child reports a JSON record through a
        pipe (_renew_and_report)."""
        import json
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(read_end)
                for fd in self.close_in_child:
                    os.close(fd)        # the lock stays the loop's alone
                if sys.flags.no_site and (_own_file()[0] or _run.code_fd is not None):
                    # The loop sleeps in an isolated interpreter (-I -S); a renewal
                    # may need site-packages (keyring), so a normal one does it.
                    os.set_inheritable(write_end, True)
                    argv = _bootstrap_argv("_renew_and_report(*sys.argv[1:])", [
                        self.name, self.job.to_json(), str(write_end)], isolated=False,
                        code_fd=_run.code_fd)
                    os.execv(argv[0], argv)
                code = _renew_and_report(self.name, self.job.to_json(), write_end,
                                         renew=self.renew_here)
            finally:
                os._exit(code)
        self.child = pid
        os.close(write_end)
        data = _read_to_end(read_end)
        os.waitpid(pid, 0)
        self.child = None
        try:
            report = json.loads(data.decode("utf-8"))
        except ValueError:
            report = None
        if isinstance(report, dict) and type(report.get("expires_at")) in (int, float):
            return float(report["expires_at"])
        if isinstance(report, dict) and isinstance(report.get("error"), str):
            raise AwsLoginError(report["error"], transient=report.get("transient") is True)
        raise AwsLoginError("the renewal process died", transient=True)

    def step(self):
        now = self.clock()
        try:
            stored = _FileStore(self.name).role() if not self.job.all_roles else \
                _StoredRole(self.role_arn, None) if self.kept() else None
        except CredentialsFileError as e:
            self.log("cannot read the credentials file (%s); looking again later" % e)
            return self.schedule.SLICE
        if stored is None and self.job.all_roles:
            self.log("every profile that login --all-roles wrote was logged out; stopping")
            return None
        if stored is None:
            self.log("profile %s was logged out; stopping" % self.name)
            return None
        if stored.role_arn != self.role_arn:
            self.log("another login replaced the credentials (role %s); stopping"
                     % stored.role_arn)
            return None
        if not self.schedule.due(now):
            return self.schedule.sleep(now)
        expires_at = self.schedule.expires_at
        try:
            expires_at = self.renew()
        except AwsLoginError as e:
            if not self.schedule.failed(e, now):
                self.log("cannot renew: %s; stopping (the credentials %s at %s)" % (
                    e, "expired" if now >= expires_at else "expire",
                    _format_timestamp(_utc(expires_at))))
                return None
            self.log("renewal failed (%s); trying again in %ds"
                     % (e, self.schedule.next_at - now))
            return self.schedule.sleep(now)
        self.schedule.renewed(now, expires_at)
        self.log("renewed; the credentials expire at %s; next renewal at %s" % (
            _format_timestamp(_utc(expires_at)), _format_timestamp(_utc(self.schedule.next_at))))
        return self.schedule.sleep(now)


def _renew_and_report(name, job, fd, renew=None):
    """One renewal for a refresher (``job``: its _RefresherJob as JSON), its
    answer written to pipe ``fd`` as a JSON record: {"expires_at": EPOCH} or
    {"error": MESSAGE, "transient": BOOL}.  Returns the exit code."""
    import json
    fd = int(fd)
    code = 0
    try:
        if renew is None:
            inputs = _RefresherJob.from_json(job)
            _run.program, _run.code_fd = inputs.program, inputs.code_fd
            renew = _Refresher(name, inputs).renew_here
        report = {"expires_at": renew()}
    except AwsLoginError as e:
        report = {"error": str(e), "transient": bool(e.transient)}
    except BaseException as e:
        report = {"error": "unexpected %s: %s" % (type(e).__name__, e), "transient": False}
        code = 1
    try:
        os.write(fd, json.dumps(report).encode("utf-8"))
    except OSError:
        code = 1
    return code


def _read_to_end(fd):
    """Everything a pipe gives until its writers close it; then close it."""
    data = b""
    while True:
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    os.close(fd)
    return data


def _start_refresher(profile, role_arn, issued_at, expires_at, all_roles=None):
    """Fork a detached refresher for ``profile`` (replacing any); return its pid.
    It renews role ``role_arn`` with the profile's settings as they are at each
    renewal, and this login's own --ca-bundle and --region.

    Double fork and setsid, cwd /, stdin /dev/null, stdout and stderr to its
    log: it keeps none of the caller's terminal or pipes, so `login` in a
    script or behind `curl | python3 -` returns at once."""
    given = dict((key, getattr(profile, key)) for key in ("ca_bundle", "region")
                 if key in profile.given)
    job = _RefresherJob(role_arn, issued_at, expires_at, _how_run(absolute=True),
                        all_roles=all_roles, **given)
    name = profile.name
    _stop_refresher(name)
    for directory in (_login_root(), _run_dir(), _log_dir()):
        _private_dir(directory)
    sys.stdout.flush()
    sys.stderr.flush()
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid:
        os.close(ready_w)
        os.waitpid(pid, 0)
        answer = _read_to_end(ready_r)     # the refresher's pid, once it holds the lock
        return int(answer) if answer.strip().isdigit() else None
    code = 0
    try:
        os.close(ready_r)
        os.setsid()
        if os.fork():
            os._exit(0)
        _run_refresher(name, job, ready_w)
    except SystemExit as e:     # SIGTERM: a normal stop
        code = e.code if isinstance(e.code, int) else 0
    except BaseException:
        code = 1
    finally:
        os._exit(code)


def _run_refresher(name, job, ready_w):
    """The detached grandchild: private fds, the lock, then the loop in a fresh
    interpreter, small while idle, with an environment free of AWS secrets in
    /proc/PID/environ; piped into `python3 -`, the interpreter loads our code
    from a descriptor (_code_fd).  Only if neither can start does the loop
    run right here."""
    import fcntl
    os.chdir("/")
    null = os.open(os.devnull, os.O_RDWR)
    log_fd = os.open(_log_path(name), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.fchmod(log_fd, 0o600)
    for fd, target in ((0, null), (1, log_fd), (2, log_fd)):
        os.dup2(target, fd)
    lock_fd = os.open(_pid_path(name), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return                  # another refresher serves this profile
    keep = {0, 1, 2, lock_fd, ready_w}
    for fd in _open_fds():
        if fd not in keep:
            try:
                os.close(fd)    # the caller's pipes, its terminal, anything inherited
            except OSError:
                pass
    env = dict((k, v) for k, v in os.environ.items() if k not in (
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN"))
    job.lock_fd, job.start_time = lock_fd, _process_start(os.getpid()) or ""
    _record(lock_fd, _RenewalSchedule(job.issued_at, job.expires_at).next_at,
            _about(job.role_arn, job.start_time))
    os.write(ready_w, str(os.getpid()).encode())
    os.close(ready_w)
    try:
        if _own_file()[0] is None:
            job.code_fd = _code_fd()
        argv = _bootstrap_argv("_refresher_loop(*sys.argv[1:])", [name, job.to_json()],
                               code_fd=job.code_fd)
        os.set_inheritable(lock_fd, True)
        os.execve(argv[0], argv, env)       # a small refresher, from cached bytecode
    except (ConfigError, OSError):
        pass                                # nothing to start: the loop runs right here
    os.environ.clear()
    os.environ.update(env)
    _refresher_loop(name, job.to_json())


def _about(role_arn, start_time):
    """The pid file's lines after the first: which process on which machine
    (logout signals only that one), and for which role."""
    host, boot_id = _this_machine()
    return "".join("%s %s\n" % (key, value) for key, value in (
        ("host", host), ("boot_id", boot_id), ("start_time", start_time), ("role", role_arn))
        if value and value.isprintable())


def _record(lock_fd, next_at, about):
    """The pid file, which status and logout read:

        PID NEXT_RENEWAL_EPOCH
        host HOST_NAME
        boot_id BOOT_ID
        start_time START_TIME
        role ROLE_ARN

    (earlier versions wrote the first line alone).  Written over in place,
    then cut to length, so a reader never finds it empty."""
    data = ("%d %.0f\n%s" % (os.getpid(), next_at or 0, about)).encode("ascii", "replace")
    os.lseek(lock_fd, 0, 0)
    os.write(lock_fd, data)
    os.ftruncate(lock_fd, len(data))


def _refresher_loop(name, job):
    """Sleep, wake, step, until the _Refresher says stop; renewals run in
    children.  ``job``: the _RefresherJob, as JSON."""
    import signal
    job = _RefresherJob.from_json(job)
    _run.program, _run.code_fd, _run.stamp = job.program, job.code_fd, True
    _no_core_dumps()
    about = _about(job.role_arn, job.start_time or _process_start(os.getpid()) or "")

    def log(message):
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        os.write(2, ("%s %s[%d] %s\n" % (stamp, name, os.getpid(), _visible(message)))
                 .encode("utf-8"))

    refresher = _Refresher(name, job, log=log, in_child=True, close_in_child=(job.lock_fd,))

    def on_term(signum, frame):
        if refresher.child:
            try:
                os.kill(refresher.child, signal.SIGTERM)
            except OSError:
                pass
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_term)
    log("started for role %s; next renewal at %s" % (
        job.role_arn, _format_timestamp(_utc(refresher.schedule.next_at))))
    try:
        while True:
            try:
                delay = refresher.step()
            except Exception as e:      # a bug must not leave a silent zombie loop
                log("unexpected %s: %s; stopping" % (type(e).__name__, e))
                delay = None
            if delay is None:
                break
            _record(job.lock_fd, refresher.schedule.next_at, about)
            time.sleep(delay)
    finally:
        try:
            os.unlink(_pid_path(name))   # before the lock goes, so a successor's file stays
        except OSError:
            pass


def _open_fds():
    try:
        return [int(fd) for fd in os.listdir("/proc/self/fd")]
    except OSError:
        return range(3, 256)


# ---------------------------------------------------------------------------
# Login, logout, configure: what the commands do, for a profile
# ---------------------------------------------------------------------------

def _as_profile(profile, require_endpoint=True):
    """A Profile from what the API takes: a Profile, a name, or None (AWS_PROFILE,
    AWS_DEFAULT_PROFILE, else default)."""
    if isinstance(profile, Profile):
        return profile
    return read_profile(_profile_name(profile), require_endpoint)


def login(profile=None, terminal=None, role_arn=None, force=False, interactive=True,
          mode=None, deadline=None):
    """Log ``profile`` (a Profile, or its name) in and store the credentials
    where its mode says.

    ``file`` mode writes the shared credentials file, ``process`` mode the
    credential_process cache.  Returns (Credentials, Role).  Nothing is
    written unless every step succeeded.  One login of a profile at a time;
    one that asks no person (not ``interactive``, or no terminal) has
    _RenewalSchedule.TIME_LIMIT in all, unless ``deadline`` says otherwise."""
    profile = _as_profile(profile)
    person, deadline = _who_waits(interactive, terminal, deadline)
    with _login_lock(profile.name, person, deadline):
        store = _credential_store(profile.name, mode)
        store.check_writable(force)
        credentials, role = _fetch_credentials(profile, terminal, role_arn, interactive,
                                               deadline)
        store.write(credentials, role.arn, force, profile.chain_role_arn)
        if profile.region and "region" not in profile.given:     # not `login --region`'s
            try:
                _share_region(profile.name, profile.region)
            except CredentialsFileError as e:
                _warn("%s; the AWS CLI needs --region for profile %s" % (e, profile.name))
        return credentials, role


def logout(profile=None, all_profiles=False, forget=False, force=False):
    """Stop the refresher, remove credentials and cache of ``profile`` (a Profile,
    or its name), and with ``forget`` the IdP session.  Returns (profiles logged
    out, IdP sessions forgotten)."""
    if isinstance(profile, Profile):
        name = profile.name
    else:
        name = _profile_name(profile)
        profile = read_profile(name, require_endpoint=False) if forget and not all_profiles \
            else None
    names = ([_unquote_name(n[:-4]) for n in _listdir(_run_dir()) if n.endswith(".pid")]
             if all_profiles else [name])
    for each in names:
        _stop_refresher(each)
    # Both stores, whatever the mode: a profile that switched modes may hold both.
    removed = []
    for each in (_ProcessStore.names() if all_profiles else [name]):
        removed += _ProcessStore(each).remove()
    removed += _FileStore.remove_all() if all_profiles else _FileStore(name).remove(force)
    for each in ([_unquote_name(n) for n in _listdir(_all_roles_dir())]
                 if all_profiles else [name]):
        removed += _logout_written(each, force)
    forgotten = []
    if forget:
        if all_profiles:
            jars = [os.path.join(_cookie_dir(), n) for n in _listdir(_cookie_dir())]
        elif profile is not None and profile.ecp_endpoint_url:
            jars = ([_cookie_path(profile.ecp_endpoint_url, profile.username)]
                    if profile.username else
                    [saved.path for saved in _jars_for(profile.ecp_endpoint_url)])
        else:
            jars = []
        for path in jars:
            try:
                os.unlink(path)
                forgotten.append(path)
            except FileNotFoundError:
                pass
    return sorted(set(removed)), forgotten


_KEEP = object()     # an empty answer: the value in brackets stays


def _configure_by_asking(name, current, terminal):
    """awscli-login's five questions, the region, then the mode: (options set, mode).
    The endpoint is tried as soon as it is known (_trust_endpoint)."""
    checked = {}
    for option in _OPTIONS:
        if option.prompt is None:
            continue
        shown = current.get(option.name) or None
        if isinstance(option.default, bool):
            try:
                shown = _check_bool(current.get(option.name, str(option.default)))
            except ConfigError:
                shown = option.default
        value = _ask_until_valid(
            terminal, "%s [%s]: " % (option.prompt, shown), option.prompt,
            lambda answer: _configured_value(name, option.name, answer, current, checked,
                                             terminal), _KEEP)
        if value is not _KEEP:
            checked[option.name] = value
        if option.name == "ecp_endpoint_url":
            _trust_endpoint(name, current, checked, terminal)
    process = _profile_mode(name) == "process"
    mode = _ask_until_valid(terminal, "Use credential_process [%s]: " % process,
                            "credential_process",
                            lambda answer: "process" if _check_bool(answer) else "file")
    return checked, mode


def _configured_value(name, key, text, current, checked, terminal):
    """Option ``key``'s value from ``text`` as configure takes it: checked as
    every setting is, and a role given by name (as `login --role` takes it)
    turned into its ARN by the one role resolver, among the roles the IdP
    offers with the settings being made (``current`` as they were, ``checked``
    the new ones)."""
    if key != "role_arn" or text.strip().lower().startswith("arn:"):
        return _check_option(key, text)
    wanted = _check_role_name(text)
    profile = _profile_being_made(name, current, checked)
    if not profile.ecp_endpoint_url:
        raise ConfigError("role_arn: %s is a role name, not an ARN; set ecp_endpoint_url "
                          "first so that the IdP can tell its ARN, or give the ARN" % wanted)
    if terminal.available():
        terminal.tell("Asking the IdP which role %s is." % wanted)
    try:
        roles = _roles_offered(profile, terminal)
    except InteractionRequired as e:
        raise InteractionRequired("role_arn: %s is a role name, and finding its ARN needs a "
                                  "login to the IdP (%s): give the ARN, or run configure on "
                                  "a terminal" % (wanted, e.reason))
    return _choose_role(roles, wanted).arn


def _profile_being_made(name, current, checked):
    """The Profile that configure is making: the settings ``current`` as they
    were, with the ``checked`` new values."""
    profile = Profile(name, current)
    for option, value in checked.items():
        setattr(profile, option, value)
    return profile


def _try_endpoint(profile, terminal):
    """Login's first request to the profile's IdP (no password, no Duo header:
    _IdPSession.reuse); the error it ends with, else None (the IdP asks for the
    password, or knows the user already)."""
    try:
        session = _idp_session(profile, profile.username or "", terminal,
                               time.monotonic() + _PROBE_TIME_LIMIT)
        session.reuse(probe=True)
    except (NetworkError, IdPError, ConfigError) as e:
        return e
    return None


def _untrusted(error):
    return isinstance(error, NetworkError) and error.kind == "untrusted"


def _trust_endpoint(name, current, checked, terminal):
    """Try the endpoint configure was given, and say what fails.  When its
    certificate is not trusted, ask for the CA bundle that makes it trusted
    (tried the same way) and put it in ``checked`` as ca_bundle; Enter skips."""
    try:
        profile = _profile_being_made(name, current, checked)
    except ConfigError as e:
        terminal.tell("%s; the endpoint is tried once that is fixed" % e)
        return      # an old bad value: configure is where it gets fixed
    if not profile.ecp_endpoint_url:
        return
    error = _try_endpoint(profile, terminal)
    if error is None:
        return
    terminal.tell(str(error))
    if not _untrusted(error):
        return
    terminal.tell("Here you can give the CA bundle that makes it trusted (a PEM file of "
                  "your site's CA), or press Enter to go on without.")

    def trusted_by(answer):
        profile.ca_bundle = _check_option("ca_bundle", answer)
        error = _try_endpoint(profile, terminal)
        if isinstance(error, ConfigError):
            raise error         # not a PEM file
        if _untrusted(error):
            raise ConfigError("ca_bundle: %s does not hold the CA that signed the IdP's "
                              "certificate" % profile.ca_bundle)
        return profile.ca_bundle
    bundle = _ask_until_valid(terminal, "CA Bundle [%s]: " % profile.ca_bundle, "the CA bundle",
                              trusted_by)
    if bundle:
        checked["ca_bundle"] = bundle


def configure(profile=None, terminal=None, values=None):
    """Set the options of ``profile`` (a Profile, or its name): from ``values``
    (flags) or by asking, awscli-login style.  A role may be given by name:
    the IdP is asked which ARN it is (_configured_value).

    Returns the options set; ``mode`` among them puts the profile in file or
    process mode.  Everything is checked before anything is written."""
    name = profile.name if isinstance(profile, Profile) else _profile_name(profile)
    path = _config_path()
    parser = _parse_ini(_read_text(path) or "", path)
    # Raw values: one bad old value must not keep the user from fixing it here.
    current = dict(parser.items(name)) if parser.has_section(name) else {}
    values = dict(values or {})
    mode = values.pop("mode", None)
    terminal = terminal or Terminal()
    was = _profile_mode(name)       # the AWS config must be readable before we write
    if values or mode:
        checked = {}
        for key, value in sorted(values.items(), key=lambda item: item[0] == "role_arn"):
            checked[key] = (None if value == "" else
                            _configured_value(name, key, value, current, checked, terminal))
    else:
        checked, mode = _configure_by_asking(name, current, terminal)
    command = None
    if mode == "process" or (mode is None and was == "process"):
        try:
            command = _credential_process_command(name)
        except ConfigError:
            if mode == "process":
                raise           # piped: there is no file for the AWS CLI to run
    if checked.get("enable_keyring"):
        _keyring()
    text = dict((k, None if v is None else
                 ("true" if v is True else "false" if v is False else str(v)))
                for k, v in checked.items())
    _private_dir(_login_root())
    _update_file(path, lambda old: _ini_set_options(old, name, text))
    if set(checked) & {"role_arn", "chain_role_arn", "ecp_endpoint_url", "username"}:
        _ProcessStore(name).forget()     # it holds credentials for the old settings
    if mode or command:     # an older version's line is brought up to date
        _set_mode(name, mode or "process", command)
    region = checked.get("region", current.get("region"))
    if region:
        try:
            _share_region(name, _check_region(region))
        except ConfigError:
            pass        # an old bad value: login says so
    return checked


# ---------------------------------------------------------------------------
# Using the credentials: whoami, exec, env, console
# ---------------------------------------------------------------------------

def stored_credentials(name):
    """The profile's credentials where its mode keeps them, or None."""
    return _credential_store(name).read()


def _partition_of(credentials):
    arn = credentials.assumed_role_arn or ""
    return arn.split(":")[1] if arn.count(":") >= 5 and arn.split(":")[1] in _PARTITIONS \
        else "aws"


def _whoami(name):
    """STS GetCallerIdentity, signed with the profile's credentials."""
    credentials = stored_credentials(name)
    if credentials is None:
        read_profile(name)      # not configured: that is to be done first, and said
        raise NotLoggedInError("not logged in to profile %s: %s" % (name, _run_hint(name)))
    profile = read_profile(name, require_endpoint=False)
    partition = _partition_of(credentials)
    region = _profile_region(profile)
    endpoint = _sts_endpoint(partition, region)
    return get_caller_identity(credentials, endpoint,
                               _signing_region(endpoint, partition, region),
                               _aws_ssl_context(profile))


def _check_credentials_text(credentials):
    """Refuse a key id, secret or token that is not printable ASCII: AWS sends
    nothing else, and a quote of another kind, a line break or a NUL would end a
    shell's string or an environment variable early."""
    for what, value in (("access key id", credentials.access_key_id),
                        ("secret access key", credentials.secret_access_key),
                        ("session token", credentials.session_token or "")):
        bad = [c for c in value if not "!" <= c <= "~"]
        if bad:
            raise CredentialsFileError(
                "the %s of the stored credentials holds U+%04X, which AWS never sends "
                "(only printable ASCII): refusing to hand them to a shell or a command; "
                "log in again (login --force)" % (what, ord(bad[0])))


# PowerShell ends a single-quoted string at any of these; doubled, each is itself.
_POWERSHELL_QUOTES = "'\u2018\u2019\u201a\u201b"


def _powershell_quote(value):
    return "'%s'" % "".join(c * 2 if c in _POWERSHELL_QUOTES else c for c in value)


# Unset by `env` and `exec`: a profile would make the AWS CLI ignore the keys.
_ENV_UNSET = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE")


def _credential_variables(credentials, region=None):
    """[(name, value)] of the variables `env` prints and `exec` sets, in order.
    Refuses credentials that are not printable ASCII."""
    _check_credentials_text(credentials)
    values = [("AWS_ACCESS_KEY_ID", credentials.access_key_id),
              ("AWS_SECRET_ACCESS_KEY", credentials.secret_access_key),
              ("AWS_SESSION_TOKEN", credentials.session_token or "")]
    if credentials.expires_at is not None:
        values.append(("AWS_CREDENTIAL_EXPIRATION", _format_timestamp(credentials.expires_at)))
    if region:
        values += [("AWS_REGION", region), ("AWS_DEFAULT_REGION", region)]
    return values


def env_lines(credentials, region=None, shell="sh"):
    """What `eval "$(aws_login.py env)"` needs, quoted for ``shell``."""
    import json
    values = _credential_variables(credentials, region)
    unset = _ENV_UNSET
    if shell == "json":
        return [json.dumps(dict(values), indent=2)]
    if shell == "fish":
        quote = lambda v: "'%s'" % v.replace("\\", "\\\\").replace("'", "\\'")
        return (["set -e %s;" % n for n in unset] +
                ["set -gx %s %s;" % (n, quote(v)) for n, v in values])
    if shell == "powershell":
        return (["Remove-Item Env:%s -ErrorAction SilentlyContinue" % n for n in unset] +
                ["$Env:%s = %s" % (n, _powershell_quote(v)) for n, v in values])
    import shlex
    return ["unset %s" % " ".join(unset)] + [
        "export %s=%s" % (n, shlex.quote(v)) for n, v in values]


def _exec_environment(credentials, region=None, environ=None, profile=None):
    """The environment `exec` gives its command: ``environ`` (ours by default)
    with the variables env_lines() prints, and no profile or old token."""
    values = _credential_variables(credentials, region)
    env = dict(os.environ if environ is None else environ)
    for name in _ENV_UNSET + ("AWS_SECURITY_TOKEN",):
        env.pop(name, None)
    env.update(values)
    if profile:
        env["AWS_LOGIN_EXEC"] = profile     # how a nested exec is recognised
    return env


def console_url(credentials, partition="aws", destination=None, ssl_context=None):
    """The federation sign-in URL for the console: getSigninToken with the
    session's credentials, then a login URL carrying the token."""
    import json
    from urllib.parse import urlencode
    federation, console = _CONSOLES[partition]
    federation = _check_url(os.environ.get("AWS_LOGIN_FEDERATION_URL") or federation,
                            "federation URL")
    if not credentials.session_token:
        raise ConfigError("the console sign-in needs temporary credentials "
                                   "(these have no session token)")
    session = json.dumps({"sessionId": credentials.access_key_id,
                          "sessionKey": credentials.secret_access_key,
                          "sessionToken": credentials.session_token})
    answer = _http_request(federation + "?" + urlencode(
        {"Action": "getSigninToken", "Session": session}), ssl_context=ssl_context,
        read_timeout=60)
    try:
        token = json.loads(answer.body.decode("utf-8"))["SigninToken"] \
            if answer.status == 200 else None
    except (ValueError, KeyError, TypeError):
        token = None
    if not token:
        raise SignInError("AWS sign-in gave no sign-in token (HTTP %d); the credentials may "
                       "have expired" % answer.status)
    return federation + "?" + urlencode({"Action": "login", "Issuer": "aws_login",
                                         "Destination": destination or console,
                                         "SigninToken": token})


def _check_service(name):
    """A console service's name as its page's path takes it (s3, ec2, iam, ...)."""
    import re
    service = name.strip().lower()
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", service, flags=re.ASCII):
        raise UsageError("--service %r is not a console service name (like s3, ec2, iam)"
                         % name)
    return service


def _console_destination(partition, region=None, service=None):
    """The console page to land on, on the partition's console host: ``service``'s
    home (else the console's home), in ``region``; the bare console without either."""
    from urllib.parse import urlencode
    console = _CONSOLES[partition][1]
    if not (region or service):
        return console
    page = console + (service or "console") + "/home"
    return page + ("?" + urlencode({"region": region}) if region else "")


def _console_region(profile, partition):
    """The region the console opens in: ``console --region``, else the profile's;
    refused when the role's partition has no such region."""
    region = _profile_region(profile)
    if region and _region_partition(region) != partition:
        raise ConfigError("region %s (%s) is not in partition %s, where the role is"
                          % (region, profile.where("region") if profile.region else
                             "AWS_REGION or AWS_DEFAULT_REGION", partition))
    return region


def _chain_cap_note(profile):
    """The line that names AWS's one-hour cap on a chained role's session when
    the profile asks more, or None."""
    if not (profile.chain_role_arn and (profile.duration or 0) > _CHAINED_MAX):
        return None
    return ("Note: profile %s asks duration %d, but AWS caps a chained role's session "
            "(chain_role_arn) at one hour: these credentials, and the console signed in "
            "with them, last one hour at most." % (profile.name, profile.duration))


# The sign-in URL holds a token that signs in as the role: on a command line
# `ps` would show it to every user of the host, so the browser is given a
# private page that sends it on, and the page is removed once read.
_CONSOLE_PAGE_WAIT = 60      # seconds a page waits for the browser to read it


def _console_dir():
    return os.path.join(_login_root(), "console")


def _console_page(url):
    """HTML that sends the browser on to ``url`` at once (location.replace keeps
    the page out of the history; the meta refresh works without JavaScript)."""
    import html
    import json
    return ('<!DOCTYPE html>\n<html><head><meta charset="utf-8">\n'
            '<meta http-equiv="refresh" content="0;url=%s">\n'
            '<title>AWS console sign-in</title>\n'
            '<script>location.replace(%s);</script>\n'
            '</head><body><a href="%s">Open the AWS console</a></body></html>\n'
            % (html.escape(url), json.dumps(url).replace("<", "\\u003c"), html.escape(url)))


def _write_console_page(url):
    """A new 0600 page in our 0700 folder; returns (path, access time it was given)."""
    import tempfile
    _private_dir(_login_root())
    directory = _private_dir(_console_dir())
    for name in os.listdir(directory):     # left by a waiter that was killed
        old = os.path.join(directory, name)
        try:
            if time.time() - os.lstat(old).st_mtime > 2 * _CONSOLE_PAGE_WAIT:
                os.unlink(old)
        except OSError:
            pass
    fd, path = tempfile.mkstemp(prefix="signin-", suffix=".html", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(_console_page(url).encode("utf-8"))
        # An access time before the modification time: the first read sets it
        # anew, even on a relatime mount and within one tick of the clock.
        mtime = os.stat(path).st_mtime_ns
        os.utime(path, ns=(mtime - 3600 * 10 ** 9, mtime))
        marked = os.stat(path).st_atime_ns     # as the file system keeps it (rounded)
    except BaseException:
        _remove(path)
        raise
    return path, marked


def _remove_page_when_read(path, marked):
    """Fork a detached waiter that removes the page once its access time moves
    (the browser read it) or after _CONSOLE_PAGE_WAIT seconds, whichever is
    first; it holds none of our terminal or pipes."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        os.waitpid(pid, 0)
        return
    try:
        os.setsid()
        if os.fork():
            os._exit(0)
        os.chdir("/")
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        for fd in _open_fds():
            if fd > 2:
                try:
                    os.close(fd)
                except OSError:
                    pass
        deadline = time.monotonic() + _CONSOLE_PAGE_WAIT
        while time.monotonic() < deadline and os.stat(path).st_atime_ns == marked:
            time.sleep(0.1)
        _remove(path)
    finally:
        os._exit(0)         # also when the page is gone already (stat raised)


def _open_console(url):
    """Open ``url`` in the browser through a private page; False when no browser
    could be started (the page is then gone already)."""
    import webbrowser
    from urllib.parse import quote
    path, marked = _write_console_page(url)
    try:
        _remove_page_when_read(path, marked)
        opened = webbrowser.open("file://" + quote(path))
    except BaseException:       # Ctrl-C while the browser starts
        _remove(path)
        raise
    if not opened:
        _remove(path)
    return opened


# ---------------------------------------------------------------------------
# Credential server: `exec --server` and `serve`
# ---------------------------------------------------------------------------
# The AWS SDKs' container provider reads AWS_CONTAINER_CREDENTIALS_FULL_URI and
# AWS_CONTAINER_AUTHORIZATION_TOKEN, asks that URL for credentials (the token is
# its Authorization header) and asks again before they expire, so a job that
# runs for hours never holds dead keys.  botocore takes plain http from a
# loopback address only and waits 2 s for an answer: the server answers from
# memory and renews ahead of time in a thread of its own.  Both are threads of
# the process that waits for the command, so neither can outlive it (a port
# keeper may, with no credentials: see _keep_port).

_SERVER_PATH = "/credentials"
_SERVER_WAIT = 1.5           # a request finding expired credentials waits this long
# Any local user can connect.  An SDK sends its request at once and asks once
# per set of credentials, so each connection has 5 s from accept to the end
# of its answer (a byte now and then does not renew it), and 32 at most may
# still be sending their request: enough for a command that starts 32 `aws`
# at the same moment, few threads and descriptors (one each) under a soft
# limit of 256.  A 33rd closes the oldest of those, so that connections
# that send nothing cannot keep the token holder out.
_SERVER_REQUEST_TIME = 5
_SERVER_CONNECTIONS = 32
_SERVER_REQUEST_BYTES = 16384    # a request head; an SDK's is under 1 KiB
# Out of the command's environment: what the SDKs would use before the server,
# and the container provider's other settings (a relative URI or a token file
# wins over ours in botocore).
_SERVER_UNSET = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_SECURITY_TOKEN", "AWS_CREDENTIAL_EXPIRATION", "AWS_PROFILE",
                 "AWS_DEFAULT_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_WEB_IDENTITY_TOKEN_FILE",
                 "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME")
# Options of the default profile (the one the command's SDKs read) that give
# them credentials before they ask a credential server.
_SHADOWING_OPTIONS = ("aws_access_key_id", "credential_process", "role_arn",
                      "web_identity_token_file", "sso_session", "sso_start_url")


class _ServedCredentials(object):
    """What a credential server hands out: one profile's credentials, in memory.

    ``renew()`` takes the stored credentials when they are fresh (a login or
    the refresher renewed them), else logs in again without asking anyone,
    under the profile's renewal lock, as the refresher does; it writes nothing
    but the IdP session.  ``step()`` is one wake-up of the renewal thread: it
    renews on a persistent _RenewalSchedule (a person may log in meanwhile)
    and returns how long to sleep.  ``clock`` is the wall clock; ``tell``
    takes the one line a person must read."""

    def __init__(self, name, clock=time.time, tell=None):
        import threading
        self.name = name
        self.clock = clock
        self.tell = tell or (lambda line: None)
        self.role_arn = None        # the SAML role, asked for again at every renewal
        self.served_role = None     # RoleArn in the answer: the chained role, if any
        self.credentials = None
        self.schedule = None        # from the first credentials on
        self.failure = None         # the last renewal's error, until one succeeds
        self.told = False
        self.changed = threading.Condition()
        self.wake = threading.Event()

    @property
    def next_at(self):
        """When to renew next (epoch seconds), or None before any credentials."""
        return self.schedule.next_at if self.schedule else None

    def _take(self, credentials, role_arn, chain_role_arn, issued_at):
        with self.changed:
            self.credentials, self.role_arn = credentials, role_arn
            self.served_role = chain_role_arn or role_arn
            expires = credentials.expires_at.timestamp()
            if self.schedule is None:
                self.schedule = _RenewalSchedule(issued_at, expires, persistent=True)
            self.schedule.renewed(issued_at, expires)
            self.failure, self.told = None, False
            self.changed.notify_all()

    def _take_stored(self, profile):
        """Take the stored credentials if they are of our role, fresh (_fresh) and
        outlive ours.  True when taken."""
        now = self.clock()
        try:
            store = _credential_store(self.name)
            stored, role_arn = store.read(), (store.role() or (None, None))[0]
        except AwsLoginError as e:
            _debug("stored credentials of %s not used: %s" % (self.name, e))
            return False
        if stored is None or stored.expires_at is None or role_arn is None or (
                self.role_arn is not None and role_arn != self.role_arn):
            return False
        expires = stored.expires_at.timestamp()
        if not _fresh(expires, now) or (
                self.credentials is not None
                and expires <= self.credentials.expires_at.timestamp()):
            return False
        self._take(stored, role_arn, profile.chain_role_arn, now)
        return True

    def renew(self, terminal=None):
        """New credentials now: stored ones when fresh, else from the IdP without
        asking; given a ``terminal`` (the first credentials), asking there when
        only a person can go on."""
        profile = read_profile(self.name)
        if self._take_stored(profile):
            return
        person, deadline = _who_waits(terminal is not None, terminal)
        with _profile_lock(self.name, person=person, deadline=deadline):
            if self._take_stored(profile):      # another process renewed meanwhile
                return
            issued_at = self.clock()
            try:
                credentials, role = _fetch_credentials(
                    profile, Terminal(None, profile.password_prompt), self.role_arn,
                    interactive=False,
                    deadline=deadline or _RenewalSchedule.deadline())
            except InteractionRequired:
                if terminal is None or not terminal.available():
                    raise
                issued_at = self.clock()
                credentials, role = _fetch_credentials(profile, terminal, self.role_arn)
        self._take(credentials, role.arn, profile.chain_role_arn, issued_at)

    def _failed(self, error, now):
        """Back off on the schedule, which never gives up.  The first failure a
        person must act on is told, once."""
        with self.changed:
            self.failure = error
            if self.schedule is None:
                self.schedule = _RenewalSchedule(now, now, persistent=True)
            self.schedule.failed(error, now)
            expires = self.schedule.expires_at
            tell = not self.told and (not error.transient or expires <= now)
            self.told = self.told or tell
            self.changed.notify_all()
        if tell:
            self.tell("aws_login: the credential server of profile %s cannot renew the "
                      "credentials%s: %s" % (self.name, " (they have expired)"
                                             if expires <= now else "", error))

    def step(self):
        now = self.clock()
        if self.schedule is not None and not self.schedule.due(now):
            return self.schedule.sleep(now)
        try:
            self.renew()
        except AwsLoginError as e:
            self._failed(e, now)
        return self.schedule.sleep(self.clock())

    def run(self, stop):
        """The renewal thread: step and sleep until ``stop`` is set."""
        while not stop.is_set():
            try:
                delay = self.step()
            except Exception as e:      # a bug must not end the renewals in silence
                self._failed(AwsLoginError("unexpected %s: %s" % (type(e).__name__, e)),
                             self.clock())
                delay = self.next_at - self.clock()
            self.wake.wait(max(0.0, delay))
            self.wake.clear()

    def _valid(self):
        return (self.credentials is not None
                and self.credentials.expires_at.timestamp() > self.clock())

    def current(self, wait=_SERVER_WAIT):
        """(Credentials, role ARN to serve), valid now; else the error that keeps
        them from being.  Credentials past their renewal time are served while
        valid; expired ones make the request wait up to ``wait`` seconds for a
        renewal that is due (the machine slept), not for one that backs off."""
        deadline = time.monotonic() + wait
        with self.changed:
            while not self._valid():
                left = deadline - time.monotonic()
                if left <= 0 or (self.failure is not None and self.clock() < self.next_at):
                    break
                self.wake.set()
                self.changed.wait(left)
            if self._valid():
                return self.credentials, self.served_role
            failure = self.failure
        try:
            if self._take_stored(read_profile(self.name)):     # a person logged in again
                return self.current(0)
        except AwsLoginError:
            pass
        raise failure or AwsLoginError("the credentials expired and are being renewed; "
                                       "ask again", transient=True)


def _container_credentials(credentials, role_arn):
    """The container-credentials document, as ECS's agent serves it."""
    return {"AccessKeyId": credentials.access_key_id,
            "SecretAccessKey": credentials.secret_access_key,
            "Token": credentials.session_token or "",
            "Expiration": _format_timestamp(credentials.expires_at),
            "RoleArn": role_arn}


def _credential_server(source, token, port=0):
    """An HTTP server on 127.0.0.1:``port`` (0: a free one) that answers GET
    _SERVER_PATH with ``source``'s credentials when the Authorization header is
    ``token`` (compared in constant time): 403 without it, 404 elsewhere, 503
    with the reason when there are no valid credentials.  Not yet serving:
    serve(stop) runs its accept loop, which stop() ends.

    Each connection has a thread and ``request_time`` seconds in all; at most
    ``max_connections`` may be still sending their request (the oldest goes
    for a new one), and an accept that finds no descriptor closes the oldest
    of them and waits before it tries again."""
    import errno
    import hmac
    import http.server
    import io
    import json
    import selectors
    import socket
    import socketserver
    import threading
    from urllib.parse import urlsplit
    expected = token.encode("ascii")

    class RequestReader(io.RawIOBase):
        """A connection's bytes until ``deadline`` (time.monotonic()), ``limit``
        in all: each read waits only for the time left."""

        def __init__(self, connection, deadline, limit):
            io.RawIOBase.__init__(self)
            self.connection, self.deadline, self.limit = connection, deadline, limit

        def readable(self):
            return True

        def readinto(self, buffer):
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("the request took over its time")
            if self.limit <= 0:
                raise ConnectionError("the request is over %d bytes" % _SERVER_REQUEST_BYTES)
            self.connection.settimeout(left)
            count = self.connection.recv_into(memoryview(buffer)[:self.limit])
            self.limit -= count
            return count

    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = "aws_login"
        sys_version = ""

        def setup(self):
            self.deadline = time.monotonic() + self.server.request_time
            http.server.BaseHTTPRequestHandler.setup(self)
            self.rfile.close()
            self.rfile = io.BufferedReader(RequestReader(self.connection, self.deadline,
                                                         _SERVER_REQUEST_BYTES))

        def parse_request(self):
            parsed = http.server.BaseHTTPRequestHandler.parse_request(self)
            self.server.request_read(self.request)
            return parsed

        def log_message(self, format, *args):
            pass        # the terminal is the command's

        def answer(self, status, document):
            body = json.dumps(document).encode("utf-8")
            self.connection.settimeout(max(1.0, self.deadline - time.monotonic()))
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            given = (self.headers.get("Authorization") or "").encode("latin-1", "replace")
            if not hmac.compare_digest(given, expected):
                return self.answer(403, {"Code": "AccessDenied", "Message":
                                         "the Authorization header is not this server's token"})
            if urlsplit(self.path).path != _SERVER_PATH:
                return self.answer(404, {"Code": "NotFound",
                                         "Message": "the credentials are at %s" % _SERVER_PATH})
            try:
                credentials, role_arn = source.current()
            except AwsLoginError as e:
                code = [c.__name__ for c in type(e).__mro__ if c.__name__[0] != "_"][0]
                return self.answer(503, {"Code": code, "Message": _visible(e)})
            self.answer(200, _container_credentials(credentials, role_arn))

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        block_on_close = False      # 3.7+
        request_queue_size = 128    # the listen backlog: a burst waits to be accepted
        request_time = _SERVER_REQUEST_TIME
        max_connections = _SERVER_CONNECTIONS
        OUT_OF_DESCRIPTORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)

        def __init__(self, address, handler):
            self.guard = threading.Lock()
            self.reading = {}       # connection -> when accepted, until its request is read
            self.pause = 0.0        # the accept loop's wait while descriptors run out
            self.stopped = threading.Event()
            self.wake_r, self.wake_w = os.pipe()    # server_close() closes them, even here
            http.server.HTTPServer.__init__(self, address, handler)

        def server_bind(self):      # HTTPServer's looks the host name up: slow, not needed
            socketserver.TCPServer.server_bind(self)
            self.server_name, self.server_port = self.server_address[:2]
            self.socket.setblocking(False)      # a connection gone before accept() blocks not

        def serve(self, stop):
            """Accept connections, each to a thread of its own, until ``stop`` is
            set and stop() writes to the loop's pipe."""
            selector = (selectors.PollSelector if hasattr(selectors, "PollSelector")
                        else selectors.SelectSelector)()
            try:
                selector.register(self.socket, selectors.EVENT_READ)
                selector.register(self.wake_r, selectors.EVENT_READ)
                while not stop.is_set():
                    if any(key.fileobj is self.socket for key, _ in selector.select()) \
                            and not stop.is_set():
                        self.accept()
            finally:
                selector.close()
                self.stopped.set()

        def stop(self):
            os.write(self.wake_w, b"x")
            self.stopped.wait(5)

        def accept(self):
            try:
                connection, address = self.socket.accept()
            except OSError as e:
                if e.errno in self.OUT_OF_DESCRIPTORS:
                    self.out_of_descriptors()
                return              # else gone already (EAGAIN, ECONNABORTED)
            self.pause = 0.0
            with self.guard:
                if len(self.reading) >= self.max_connections:
                    self.hang_up_oldest()
                self.reading[connection] = time.monotonic()
            try:
                self.process_request(connection, address)
            except Exception:
                self.handle_error(connection, address)
                self.shutdown_request(connection)

        def hang_up_oldest(self):
            """Shut the connection that has been sending its request longest; its
            thread then closes it.  Under the guard: a connection is in reading
            until just before its thread closes it, so no descriptor number
            that another connection took since is ever shut."""
            oldest = min(self.reading, key=self.reading.get)
            del self.reading[oldest]
            try:
                oldest.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

        def out_of_descriptors(self):
            """accept() found no descriptor free while the connection waits, so the
            listening socket stays readable: free one (the oldest connection
            still sending) and wait a moment, longer each time none could be
            freed, rather than spin."""
            with self.guard:
                freed = bool(self.reading)
                if freed:
                    self.hang_up_oldest()
            self.pause = 0.05 if freed else min(1.0, max(0.05, 2 * self.pause))
            time.sleep(self.pause)

        def request_read(self, connection):
            with self.guard:
                self.reading.pop(connection, None)

        def shutdown_request(self, request):
            self.request_read(request)
            http.server.HTTPServer.shutdown_request(self, request)

        def server_close(self):
            http.server.HTTPServer.server_close(self)
            for fd in (self.wake_r, self.wake_w):
                os.close(fd)

        def handle_error(self, request, client_address):
            _debug("credential server: %s" % (sys.exc_info()[1],))

    try:
        return Server(("127.0.0.1", port), Handler)
    except OSError as e:
        raise UsageError("cannot listen on 127.0.0.1:%d: %s" % (port, e.strerror or e))


def _server_url(port):
    return "http://127.0.0.1:%d%s" % (port, _SERVER_PATH)


def _server_environment(port, token, region=None, environ=None, profile=None):
    """The command's environment: the server's URL and token, and nothing the
    SDKs would use before them."""
    env = dict(os.environ if environ is None else environ)
    for name in _SERVER_UNSET:
        env.pop(name, None)
    env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = _server_url(port)
    env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = token
    if region:
        env["AWS_REGION"] = env["AWS_DEFAULT_REGION"] = region
    if profile:
        env["AWS_LOGIN_EXEC"] = profile     # how a nested exec is recognised
    return env


def _server_shadowed(name):
    """What the SDKs of a command served profile ``name``'s credentials would use
    instead: credentials in the default profile (the command's, with
    AWS_PROFILE taken out), as (where, same), ``same`` when they are this very
    profile's own; or None."""
    store = _FileStore("default")
    section = store.section()
    if section and section.get("aws_access_key_id"):
        return "[default] in %s holds keys" % store.path, name == "default" and _is_ours(section)
    path = _aws_config_path()
    parser = _parse_ini(_read_text(path) or "", path, default_section="\x00")
    for header in ("default", "profile default"):
        for option in _SHADOWING_OPTIONS:
            if parser.has_section(header) and parser.get(header, option, fallback=""):
                same = (name == "default" and option == "credential_process"
                        and _profile_mode(name) == "process")
                return "[%s] in %s sets %s" % (header, path, option), same
    return None


def _servers_dir():
    return os.path.join(_login_root(), "servers")


class _ServerRecord(object):
    """servers/PID, ``PORT STARTED PROFILE`` (no token), 0600: locked while the
    server lives, removed when it stops; a killed server's is ignored, then swept."""

    def __init__(self, name, port):
        self.name, self.port = name, port

    def __enter__(self):
        import fcntl
        _private_dir(_login_root())
        _private_dir(_servers_dir())
        _sweep_server_records()
        self.path = os.path.join(_servers_dir(), str(os.getpid()))
        temp = os.path.join(_servers_dir(), ".%d.tmp" % os.getpid())
        self.fd = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)     # locked before anyone can see it
        os.write(self.fd, ("%d %d %s\n" % (self.port, time.time(), _quote_name(self.name)))
                 .encode("ascii"))
        os.rename(temp, self.path)
        return self

    def __exit__(self, *exc):
        try:
            os.unlink(self.path)        # before the lock goes, as the refresher does
        except OSError:
            pass
        os.close(self.fd)
        return False


def _server_records():
    """(path, words, alive) for each record in servers/ that is ours."""
    records = []
    for file_name in _listdir(_servers_dir()):
        path = os.path.join(_servers_dir(), file_name)
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            if os.fstat(fd).st_uid != os.getuid():
                continue
            words = os.read(fd, 1000).decode("ascii", "replace").split()
            alive = _locked_by_another(fd)
        finally:
            os.close(fd)
        records.append((path, [os.path.basename(path)] + words, alive))
    return records


def _sweep_server_records():
    for path, _, alive in _server_records():
        if not alive:
            try:
                os.unlink(path)
            except OSError:
                pass


def _running_servers():
    """{"pid", "port", "profile", "started"} of every credential server running now."""
    found = []
    for _, words, alive in _server_records():
        try:
            if alive:
                found.append({"pid": int(words[0]), "port": int(words[1]),
                              "started": _format_timestamp(_utc(float(words[2]))),
                              "profile": _unquote_name(words[3])})
        except (ValueError, IndexError):
            pass
    return found


def _tell_person(line):
    """One line where the person is: the terminal, else standard error."""
    terminal = Terminal()
    try:
        if terminal.available():
            terminal.tell(line)
            return
    finally:
        terminal.close()
    sys.stderr.write(_visible(line) + "\n")
    sys.stderr.flush()


def _start_serving(name):
    """(_ServedCredentials holding profile ``name``'s first credentials, a new token).
    The first credentials may be asked for on the terminal."""
    import secrets
    source = _ServedCredentials(name, tell=_tell_person)
    terminal = Terminal()
    try:
        source.renew(terminal)
    finally:
        terminal.close()
    return source, secrets.token_urlsafe(32)


def _serve_in_threads(source, server):
    """Serve and renew, each in a daemon thread; returns the Event that stops them."""
    import threading
    stop = threading.Event()

    def serve():
        try:
            server.serve(stop)
        except Exception:
            if not stop.is_set():
                raise

    for target, args in ((serve, ()), (source.run, (stop,))):
        thread = threading.Thread(target=target, args=args, name="credential server")
        thread.daemon = True
        thread.start()
    return stop


def _stop_serving(server, stop, source):
    """Stop the renewals and the accept loop (woken through its pipe), then
    close the port: at once, unless a port keeper took it over."""
    stop.set()
    source.wake.set()
    server.stop()
    server.server_close()


def _wait_for_child(child, signals):
    """Wait for ``child``, passing on each of ``signals`` that a process sent us.
    The terminal's (Ctrl-C, a hang-up) reached it already, as it shares our
    process group: sent twice, a second Ctrl-C makes some programs (terraform)
    abort their clean-up.  The signals are blocked in every thread and taken
    here.  Returns the child's exit status as Popen gives it."""
    import signal
    waited = tuple(signals) + (signal.SIGCHLD,)
    while child.poll() is None:
        if hasattr(signal, "sigtimedwait"):
            info = signal.sigtimedwait(waited, 60)
            signum, by_process = (info.si_signo, info.si_code <= 0) if info else (None, False)
        else:       # no siginfo here (macOS): every one is passed on
            signum, by_process = signal.sigwait(waited), True
        if signum in signals and by_process and child.poll() is None:
            try:
                os.kill(child.pid, signum)
            except OSError:
                pass
    return child.returncode


# When `exec --server` ends, processes its command left in the background
# still have the URL and the token.  Were the port closed, another local user
# could listen on it and answer them (credentials of theirs, say).  So while
# any process of ours still has the URL in its environment (Linux's /proc),
# a small process keeps the port, answering 410 to every request, and gives
# it back when the last of them exits.  It holds no credentials and no token.

_KEEPER_CHECK = 1.0          # seconds between two looks at who still has the URL
_GONE_ANSWER = (b"HTTP/1.0 410 Gone\r\nContent-Type: application/json\r\n"
                b"Cache-Control: no-store\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s")
_GONE_DOCUMENT = (b'{"Code": "Gone", "Message": "this credential server ended with the command '
                  b'that exec --server ran; no credentials are served here any more"}')


def _url_holders(url, among=None):
    """Pids of the processes of ours (``among`` these, else all) whose environment
    sets AWS_CONTAINER_CREDENTIALS_FULL_URI to ``url``: read from /proc, so
    none where there is no /proc.  A process that changed its environment
    since it started is not seen as it is now."""
    entry = ("AWS_CONTAINER_CREDENTIALS_FULL_URI=" + url).encode("ascii")
    if among is None:
        among = [int(p) for p in _listdir(_PROC) if p.isdigit()]
    holders = set()
    for pid in among:
        try:
            with open("%s/%d/environ" % (_PROC, pid), "rb") as f:
                environ = f.read()
        except OSError:
            continue        # gone, or another user's
        if pid != os.getpid() and entry in environ.split(b"\0"):
            holders.add(pid)
    return holders


def _start_port_keeper(server, url):
    """Hand the listening socket of ``server`` to a port keeper (_keep_port), a
    fresh small interpreter in a session of its own; None if none can start."""
    import subprocess
    fd = server.socket.fileno()
    code_fd = None if _own_file()[0] else _code_fd()
    try:
        argv = _bootstrap_argv("_keep_port(*sys.argv[1:])", [str(fd), url], code_fd=code_fd)
    except ConfigError:
        return None
    env = dict((k, v) for k, v in os.environ.items() if k not in _SERVER_UNSET + (
        "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN"))
    try:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, cwd="/", env=env,
                                pass_fds=[fd] + ([code_fd] if code_fd is not None else []),
                                start_new_session=True).pid
    except OSError as e:
        _debug("no port keeper: %s" % e)
        return None


def _keep_port(fd, url):
    """The port keeper: answer 410 on listening socket ``fd`` until no process
    has ``url`` (_url_holders); checks the ones it knows every _KEEPER_CHECK
    seconds, and all processes when those are gone."""
    import select
    import socket
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 0, int(fd))
    listener.setblocking(False)
    holders, checked = _url_holders(url), time.monotonic()
    while holders:
        if select.select([listener], [], [], _KEEPER_CHECK)[0]:
            _answer_gone(listener)
        if time.monotonic() - checked >= _KEEPER_CHECK:
            holders = _url_holders(url, holders) or _url_holders(url)
            checked = time.monotonic()
    return 0


def _answer_gone(listener):
    """One connection: its request head read within a second, then the 410."""
    try:
        connection, _ = listener.accept()
    except BlockingIOError:
        return
    except OSError:
        time.sleep(0.1)     # out of descriptors: the socket stays readable; no spin
        return
    with connection:
        deadline, head = time.monotonic() + 1.0, b""
        try:
            while b"\r\n\r\n" not in head and len(head) < _SERVER_REQUEST_BYTES:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                connection.settimeout(left)
                chunk = connection.recv(4096)
                if not chunk:
                    break
                head += chunk
            connection.settimeout(1.0)
            connection.sendall(_GONE_ANSWER % (len(_GONE_DOCUMENT), _GONE_DOCUMENT))
        except OSError:
            pass


def _exec_with_server(name, command):
    """Run ``command`` as our child with profile ``name``'s credential server,
    for as long as it runs; return its exit status (128 + N for signal N)."""
    import signal
    import subprocess
    profile = read_profile(name)
    shadow = _server_shadowed(name)
    if shadow and not shadow[1]:
        raise ConfigError("the command would not ask the credential server: %s, which the "
                          "AWS CLI and SDKs read first; remove them, or run exec without "
                          "--server" % shadow[0])
    if shadow:
        _warn("%s: the command's AWS SDKs use those before asking the credential server"
              % shadow[0])
    source, token = _start_serving(name)
    server = _credential_server(source, token)
    port = server.server_address[1]
    env = _server_environment(port, token, profile.region, profile=name)
    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, signals + (signal.SIGCHLD,))
    import resource     # here: in_child runs between fork and exec, and imports nothing

    def in_child():
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        _give_back_core_limit(resource)

    sys.stdout.flush()
    sys.stderr.flush()
    with _ServerRecord(name, port):
        try:
            # No thread runs yet: in_child runs safely between fork and exec.
            child = subprocess.Popen(command, env=env, preexec_fn=in_child)
        except FileNotFoundError:
            raise CommandNotFoundError("%s: command not found" % command[0])
        except PermissionError:
            raise CommandNotFoundError("%s: permission denied" % command[0])
        stop = _serve_in_threads(source, server)
        try:
            status = _wait_for_child(child, signals)
            if _url_holders(_server_url(port)):
                _start_port_keeper(server, _server_url(port))
        finally:
            _stop_serving(server, stop, source)
    return 128 - status if status < 0 else status


def _serve(name, port=0):
    """Serve profile ``name``'s credentials in the foreground until SIGINT, SIGTERM
    or SIGHUP; print the two variables to export."""
    import signal
    read_profile(name)
    shadow = _server_shadowed(name)
    if shadow:
        _warn("%s: AWS SDKs that read this machine's files use those before asking the "
              "credential server" % shadow[0])
    source, token = _start_serving(name)
    server = _credential_server(source, token, port)
    port = server.server_address[1]
    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    with _ServerRecord(name, port):
        stop = _serve_in_threads(source, server)
        try:
            sys.stdout.write("export AWS_CONTAINER_CREDENTIALS_FULL_URI=%s\n"
                             "export AWS_CONTAINER_AUTHORIZATION_TOKEN=%s\n"
                             % (_server_url(port), token))
            sys.stdout.flush()
            sys.stderr.write("Serving the credentials of profile %s on 127.0.0.1:%d (pid %d) "
                             "until Ctrl-C. The token is a secret: it gives the credentials "
                             "to whoever holds it.\n" % (name, port, os.getpid()))
            sys.stderr.flush()
            signal.sigwait(signals)
        finally:
            _stop_serving(server, stop, source)


# ---------------------------------------------------------------------------
# Python API (for vendoring)
# ---------------------------------------------------------------------------

def get_credentials(profile=None, password=None, passcode=None, role_arn=None,
                    interactive=False, store=True):
    """Log in for ``profile`` and return its Credentials.

    With ``interactive`` and no terminal, the password and Duo passcode are
    asked through password_prompt's program, if there is one, within
    _RenewalSchedule.TIME_LIMIT.  Without ``interactive`` nothing is ever
    asked: the username, the factor
    and (when the IdP offers several) the role must be configured, and the
    password must come from ``password``, the keyring or the profile, unless
    the saved IdP session still stands; otherwise InteractionRequired (or
    another AwsLoginError) is raised at once.  With ``store`` the credentials
    are written where the profile's mode keeps them, as `login` does (no
    refresher is started).  Like `login`, it waits while another login of the
    profile runs; without ``interactive`` (or a terminal), for
    _RenewalSchedule.TIME_LIMIT at most, and not behind a person's login
    (InteractionRequired at once)."""
    name = _profile_name(profile)
    settings = read_profile(name)
    if password:        # an empty password is no password: it is never sent
        settings.password = password
        settings.password_source = "prompt"     # like a typed one: kept if keyring is on
    if passcode is not None:
        settings.passcode = passcode
    terminal = Terminal(prompt=settings.password_prompt) if interactive else Terminal(None)
    person, deadline = _who_waits(interactive, terminal)
    with _login_lock(name, person, deadline):
        if store:
            credentials, _ = login(settings, terminal, role_arn, interactive=interactive,
                                   deadline=deadline)
            return credentials
        return _fetch_credentials(settings, terminal, role_arn, interactive, deadline)[0]


def cached_credentials(profile=None, min_seconds_left=0):
    """The profile's stored credentials if they have ``min_seconds_left`` or more,
    else None.  No network, no prompt."""
    credentials = stored_credentials(_profile_name(profile))
    if credentials is None or credentials.expires_at is None:
        return credentials
    if credentials.expires_at.timestamp() - time.time() < min_seconds_left:
        return None
    return credentials


# ---------------------------------------------------------------------------
# Doctor: what holds in a real setup, one line per check
# ---------------------------------------------------------------------------
# `doctor` reads and asks, never writes: no password is sent (the IdP gets an
# AuthnRequest with no Authorization and no cookie, as login's first request
# is), no session is saved, no mark set or lifted.  Each network wait has a
# short bound.  Optional parts that are absent (keyring, plugin, refresher)
# are information; a check that fails carries the error class whose exit code
# doctor ends with (the first failing one's).

_DOCTOR_WAIT = 5             # seconds for each lookup, connection and answer

_Check = _named_tuple("_Check", ("name", "state", "text", "error"), """One line of
    `doctor`: the check's name, "ok", "info" or "FAIL", what holds or what to do,
    and for a failure the error class whose exit code doctor ends with.""")


def _ok(name, text):
    return _Check(name, "ok", text, None)


def _info(name, text):
    return _Check(name, "info", text, None)


def _fail(name, text, error):
    return _Check(name, "FAIL", text, error)


def _option_fix(name, option):
    """The configure command that sets ``option`` right; a secret has no flag."""
    if option.flag is None:
        return ": change it there"
    return ": %s" % _run_hint(name, "configure %s %s" % (_flag(option), option.flag))


def _doctor_settings(name):
    """Each option of the profile through its check (raw values, as configure
    reads them); the Profile when all hold, else None."""
    path = _config_path()
    parser = _parse_ini(_read_text(path) or "", path)
    if not parser.has_section(name):
        return [_fail("settings", "profile %s is not in %s: %s" % (
            name, path, _run_hint(name, "configure")), ConfigError)], None
    checks = []
    for key, value in parser.items(name):
        if key in _OPTION and value.strip():
            try:
                _check_option(key, value)
            except ConfigError as e:
                checks.append(_fail("settings", "%s in [%s] of %s%s" % (
                    e, name, path, _option_fix(name, _OPTION[key])), ConfigError))
    if not parser.get(name, "ecp_endpoint_url", fallback="").strip():
        checks.append(_fail("settings", "profile %s has no ecp_endpoint_url: %s" % (
            name, _run_hint(name, "configure --ecp-endpoint-url URL")), ConfigError))
    if checks:
        return checks, None
    try:
        profile = read_profile(name)
    except AwsLoginError as e:
        return [_fail("settings", str(e), type(e))], None
    return [_ok("settings", "[%s] of %s: every option valid" % (name, path))], profile


def _doctor_connection(profile, context):
    """DNS, TCP and TLS to the IdP, each its own line; stops at the first failure.
    Through a proxy the request itself (the ECP check) tells."""
    from urllib.parse import urlsplit
    url = profile.ecp_endpoint_url
    parts = urlsplit(url)
    https = parts.scheme == "https"
    host, port = parts.hostname, parts.port or (443 if https else 80)
    proxy = _proxy_for(url)
    if proxy is not None:
        return [_info("dns", "HTTPS to the IdP goes through %s: the ECP check below "
                             "reaches it that way" % _proxy_label(proxy))], True
    checks = []
    try:
        addresses = _resolve(host, port, _DOCTOR_WAIT)
        checks.append(_ok("dns", "%s resolves to %s" % (host, ", ".join(
            sorted(set(a[4][0] for a in addresses))))))
        sock = _connect(host, port, time.monotonic() + _DOCTOR_WAIT)
        checks.append(_ok("tcp", "%s accepts connections" % _netloc(host, port)))
    except OSError as e:
        return checks + [_fail("tcp" if checks else "dns", _describe_network_error(e, url),
                               NetworkError)], False
    try:
        if not https:
            return checks + [_info("tls", "none: plain http to this machine")], True
        sock.settimeout(_DOCTOR_WAIT)
        sock = context.wrap_socket(sock, server_hostname=host)
        if not profile.verify_ssl_certificate:
            return checks + [_info("tls", "certificate checking is OFF (%s): anyone on the "
                                          "path can read the password" %
                                   profile.where("verify_ssl_certificate"))], True
        return checks + [_ok("tls", "the certificate of %s is trusted" % host)], True
    except (OSError, ValueError) as e:          # CertificateError is a ValueError on 3.6
        return checks + [_fail("tls", _describe_network_error(e, url, context),
                               NetworkError)], False
    finally:
        sock.close()


def _ecp_meaning(answer, acs_url):
    """What the IdP's answer to an AuthnRequest without a password says of the
    endpoint, as a _Check: login's own reading of it (_parse_ecp_answer)."""
    said = "HTTP %d" % answer.status
    try:
        _parse_ecp_answer(answer, acs_url)
        return _ok("ecp", "%s with a SAML Response: the endpoint speaks ECP" % said)
    except AuthenticationError as e:
        if answer.status == 401:
            asks = answer.headers.get("WWW-Authenticate") or "no WWW-Authenticate"
            return _ok("ecp", "%s (%s): the endpoint asks for the password, as an ECP "
                              "endpoint does" % (said, asks.split(" ")[0]))
        if not _looks_like_html(answer):
            return _ok("ecp", "%s, a SOAP refusal without a password: the endpoint speaks "
                              "ECP" % said)
        return _fail("ecp", "%s: %s" % (said, e), IdPError)
    except IdPError as e:
        return _fail("ecp", "%s: %s" % (said, e), IdPError)


def _clock_check(who, answer, sent, error):
    """This machine's clock against the Date header of ``answer`` (asked at
    ``sent``, epoch seconds)."""
    theirs = _http_date(answer.headers.get("Date"))
    if theirs is None:
        return _info("clock", "%s sent no Date header to compare with" % who)
    skew = (sent + time.time()) / 2 - theirs
    if abs(skew) <= _CLOCK_SKEW_MAX:
        return _ok("clock", "within %ds of %s's" % (round(abs(skew)), who))
    return _fail("clock", "this machine's clock is %ds %s of %s's: set it right (NTP); "
                          "signatures and assertions are refused beyond %d minutes" % (
                              round(abs(skew)), "ahead" if skew > 0 else "behind", who,
                              _CLOCK_SKEW_MAX // 60), error)


def _doctor_idp(profile):
    """The IdP endpoint, then the clock against the IdP's and STS's."""
    session = _idp_session(profile, profile.username or "-", None)
    session.jar = _CookieJar()      # no saved session: the answer to no password
    context, acs_url = session.ssl_context, session.acs_url
    checks, reached = _doctor_connection(profile, context)
    if not reached:
        return checks + [_doctor_sts(profile, context)]
    session.deadline = time.monotonic() + 2 * _DOCTOR_WAIT
    sent = time.time()
    try:
        answer = session.send({})
        checks += [_ecp_meaning(answer, acs_url), _clock_check("the IdP", answer, sent,
                                                               IdPError)]
    except (NetworkError, IdPError) as e:
        checks.append(_fail("ecp", str(e), type(e)))
    return checks + [_doctor_sts(profile, context)]


def _doctor_sts(profile, idp_context):
    """The clock against STS's Date (a GET, no credentials, no signature)."""
    try:
        endpoint = _sts_endpoint(_profile_partition(profile), _profile_region(profile))
        sent = time.time()
        answer = _http_request(endpoint, None, {}, _aws_ssl_context(profile, idp_context),
                               read_timeout=_DOCTOR_WAIT, connect_timeout=_DOCTOR_WAIT)
    except NetworkError as e:
        return _fail("clock", "cannot ask STS the time: STS at %s: %s" % (endpoint, e),
                     NetworkError)
    except AwsLoginError as e:
        return _fail("clock", "cannot ask STS the time: %s" % e, type(e))
    return _clock_check("STS", answer, sent, STSError)


def _doctor_keyring(profile):
    if not profile.enable_keyring:
        return _info("keyring", "off (enable_keyring is not set): login asks for the "
                                "password whenever the IdP session has ended")
    module = _keyring(say=False)      # doctor's line says it
    if module is None:
        return _info("keyring", "enable_keyring is set, but this Python (%s) has no keyring "
                                "module: `%s -m pip install keyring`, else login asks for the "
                                "password" % (sys.executable, sys.executable))
    backend = getattr(module, "get_keyring", None)
    try:
        backend = type(backend()).__name__ if backend else module.__name__
        username = profile.username or ([s.username for s in _jars_for(
            profile.ecp_endpoint_url)] + [None])[0]
        if username is None:
            return _info("keyring", "backend %s; no username yet to look up" % backend)
        user = _keyring_user(profile, username)
        held = module.get_password(_KEYRING_SERVICE, user) is not None
    except Exception as e:
        return _info("keyring", "cannot read the keyring (%s): login asks for the "
                                "password" % type(e).__name__)
    return _info("keyring", "backend %s %s a password for %s%s" % (
        backend, "holds" if held else "holds no", user,
        "" if held else ": the next login asks for it and keeps it"))


def _doctor_refused(profile):
    marked = [source for source in _PASSWORD_SOURCES
              if os.path.exists(_refused_path(profile.name, source))]
    if not marked:
        return _ok("refused", "no refused-password mark: a stored password may be sent")
    return _fail("refused", "the IdP refused the password stored in %s, so renewals do not "
                            "send it: %s (a person's password lifts the mark)" % (
                                " and ".join(_stored_where(profile, s) for s in marked),
                                _run_hint(profile.name)), InteractionRequired)


def _doctor_environment(name):
    """Variables that make the AWS CLI use something else than the profile."""
    keys = [v for v in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
            if os.environ.get(v)]
    if keys:
        return _fail("environment", "%s set here: the AWS CLI uses those keys, not profile "
                                    "%s (unless given --profile %s): unset %s" % (
                                        ", ".join(keys), name, name, " ".join(keys)),
                     ConfigError)
    chosen = os.environ.get("AWS_PROFILE") or os.environ.get("AWS_DEFAULT_PROFILE")
    if chosen and chosen != name:
        return _info("environment", "AWS_PROFILE is %s: `aws` uses profile %s only with "
                                    "--profile %s" % (chosen, name, name))
    return _ok("environment", "no AWS keys in the environment")


def _doctor_config_section(name, mode):
    """Options of the profile's section in ~/.aws/config that the AWS CLI takes
    before the keys login writes (file mode)."""
    path = _aws_config_path()
    parser = _parse_ini(_read_text(path) or "", path, default_section="\x00")
    section = _aws_config_section(name)
    found = [o for o in _SHADOWING_OPTIONS if o != "aws_access_key_id" and parser.has_section(
        section) and parser.get(section, o, fallback="").strip()]
    if mode == "file" and found:
        return [_fail("mode", "[%s] in %s sets %s: the AWS CLI uses that, not the keys login "
                              "writes: remove it" % (section, path, " and ".join(found)),
                      ConfigError)]
    return []


def _moved_file(command):
    """The interpreter or the file a credential_process line runs, when gone."""
    import json
    import re
    import shlex
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    loader = re.search(r'SourceFileLoader\("(?:[^"\\]|\\.)*",("(?:[^"\\]|\\.)*")\)', command)
    paths = words[:1] + ([json.loads(loader.group(1))] if loader else
                         [w for w in words if w.endswith(".py")])
    gone = [p for p in paths if os.path.isabs(p) and not os.path.exists(p)]
    return gone[0] if gone else None


def _doctor_process_line(name):
    path = _aws_config_path()
    parser = _parse_ini(_read_text(path) or "", path, default_section="\x00")
    command = parser.get(_aws_config_section(name), "credential_process", fallback="")
    gone = _moved_file(command)
    if gone:
        return _fail("credential_process", "[%s] in %s runs %s, which is gone: %s from the "
                                           "copy you use now" % (
                                               _aws_config_section(name), path, gone,
                                               _run_hint(name, "configure --credential-process "
                                                               "true")), ConfigError)
    return _ok("credential_process", "[%s] in %s runs aws_login, and its files are there"
               % (_aws_config_section(name), path))


def _doctor_store(name):
    """The mode, and what the AWS CLI will actually use for the profile."""
    mode = _profile_mode(name)
    checks = [_doctor_environment(name)] + _doctor_config_section(name, mode)
    section = _FileStore(name).section()
    where = "[%s] in %s" % (name, _credentials_path())
    if mode == "process":
        checks.insert(0, _info("mode", "process: the AWS CLI runs aws_login as credential_process"))
        checks.append(_doctor_process_line(name))
        if section and section.get("aws_access_key_id"):
            checks.append(_fail("mode", "%s holds keys: the AWS CLI uses them, not the "
                                        "credential_process: remove them" % where, ConfigError))
        return checks
    checks.insert(0, _info("mode", "file: login writes %s and starts a refresher" % where))
    if section is None or not section.get("aws_access_key_id"):
        checks.append(_info("credentials", "%s holds no keys yet: %s" % (
            where, _run_hint(name))))
    elif not _is_ours(section):
        checks.append(_fail("credentials", "%s holds keys aws_login did not write: login "
                                           "will not overwrite them; remove them or use another "
                                           "profile" % where, CredentialsFileError))
    else:
        expires = _expiry(section.get(_EXPIRATION_KEY, ""))
        live = expires is not None and expires.timestamp() > time.time()
        checks.append(_info("credentials", "%s: %s (%s)" % (
            where, "logged in until %s" % _local_time(expires) if live else "expired",
            section.get(_ROLE_KEY) or "role unknown")))
    return checks


def _doctor_background(name):
    mode = _profile_mode(name)
    state = _refresher_state(name)
    if state and state.alive:
        checks = [_ok("refresher", "pid %d renews profile %s%s" % (
            state.pid, name, " on %s" % state.host if state.local is False else ""))]
    elif state:
        checks = [_info("refresher", "pid %d has ended: the next login starts one" % state.pid)]
    else:
        checks = [_info("refresher", "none running%s" % (
            " (process mode needs none)" if mode == "process" else ""))]
    for server in _running_servers():
        if server["profile"] == name:
            checks.append(_info("server", "a credential server, pid %d, serves profile %s on "
                                          "port %d" % (server["pid"], name, server["port"])))
    return checks


def _doctor_plugin():
    """Each AWS CLI found, run with the user's config (each run bounded)."""
    section = _plugin_section(_aws_config_path()) or {}
    on = section.get("login") == "aws_login"
    paths = _aws_cli_paths()
    if not paths:
        return [_info("plugin", "no AWS CLI found (PATH, pyenv, pipx)")]
    checks = []
    for path, (fares, _, loads) in zip(paths, _each(
            lambda p: _cli_fares(p, on, section, _plugin_command()), paths)):
        broken = "fails" in fares or "does not" in fares
        checks.append(_Check("plugin", "FAIL" if broken else "ok" if loads else "info",
                             "%s %s" % (path, fares), ConfigError if broken else None))
    return checks


def _guarded(name, function, *args):
    """``function(*args)``'s checks (a list, or one), or one failing check of
    ``name`` for the error that stopped it (a file unreadable, a CA bundle
    that does not load): the other checks still run."""
    try:
        checks = function(*args)
    except AwsLoginError as e:
        return [_fail(name, str(e), type(e))]
    return checks if isinstance(checks, list) else [checks]


def _doctor_checks(name):
    """Every check of profile ``name``, in the order a login meets them, each
    as soon as it is done."""
    try:
        checks, profile = _doctor_settings(name)
    except AwsLoginError as e:
        checks, profile = [_fail("settings", str(e), type(e))], None
    for check in checks:
        yield check
    if profile is not None:
        for check in (_guarded("idp", _doctor_idp, profile)
                      + _guarded("keyring", _doctor_keyring, profile)):
            yield check
    else:
        yield _info("idp", "not checked until the settings hold")
    for check in (_guarded("refused", _doctor_refused, profile or Profile(name))
                  + _guarded("mode", _doctor_store, name)
                  + _guarded("refresher", _doctor_background, name)
                  + _guarded("plugin", _doctor_plugin)):
        yield check


def _doctor(name, write):
    """Run the checks, writing each line as it comes; the first failure's error."""
    failed = []
    for check in _doctor_checks(name):
        write("%-4s  %-18s %s\n" % (check.state, check.name, _visible(check.text)))
        if check.error is not None:
            failed.append(check)
    if failed:
        first = failed[0]
        raise first.error("%d check(s) failed, the first: %s" % (len(failed), first.name))


# ---------------------------------------------------------------------------
# Demo: the whole job against a built-in IdP and STS
# ---------------------------------------------------------------------------
# `demo` runs what a login runs (configure, the ECP login with a Duo factor,
# the role menu, AssumeRoleWithSAML, the credentials file, whoami, logout) in
# a throwaway home, against an IdP and an STS of its own: plain HTTP on
# 127.0.0.1, free ports, in a child process that ends when its stdin closes,
# that is when the demo ends, however it ends.  They check what real ones
# check: the AuthnRequest's shape, Basic auth, the Duo factor header; the
# Response's Destination, audience, lifetime and role pair; the SigV4
# signature of whoami, with the secret the demo STS handed out.  Our client
# checks no XML signature (STS does), so the demo IdP signs nothing; the demo
# STS accepts only Responses whose ID its IdP issued instead.

_DEMO_USER = "demo"
_DEMO_PASSWORD = "demo"         # not a secret: the demo prints it
_DEMO_ECP_PATH = "/idp/profile/SAML2/SOAP/ECP"
_DEMO_ROLES = ("arn:aws:iam::111122223333:role/Developer",
               "arn:aws:iam::444455556666:role/ReadOnly")
_DEMO_AUDIENCE = "urn:amazon:webservices"
_DEMO_SKEW = 300                # seconds a request's time may be off, as AWS allows


def _demo_recent(text, now=None):
    try:
        return abs(_parse_timestamp(text).timestamp() - (now or time.time())) <= _DEMO_SKEW
    except (TypeError, ValueError):
        return False


def _demo_ecp_refusal(content_type, body):
    """(request ID, None) for an ECP AuthnRequest as AWS's would be sent (SAML
    ECP profile, 4.2.4), else (None, why not)."""
    if content_type.split(";")[0].strip().lower() != "text/xml":
        return None, "an ECP request is text/xml"
    try:
        root, _ = _read_server_xml(body, IdPError, "the request")
    except IdPError as e:
        return None, str(e)
    request = root.find("{%s}Body/{%s}AuthnRequest" % (_SOAP_NS, _SAMLP_NS))
    if root.tag != "{%s}Envelope" % _SOAP_NS or request is None:
        return None, "no AuthnRequest in a SOAP envelope"
    for holds, what in ((request.get("Version") == "2.0", "SAML version 2.0"),
                        (request.get("ProtocolBinding") == _PAOS_BINDING, "the PAOS binding"),
                        (request.get("AssertionConsumerServiceURL") == _PARTITIONS["aws"][0],
                         "AWS's sign-in URL as the ACS"),
                        (request.findtext("{%s}Issuer" % _SAML_NS) == _DEMO_AUDIENCE,
                         "AWS as the issuer"),
                        (bool(request.get("ID")), "an ID"),
                        (_demo_recent(request.get("IssueInstant")), "a current IssueInstant")):
        if not holds:
            return None, "the AuthnRequest lacks " + what
    return request.get("ID"), None


def _demo_saml_envelope(request_id, response_id, issuer, now):
    """The IdP's ECP answer: an ecp:Response header and a SAML Response for
    AWS, its assertion valid for five minutes."""
    q, acs = _xml_attribute, _PARTITIONS["aws"][0]
    at, until = _format_timestamp(_utc(now)), _format_timestamp(_utc(now + 300))
    values = {_ROLE_ATTRIBUTE: ["%s,arn:aws:iam::%s:saml-provider/DemoIdP" % (
        arn, arn.split(":")[4]) for arn in _DEMO_ROLES],
              _SESSION_NAME_ATTRIBUTE: [_DEMO_USER], _SESSION_DURATION_ATTRIBUTE: ["3600"]}
    attributes = "".join('<saml:Attribute Name=%s>%s</saml:Attribute>' % (q(name), "".join(
        "<saml:AttributeValue>%s</saml:AttributeValue>" % v for v in vs))
        for name, vs in sorted(values.items()))
    return (
        '<S:Envelope xmlns:S="%s"><S:Header><ecp:Response xmlns:ecp="%s" S:mustUnderstand="1" '
        'S:actor="http://schemas.xmlsoap.org/soap/actor/next" AssertionConsumerServiceURL=%s/>'
        '</S:Header><S:Body><samlp:Response xmlns:samlp="%s" xmlns:saml="%s" ID=%s '
        'InResponseTo=%s Version="2.0" IssueInstant="%s" Destination=%s>'
        '<saml:Issuer>%s</saml:Issuer><samlp:Status><samlp:StatusCode Value="%s"/></samlp:Status>'
        '<saml:Assertion ID="_a%s" Version="2.0" IssueInstant="%s"><saml:Issuer>%s</saml:Issuer>'
        '<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:transient">'
        '%s</saml:NameID><saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">'
        '<saml:SubjectConfirmationData InResponseTo=%s NotOnOrAfter="%s" Recipient=%s/>'
        '</saml:SubjectConfirmation></saml:Subject><saml:Conditions NotBefore="%s" '
        'NotOnOrAfter="%s"><saml:AudienceRestriction><saml:Audience>%s</saml:Audience>'
        '</saml:AudienceRestriction></saml:Conditions><saml:AttributeStatement>%s'
        '</saml:AttributeStatement></saml:Assertion></samlp:Response></S:Body></S:Envelope>' % (
            _SOAP_NS, _ECP_NS, q(acs), _SAMLP_NS, _SAML_NS, q(response_id), q(request_id), at,
            q(acs), issuer, _STATUS_SUCCESS, response_id, at, issuer, _DEMO_USER, q(request_id),
            until, q(acs), at, until, _DEMO_AUDIENCE, attributes))


def _demo_saml_refusal(form, issued, now):
    """None when STS would take the AssumeRoleWithSAML ``form``, else why not."""
    import base64
    try:
        root, _ = _read_server_xml(base64.b64decode(form.get("SAMLAssertion", "")), STSError,
                                   "the SAMLAssertion")
    except (STSError, ValueError) as e:
        return "InvalidIdentityToken: the SAMLAssertion is not a SAML Response (%s)" % e
    assertion = root.find("{%s}Assertion" % _SAML_NS)
    if root.tag != "{%s}Response" % _SAMLP_NS or assertion is None:
        return "InvalidIdentityToken: no assertion in the SAML Response"
    if root.get("Destination") != _PARTITIONS["aws"][0] or root.get("ID") not in issued:
        return "InvalidIdentityToken: the Response is not for AWS, or not the demo IdP's"
    audience = assertion.findtext("{%s}Conditions/{%s}AudienceRestriction/{%s}Audience"
                                  % (_SAML_NS, _SAML_NS, _SAML_NS))
    if audience != _DEMO_AUDIENCE or not (_assertion_deadline(assertion) or 0) > now:
        return "InvalidIdentityToken: the assertion is not for AWS, or has expired"
    if Role(form.get("RoleArn"), form.get("PrincipalArn")) not in _read_attributes(
            assertion, b"").roles:
        return "InvalidIdentityToken: the assertion does not offer role %s" % form.get("RoleArn")
    return None


def _demo_signature_refusal(method, path, headers, body, keys, now=None):
    """None when ``headers`` sign the request with SigV4 under a key in ``keys``
    (key id -> (secret, token, ARN)), else why not: the signature is computed
    again with sign_request and the key's secret."""
    import datetime
    import hmac
    import re
    given = dict((name.lower(), value) for name, value in headers.items())
    found = re.match(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([a-z0-9-]+)/sts/aws4_request, "
                     r"SignedHeaders=[a-z0-9;-]+, Signature=[0-9a-f]{64}$",
                     given.get("authorization", ""))
    if not found or found.group(1) not in keys:
        return "IncompleteSignature: no SigV4 signature with a key of the demo STS"
    secret, token, _ = keys[found.group(1)]
    try:
        when = datetime.datetime.strptime(given.get("x-amz-date", ""), "%Y%m%dT%H%M%SZ")
    except ValueError:
        return "IncompleteSignature: no X-Amz-Date"
    when = when.replace(tzinfo=datetime.timezone.utc)
    if abs(when.timestamp() - (now or time.time())) > _DEMO_SKEW:
        return "SignatureDoesNotMatch: the signature's time is too far from the server's"
    names = given["authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    expected = sign_request(method, "http://%s%s" % (given.get("host", ""), path), dict(
        (name, given.get(name, "")) for name in names
        if name not in ("x-amz-date", "x-amz-security-token")), body,
        Credentials(found.group(1), secret, token, None), found.group(3), "sts", when)
    if not hmac.compare_digest(expected["Authorization"], given["authorization"]) or \
            given.get("x-amz-security-token") != token:
        return "SignatureDoesNotMatch: the signature is not the one the key's secret makes"
    return None


class _DemoServers(object):
    """What the demo's IdP issued and its STS handed out, and how each answers."""

    def __init__(self):
        self.issued = set()     # IDs of the Responses the IdP issued
        self.keys = {}          # key id -> (secret, token, assumed-role ARN)

    def idp(self, request, body):
        if request.path != _DEMO_ECP_PATH:
            return 404, "text/html", "<html><body>Not Found</body></html>"
        request_id, why = _demo_ecp_refusal(request.headers.get("Content-Type", ""), body)
        if why:
            return 400, "text/xml", (
                '<S:Envelope xmlns:S="%s"><S:Body><S:Fault><faultcode>S:Client</faultcode>'
                '<faultstring>malformed ECP request: %s</faultstring></S:Fault></S:Body>'
                '</S:Envelope>' % (_SOAP_NS, _xml_attribute(why)[1:-1]))
        # Shibboleth's Duo plugin answers 401 to a refused factor too.
        if (request.headers.get("Authorization") != _basic_authorization(_DEMO_USER,
                                                                         _DEMO_PASSWORD)
                or request.headers.get(_DUO_FACTOR_HEADERS[0]) not in ("auto", "push")):
            return 401, "text/html", "<html><body>Unauthorized</body></html>"
        response_id = "_" + os.urandom(16).hex()
        self.issued.add(response_id)
        issuer = "http://%s/idp/shibboleth" % request.headers.get("Host", "")
        return 200, "text/xml", _demo_saml_envelope(request_id, response_id, issuer, time.time())

    def sts(self, request, body):
        from urllib.parse import parse_qsl
        form = dict(parse_qsl(body.decode("utf-8", "replace")))
        action = form.get("Action")
        if action == "AssumeRoleWithSAML":
            why = _demo_saml_refusal(form, self.issued, time.time())
            answer = why or self.credentials(Role(form["RoleArn"], form["PrincipalArn"]))
        elif action == "GetCallerIdentity":
            why = _demo_signature_refusal("POST", request.path, request.headers, body, self.keys)
            key_id = request.headers.get("Authorization", "").partition("Credential=")[2]
            arn = not why and self.keys[key_id.split("/")[0]][2]
            answer = why or "<Arn>%s</Arn><UserId>AROADEMO:%s</UserId><Account>%s</Account>" % (
                arn, _DEMO_USER, arn.split(":")[4])
        else:
            why = "InvalidAction: no action %s here" % action
        if why:
            code, _, message = why.partition(": ")
            return 403 if "Signature" in code else 400, "text/xml", (
                '<ErrorResponse xmlns="%s"><Error><Type>Sender</Type><Code>%s</Code><Message>'
                '%s</Message></Error></ErrorResponse>' % (_STS_NS, code, _xml_attribute(
                    message)[1:-1]))
        return 200, "text/xml", ('<{0}Response xmlns="{1}"><{0}Result>{2}</{0}Result>'
                                 '</{0}Response>'.format(action, _STS_NS, answer))

    def credentials(self, role):
        """New keys for ``role``, kept to check whoami's signature with."""
        key_id = "ASIA" + os.urandom(8).hex().upper()
        secret, token = os.urandom(20).hex(), os.urandom(40).hex()
        arn = "arn:aws:sts::%s:assumed-role/%s/%s" % (role.account, role.name, _DEMO_USER)
        self.keys[key_id] = (secret, token, arn)
        return ("<Credentials><AccessKeyId>%s</AccessKeyId><SecretAccessKey>%s</SecretAccessKey>"
                "<SessionToken>%s</SessionToken><Expiration>%s</Expiration></Credentials>"
                "<AssumedRoleUser><Arn>%s</Arn></AssumedRoleUser>" % (
                    key_id, secret, token, _format_timestamp(_utc(time.time() + 3600)), arn))


def _demo_handler(answer):
    import http.server

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            length = min(int(self.headers.get("Content-Length") or 0), _MAX_ANSWER_BYTES)
            status, content_type, text = answer(self, self.rfile.read(length))
            data = text.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            if status == 401:
                self.send_header("WWW-Authenticate", 'Basic realm="demo"')
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass
    return Handler


def _demo_serve():
    """The demo's child process: the IdP and STS, each in a thread; prints their
    ports, then serves until its standard input closes."""
    import http.server
    import signal
    import threading
    signal.signal(signal.SIGINT, signal.SIG_IGN)    # a Ctrl-C is the demo's: it closes our stdin
    state = _DemoServers()
    servers = [http.server.HTTPServer(("127.0.0.1", 0), _demo_handler(answer))
               for answer in (state.idp, state.sts)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdout.write("%d %d\n" % tuple(s.server_address[1] for s in servers))
    sys.stdout.flush()
    sys.stdin.buffer.read()
    for server in servers:
        server.shutdown()
        server.server_close()
    return 0


def _demo_start():
    """The child serving the demo's IdP and STS, and their two ports."""
    import subprocess
    path, _ = _own_file()
    fds = ()
    if path is None:        # piped into python3 -: our code through a descriptor
        fds = (_code_fd(),)
        if fds[0] is None:
            raise _no_file()
        argv = _bootstrap_argv("_demo_serve()", code_fd=fds[0])
    else:       # compiled afresh, with -B: no __pycache__ beside the file (3.6, 3.7)
        argv = [_python_executable(), "-I", "-S", "-B", "-c",
                "import sys;m=type(sys)('aws_login');sys.modules['aws_login']=m;m.__file__=%r;"
                "exec(compile(open(%r,'rb').read(),%r,'exec'),m.__dict__);"
                "sys.exit(m._demo_serve())" % (path, path, path)]
    child = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, pass_fds=fds)
    ports = child.stdout.readline().split()
    if len(ports) != 2:
        _demo_stop(child)
        raise NetworkError("the demo's IdP and STS did not start")
    return child, int(ports[0]), int(ports[1])


def _demo_stop(child):
    child.stdin.close()
    child.wait()
    child.stdout.close()


class _DemoTerminal(Terminal):
    """The demo's terminal: it answers the Duo factor for the person (the demo
    IdP approves the push at once) and, unless a person is there
    (--interactive), the password and the role too, each shown as if typed."""

    def __init__(self, person):
        Terminal.__init__(self, "/dev/tty" if person else None)
        self.answers = {"the Duo factor": "push"}
        if not person:
            self.answers.update({"a role": "0", "password": _DEMO_PASSWORD})

    def _open(self, what, hint=None):
        return None if self.path is None else Terminal._open(self, what, hint)

    def write(self, text):
        if self.path is None:
            sys.stdout.write(text)
        else:
            Terminal.write(self, text)

    def ask(self, prompt, what, hint=None):
        if what not in self.answers:
            return Terminal.ask(self, prompt, what, hint)
        self.write(prompt + self.answers[what] + "\n")
        return self.answers[what]

    def secret(self, prompt, what, hint=None, deadline=None):
        if "password" not in self.answers:
            return Terminal.secret(self, prompt, what, hint, deadline)
        self.write(prompt + "*" * len(_DEMO_PASSWORD) + "\n")
        return _DEMO_PASSWORD

    def waiting(self, label):
        return _Spinner(None if self.path is None else self, label)


def _demo(person=False):
    """The demo, in a throwaway home that is removed at the end; the login's
    own functions find it, and the demo STS, through this process's
    environment, which is put back as it was.  Returns whoami's ARN."""
    import shutil
    import tempfile
    if person:
        terminal = Terminal()
        there = terminal.available()
        terminal.close()
        if not there:
            raise NoTerminalError("demo --interactive asks on a terminal, and there is none: "
                                  "run it on one, or leave --interactive out")
    saved, code_fd = dict(os.environ), _run.code_fd
    home = tempfile.mkdtemp(prefix="aws-login-demo-")
    child = None
    try:
        for name in list(os.environ):   # nothing may send it to a real home, proxy or STS
            if name.startswith(("AWS_", "AWSCLI_")) or name.lower().endswith("_proxy"):
                del os.environ[name]
        os.environ["HOME"] = home
        child, idp, sts = _demo_start()
        os.environ["AWS_ENDPOINT_URL_STS"] = "http://127.0.0.1:%d/" % sts
        return _demo_steps(person, idp, sts, child.pid, home)
    finally:
        os.environ.clear()
        os.environ.update(saved)
        if child is not None:
            _demo_stop(child)
        if _run.code_fd is not None and code_fd is None:
            os.close(_run.code_fd)
            _run.code_fd = None
        shutil.rmtree(home, ignore_errors=True)


def _demo_steps(person, idp, sts, pid, home):
    import functools
    say = functools.partial(print, flush=True)      # in order with what the terminal shows
    url = "http://127.0.0.1:%d%s" % (idp, _DEMO_ECP_PATH)
    say("1. A demo IdP at %s and STS at http://127.0.0.1:%d/ (plain HTTP, in process %d); "
        "a throwaway home: %s" % (url, sts, pid, home))
    configure("demo", values={"ecp_endpoint_url": url, "username": _DEMO_USER,
                              "region": "us-east-1"})
    say("2. configure: profile demo in ~/.aws-login/config (user %s%s)" % (
        _DEMO_USER, ", password %s: type it at the prompt" % _DEMO_PASSWORD if person else ""))
    say("3. login: ECP request with Basic auth and a Duo factor, then the role menu:")
    credentials, role = login("demo", _DemoTerminal(person), mode="file")
    say("4. AssumeRoleWithSAML: %s in account %s; credentials written to ~/.aws/credentials "
        "[demo], expiring at %s" % (role.name, role.account, _local_time(credentials.expires_at)))
    identity = _whoami("demo")
    say("5. whoami: GetCallerIdentity signed with SigV4; the demo STS checked the signature")
    logout("demo", forget=True)
    say("6. logout: the credentials and the IdP session removed; whoami said:")
    say(identity["Arn"])
    return identity["Arn"]


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------

def _local_time(when):
    return when.astimezone().strftime("%Y-%m-%d %H:%M %Z")


def _cmd_configure(args):
    flags = {}
    for option in _OPTIONS:
        value = getattr(args, option.name, None)
        if value is not None:
            flags[option.name] = value
    if args.credential_process is not None:
        flags["mode"] = ("process" if _check_bool(args.credential_process,
                                                  "--credential-process") else "file")
    configure(args.profile, values=flags)
    mode = _profile_mode(args.profile)
    sys.stderr.write("Saved profile %s in %s. Mode: %s.\n" % (
        args.profile, _config_path(),
        "file (login writes %s and starts a refresher)" % _credentials_path()
        if mode == "file" else
        "process (%s runs aws_login as credential_process)" % _aws_config_path()))


def _cmd_login(args):
    profile = read_profile(args.profile)
    role = _check_role_name(args.role) if args.role else None
    # This login's own choices; the refresher it starts is given the first two.
    if args.ca_bundle:
        profile.override("ca_bundle", args.ca_bundle, "--ca-bundle")
    if args.region:
        profile.override("region", args.region, "--region")
    if args.no_verify_ssl:
        profile.override("verify_ssl_certificate", False, "--no-verify-ssl")
    if args.password_stdin:
        if sys.stdin.isatty():
            raise UsageError("--password-stdin reads a pipe; on a terminal, leave it out "
                             "and type the password at the prompt")
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise UsageError("--password-stdin: no password on standard input")
        profile.password = line
        profile.password_source = "prompt"      # stored in the keyring if that is enabled
    person, deadline = _who_waits()
    if args.all_roles:
        if role:
            raise UsageError("--all-roles and --role do not mix")
        return _all_roles_and_report(profile, args.force, args.no_refresh, deadline)
    # a second login waits, then sees what this one did
    with _login_lock(profile.name, person, deadline):
        mode = _profile_mode(profile.name)
        if mode == "file" and not args.force and _already_logged_in(profile.name, role):
            return 0
        _login_and_report(profile, role, args.force, args.no_refresh, mode, deadline)


def _already_logged_in(name, wanted):
    """Say so and return True when a live refresher keeps valid credentials of the
    role ``wanted`` names (any role when None) fresh."""
    state = _refresher_state(name)
    current = _FileStore(name).role()
    if not (state and state.alive and current and current.expires
            and current.expires.timestamp() > time.time() + 60
            and _names_current_role(wanted, current.role_arn)):
        return False
    sys.stderr.write(
        "Already logged in to profile %s as %s until %s; the refresher (pid %d%s) "
        "keeps the credentials fresh. Use --force to log in again.\n" % (
            name, current.role_arn, _local_time(current.expires), state.pid,
            " on host %s" % state.host if state.local is False else ""))
    return True


def _names_current_role(wanted, current_arn):
    """True when `login --role` asks for no role, or for the one logged in to."""
    if wanted is None:
        return True
    try:
        return bool(current_arn) and bool(_match_role([Role(current_arn, None)], wanted,
                                                      _read_aliases()))
    except RoleError:
        return False


def _login_and_report(profile, role_arn, force, no_refresh, mode=None, deadline=None):
    """login, the refresher it starts in file mode, and the one line that says so,
    all under the profile's lock: the refresher started serves what was written."""
    person, deadline = _who_waits(deadline=deadline)
    with _login_lock(profile.name, person, deadline):
        mode = mode or _profile_mode(profile.name)
        issued_at = time.time()
        credentials, role = login(profile, role_arn=role_arn, force=force, mode=mode,
                                  deadline=deadline)
        if profile.chain_role_arn:
            chained = Role(profile.chain_role_arn, None)
            who = "%s in account %s through %s (account %s)" % (
                chained.name, chained.account, role.name, role.account)
        else:
            who = "%s in account %s" % (role.name, role.account)
        message = "Logged in as %s (profile %s); the credentials expire at %s." % (
            who, profile.name, _local_time(credentials.expires_at))
        if mode == "file" and profile.refresh and not no_refresh:
            pid = _start_refresher(profile, role.arn, issued_at,
                                   credentials.expires_at.timestamp())
            if pid:
                message += " A refresher (pid %d) renews them." % pid
        elif mode == "file":
            _stop_refresher(profile.name)
        sys.stderr.write(message + "\n")


def _all_roles_and_report(profile, force, no_refresh, deadline):
    """login_all_roles, one line for each profile written, and one refresher for
    them all, under the profile's lock."""
    person, deadline = _who_waits(deadline=deadline)
    with _login_lock(profile.name, person, deadline):
        issued_at = time.time()
        written = login_all_roles(profile, force=force, deadline=deadline)
        for name, credentials, role in written:
            sys.stderr.write("Logged in as %s in account %s (profile %s); the credentials "
                             "expire at %s.\n" % (role.name, role.account, name,
                                                   _local_time(credentials.expires_at)))
        if profile.refresh and not no_refresh:
            pid = _start_refresher(profile, written[0][2].arn, issued_at, min(
                c.expires_at.timestamp() for _, c, _ in written),
                [[name, role.arn] for name, _, role in written])
            if pid:
                sys.stderr.write("A refresher (pid %d) renews them all.\n" % pid)
        else:
            _stop_refresher(profile.name)


def _fresh_credentials(name):
    """Stored credentials while fresh (_fresh), else a login first, as the
    `login` command does it (refresher, report): env, exec and console."""
    credentials = stored_credentials(name)
    if credentials is not None and (credentials.expires_at is None or
                                    _fresh(credentials.expires_at.timestamp(), time.time())):
        return credentials
    profile = read_profile(name)
    try:
        _login_and_report(profile, None, False, False)
    except _PersonLoggingIn:
        credentials = stored_credentials(name)
        if credentials is not None and credentials.expires_at is not None and \
                credentials.expires_at.timestamp() > time.time():
            return credentials      # still valid, and a person is logging in
        raise
    return stored_credentials(name)


def _cmd_logout(args):
    removed, forgotten = logout(args.profile, args.all, args.forget, args.force)
    for name in removed:
        sys.stderr.write("Logged out of profile %s.\n" % name)
    if forgotten:
        sys.stderr.write("Forgot %d saved IdP session(s).\n" % len(forgotten))
    if not removed and not forgotten:
        nothing = NotLoggedInError("Not logged in%s: nothing to remove."
                                   % ("" if args.all else " to profile %s" % args.profile))
        nothing.calm = True     # a report, not a failure: logging out twice is fine
        raise nothing


def _cmd_whoami(args):
    import json
    identity = _whoami(args.profile)
    if args.output == "json":
        sys.stdout.write(json.dumps(identity, indent=4) + "\n")
    else:
        for key in ("Account", "Arn", "UserId"):
            sys.stdout.write("%-8s %s\n" % (key, _visible(identity[key])))


def _cmd_env(args):
    credentials = _fresh_credentials(args.profile)
    region = read_profile(args.profile, require_endpoint=False).region
    sys.stdout.write("\n".join(env_lines(credentials, region, args.format)) + "\n")


def _cmd_exec(args):
    command = list(args.argv)
    if command[:1] == ["--"]:
        command = command[1:]
    outer = os.environ.get("AWS_LOGIN_EXEC")
    if outer and not args.allow_nested:
        raise UsageError("already inside `aws_login.py exec` (profile %s); running another "
                         "would mix credentials (use --allow-nested to do it anyway)" % outer)
    command = command or [os.environ.get("SHELL") or "/bin/sh"]
    if args.server:
        return _exec_with_server(args.profile, command)
    credentials = _fresh_credentials(args.profile)
    region = read_profile(args.profile, require_endpoint=False).region
    env = _exec_environment(credentials, region, profile=args.profile)
    sys.stdout.flush()
    sys.stderr.flush()
    _give_back_core_limit()
    try:
        os.execvpe(command[0], command, env)    # the command's exit status is ours
    except FileNotFoundError:
        raise CommandNotFoundError("%s: command not found" % command[0])
    except PermissionError:
        raise CommandNotFoundError("%s: permission denied" % command[0])


def _cmd_serve(args):
    if not 0 <= args.port <= 65535:
        raise UsageError("--port %d is not a TCP port" % args.port)
    _serve(args.profile, args.port)


def _cmd_console(args):
    profile = read_profile(args.profile, require_endpoint=False)
    service = _check_service(args.service) if args.service else None
    if args.destination and (args.region or service):
        raise UsageError("--destination names the page itself; use it alone, or "
                         "--service and --region instead")
    if args.region:
        profile.override("region", args.region, "--region")
    credentials = _fresh_credentials(args.profile)
    partition = _partition_of(credentials)
    destination = args.destination or _console_destination(
        partition, _console_region(profile, partition), service)
    note = _chain_cap_note(profile)
    if note:
        sys.stderr.write(note + "\n")
    url = console_url(credentials, partition, destination, _aws_ssl_context(profile))
    if args.print_url or not _open_console(url):
        sys.stdout.write(url + "\n")
    else:
        sys.stderr.write("Opened the AWS console in your browser.\n")


def _cmd_demo(args):
    _demo(args.interactive)


def _cmd_credential_process(args):
    sys.stdout.write(_credential_process(args.profile) + "\n")


def _profile_status(name, servers=(), parent=None):
    """What `status` shows for one profile, as a dict of plain values; ``servers``
    are the running credential servers (_running_servers()); ``parent``, the
    profile whose `login --all-roles` wrote it, and whose refresher renews it."""
    store = _credential_store(name) if parent is None else _FileStore(name)
    mode = store.mode
    role_arn, expires = store.role() or (None, None)
    state = _refresher_state(parent or name)
    alive = bool(state and state.alive)
    logged_in = bool(expires and expires.timestamp() > time.time())
    return {"profile": name, "mode": mode, "logged_in": logged_in, "role_arn": role_arn,
            "account": role_arn.split(":")[4] if role_arn else None,
            "expiration": _format_timestamp(expires) if expires else None,
            "refresher_pid": state.pid if state else None, "refresher_alive": alive,
            # False: it runs on another host sharing this home; None: unknown
            "refresher_host": state.host if state else None,
            "refresher_local": state.local if state else None,
            "next_renewal": _format_timestamp(_utc(state.next_at))
            if alive and state.next_at else None,
            "servers": [dict((k, v) for k, v in server.items() if k != "profile")
                        for server in servers if server["profile"] == name]}


def _refresher_cell(row):
    pid = row["refresher_pid"]
    if pid is None:
        return "-"
    if not row["refresher_alive"]:
        return "pid %d (dead)" % pid
    if row["refresher_local"] is False:
        return "pid %d on %s" % (pid, row["refresher_host"])
    return "pid %d" % pid


def _cmd_doctor(args):
    def write(line):
        sys.stdout.write(line)
        sys.stdout.flush()      # a person sees each check as it ends
    _doctor(args.profile, write)


def _cmd_status(args):
    import json
    path = _config_path()
    names = _parse_ini(_read_text(path) or "", path).sections()
    servers = _running_servers()
    rows = []
    for name in names:
        rows.append(_profile_status(name, servers))
        for written, arn in _written_profiles(name):
            row = _profile_status(written, servers, parent=name)
            if written not in names and row["role_arn"] == arn:
                rows.append(row)
    if args.output == "json":
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    table = [("PROFILE", "MODE", "STATE", "ROLE", "ACCOUNT", "EXPIRES", "REFRESHER",
              "NEXT RENEWAL")]
    for row in rows:
        local = lambda iso: _local_time(_parse_timestamp(iso)) if iso else "-"
        table.append((
            row["profile"], row["mode"],
            "logged in" if row["logged_in"] else ("expired" if row["expiration"]
                                                  else "logged out"),
            row["role_arn"].split(":role/")[1] if row["role_arn"] else "-",
            row["account"] or "-", local(row["expiration"]),
            _refresher_cell(row), local(row["next_renewal"])))
    _write_table(table)
    if servers:
        sys.stdout.write("\nCredential servers:\n")
        _write_table([("PROFILE", "PID", "PORT", "STARTED")] + [
            (server["profile"], str(server["pid"]), str(server["port"]),
             _local_time(_parse_timestamp(server["started"]))) for server in servers])


def _write_table(table):
    table = [[_visible(c) for c in r] for r in table]
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    for r in table:
        sys.stdout.write("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() + "\n")


def _cmd_plugin(args):
    if args.action == "status":
        sys.stdout.write("".join(line + "\n" for line in _plugin_status(args.aws)))
    elif args.action == "disable":
        done = _plugin_disable()
        sys.stderr.write("".join("%s%s.\n" % (line[:1].upper(), line[1:]) for line in done)
                         or "The plugin was not enabled: nothing to remove.\n")
    else:
        record = _plugin_enable(args.aws, args.aws_command, args.replace_builtin)
        clis = [c for c in record["clis"] if c["plugin"]]
        unchanged = [c for c in record["clis"] if not c["plugin"]]
        sys.stderr.write("Enabled %s for %s; modules: %s; %s now has [plugins] login = "
                         "aws_login%s. Undo with `plugin disable`.\n" % (
                             _plugin_commands_text(record["command"]),
                             ", ".join("%s (aws-cli/%s)" % (c["path"], c["version"])
                                       for c in clis),
                             ", ".join(m["path"] for m in record["modules"])
                             or "none (each imports aws_login already)", record["config"],
                             "; unchanged (AWS CLI v2 loads no plugins without %s): %s" % (
                                 _PLUGIN_PATH_KEY, ", ".join(c["path"] for c in unchanged))
                             if unchanged else ""))


_COMMANDS = ("configure", "login", "logout", "credential-process", "whoami", "exec", "serve",
             "env", "console", "status", "doctor", "plugin", "demo")


class _UnusedParser(object):
    """Stands in for the parser of a command not being run: building all of them
    costs more than the rest of a login's start (_build_parser's ``only``)."""

    def add_argument(self, *args, **kwargs):
        return None

    def set_defaults(self, **kwargs):
        return None


def _command_word(argv):
    """The command named in ``argv`` (None when there is none)."""
    words = list(argv)
    while words and words[0] in ("--profile", "--debug"):
        words = words[2:] if words[0] == "--profile" else words[1:]
    return words[0] if words and not words[0].startswith("-") else None


def _flag(option):
    """The `configure` flag of an _Option."""
    return "--" + option.name.replace("_", "-")


def _parser_class():
    import argparse

    class Parser(argparse.ArgumentParser):
        """argparse, with its errors raised as UsageError (main() prints them as
        it prints every error, after this command's usage), and an abbreviation
        taken when the options it fits are one option's aliases (--role-arn is
        --role's old name)."""

        def error(self, message):
            error = UsageError(message)
            error.usage = self.format_usage()
            raise error

        def _get_option_tuples(self, option_string):
            found = []
            for option in argparse.ArgumentParser._get_option_tuples(self, option_string):
                if all(option[0] is not other[0] for other in found):
                    found.append(option)
            return found

    return Parser


def _unrecognized(parser, words):
    """The error for words ``parser`` does not take, with the option meant."""
    import difflib
    known = [s for action in parser._actions for s in action.option_strings]
    guess = difflib.get_close_matches(words[0].split("=")[0], known, 1) \
        if words[0].startswith("-") else []
    return "unrecognized argument%s: %s%s" % ("s" if len(words) > 1 else "", " ".join(words),
                                             " (did you mean %s?)" % guess[0] if guess else "")


def _parse_args(argv):
    """The parsed command line; errors are UsageError, with the usage of the
    command they are about."""
    word = _command_word(argv)
    parser = _build_parser(word if word in _COMMANDS else None)
    args, extra = parser.parse_known_args(argv)
    if extra:
        command = parser.commands.get(getattr(args, "command", None), parser)
        command.error(_unrecognized(command, extra))
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return None
    return args


def _build_parser(only=None):
    """The command line; with ``only``, the parser of that command alone is built."""
    import argparse
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--profile", default=argparse.SUPPRESS,
                        help="profile name (default: $AWS_PROFILE, $AWS_DEFAULT_PROFILE, "
                             "or 'default')")
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="trace what happens, with tracebacks on errors")
    parser = _parser_class()(
        prog="aws-login" if _how_run() == "aws-login" else "aws_login.py", parents=[common],
        description="Temporary AWS credentials from a SAML ECP identity provider.",
        epilog="Exit codes: 0 ok, 1 unexpected, 2 usage, 3 configuration, 4 authentication "
               "refused, 5 IdP answer unusable, 6 role, 7 STS refused, 8 network or TLS, "
               "9 files, 10 not logged in, 11 no terminal, 130 interrupted, 141 output closed.")
    parser.add_argument("--version", action="version", version="%(prog)s " + __version__)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    parser.commands = {}

    def command(name, **kwargs):
        if only not in (None, name):
            return _UnusedParser()
        parser.commands[name] = commands.add_parser(name, **kwargs)
        return parser.commands[name]

    p = command("configure", parents=[common], help="set a profile's options",
                            description="Set a profile's options: asks for each one, or "
                            "takes flags (no prompts) for scripted set-up.")
    for option in _OPTIONS:
        if option.flag:
            p.add_argument(_flag(option), dest=option.name, metavar=option.flag,
                           help=option.help.replace("`", ""),
                           **({"nargs": "?", "const": "true"}
                              if isinstance(option.default, bool) else {}))
    p.add_argument("--credential-process", dest="credential_process", nargs="?",
                   const="true", metavar="BOOL",
                   help="process mode: set credential_process in ~/.aws/config (false: "
                        "back to file mode)")
    p.set_defaults(func=_cmd_configure)

    p = command("login", parents=[common], help="log in and write credentials",
                            description="Authenticate to the IdP, choose a role and write "
                            "temporary credentials for the profile.")
    p.add_argument("--role", "--role-arn", dest="role", metavar="NAME",
                   help="assume this role: its name (Admin, team/Dev), ACCOUNT/NAME, "
                        "ALIAS/NAME (~/.aws-login/alias) or ARN, in any case; it must be "
                        "in the assertion")
    p.add_argument("--all-roles", dest="all_roles", action="store_true",
                   help="one IdP login, every role it offers written to a profile of its "
                        "own (all_roles_profile: PROFILE-ACCOUNT-ROLE)")
    p.add_argument("--force", action="store_true",
                   help="log in even if logged in; overwrite a section holding long-term keys")
    p.add_argument("--no-refresh", dest="no_refresh", action="store_true",
                   help="start no refresher")
    p.add_argument("--password-stdin", dest="password_stdin", action="store_true",
                   help="read the IdP password from standard input (for CI)")
    p.add_argument("--ca-bundle", dest="ca_bundle", metavar="PATH",
                   help="trust these CA certificates too, this time (default: the profile's)")
    p.add_argument("--region", help="STS region, this time (default: the profile's)")
    p.add_argument("--no-verify-ssl", dest="no_verify_ssl", action="store_true",
                   help="do not check the IdP's TLS certificate, this time (unsafe; said "
                        "loudly); AWS's endpoints are still checked")
    p.set_defaults(func=_cmd_login)

    p = command("logout", parents=[common], help="remove credentials",
                            description="Remove the profile's credentials.  The IdP session "
                            "is kept (the next login asks only for the role) unless --forget.")
    p.add_argument("--all", action="store_true", help="every profile aws_login wrote")
    p.add_argument("--forget", action="store_true",
                   help="also forget the saved IdP session (recommended on shared hosts)")
    p.add_argument("--force", action="store_true",
                   help="remove the section even if aws_login did not write it")
    p.set_defaults(func=_cmd_logout)

    p = command("credential-process", parents=[common],
                            help="print credentials for the AWS CLI's credential_process",
                            description="Print the credential_process JSON: cached while 15 "
                            "minutes or more are left, else renewed without asking, else "
                            "asked on the terminal.")
    p.set_defaults(func=_cmd_credential_process)

    p = command("whoami", parents=[common], help="who the credentials are (STS)",
                            description="Call STS GetCallerIdentity, signed with SigV4, "
                            "with the profile's credentials.")
    p.add_argument("--output", choices=("text", "json"), default="text")
    p.set_defaults(func=_cmd_whoami)

    p = command("exec", parents=[common], help="run a command with the credentials",
                            description="Run COMMAND (default $SHELL) with AWS_ACCESS_KEY_ID, "
                            "AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, "
                            "AWS_CREDENTIAL_EXPIRATION (and AWS_REGION, AWS_DEFAULT_REGION "
                            "when the profile has a region) set, AWS_PROFILE and "
                            "AWS_DEFAULT_PROFILE removed; logs in first when needed.  The "
                            "command's exit status is returned.  With --server, no keys: "
                            "AWS_CONTAINER_CREDENTIALS_FULL_URI and "
                            "AWS_CONTAINER_AUTHORIZATION_TOKEN name a credential server on "
                            "127.0.0.1 that renews the credentials before they expire, for as "
                            "long as the command runs.")
    p.add_argument("--allow-nested", dest="allow_nested", action="store_true",
                   help="run even inside another aws_login exec")
    p.add_argument("--server", action="store_true",
                   help="give the command a local credential server instead of keys (the "
                        "AWS SDKs renew through it)")
    p.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND [ARGS...]")
    p.set_defaults(func=_cmd_exec)

    p = command("serve", parents=[common], help="run a credential server in the foreground",
                description="Serve the profile's credentials on 127.0.0.1 in the "
                "container-credentials format, renewed before they expire, until "
                "Ctrl-C or SIGTERM.  Prints the two lines to export in the shell or "
                "container that uses it (AWS_CONTAINER_CREDENTIALS_FULL_URI and "
                "AWS_CONTAINER_AUTHORIZATION_TOKEN).  The token is a secret: "
                "whoever holds it gets the credentials.")
    p.add_argument("--port", type=int, default=0, metavar="N",
                   help="listen on this port (default: a free one)")
    p.set_defaults(func=_cmd_serve)

    # The command line to copy names this tool as run (worked out only when shown).
    program = (_program() or "python3 -") if only == "env" else "aws_login.py"
    p = command("env", parents=[common], help="print the credentials for a shell",
                            description='Print lines for  eval "$(%s env)"; logs in first '
                            "when needed." % program)
    p.add_argument("--format", choices=("sh", "fish", "powershell", "json"), default="sh")
    p.set_defaults(func=_cmd_env)

    p = command("console", parents=[common], help="open the AWS console",
                            description="Build the federation sign-in URL for the profile's "
                            "partition and open it in the browser.")
    p.add_argument("--print", dest="print_url", action="store_true",
                   help="print the URL instead of opening a browser")
    p.add_argument("--destination", metavar="URL", help="console page to land on")
    p.add_argument("--service", metavar="NAME",
                   help="land on this service's page (s3, ec2, iam, ...): "
                        "https://console.aws.amazon.com/NAME/home?region=R, on the "
                        "console of the role's partition")
    p.add_argument("--region", metavar="R",
                   help="land in this region (default: the profile's)")
    p.set_defaults(func=_cmd_console)

    p = command("status", parents=[common], help="show every profile's state",
                            description="Every configured profile: mode, logged in or not, "
                            "role, expiry, refresher and next renewal.")
    p.add_argument("--output", choices=("text", "json"), default="text")
    p.set_defaults(func=_cmd_status)

    p = command("doctor", parents=[common], help="check a profile's setup, one line a check",
                description="Checks the settings, the IdP endpoint (DNS, TCP, TLS, its "
                            "answer to a request without a password), the clock against the "
                            "IdP's and STS's, the keyring, a refused-password mark, what the "
                            "AWS CLI will use for the profile, the refresher or credential "
                            "server, and the plugin of each AWS CLI found.  Sends no "
                            "password, writes nothing; exits 0 when all hold, else with the "
                            "exit code of the first failing kind.")
    p.set_defaults(func=_cmd_doctor)

    p = command("plugin", parents=[common], help="the `aws login` AWS CLI plugin",
                            description="enable: install the module where the AWS CLI "
                            "imports plugins from and set plugins.login in ~/.aws/config, "
                            "then prove it with `aws --version` and `aws login` (undone if "
                            "that fails).  disable: remove exactly that (never runs aws).  "
                            "status: what is installed where.  AWS CLI v2.32 and later have "
                            "their own `aws login` and `aws logout`: enable keeps them unless "
                            "--replace-builtin; --command NAME gives `aws NAME` beside them.")
    p.add_argument("action", choices=("enable", "disable", "status"))
    p.add_argument("--aws", metavar="PATH", help="the AWS CLI to use (default: `aws` on PATH)")
    p.add_argument("--command", metavar="NAME", default="login", dest="aws_command",
                   help="enable: the plugin's command, `aws NAME` (with `configure` and "
                        "`logout` beneath it); default login")
    p.add_argument("--replace-builtin", action="store_true",
                   help="enable: replace the AWS CLI's own `aws login` and `aws logout`")
    p.set_defaults(func=_cmd_plugin)

    p = command("demo", parents=[common], help="see it work: a built-in IdP and STS",
                description="The whole job (configure, login with Duo, the role menu, "
                            "AssumeRoleWithSAML, whoami, logout) against a built-in IdP and "
                            "STS on 127.0.0.1, in a throwaway home; leaves nothing behind.")
    p.add_argument("--interactive", action="store_true",
                   help="type the demo password and choose the role yourself")
    p.set_defaults(func=_cmd_demo)
    return parser


def _serve_cached(argv):
    """``credential-process`` from a fresh cache before argparse and every heavy
    import: the AWS CLI runs us on every call.  None: take the full path."""
    words = list(argv)
    name = None
    if words[:1] == ["--profile"] and len(words) > 2:
        name, words = words[1], words[2:]
    if words[:1] != ["credential-process"]:
        return None
    if words[1:3] and words[1] == "--profile" and len(words) == 3:
        name, words = words[2], words[:1]
    if words != ["credential-process"]:
        return None
    try:
        cached = _ProcessStore(_profile_name(name)).cached()
    except AwsLoginError:
        return None
    if cached is None or not _fresh(cached.expires, time.time()):
        return None
    sys.stdout.write(cached.json + "\n")
    return 0


def main(argv=None, how_run=None):
    """Run one command; return the exit code.  Only here do errors become text.

    ``how_run`` is how the person runs this tool, for the commands that hints
    name: "aws" (the AWS CLI plugin calls), "aws-login", or a path to this
    file (the configured credential_process passes what configure was run
    with); by default it is worked out from sys.argv."""
    global _run
    argv = sys.argv[1:] if argv is None else list(argv)
    _run = _Run(how_run)
    _no_core_dumps()
    try:
        code = _serve_cached(argv)
        if code is None:
            _restart_with_site(argv)
            args = _parse_args(argv)
            if args is None:
                return UsageError.exit_code
            _run.debug = getattr(args, "debug", False)
            args.profile = _profile_name(getattr(args, "profile", None))
            code = args.func(args) or 0
        sys.stdout.flush()      # here, not at the interpreter's exit: a reader gone is seen
        return code
    except SystemExit:          # argparse, after --help or --version
        if _reader_gone(sys.stdout):
            return _output_closed()
        raise
    except AwsLoginError as e:
        if _run.debug:
            import traceback
            e.args = (_visible(e),)      # the traceback's last line stays one line
            for line in traceback.format_exc().rstrip("\n").split("\n"):
                _say_error(_visible(line) + "\n")
        _say_error(getattr(e, "usage", ""))
        _say_error(("%s\n" if e.calm else "aws_login: error: %s\n") % _visible(e))
        return e.exit_code
    except KeyboardInterrupt:
        _say_error("\naws_login: interrupted\n")
        return _EXIT_INTERRUPTED
    except Exception as e:
        if isinstance(e, BrokenPipeError) and (_reader_gone(sys.stdout)
                                               or _reader_gone(sys.stderr)):
            return _output_closed()
        if _run.debug:
            raise
        _say_error("aws_login: unexpected error: %s (run with --debug for the traceback)\n"
                   % type(e).__name__)
        return 1


# ---------------------------------------------------------------------------
# The AWS CLI plugin: its hook, and enable, disable, status
# ---------------------------------------------------------------------------
# ~/.aws/config is read by every AWS CLI of the user.  AWS CLI v1 imports each
# [plugins] value by name (awscli/plugin.py; cli_legacy_plugin_path's too), so
# `plugins.login = aws_login` breaks every command (`aws configure set`
# included) of each v1 whose Python cannot import the module; AWS CLI v2 loads
# plugins only when cli_legacy_plugin_path names their folder.  `plugin enable`
# finds every AWS CLI the user runs, gives the module to each v1 (or refuses,
# naming those it cannot, with nothing changed), writes the config lines,
# proves each `aws` by running it, and undoes it all if one fails; `plugin
# disable` takes back what is still as enable left it, and never runs `aws`.
# AWS CLI v2.32.0 and later have their own `aws login` and `aws logout`: enable
# replaces them only when told to (--replace-builtin), or names the plugin's
# command otherwise (--command NAME), in its record, which the hook reads.

def awscli_initialize(cli):
    """AWS CLI plugin entry point: `aws configure set plugins.login aws_login` gives
    `aws login`, `aws login configure` and `aws logout`; after `plugin enable
    --command NAME`, `aws NAME`, `aws NAME configure` and `aws NAME logout`.
    awscli is imported only when the AWS CLI itself calls us."""
    name = _plugin_command()

    def commands(command_table, session, **kwargs):
        _awscli_commands(command_table, session, name)

    def subcommands(command_table, session, **kwargs):
        _awscli_subcommands(command_table, session, name)
    cli.register("building-command-table.main", commands)
    cli.register("building-command-table." + name, subcommands)


def _plugin_command():
    """The name of the plugin's command: what `plugin enable --command` put in its
    record, else "login" (no record: a plugin line written by hand).  The hook
    runs on every `aws` command, so this is one small read, and never an error:
    an unreadable record gives "login" rather than a broken `aws`."""
    import json         # the AWS CLI has imported it already
    try:
        with open(_plugin_record_path(), "rb") as f:
            name = json.loads(f.read(1 << 20).decode("utf-8")).get("command", "login")
    except (OSError, ValueError, AttributeError):
        return "login"
    return name if _is_command_name(name) else "login"


def _is_command_name(name):
    """True for a word the AWS CLI could take as a command: lower-case letters,
    digits and hyphens, a letter first (no dot: it would split the name of
    the AWS CLI's building-command-table event)."""
    import re
    return isinstance(name, str) and re.match(r"[a-z][a-z0-9-]{0,63}\Z", name) is not None


def _awscli_command(name, description, arguments, argv, subcommands=(), parent=None):
    from awscli.customizations.commands import BasicCommand

    class Command(BasicCommand):
        NAME = name
        DESCRIPTION = description
        SYNOPSIS = "aws %s [options]" % " ".join([parent] * bool(parent) + [name])
        ARG_TABLE = [dict(a) for a in arguments]
        SUBCOMMANDS = list(subcommands)

        def _run_main(self, parsed_args, parsed_globals):
            if os.environ.get(_PLUGIN_PROBE_VARIABLE):     # `plugin enable` proving us
                sys.stdout.write("%s %s %s\n" % (os.environ[_PLUGIN_PROBE_VARIABLE], __version__,
                                                 os.path.abspath(__file__)))
                return 0
            words = []
            if getattr(parsed_globals, "profile", None):
                words += ["--profile", parsed_globals.profile]
            words += argv
            for argument in arguments:
                value = getattr(parsed_args, argument["name"].replace("-", "_"), None)
                if value is True:
                    words.append("--" + argument["name"])
                elif value not in (None, False):
                    words += ["--" + argument["name"], str(value)]
            return main(words + _awscli_global_options(argv[0], parsed_globals),
                        how_run="aws")

    return Command


def _awscli_global_options(command, parsed_globals):
    """The AWS CLI's own --ca-bundle, --region and --no-verify-ssl, which it
    parses before our command sees its arguments, as our options: for
    `login` this run only, for `configure` the profile's settings."""
    words = []
    ca_bundle = getattr(parsed_globals, "ca_bundle", None)
    region = getattr(parsed_globals, "region", None)
    no_verify = getattr(parsed_globals, "verify_ssl", True) is False
    if command in ("login", "configure"):
        words += ["--ca-bundle", ca_bundle] if ca_bundle else []
        words += ["--region", region] if region else []
    if no_verify and command == "login":
        words.append("--no-verify-ssl")
    elif no_verify and command == "configure":
        words += ["--verify-ssl-certificate", "false"]
    return words


def _awscli_commands(command_table, session, name="login"):
    """`aws NAME` (login), and `aws logout` when NAME is login: under another
    name, logout is beneath it (_awscli_subcommands)."""
    login_command = _awscli_command(
        name, "Log in through your SAML ECP identity provider and write temporary "
        "credentials (aws_login.py).",
        [{"name": "role", "help_text": "assume this role: NAME, ACCOUNT/NAME, ALIAS/NAME "
                                       "or ARN"},
         {"name": "role-arn", "help_text": "assume this role (as --role)"},
         {"name": "all-roles", "action": "store_true",
          "help_text": "every role, each to a profile of its own"},
         {"name": "force", "action": "store_true", "help_text": "log in again"},
         {"name": "no-refresh", "action": "store_true", "help_text": "start no refresher"}],
        ["login"])
    command_table[name] = login_command(session)
    if name == "login":
        command_table["logout"] = _awscli_logout(None)(session)


def _awscli_logout(parent):
    return _awscli_command(
        "logout", "Remove the profile's temporary credentials (aws_login.py).",
        [{"name": "all", "action": "store_true", "help_text": "every profile"},
         {"name": "forget", "action": "store_true", "help_text": "forget the IdP session"}],
        ["logout"], parent=parent)


def _awscli_subcommands(command_table, session, name="login"):
    """`aws NAME configure`, and `aws NAME logout` when NAME is not login."""
    configure_command = _awscli_command(
        "configure", "Set the profile's aws_login options (asks when no option is given).",
        [{"name": _flag(option)[2:], "help_text": option.help}
         for option in _OPTIONS if option.plugin], ["configure"], parent=name)
    command_table["configure"] = configure_command(session)
    if name != "login":
        command_table["logout"] = _awscli_logout(name)(session)


_PLUGIN_PROBE_VARIABLE = "AWS_LOGIN_PLUGIN_PROBE"
_PLUGIN_SECTION = "plugins"
_PLUGIN_PATH_KEY = "cli_legacy_plugin_path"
_BUILTIN_LOGIN_SINCE = (2, 32, 0)    # AWS CLI v2 with its own `aws login` and `aws logout`
_BUILTIN_COMMANDS = ("login", "logout")

# What the AWS CLI v1's Python says of itself: where to put a module it imports.
_SITE_QUERY = ("import json,site,sys,sysconfig;print(json.dumps([sysconfig.get_paths()"
               "['purelib'],bool(site.ENABLE_USER_SITE),site.getusersitepackages(),"
               "list(sys.version_info[:2])]))")


def _plugin_record_path():
    """What `plugin enable` did, for `plugin disable` and `plugin status`."""
    return os.path.join(_login_root(), "plugin.json")


def _plain_environment():
    """The environment a user's `aws` runs with: no PYTHONPATH of ours, no profile
    that might not exist."""
    return dict((k, v) for k, v in os.environ.items() if k not in (
        "PYTHONPATH", "PYTHONHOME", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
        _PLUGIN_PROBE_VARIABLE))


def _run_quietly(argv, env=None, timeout=60):
    """(exit status or None, output) of a helper command: no terminal, no input."""
    import subprocess
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, env=env, timeout=timeout, cwd="/")
    except (OSError, subprocess.SubprocessError) as e:
        return None, str(e)
    return done.returncode, done.stdout.decode("utf-8", "replace")


def _last_line(output):
    lines = [line.strip() for line in (output or "").splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"


def _find_aws(aws=None):
    """The AWS CLI to work with: ``aws`` (a path), else the one on PATH."""
    import shutil
    path = os.path.expanduser(aws) if aws else shutil.which("aws")
    if not path or not os.path.isfile(path):
        raise ConfigError("no AWS CLI at %s" % aws if aws else
                          "no `aws` on PATH: install the AWS CLI, or name it with --aws PATH")
    return os.path.abspath(path)


# Where an AWS CLI of this user may be, besides PATH: pyenv's versions (its shim
# on PATH runs the selected one, and any may be selected) and pipx's venvs (the
# default homes of pipx before and since 1.3).
_PYENV_AWS = (os.path.join("versions", "*", "bin", "aws"),
              os.path.join("versions", "*", "envs", "*", "bin", "aws"))
_PIPX_AWS = os.path.join("venvs", "*", "bin", "aws")


def _head(path, size=4096):
    try:
        with open(path, "rb") as f:
            return f.read(size).decode("utf-8", "replace")
    except OSError as e:
        raise ConfigError("cannot read %s: %s" % (path, e.strerror))


def _pyenv_shim_root(path):
    """The PYENV_ROOT of a pyenv shim (pyenv's launcher: it runs the command of
    the version selected where it is run), else None."""
    import re
    try:
        head = _head(path)
    except ConfigError:
        return None
    root = re.search(r'''^export PYENV_ROOT="([^"\n]+)"$''', head, re.M)
    return root.group(1) if root and 'libexec/pyenv" exec' in head else None


def _aws_cli_paths(first=()):
    """Every AWS CLI this user may run, each once: those of ``first``, each `aws`
    on PATH (a pyenv shim brings every version of its pyenv), those of pyenv's
    versions and of pipx's venvs."""
    import glob
    found = [path for path in first if path]
    pyenv_roots = [os.environ.get("PYENV_ROOT") or "~/.pyenv"]
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        path = os.path.join(folder, "aws")
        if os.path.isabs(folder) and os.path.isfile(path) and os.access(path, os.X_OK):
            found.append(path)      # a relative entry (the current folder) is no one's CLI
            pyenv_roots += [root for root in [_pyenv_shim_root(path)] if root]
    data = os.environ.get("XDG_DATA_HOME") or "~/.local/share"
    pipx_homes = [h for h in (os.environ.get("PIPX_HOME"), "~/.local/pipx",
                              os.path.join(data, "pipx")) if h]
    patterns = ([os.path.join(root, p) for root in pyenv_roots for p in _PYENV_AWS]
                + [os.path.join(home, _PIPX_AWS) for home in pipx_homes])
    for pattern in patterns:
        found += sorted(glob.glob(os.path.expanduser(pattern)))
    unique, seen = [], set()
    for path in found:
        real = os.path.realpath(path)
        if real not in seen and os.path.isfile(real):
            seen.add(real)
            unique.append(os.path.abspath(path))
    return unique


def _aws_cli_version(aws, config=os.devnull, timeout=60):
    """(major, minor, patch) from `aws --version`, by default with an empty
    config so that a broken plugin line cannot stop it."""
    import re
    code, out = _run_quietly([aws, "--version"], dict(_plain_environment(),
                                                      AWS_CONFIG_FILE=config), timeout)
    m = re.search(r"aws-cli/(\d+)\.(\d+)\.(\d+)", out or "") if code == 0 else None
    if not m:
        raise ConfigError("cannot tell which AWS CLI %s is (`aws --version`: %s)"
                          % (aws, _last_line(out)))
    return tuple(int(x) for x in m.groups())


_AwsCli = _named_tuple("_AwsCli", ("path", "version", "problem"), """An AWS CLI found:
    its script, its (major, minor, patch) or None, and why it does not run (even
    without a config) when it does not.""")


def _each(function, items):
    """[function(item) for item in items], run side by side: each mostly waits
    for an AWS CLI to start (half a second or more for v1)."""
    from concurrent.futures import ThreadPoolExecutor
    items = list(items)
    if len(items) < 2:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(8, len(items))) as pool:
        return list(pool.map(function, items))


def _survey(paths):
    """An _AwsCli for each path: each is run once, with an empty config."""
    def one(path):
        try:
            return _AwsCli(path, _aws_cli_version(path), None)
        except ConfigError as e:
            return _AwsCli(path, None, str(e))
    return _each(one, paths)


def _cli_python(aws):
    """The Python that runs an AWS CLI v1 script: its #! line, or pip's
    ``exec' "PYTHON"`` trampoline."""
    import re
    import shutil
    head = _head(aws)
    first = head.split("\n")[0]
    words = first[2:].split() if first.startswith("#!") else []
    if words and os.path.basename(words[0]) == "env":
        words = [shutil.which(w) or w for w in words[1:] if not w.startswith("-")]
    trampoline = re.search(r"""exec' "?([^"\s]*python[^"\s]*)"?""", head)
    if words and os.path.basename(words[0]).startswith("python"):
        return words[0]
    if trampoline:
        return trampoline.group(1)
    raise ConfigError("cannot tell which Python runs %s (its first line: %r)"
                      % (aws, first[:100]))


def _v1_plugin_folder(python):
    """Where the AWS CLI v1's Python imports a module we add: its site-packages
    when we may write there, else its user site-packages when it reads them."""
    import json
    code, out = _run_quietly([python, "-c", _SITE_QUERY], _plain_environment())
    try:
        purelib, user_site_on, user_site, version = json.loads(_last_line(out))
    except ValueError:
        raise ConfigError("cannot ask %s where it imports modules from: %s"
                          % (python, _last_line(out)))
    if tuple(version) < (3, 6):
        raise ConfigError("it runs on Python %d.%d; aws_login needs 3.6 or later"
                          % tuple(version))
    if os.access(purelib, os.W_OK):
        return purelib
    if user_site_on:
        return user_site
    raise ConfigError("%s is not writable and %s reads no user site-packages"
                      % (purelib, python))


def _importable_from(python):
    """Where the AWS CLI v1's Python finds ``aws_login`` already, or None."""
    code, out = _run_quietly([python, "-c", "import aws_login;print(aws_login.__file__)"],
                             _plain_environment())
    return os.path.abspath(_last_line(out)) if code == 0 else None


def _file_digest(path):
    import hashlib
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None


def _make_dirs(path, mode=0o755):
    """Create folder ``path`` and its missing parents; returns those made,
    outermost first (what undoing takes back)."""
    made = []
    while not os.path.isdir(path) and os.path.dirname(path) != path:
        made.insert(0, path)
        path = os.path.dirname(path)
    for folder in made:
        try:
            os.mkdir(folder, mode)
        except OSError as e:
            raise CredentialsFileError("cannot create %s: %s" % (folder, e.strerror))
    return made


def _remove_made_dirs(made):
    """Remove the folders _make_dirs made, innermost first, while they are empty."""
    for folder in reversed(made or []):
        try:
            os.rmdir(folder)
        except OSError:
            return


def _install_module(folder, source, private=False):
    """Copy this file into ``folder`` (``private``: ours, 0700) as aws_login.py
    (0644: the AWS CLI may import it in any user's process that names the
    plugin): its record entry."""
    made = _make_dirs(folder, 0o700 if private else 0o755)
    if private:
        os.chmod(folder, 0o700)     # only this user's AWS CLI reads it
    target = os.path.join(folder, "aws_login.py")
    with open(source, "rb") as f:
        _atomic_write(target, f.read(), mode=0o644)
    return {"path": target, "sha256": _file_digest(target), "dirs_made": made}


def _remove_module(module):
    """Remove a module enable installed if it is still ours, with the bytecode
    Python made of it, and the folders enable made for it."""
    import glob
    path = module["path"]
    if _file_digest(path) != module["sha256"]:
        return False            # replaced since: anything else is left alone
    os.unlink(path)
    cache = os.path.join(os.path.dirname(path), "__pycache__")
    for compiled in glob.glob(os.path.join(cache, "aws_login.*.pyc")):
        _remove(compiled)
    if module.get("dirs_made"):
        _remove_made_dirs([cache])
    _remove_made_dirs(module.get("dirs_made"))
    return True


def _plugin_section(path):
    text = _read_text(path) or ""
    parser = _parse_ini(text, path, default_section="\x00")
    return dict(parser.items(_PLUGIN_SECTION)) if parser.has_section(_PLUGIN_SECTION) else None


# The lines enable writes, as text: disable compares what is there now with
# what enable wrote, and only where they are the same puts back what was
# there before, byte for byte.

def _option_lines(lines, section, key):
    """(start, stop) of option ``key`` (with its continuation lines) in the first
    section ``section`` of ``lines``, or None."""
    spans = _sections(lines, section)
    if not spans:
        return None
    for i in range(spans[0].header + 1, spans[0].last):
        if _option_key(lines[i]) == key:
            stop = i + 1
            while stop < spans[0].last and lines[stop][:1].isspace() and lines[stop].strip():
                stop += 1
            return i, stop
    return None


def _option_text(text, section, key):
    """The text of option ``key`` in ``section`` as it stands in the file, or None."""
    lines = _lines(text)
    where = _option_lines(lines, section, key)
    return "".join(lines[where[0]:where[1]]) if where else None


def _put_back_option(text, section, key, wrote, previous):
    """(text, kept): ``text`` with option ``key`` back to ``previous`` (text, or
    None: no such option) if it still reads ``wrote``; else as it is, and
    ``kept`` True when the option is there, changed."""
    lines = _lines(text)
    where = _option_lines(lines, section, key)
    if where is None:
        return text, False
    if "".join(lines[where[0]:where[1]]).rstrip("\r\n") != wrote.rstrip("\r\n"):
        return text, True
    lines[where[0]:where[1]] = [previous] if previous else []
    return "".join(lines), False


def _recorded_lines(record):
    """{key: {"wrote": text, "previous": text or None}} of a record; a record of
    an earlier version kept the values only."""
    if "lines" in record:
        return record["lines"]
    wrote = {"login": "aws_login", _PLUGIN_PATH_KEY: os.path.join(_login_root(), "plugin")}
    return dict((key, {"wrote": "%s = %s" % (key, wrote[key]),
                       "previous": None if value is None else "%s = %s\n" % (key, value)})
                for key, value in record.get("previous", {}).items() if key in wrote)


def _recorded_modules(record):
    if "modules" in record:
        return record["modules"]
    return [{"path": record["module"], "sha256": record.get("module_sha256")}] if record.get(
        "module") else []


def _save_plugin_record(record):
    import json
    _update_file(_plugin_record_path(), lambda old: json.dumps(record, indent=2) + "\n")


_PluginPlan = _named_tuple("_PluginPlan", ("pythons", "folder"), """What enable will
    do: (Python, folder) of each AWS CLI v1 that must import the module, and the
    folder of AWS CLI v2's cli_legacy_plugin_path (None for v1).""")


def _plan_plugin(target, version, clis, current):
    """A _PluginPlan for the AWS CLI ``target`` of ``version`` among ``clis``, or
    ConfigError naming every AWS CLI that the plugin line would break, before
    anything is changed."""
    v1s = [c for c in clis if c.version and c.version[0] == 1]
    if version[0] >= 2 and v1s:
        raise ConfigError(
            "AWS CLI v2 (%s) loads plugins only with %s in [plugins], and every AWS CLI v1 "
            "imports that line's value as a module and fails: %s; nothing changed (enable "
            "the plugin for a v1, or use credential_process, which every AWS CLI reads)"
            % (target, _PLUGIN_PATH_KEY, ", ".join(c.path for c in v1s)))
    if version[0] >= 2:
        folder = (current.get(_PLUGIN_PATH_KEY) or "").split(os.pathsep)[0]
        return _PluginPlan([], os.path.expanduser(folder) or os.path.join(
            _login_root(), "plugin"))
    pythons, problems = [], []
    for cli in v1s:
        if _pyenv_shim_root(cli.path):
            continue            # it runs a pyenv version's `aws`: each is found on its own
        try:
            python = _cli_python(cli.path)
            pythons.append((python, _v1_plugin_folder(python)))
        except ConfigError as e:
            problems.append("%s: %s" % (cli.path, e))
    if problems:
        raise ConfigError(
            "every AWS CLI v1 you run reads [plugins] and imports aws_login, and these "
            "cannot be given it: %s; nothing changed (give their Python aws_login.py, or "
            "remove them)" % "; ".join(problems))
    return _PluginPlan(pythons, None)


def _prove_plugin(aws, plugin_expected=True, command="login"):
    """None when `aws --version` runs and (if ``plugin_expected``) `aws COMMAND`
    reaches this plugin (a probe it answers without logging in), else what went
    wrong."""
    import secrets
    env = _plain_environment()
    code, out = _run_quietly([aws, "--version"], env)
    if code != 0:
        return "`aws --version` failed: %s" % _last_line(out)
    if not plugin_expected:
        return None
    token = "aws_login-probe-" + secrets.token_hex(8)
    code, out = _run_quietly([aws, command], dict(env, **{_PLUGIN_PROBE_VARIABLE: token}),
                             timeout=30)
    if token not in (out or ""):
        return "`aws %s` did not reach the plugin: %s" % (command, _last_line(out))
    return None


def _plugin_names(command):
    """The AWS CLI's top-level commands the plugin takes: NAME, and logout
    beside login (under another name, logout is beneath it)."""
    return [command] + (["logout"] if command == "login" else [])


def _plugin_commands_text(command):
    words = [command, command + " configure",
             "logout" if command == "login" else command + " logout"]
    return ", ".join("`aws %s`" % w for w in words)


def _has_builtin_login(version):
    return bool(version) and tuple(version) >= _BUILTIN_LOGIN_SINCE


def _refuse_to_shadow(command, clis, replace_builtin):
    """ConfigError, before anything is changed, when the plugin's command would
    silently replace a command of the AWS CLI's own in one of ``clis`` (those
    that will load it)."""
    taken = [n for n in _plugin_names(command) if n in _BUILTIN_COMMANDS]
    owners = [c.path for c in clis if _has_builtin_login(c.version)]
    if taken and owners and not replace_builtin:
        raise ConfigError(
            "%s has its own %s (AWS CLI %s and later), which the plugin would replace; "
            "nothing changed: give the plugin a name of its own with --command (e.g. "
            "`--command saml-login` for `aws saml-login`), or replace them with "
            "--replace-builtin" % (", ".join(owners), " and ".join(
                "`aws %s`" % n for n in taken), ".".join(map(str, _BUILTIN_LOGIN_SINCE))))


def _plugin_enable(aws=None, command="login", replace_builtin=False):
    """Install the `aws login` plugin (`aws COMMAND`) for the AWS CLI ``aws`` (the
    one on PATH by default) and for every other AWS CLI that reads the same
    [plugins], and prove each works; when one cannot, or the command would
    replace one of the AWS CLI's own (unless ``replace_builtin``), nothing stays
    changed.  Returns the record of what was done."""
    if not _is_command_name(command):
        raise ConfigError("--command %r is not a command name: one word of lower-case "
                          "letters, digits and hyphens, a letter first" % command)
    source, _ = _own_file()
    if source is None:
        raise ConfigError("the plugin needs aws_login.py saved as a file: save it and run "
                          "`python3 aws_login.py plugin enable`")
    target = _find_aws(aws)
    clis = _survey(_aws_cli_paths([target]))    # the target first
    version = clis[0].version
    if version is None:
        raise ConfigError(clis[0].problem)
    config = _aws_config_path()
    plan = _plan_plugin(target, version, clis, _plugin_section(config) or {})
    _refuse_to_shadow(command, [c for c in clis if c.version and (
        c.version[0] == 1 or plan.folder)], replace_builtin)
    if os.path.exists(_plugin_record_path()):
        _plugin_disable()        # enabling again replaces what was done before
    record = {"aws": target, "aws_version": ".".join(map(str, version)), "config": config,
              "config_existed": os.path.exists(config), "config_dirs_made": [],
              "section_added": _plugin_section(config) is None, "lines": {}, "modules": [],
              "command": command, "replace_builtin": bool(replace_builtin),
              "clis": [{"path": c.path, "version": ".".join(map(str, c.version)),
                        "plugin": c.version[0] == 1 or bool(plan.folder)}
                       for c in clis if c.version]}
    _save_plugin_record(record)
    try:
        _install_for(plan, record, source)
        _write_plugin_lines(plan, record)
        proofs = _each(lambda c: _prove_plugin(c["path"], c["plugin"], command),
                       record["clis"])
        problems = ["%s (%s)" % (c["path"], problem)
                    for c, problem in zip(record["clis"], proofs) if problem]
    except BaseException:
        _undo_plugin(record)
        raise
    if problems:
        _undo_plugin(record)
        raise ConfigError("the plugin did not work in %s; everything enable did is undone "
                          "and each `aws` works as before" % "; ".join(problems))
    return record


def _install_for(plan, record, source):
    """Put the module where each AWS CLI of ``plan`` imports it, unless it is
    there already; each copy goes into ``record`` before the next step."""
    folders = [plan.folder] if plan.folder else []
    found = _each(lambda python_folder: _importable_from(python_folder[0]), plan.pythons)
    for (python, folder), module in zip(plan.pythons, found):
        if module is None and folder not in folders:
            folders.append(folder)
    for folder in folders:
        ours = folder == os.path.join(_login_root(), "plugin")
        record["modules"].append(_install_module(folder, source, private=ours))
        _save_plugin_record(record)


def _write_plugin_lines(plan, record):
    """Set [plugins] in ~/.aws/config (its mode kept), and record, as text, each
    line written and what it replaced."""
    values = {"login": "aws_login"}
    config = record["config"]
    if plan.folder and not (_plugin_section(config) or {}).get(_PLUGIN_PATH_KEY):
        values[_PLUGIN_PATH_KEY] = plan.folder
    record["config_dirs_made"] = _make_dirs(os.path.dirname(config), 0o700)
    _save_plugin_record(record)
    before = []

    def edit(text):
        before[:] = [text]
        return _ini_set_options(text, _PLUGIN_SECTION, values)
    _update_file(config, edit, keep_mode=True)
    after = _read_text(config) or ""
    record["lines"] = dict((key, {"wrote": _option_text(after, _PLUGIN_SECTION, key),
                                  "previous": _option_text(before[0], _PLUGIN_SECTION, key)})
                           for key in values)
    _save_plugin_record(record)


def _undo_plugin(record):
    """Take back what ``record`` says enable did and what is still as enable left
    it: the config lines (restoring those they replaced), the modules it copied,
    the folders and files it made, the record itself.  Returns what was done
    and what was left, in words."""
    config = record["config"]
    lines = _recorded_lines(record)
    kept = set()

    def edit(text):
        for key, line in lines.items():
            if line.get("wrote"):
                text, changed = _put_back_option(text, _PLUGIN_SECTION, key, line["wrote"],
                                                 line["previous"])
                kept.update([key] if changed else [])
        spans = _sections(_lines(text), _PLUGIN_SECTION)
        if record["section_added"] and spans and not any(
                _is_content(line) for line in _lines(text)[spans[0].header + 1:spans[0].end]):
            text = _ini_remove_section(text, _PLUGIN_SECTION)     # the header we added
        return text

    if os.path.exists(config):
        _update_file(config, edit, keep_mode=True)
        if not record["config_existed"] and (_read_text(config) or "") == "":
            os.unlink(config)
    _remove_made_dirs(record.get("config_dirs_made"))
    done = ["removed the plugin lines from %s" % config] if len(kept) < len(lines) else []
    done += ["left `%s` in [plugins] of %s as it is: changed since enable" % (key, config)
             for key in sorted(kept)]
    for module in _recorded_modules(record):
        done.append(("removed %s" if _remove_module(module) else
                     "left %s: changed since enable") % module["path"])
    _remove(_plugin_record_path())
    return done


def _plugin_disable():
    """Undo `plugin enable` without running `aws` (a broken plugin line breaks
    `aws configure set` itself).  Without a record, a ``login = aws_login``
    line (the README's manual way) is removed.  Returns what was done, in words."""
    import json
    path = _plugin_record_path()
    if os.path.exists(path):
        try:
            record = json.loads(_read_text(path))
        except ValueError:
            raise CredentialsFileError("%s is not the record `plugin enable` writes; "
                                       "remove it and edit %s by hand"
                                       % (path, _aws_config_path()))
        return _undo_plugin(record)
    config = _aws_config_path()
    if (_plugin_section(config) or {}).get("login") == "aws_login":
        _update_file(config, lambda text: _ini_set_options(text, _PLUGIN_SECTION,
                                                           {"login": None}), keep_mode=True)
        return ["removed `login = aws_login` from [plugins] in %s" % config]
    return []


def _plugin_status(aws=None):
    """What is installed where, and how each AWS CLI found fares with it now
    (each is run), as lines for a person."""
    import json
    lines = []
    record = None
    if os.path.exists(_plugin_record_path()):
        try:
            record = json.loads(_read_text(_plugin_record_path()))
        except ValueError:
            lines.append("%s is unreadable" % _plugin_record_path())
    section = _plugin_section(_aws_config_path()) or {}
    on = section.get("login") == "aws_login"
    if on:
        lines.append("plugin: on (%s: [plugins] login = aws_login%s)" % (
            _aws_config_path(), ", %s = %s" % (_PLUGIN_PATH_KEY, section[_PLUGIN_PATH_KEY])
            if section.get(_PLUGIN_PATH_KEY) else ""))
    else:
        lines.append("plugin: off")
    command = _plugin_command()
    if on:
        lines.append("commands: %s" % _plugin_commands_text(command))
    if record:
        lines.append("enabled by `plugin enable` for %s (aws-cli/%s); modules: %s" % (
            record["aws"], record["aws_version"], ", ".join(
                m["path"] for m in _recorded_modules(record)) or "none (importable already)"))
    elif on:
        lines.append("not enabled by `plugin enable`: if `aws` fails to import aws_login, "
                     "run `plugin disable`, or remove `login = aws_login` from [plugins]")
    try:
        target = _find_aws(aws)
    except ConfigError as e:
        target = None
        lines.append("AWS CLI: %s" % e)
    lines.append("AWS CLIs found (each run now, with %s):" % _aws_config_path())
    paths = _aws_cli_paths([target] + [c["path"] for c in (record or {}).get("clis", [])
                                       if isinstance(c, dict)])
    taken = [n for n in _plugin_names(command) if n in _BUILTIN_COMMANDS]
    for path, (fares, version, loads) in zip(paths, _each(
            lambda p: _cli_fares(p, on, section, command), paths)):
        lines.append("  %s %s" % (path, fares))
        if loads and taken and _has_builtin_login(version):
            lines.append("warning: %s has a built-in `aws login` (console sign-in): the plugin "
                         "replaces the AWS CLI's own %s (`plugin enable --command saml-login` "
                         "keeps them)" % (path, " and ".join("`aws %s`" % n for n in taken)))
    return lines


def _cli_fares(aws, on, section, command="login"):
    """How the AWS CLI ``aws`` fares with the user's config, in words, after
    running it (each run bounded in time), its version or None, and whether
    `aws COMMAND` reaches the plugin."""
    import secrets
    env = _plain_environment()
    try:
        version = _aws_cli_version(aws, _aws_config_path(), timeout=30)
    except ConfigError:
        code, out = _run_quietly([aws, "--version"], env, timeout=30)
        if code is None or _survey([aws])[0].version is None:
            return "does not run, even without a config: %s" % _last_line(out), None, False
        return "fails with that config: %s%s" % (_last_line(out), " (run `plugin disable`)"
                                                 if "aws_login" in out else ""), None, False
    name = "(aws-cli/%s):" % ".".join(map(str, version))
    if not on:
        return "%s works; plugin off" % name, version, False
    if version[0] >= 2 and not section.get(_PLUGIN_PATH_KEY):
        return "%s works; loads no plugins (AWS CLI v2 needs %s)" % (
            name, _PLUGIN_PATH_KEY), version, False
    token = "aws_login-probe-" + secrets.token_hex(8)
    code, out = _run_quietly([aws, command], dict(env, **{_PLUGIN_PROBE_VARIABLE: token}),
                             timeout=30)
    said = [line.split() for line in (out or "").splitlines() if token in line]
    if said:
        return "%s plugin loads (%s)" % (name, said[-1][-1]), version, True
    return "%s works, but `aws %s` does not reach the plugin: %s" % (
        name, command, _last_line(out)), version, False

if __name__ == "__main__":
    sys.exit(main())
