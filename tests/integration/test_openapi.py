#!/usr/bin/env python3
"""hoist serve's API document, doc/api/openapi.json, against the server.

The document is checked by tools that are not hoist's: the npm package
@seriousme/openapi-schema-validator (the OpenAPI 3.1 schema) and Ajv, its
JSON Schema engine, strict (2020-12; an unknown keyword or format is an
error), for every schema in it; both are installed once, pinned, under
$HOIST_CACHE/npm/openapi (tests/integration/openapi_check.js runs them).
Then a real `hoist serve`, with a real registry holding an image of the
caller's, is asked every documented operation and a table of refusals over
plain HTTP, and each answer's status, content type and body are checked
against what the document says of that operation.
"""
import base64
import http.client
import json
import os
import re
import socket
import subprocess
import time

from hoisttest import (API, SOURCE_ROOT, Registry, Server, hoist, main, npm_modules, run, test,
                       tmpdir, wait_for)

SPEC = os.path.join(SOURCE_ROOT, "doc", "api", "openapi.json")
HTTP_C = os.path.join(SOURCE_ROOT, "src", "lib", "server", "http.c")
CHECK_JS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "openapi_check.js")
MAKE_LAYOUT = os.environ.get("HOIST_MAKE_LAYOUT", "make_layout")
VALIDATOR = {"@seriousme/openapi-schema-validator": "2.11.0", "ajv": "8.20.0",
             "ajv-formats": "3.0.1"}
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_state = {}


def node_modules():
    """The validator's node_modules (under $HOIST_CACHE/npm/openapi)."""
    return npm_modules("openapi", VALIDATOR)


def check(spec=SPEC, cases=()):
    """openapi_check.js's verdict on spec and on cases [(where, schema, body)]."""
    p = subprocess.run(["node", CHECK_JS, node_modules(), spec], capture_output=True, text=True,
                       timeout=120,
                       input=json.dumps([{"where": w, "schema": s, "body": b} for w, s, b in cases]))
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def doc():
    with open(SPEC) as f:
        return json.load(f)


def operations(d):
    """{(METHOD, path): operation} of document d."""
    return {(m.upper(), path): op for path, item in d["paths"].items()
            for m, op in item.items() if m in METHODS}


def deref(d, node):
    """node, or what its $ref (into d) names."""
    while isinstance(node, dict) and "$ref" in node:
        target = d
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def routes():
    """The routes the server dispatches: read from the route table in
    src/lib/server/http.c (the server has no way to list them), as
    {(METHOD, full path): max body}; a route of any method (NULL) is
    documented as GET."""
    src = open(HTTP_C).read()
    table = re.search(r"static const route routes\[\] = \{(.*?)\n\};", src, re.S)
    assert table, "no route table in http.c"
    limits = {"HOIST_SERVER_MAX_SMALL_BODY": 4096, "HOIST_SERVER_MAX_START_BODY": 10065536}
    found = {}
    for path, method, limit in re.findall(
            r'\{"([^"]+)",\s*(?:"([A-Z]+)"|NULL),\s*R_\w+,\s*(\w+)\}', table.group(1)):
        full = path if path.startswith("/") else f"{API}/{path}"
        found[(method or "GET", full)] = limits[limit]
    assert len(found) == table.group(1).count("{"), "a route the pattern did not read"
    return found


# ------------------------------------------------------------------ the server


def server():
    """A hoist serve whose registry holds alice/app:1, and alice's key."""
    if "s" not in _state:
        reg = Registry(tmpdir()).start()
        layout = os.path.join(tmpdir(), "src")
        run(MAKE_LAYOUT, layout, "1", f"openapi test {time.time()}\n")
        hoist("push", f"oci:{layout}:1", f"{reg.host}/alice/app:1")
        s = Server(config={"registry_host": reg.host,
                           "allowed_sources": [f"{reg.host}/base/*"]}).start()
        _state.update(s=s, reg=reg, key=s.token("alice"))
    return _state["s"], _state["key"]


