#!/usr/bin/env python3
"""Mutation trial: do the tests notice small mistakes in the code that guards the user?

    python3 bench/mutate.py [--list] [--quick] [--only NAME[,NAME]] [--timeout S]

Standard library only; needs Python 3.9+ to run (ast.unparse), the suite it
runs is the repository's own.  For each function in GUARDS (owner and mode
checks, path and name checks, cache freshness, menu bounds, session names,
external ids, temp-file cleanup, lock handling, the signature-preserving
extraction, SigV4) it makes mutants, one small edit each:

  - flip a comparison (``<`` to ``<=``, ``==`` to ``!=``, ``in`` to ``not in``, ...);
  - negate a condition (of an ``if``, ``while``, conditional expression or ``assert``);
  - swap ``and`` and ``or``;
  - return early (``return None`` as the function's first statement);
  - drop a call made as a statement, or a ``raise``.

Each mutant is a copy of the repository in a temporary folder with that one
function rewritten (ast.unparse of the edited function; everything else is
byte for byte the same).  The tests that mention the function run first, fail
fast (with the tests that killed its earlier mutants); a mutant they miss then
meets the whole suite, fail fast (``--quick`` skips that second round).  A
mutant is killed when a test fails or the run outlives ``--timeout`` (a hang
is a mistake noticed).  Before any mutant, a
control copy with every guard rewritten by ast.unparse but not edited must
pass the whole suite, else the trial stops: the rewriting itself would be
what the tests notice.

It prints one line per mutant, the survivors with their diffs, and the kill
rate; it exits 0 when at least ``--target`` percent (90) are killed, 1 when
fewer, 2 when the control fails.
"""

import argparse
import ast
import copy
import difflib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TOOL = "aws_login.py"
TESTS = "test_aws_login.py"

# The functions that guard the user, by what they guard.
GUARDS = [
    # files: owner and mode checks, private folders, atomic writes, stale temps
    "_check_owner", "_private_dir", "_remove_stale_temps", "_atomic_write",
    # names and paths that become file names, URLs, ids
    "_profile_name", "_check_url", "_check_external_id", "_check_role_name",
    "_check_passcode", "_check_header_name", "_session_name", "_quote_name",
    # options: the one table's checks, and what a flag sets for one run
    "_check_option", "_check_bool", "_check_factor", "Profile.override", "Profile.where",
    "_configured_value",
    # the one renewal schedule, the cache reader the fast path embeds, lifetimes
    "_fresh", "_cache_entry", "_check_lifetime", "_RenewalSchedule.renewal_time",
    "_RenewalSchedule.renewed", "_RenewalSchedule.failed", "_RenewalSchedule.due",
    "_RenewalSchedule.sleep", "_RefresherJob.__init__", "_credential_process", "_serve_cached",
    # the one store
    "_FileStore.write", "_FileStore._remove", "_ProcessStore.remove", "_ProcessStore.forget",
    # the role menu and its bounds
    "_role_menu", "_choose_role", "Terminal.choose",
    # prompts, the password, the first request, hints
    "Terminal.secret", "_ask_password", "_IdPSession.reuse", "_how_run", "_run_hint",
    "_unrecognized", "_describe_network_error",
    # STS: advice a person acts on, what is retried
    "_sts_advice", "_sts_credentials", "_parse_sts_answer",
    # the signature-preserving extraction of the SAML Response
    "_response_bytes", "_checked_assertion",
    # SigV4
    "_canonical_request", "_string_to_sign", "sign_request",
    # locks, pids and the refresher
    "_refresher_state", "_locked_by_another", "_process_start", "_stop_refresher",
    "_is_ours",
]

# The constants a rule is made of (margins, retry rules, bounds, escapes, quotes,
# option words): a number is halved and doubled, a tuple or list loses one
# element at a time.
RULES = [
    "_MIN_LEFT", "_RenewalSchedule.RENEW_BEFORE", "_RenewalSchedule.RETRY_MAX",
    "_RenewalSchedule.MIN_INTERVAL", "_RenewalSchedule.TIME_LIMIT", "_RenewalSchedule.SLICE",
    "_STS_ATTEMPTS", "_STS_TRANSIENT_CODES", "_MIN_LIFETIME", "_CLOCK_SKEW_MAX",
    "_FACTORS", "_FACTOR_OFF_WORDS", "_DUO_FACTOR_HEADERS", "_DUO_PASSCODE_HEADERS",
    "_CONTROL_CODES", "_POWERSHELL_QUOTES", "_ENV_UNSET", "_SERVER_UNSET", "_SHADOWING_OPTIONS",
    "_PLAIN_HTTP_REASONS", "_MAX_ANSWER_BYTES", "_MAX_XML_DEPTH", "_MAX_XML_NAMESPACES",
    "_MAX_LINE", "_MAX_HEADERS", "_CONNECT_TIMEOUT", "_LOCK_TIMEOUT",
]

FLIPS = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt,
         ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In,
         ast.Is: ast.IsNot, ast.IsNot: ast.Is}
SYMBOL = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==",
          ast.NotEq: "!=", ast.In: "in", ast.NotIn: "not in", ast.Is: "is",
          ast.IsNot: "is not"}


# ---------------------------------------------------------------------------
# Mutants
# ---------------------------------------------------------------------------

def find_function(tree, name):
    """The (only) def called ``name`` (``Class.method`` for a method)."""
    owner, _, name = name.rpartition(".")
    where = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == owner] \
        if owner else [tree]
    found = [n for top in where for n in ast.walk(top)
             if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == name]
    if len(found) != 1:
        raise SystemExit("mutate: %d functions called %s in %s" % (len(found), name, TOOL))
    return found[0]


def _docstring_count(body):
    """1 when ``body`` starts with a docstring, else 0."""
    return int(bool(body) and isinstance(body[0], ast.Expr) and
               isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str))


def _body_nodes(func):
    """Nodes of ``func`` in a fixed order, its docstring left out."""
    nodes = []
    for statement in func.body[_docstring_count(func.body):]:
        nodes.extend(ast.walk(statement))
    return nodes


def sites(func):
    """[(description, apply)] for ``func``: apply(copy_of_func) makes the edit."""
    found = []
    nodes = _body_nodes(func)
    for index, node in enumerate(nodes):
        if isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                if type(op) in FLIPS:
                    found.append(("line %d: %s -> %s" % (node.lineno, SYMBOL[type(op)],
                                                         SYMBOL[FLIPS[type(op)]]),
                                  _flip(index, i)))
        if isinstance(node, (ast.If, ast.While, ast.IfExp, ast.Assert)):
            found.append(("line %d: negate the %s condition" % (
                node.lineno, type(node).__name__.lower().replace("ifexp", "conditional")),
                _negate(index)))
        if isinstance(node, ast.BoolOp):
            found.append(("line %d: %s -> %s" % (
                node.lineno, "and" if isinstance(node.op, ast.And) else "or",
                "or" if isinstance(node.op, ast.And) else "and"), _swap_boolop(index)))
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            found.append(("line %d: drop the call %s" % (
                node.lineno, ast.unparse(node.value.func)), _drop(index)))
        if isinstance(node, ast.Raise):
            found.append(("line %d: drop the raise" % node.lineno, _drop(index)))
    if not any(isinstance(n, (ast.Yield, ast.YieldFrom)) for n in nodes):
        found.append(("line %d: return None first" % func.lineno, _return_early))
    return found


def _flip(index, i):
    def apply(func):
        node = _body_nodes(func)[index]
        node.ops[i] = FLIPS[type(node.ops[i])]()
    return apply


def _negate(index):
    def apply(func):
        node = _body_nodes(func)[index]
        node.test = ast.UnaryOp(op=ast.Not(), operand=node.test)
    return apply


def _swap_boolop(index):
    def apply(func):
        node = _body_nodes(func)[index]
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
    return apply


def _drop(index):
    def apply(func):
        target = _body_nodes(func)[index]
        for parent in ast.walk(func):
            for field, value in ast.iter_fields(parent):
                if isinstance(value, list) and any(v is target for v in value):
                    setattr(parent, field, [ast.Pass() if v is target else v for v in value])
                    return
        raise AssertionError("statement not found")
    return apply


def _return_early(func):
    first = _docstring_count(func.body)
    func.body[first:first] = [ast.Return(value=ast.Constant(value=None))]


def find_constant(tree, name):
    """The assignment of constant ``name`` (``Class.NAME`` for a class attribute)."""
    owner, _, name = name.rpartition(".")
    body = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == owner][0].body \
        if owner else tree.body
    found = [n for n in body if isinstance(n, ast.Assign) and
             any(isinstance(t, ast.Name) and t.id == name for t in n.targets)]
    if len(found) != 1:
        raise SystemExit("mutate: %d assignments of %s in %s" % (len(found), name, TOOL))
    return found[0]