def call(s, method, path, auth=None, body=None, headers=None):
    """(status, content type, raw body) of one request."""
    c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=60)
    h = dict(headers or {})
    if auth is not None:
        h["authorization"] = auth
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
        h.setdefault("content-type", "application/json")
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, r.getheader("content-type"), data


def raw(s, request):
    """(status, content type, raw body) of a request sent as bytes; the
    server may answer before the body and close."""
    with socket.create_connection(("127.0.0.1", s.port), timeout=10) as c:
        c.sendall(request)
        buf = b""
        while True:
            try:
                d = c.recv(65536)
            except ConnectionResetError:
                break
            if not d:
                break
            buf += d
            head, sep, rest = buf.partition(b"\r\n\r\n")
            m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
            if sep and m and len(rest) >= int(m.group(1)):
                break
    head, _, rest = buf.partition(b"\r\n\r\n")
    assert head, "no answer"
    ctype = re.search(rb"(?im)^content-type:\s*([^\r\n]+)", head)
    return int(head.split()[1]), ctype and ctype.group(1).decode(), rest


def against_doc(d, method, path, got, failures, cases):
    """Checks one answer got = (status, content type, body) against the
    document's operation: a status it lists, one of its content types for
    that status; a JSON body goes into cases for the schema check."""
    op = operations(d)[(method, path)]
    status, ctype, body = got
    resp = op["responses"].get(str(status))
    where = f"{method} {path} -> {status}"
    if resp is None:
        failures.append(f"{where}: status not in the document ({sorted(op['responses'])}), "
                        f"body {body[:200]!r}")
        return
    content = deref(d, resp).get("content", {})
    if ctype not in content:
        failures.append(f"{where}: content type {ctype!r}, the document has {sorted(content)}")
        return
    if ctype == "application/json":
        cases.append((where, content[ctype]["schema"], json.loads(body)))


def report(cases, failures):
    result = check(cases=cases)
    for (where, _, body), errors in zip(cases, result["cases"]):
        if errors:
            failures.append(f"{where}: {json.dumps(body)[:300]} does not match: "
                            f"{json.dumps(errors)[:600]}")
    assert not failures, "\n".join(failures)


# ------------------------------------------------------------------ tests


@test
def document_is_valid_openapi_3_1():
    d = doc()
    assert d["openapi"] == "3.1.0"
    r = check()
    assert r["spec"]["valid"], json.dumps(r["spec"]["errors"], indent=1)[:3000]
    assert r["refs"] == [], r["refs"]
    assert r["schemas"] == [], json.dumps(r["schemas"], indent=1)[:3000]
    # the version is the binary's
    version = hoist("--version").stdout.split()[1]
    assert d["info"]["version"] == version, (d["info"]["version"], version)
    # every operation: an id, a tag the document declares, its body limit
    tags = {t["name"] for t in d["tags"]}
    ids = [op["operationId"] for op in operations(d).values()]
    assert len(ids) == len(set(ids)), ids
    for key, op in operations(d).items():
        assert set(op["tags"]) <= tags, key
        assert isinstance(op.get("x-hoist-max-body"), int), key
    # the checks can fail: a response without its description, a schema
    # keyword misspelled, a $ref to nothing are each refused
    bad = os.path.join(tmpdir(), "bad.json")
    for name, spoil, part in [
        ("no description", lambda b: b["paths"]["/healthz"]["get"]["responses"]["200"]
         .pop("description"), "spec"),
        ("misspelled keyword", lambda b: b["components"]["schemas"]["Error"]
         .__setitem__("requred", ["x"]), "schemas"),
        ("dangling ref", lambda b: b["paths"]["/healthz"]["get"]["responses"]["400"]
         .__setitem__("$ref", "#/components/responses/Nothing"), "refs"),
    ]:
        b = doc()
        spoil(b)
        with open(bad, "w") as f:
            json.dump(b, f)
        r = check(spec=bad)
        caught = {"spec": not r["spec"]["valid"], "schemas": bool(r["schemas"]),
                  "refs": bool(r["refs"])}
        assert caught[part], (name, r)