def constant_sites(assign):
    """[(description, apply)] for a constant: numbers halved and doubled, each
    element of a tuple or list (or of a string of quote characters) left out."""
    found = []
    for index, node in enumerate(ast.walk(assign.value)):
        if isinstance(node, ast.Constant) and type(node.value) in (int, float) \
                and not isinstance(node.value, bool):
            for word, change in (("halve", lambda v: v // 2 if isinstance(v, int) else v / 2),
                                 ("double", lambda v: v * 2 if v else 1)):
                found.append(("line %d: %s %r" % (node.lineno, word, node.value),
                              _change_constant(index, change)))
        if isinstance(node, (ast.Tuple, ast.List)) and node.elts:
            for i in range(len(node.elts)):
                found.append(("line %d: leave out element %d (%s)" % (
                    node.lineno, i, ast.unparse(node.elts[i])[:30]), _leave_out(index, i)))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                1 < len(node.value) <= 8 and assign.value is node:
            for i in range(len(node.value)):
                found.append(("line %d: leave out character %d" % (node.lineno, i),
                              _change_constant(index, lambda v, i=i: v[:i] + v[i + 1:])))
    return found


def _change_constant(index, change):
    def apply(assign):
        node = list(ast.walk(assign.value))[index]
        node.value = change(node.value)
    return apply


def _leave_out(index, i):
    def apply(assign):
        node = list(ast.walk(assign.value))[index]
        del node.elts[i]
    return apply


def rewrite(source, tree, name, apply=None):
    """``source`` with function (or, from RULES, constant) ``name`` replaced by its
    unparsed text, edited by ``apply`` when given."""
    func = find_constant(tree, name) if name in RULES else find_function(tree, name)
    edited = copy.deepcopy(func)
    if apply:
        apply(edited)
    ast.fix_missing_locations(edited)
    first = min([func.lineno] + [d.lineno for d in getattr(func, "decorator_list", [])])
    indent = " " * func.col_offset
    text = "\n".join((indent + line) if line.strip() else line
                     for line in ast.unparse(edited).splitlines())
    lines = source.splitlines(True)
    return "".join(lines[:first - 1]) + text + "\n" + "".join(lines[func.end_lineno:])


# ---------------------------------------------------------------------------
# Running the suite on a copy
# ---------------------------------------------------------------------------

def make_copy():
    """A temporary copy of the repository's files (git's list when there is one)."""
    where = tempfile.mkdtemp(prefix="aws-login-mutate.")
    try:
        names = subprocess.run(["git", "-C", ROOT, "ls-files", "-z"], check=True,
                               capture_output=True).stdout.decode().split("\0")
        names = [n for n in names if n]
    except (OSError, subprocess.CalledProcessError):
        names = [TOOL, TESTS, "README.md", "LICENSE"]
    for name in names:
        if os.path.isfile(os.path.join(ROOT, name)):
            os.makedirs(os.path.dirname(os.path.join(where, name)), exist_ok=True)
            shutil.copy2(os.path.join(ROOT, name), os.path.join(where, name))
    return where


_stamp = [int(time.time()) - 100000]


def install(where, text):
    """Write the mutant, with an mtime of its own: cached bytecode keyed on
    (mtime, size) can never stand in for another mutant's."""
    path = os.path.join(where, TOOL)
    with open(path, "w") as f:
        f.write(text)
    _stamp[0] += 2
    os.utime(path, (_stamp[0], _stamp[0]))


def run_suite(where, names, timeout, log=None):
    """("killed"|"survived"|"timeout", seconds, first failure line); the run's
    output is appended to ``log`` (a path) when given."""
    started = time.time()
    proc = subprocess.Popen([sys.executable, TESTS, "--failfast"] + list(names), cwd=where,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return "timeout", time.time() - started, ""
    if proc.returncode == 0:
        return "survived", time.time() - started, ""
    if log:
        with open(log, "ab") as f:
            f.write(b"$ %s\n%s%s" % (" ".join(names or ["(all)"]).encode(), out, err))
    lines = err.decode(errors="replace").splitlines()
    after = lines[lines.index("=" * 70) + 1:] if "=" * 70 in lines else lines
    first = next((l for l in after if l.startswith("test_")), "")
    return "killed", time.time() - started, first.strip()


def failed_test(line):
    """The test as Class.method, from unittest's "test_x (__main__.Class[.test_x])",
    or None."""
    m = re.match(r"(test\w*) \(__main__\.(\w+)", line)
    return m and "%s.%s" % (m.group(2), m.group(1))


def test_sources(where):
    """[(Class.method, method source, class helpers' source)] of the suite."""
    source = open(os.path.join(where, TESTS)).read()
    found = []
    for cls in ast.parse(source).body:
        if isinstance(cls, ast.ClassDef):
            methods = [m for m in cls.body if isinstance(m, ast.FunctionDef)]
            helpers = "\n".join(ast.get_source_segment(source, m) or "" for m in methods
                                if not m.name.startswith("test"))
            found.extend(("%s.%s" % (cls.name, m.name), ast.get_source_segment(source, m)
                          or "", helpers) for m in methods if m.name.startswith("test"))
    return found


def related_tests(tests, name):
    """Test names (Class.method) whose method, or whose class's helpers, mention ``name``."""
    word = re.compile(r"\b%s\b" % re.escape(name.rpartition(".")[2]))
    return [test for test, text, helpers in tests if word.search(text) or word.search(helpers)]


def callers(tree, name):
    """Names of the functions of the tool that call ``name`` (for a function no
    test mentions by name, the tests of its callers run first)."""
    name = name.rpartition(".")[2]
    found = []
    for func in ast.walk(tree):
        if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)) and func.name != name:
            if any(isinstance(n, ast.Call) and name in (getattr(n.func, "id", None),
                                                        getattr(n.func, "attr", None))
                   for n in ast.walk(func)):
                found.append(func.name)
    return sorted(set(found))