@test
def served_document_is_the_shipped_one():
    s, key = server()
    with open(SPEC, "rb") as f:
        shipped = f.read()
    # no authorization needed, and one that is wrong does not matter
    for auth in (None, "nobody:nothing"):
        status, ctype, body = call(s, "GET", "/openapi.json", auth=auth)
        assert (status, ctype) == (200, "application/json"), (status, ctype, body[:200])
        assert body == shipped, "GET /openapi.json is not doc/api/openapi.json"
    assert call(s, "POST", "/openapi.json")[0] == 405


@test
def every_route_documented_and_every_operation_answers():
    d = doc()
    documented = operations(d)
    table = routes()
    assert set(table) - set(documented) == set(), \
        f"dispatched, not documented: {sorted(set(table) - set(documented))}"
    assert set(documented) - set(table) == set(), \
        f"documented, not dispatched: {sorted(set(documented) - set(table))}"
    # the body limit the document states is the table's and the server's
    s, key = server()
    failures, cases = [], []
    for (method, path), limit in sorted(table.items()):
        op = documented[(method, path)]
        if op["x-hoist-max-body"] != limit:
            failures.append(f"{method} {path}: x-hoist-max-body {op['x-hoist-max-body']}, "
                            f"the route table {limit}")
        got = raw(s, (f"{method} {path} HTTP/1.1\r\nHost: x\r\nauthorization: {key}\r\n"
                      f"Content-Length: {limit + 1}\r\n\r\n").encode())
        want = f"Request body too large (max {limit} bytes for this endpoint)."
        if got[0] != 413 or json.loads(got[2]).get("message") != want:
            failures.append(f"{method} {path}: {limit + 1} bytes declared: {got}")
        against_doc(d, method, path, got, failures, cases)

    # every operation, called as a client would, answers what it documents
    reg = _state["reg"]
    start = {"source": f"{reg.host}/base/none:1", "target": "alice:t1", "kind": "python",
             "file": "Zmxhc2s9PTMuMAo="}
    st, _, b = call(s, "POST", f"{API}/build/start", key, start)
    assert st == 200, b
    job = json.loads(b)["id"]
    basic = "Basic " + base64.b64encode(key.encode()).decode()
    calls = [
        # (method, path, query, auth, body, status)
        ("POST", f"{API}/build/start", "", key, dict(start, target="alice:t2"), 200),
        ("POST", f"{API}/build/cleanup", "", key, {"max_age_hours": 1}, 200),
        ("GET", f"{API}/build/status", f"?id={job}", basic, None, 200),
        ("GET", f"{API}/build/logs", f"?id={job}", key, None, 200),
        ("GET", f"{API}/builds", "", key, None, 200),
        ("DELETE", f"{API}/build", "?id=0123456789abcdef", key, None, 404),
        ("POST", f"{API}/build/cancel", "?id=0123456789abcdef", key, None, 404),
        ("GET", f"{API}/registry/catalog", "", key, None, 200),
        ("GET", f"{API}/registry/tags", "?image=alice/app", key, None, 200),
        ("GET", f"{API}/registry/manifest", "?image=alice/app:1", key, None, 200),
        ("DELETE", f"{API}/registry/manifest", "?image=alice/app:1", key, None, 200),
        ("GET", "/healthz", "", None, None, 200),
        ("GET", "/metrics", "", None, None, 200),
        ("GET", "/openapi.json", "", None, None, 200),
    ]
    assert {(m, p) for m, p, *_ in calls} == set(documented), "a documented operation not called"
    for method, path, query, auth, body, want in calls:
        got = call(s, method, path + query, auth, body)
        if got[0] != want:
            failures.append(f"{method} {path}{query}: want {want}, got {got[0]} {got[2][:300]!r}")
        against_doc(d, method, path, got, failures, cases)
    report(cases, failures)


@test
def refusals_match_the_document():
    d = doc()
    s, key = server()
    reg = _state["reg"]
    start = {"source": f"{reg.host}/base/none:1", "target": "alice:t3", "kind": "python"}
    st, _, b = call(s, "POST", f"{API}/build/start", key, start)
    assert st == 200, b
    job = json.loads(b)["id"]
    # the build of a base that is not there fails: its cancel comes too late
    wait_for(lambda: s.status(key, job)["state"] == "failed", timeout=120, what="the build fails")
    rows = [
        # (method, path, query, auth, body, status, message)
        ("POST", f"{API}/build/start", "", None, start, 401, "Missing authorization header"),
        ("POST", f"{API}/build/start", "", "nobody:" + "0" * 64, start, 401,
         "Invalid authorization"),
        ("POST", f"{API}/build/start", "", key, {"source": start["source"], "kind": "python"},
         400, "No target provided for build."),
        ("POST", f"{API}/build/start", "", key, "[1]", 400, "No JSON payload provided for build."),
        ("POST", f"{API}/build/start", "", key, dict(start, kind="cobol"), 400,
         'Unknown kind "cobol" (known kinds: python, nodejs, php, java, go, ruby, dotnet).'),
        ("POST", f"{API}/build/start", "", key, dict(start, source="elsewhere.example/x:1"), 403,
         None),
        ("POST", f"{API}/build/cleanup", "", key, {"max_age_hours": -1}, 400,
         "Invalid max_age_hours: must be a non-negative number."),
        ("GET", f"{API}/build/status", "", key, None, 400, "No id provided for build status."),
        ("GET", f"{API}/build/status", "?id=fedcba9876543210", key, None, 404,
         "Build job not found."),
        ("GET", f"{API}/build/logs", "?id=fedcba9876543210", key, None, 404,
         "Build job not found."),
        ("GET", f"{API}/builds", "", "Basic !!!", None, 401, "Invalid authorization"),
        ("DELETE", f"{API}/build", "", key, None, 400, "No id provided for build cancel."),
        ("POST", f"{API}/build/cancel", f"?id={job}", key, None, 409,
         "Build job already finished."),
        ("GET", f"{API}/build/status", f"?id={job}", key, None, 200, "Build job found."),
        ("GET", f"{API}/registry/tags", "", key, None, 400, "No image provided."),
        ("GET", f"{API}/registry/tags", "?image=bob", key, None, 403,
         "Image outside the caller's namespace."),
        ("GET", f"{API}/registry/manifest", "?image=alice/none:1", key, None, 404,
         "Image not found."),
        ("DELETE", f"{API}/registry/manifest", "?image=Alice/App", key, None, 400,
         "Invalid image."),
        ("GET", f"{API}/registry/catalog", "", None, None, 401, "Missing authorization header"),
    ]
    failures, cases = [], []
    for method, path, query, auth, body, want, message in rows:
        got = call(s, method, path + query, auth, body)
        answer = json.loads(got[2])
        if got[0] != want or (message and answer.get("message") != message):
            failures.append(f"{method} {path}{query}: want {want} {message!r}, got {got[0]} "
                            f"{answer}")
        against_doc(d, method, path, got, failures, cases)
    # two Content-Length headers that differ: refused on any route
    got = raw(s, f"GET {API}/builds HTTP/1.1\r\nHost: x\r\nauthorization: {key}\r\n"
                 "Content-Length: 1\r\nContent-Length: 2\r\n\r\n".encode())
    against_doc(d, "GET", f"{API}/builds", got, failures, cases)
    # what no operation has (an unknown path, another method) is the same envelope
    error = d["components"]["schemas"]["Error"]
    for method, path, want in [("GET", f"{API}/nothing", 404), ("GET", f"{API}/build/start", 405),
                               ("PUT", "/openapi.json", 405)]:
        status, ctype, body = call(s, method, path, key)
        assert (status, ctype) == (want, "application/json"), (method, path, status, body)
        cases.append((f"{method} {path} -> {status}", error, json.loads(body)))
    report(cases, failures)


if __name__ == "__main__":
    main()