# ---------------------------------------------------------------------------

def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--list", action="store_true", help="print the mutants and stop")
    parser.add_argument("--quick", action="store_true",
                        help="only the tests that mention the function, not the whole suite")
    parser.add_argument("--only", help="comma-separated names from GUARDS and RULES")
    parser.add_argument("--timeout", type=float, default=300,
                        help="seconds a run may take before it counts as a hang (300)")
    parser.add_argument("--target", type=float, default=90, help="kill rate to reach (90)")
    parser.add_argument("--log", metavar="DIR",
                        help="keep each mutant's test output in DIR/NUMBER.log")
    parser.add_argument("--no-control", action="store_true",
                        help="skip the control run of the unparsed, unedited guards")
    args = parser.parse_args(argv)
    guards = args.only.split(",") if args.only else GUARDS + RULES
    unknown = sorted(set(guards) - set(GUARDS + RULES))
    if unknown:
        parser.error("not in GUARDS or RULES: %s" % ", ".join(unknown))

    source = open(os.path.join(ROOT, TOOL)).read()
    tree = ast.parse(source)
    mutants = []
    for name in guards:
        found = constant_sites(find_constant(tree, name)) if name in RULES else \
            sites(find_function(tree, name))
        for description, apply in found:
            mutants.append((name, description, rewrite(source, tree, name, apply)))
    if args.list:
        for name, description, _ in mutants:
            print("%s: %s" % (name, description))
        print("%d mutants in %d functions" % (len(mutants), len(guards)))
        return 0

    if args.log:
        os.makedirs(args.log, exist_ok=True)
    where = make_copy()
    started = time.time()
    try:
        if not args.no_control:
            control = source
            for name in guards:
                control = rewrite(control, ast.parse(control), name)
            install(where, control)
            outcome, seconds, first = run_suite(where, [], args.timeout * 2)
            print("control (guards unparsed, not edited): %s in %.0fs %s" % (
                "passes" if outcome == "survived" else "FAILS", seconds, first), flush=True)
            if outcome != "survived":
                return 2
        tests = test_sources(where)
        related = {}
        for name in guards:
            related[name] = related_tests(tests, name)
            for caller in ([] if related[name] else callers(tree, name)):
                related[name] += [t for t in related_tests(tests, caller)
                                  if t not in related[name]]
        results = []
        for number, (name, description, text) in enumerate(mutants, 1):
            install(where, text)
            log = args.log and os.path.join(args.log, "%03d.log" % number)
            outcome, seconds, first = ("survived", 0.0, "")
            if related[name]:
                outcome, seconds, first = run_suite(where, related[name], args.timeout, log)
            if outcome == "survived" and not args.quick:
                outcome, more, first = run_suite(where, [], args.timeout, log)
                seconds += more
                killer = failed_test(first)
                if killer and killer not in related[name]:
                    related[name].insert(0, killer)     # the next mutant here tries it first
            results.append((name, description, text, outcome))
            print("%3d/%d %-9s %5.1fs  %s: %s  %s" % (
                number, len(mutants), outcome, seconds, name, description, first[:60]),
                flush=True)
    finally:
        shutil.rmtree(where, ignore_errors=True)

    survivors = [r for r in results if r[3] == "survived"]
    for name, description, text, _ in survivors:
        print("\nSURVIVED %s: %s" % (name, description))
        diff = difflib.unified_diff(rewrite(source, tree, name).splitlines(),
                                    text.splitlines(), "unparsed", "mutant", n=1, lineterm="")
        print("\n".join(list(diff)[2:]))
    killed = len(results) - len(survivors)
    rate = 100.0 * killed / len(results) if results else 100.0
    print("\n%d mutants, %d killed, %d survived: kill rate %.1f%% (target %g%%) in %.0fs%s"
          % (len(results), killed, len(survivors), rate, args.target, time.time() - started,
             " (related tests only)" if args.quick else ""))
    return 0 if rate >= args.target else 1


if __name__ == "__main__":
    sys.exit(main())
