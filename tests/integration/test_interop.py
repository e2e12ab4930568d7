"""Interop with the OCI image spec and other readers: sparse files as data,
UTF-8 names, non-distributable layers, the upload requests' content types
and POSIX ACLs. skopeo, umoci and Python's tarfile are the independent
readers; every server is on loopback."""
import gzip
import hashlib
import http.client
import http.server
import io
import json
import os
import tarfile
import threading

from hoisttest import Registry, Skip, hoist, main, run, skopeo, test, tmpdir

SPARSE_SIZE = 8 << 20


class QuietServer(http.server.ThreadingHTTPServer):
    """A client hanging up mid-answer (as hoist does on a blob too long) is
    no error of the test."""

    def handle_error(self, request, client_address):
        pass


def sparse_tree(base):
    """A tree with a file that is mostly hole: 'head' at 0, 'tail' at 6 MiB."""
    tree = os.path.join(base, "tree")
    os.makedirs(tree)
    with open(os.path.join(tree, "sparse"), "wb") as f:
        f.truncate(SPARSE_SIZE)
        f.write(b"head")
        f.seek(6 << 20)
        f.write(b"tail")
    return tree


def check_sparse_content(path):
    with open(path, "rb") as f:
        data = f.read()
    assert len(data) == SPARSE_SIZE, len(data)
    assert data[:4] == b"head" and data[6 << 20:(6 << 20) + 4] == b"tail"
    assert data.count(0) == SPARSE_SIZE - 8


def pax_records(path):
    """(name, pax headers, sparse map) of each member of an uncompressed tar."""
    with tarfile.open(path, encoding="utf-8", errors="surrogateescape") as t:
        return [(m.name, dict(m.pax_headers), m.sparse) for m in t.getmembers()]


@test
def sparse_files_are_written_as_data():
    d = tmpdir()
    tree = sparse_tree(d)
    out = os.path.join(d, "l.tar")
    hoist("layer", "create", tree, "-o", out, "--compress", "none")
    [(name, pax, sparse)] = pax_records(out)
    assert name == "sparse" and sparse is None, (name, sparse)
    assert not any(k.startswith("GNU.sparse") for k in pax), pax
    assert os.path.getsize(out) >= SPARSE_SIZE
    with tarfile.open(out) as t:
        data = t.extractfile("sparse").read()
    assert data[:4] == b"head" and data[6 << 20:(6 << 20) + 4] == b"tail"

    # the opt-in keeps the GNU sparse 1.0 form
    out2 = os.path.join(d, "l2.tar")
    hoist("layer", "create", tree, "-o", out2, "--compress", "none", "--sparse")
    [(_, pax2, sparse2)] = pax_records(out2)
    assert pax2.get("GNU.sparse.major") == "1" and sparse2, pax2
    assert os.path.getsize(out2) < (1 << 20)

    # an image of it: skopeo checks every digest while copying, umoci and
    # hoist unpack it; hoist gives the zero runs back as holes
    img = os.path.join(d, "img")
    hoist("append", "scratch", "--target", f"oci:{img}:s", "--layer", tree)
    skopeo("copy", f"oci:{img}:s", f"oci:{d}/copy:s")
    run("umoci", "unpack", "--rootless", "--image", f"{d}/copy:s", f"{d}/bundle")
    check_sparse_content(f"{d}/bundle/rootfs/sparse")
    hoist("unpack", f"oci:{img}:s", f"{d}/out")
    check_sparse_content(f"{d}/out/sparse")
    st = os.stat(f"{d}/out/sparse")
    assert st.st_blocks * 512 < (1 << 20), st.st_blocks


NAMES = ["caf\u00e9", "\u65e5\u672c\u8a9e", "\U0001f433 whale"]


@test
def utf8_names_have_no_binary_charset():
    d = tmpdir()
    tree = os.path.join(d, "tree")
    os.makedirs(os.path.join(tree, NAMES[1]))
    for n in NAMES:
        with open(os.path.join(tree, NAMES[1], n), "w") as f:
            f.write(n)
    os.symlink(NAMES[0], os.path.join(tree, "link"))
    out = os.path.join(d, "l.tar")
    # the C locale, where libarchive used to fall back to hdrcharset=BINARY
    hoist("layer", "create", tree, "-o", out, "--compress", "none", env={"LC_ALL": "C"})
    recs = pax_records(out)
    for name, pax, _ in recs:
        assert "hdrcharset" not in pax, (name, pax)
    names = {name for name, _, _ in recs}
    for n in NAMES:
        assert f"{NAMES[1]}/{n}" in names, names
    with open(out, "rb") as f:
        raw = f.read()
    assert f" path={NAMES[1]}/{NAMES[0]}\n".encode() in raw
    assert f" linkpath={NAMES[0]}\n".encode() in raw
    # umoci (Go's archive/tar) and hoist read the names back
    img = os.path.join(d, "img")
    hoist("append", "scratch", "--target", f"oci:{img}:u", "--layer", tree)
    run("umoci", "unpack", "--rootless", "--image", f"{img}:u", f"{d}/bundle")
    hoist("unpack", f"oci:{img}:u", f"{d}/out")
    for root in (f"{d}/bundle/rootfs", f"{d}/out"):
        for n in NAMES:
            with open(os.path.join(root, NAMES[1], n)) as f:
                assert f.read() == n
        assert os.readlink(os.path.join(root, "link")) == NAMES[0]


# ----------------------------------------------------------- hand-made layouts

def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def put_blob(layout, data):
    dg = sha(data)
    p = os.path.join(layout, "blobs", "sha256", dg[7:])
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data)
    return dg


def tar_of(members):
    """members: (TarInfo, data or None). A pax tar in memory."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for info, data in members:
            t.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def file_info(name, data=b"", mode=0o644, pax=None, kind=tarfile.REGTYPE):
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.size = len(data) if kind == tarfile.REGTYPE else 0
    ti.mode = mode
    ti.mtime = 1700000000
    if pax:
        ti.pax_headers = pax
    return ti


def make_image(layout, tag, layers):
    """layers: (tar bytes, media type, urls or None, store the blob?).
    Writes an OCI layout image (gzip layers) and returns its manifest."""
    os.makedirs(layout, exist_ok=True)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    descs, diff_ids = [], []
    for tar, mt, urls, keep in layers:
        gz = gzip.compress(tar, mtime=0)
        diff_ids.append(sha(tar))
        dg = put_blob(layout, gz) if keep else sha(gz)
        d = {"mediaType": mt, "digest": dg, "size": len(gz)}
        if urls:
            d["urls"] = urls
        descs.append(d)
    cfg = json.dumps({"architecture": "amd64", "os": "linux",
                      "rootfs": {"type": "layers", "diff_ids": diff_ids},
                      "config": {}}).encode()
    cdg = put_blob(layout, cfg)
    m = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
         "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdg,
                    "size": len(cfg)},
         "layers": descs}
    mb = json.dumps(m).encode()
    mdg = put_blob(layout, mb)
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": mdg,
             "size": len(mb), "annotations": {"org.opencontainers.image.ref.name": tag}}]}, f)
    return m


class BlobServer:
    """Files of a directory over plain HTTP on 127.0.0.1, requests counted."""

    def __init__(self, root):
        self.root = root
        self.hits = []
        outer = self

        class H(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *a, **kw):
                super().__init__(*a, directory=outer.root, **kw)

            def do_GET(self):
                outer.hits.append((self.path, self.headers.get("Authorization")))
                super().do_GET()

            def log_message(self, *a):
                pass

        self.httpd = QuietServer(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, name):
        return f"http://127.0.0.1:{self.port}/{name}"

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class UrlRegistry(Registry):
    """A registry that takes layers with urls (distribution wants them allowed)."""

    def _config(self):
        return super()._config() + (
            "validation:\n  manifests:\n    urls:\n      allow:\n        - ^https?://\n")


ND_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
FOREIGN_GZIP = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


@test
def nondistributable_layers_are_kept_out_and_fetched_on_request():
    d = tmpdir()
    served = os.path.join(d, "served")
    os.makedirs(served)
    srv = BlobServer(served)
    try:
        base = tar_of([(file_info("base.txt", b"base\n"), b"base\n")])
        nd = tar_of([(file_info("nd.txt", b"from the url\n"), b"from the url\n")])
        ndgz = gzip.compress(nd, mtime=0)
        with open(os.path.join(served, "nd.tar.gz"), "wb") as f:
            f.write(ndgz)
        src = os.path.join(d, "src")
        m = make_image(src, "t", [(base, LAYER_GZIP, None, True),
                                  (nd, ND_GZIP, [srv.url("nd.tar.gz")], False)])
        nd_digest = m["layers"][1]["digest"]

        reg = UrlRegistry(d).start()
        # copy: the layer is not uploaded, the manifest keeps it with its urls
        hoist("copy", f"oci:{src}:t", f"{reg.host}/nd:t")
        got = json.load(reg.get("/v2/nd/manifests/t", headers={
            "Accept": "application/vnd.oci.image.manifest.v1+json"}))
        assert got["layers"][1] == m["layers"][1], got["layers"]
        try:
            reg.get(f"/v2/nd/blobs/{nd_digest}", method="HEAD")
            raise AssertionError("the non-distributable blob was uploaded")
        except Exception as e:
            assert "404" in str(e), e
        # skopeo reads what hoist pushed
        skopeo("inspect", "--tls-verify=false", f"docker://{reg.host}/nd:t")

        # unpack without the option: a clear error, no fetch
        p = hoist("unpack", f"{reg.host}/nd:t", f"{d}/out0", check=False)
        assert p.returncode != 0 and "non-distributable" in p.stderr, p.stderr
        assert srv.hits == []
        # with it: fetched from the url, checked, applied
        hoist("unpack", "--allow-foreign-urls", f"{reg.host}/nd:t", f"{d}/out1")
        assert open(f"{d}/out1/nd.txt").read() == "from the url\n"
        assert open(f"{d}/out1/base.txt").read() == "base\n"
        assert srv.hits == [("/nd.tar.gz", None)], srv.hits

        # a Docker foreign layer is the same; bytes that do not match the
        # digest are refused and nothing is stored
        bad = os.path.join(d, "bad")
        m2 = make_image(bad, "t", [(nd, FOREIGN_GZIP, [srv.url("wrong.tar.gz")], False)])
        with open(os.path.join(served, "wrong.tar.gz"), "wb") as f:
            f.write(ndgz[:20] + bytes([ndgz[20] ^ 1]) + ndgz[21:])
        p = hoist("unpack", "--allow-foreign-urls", f"oci:{bad}:t", f"{d}/out2", check=False)
        assert p.returncode != 0 and "digest" in p.stderr, p.stderr
        assert not os.path.exists(os.path.join(bad, "blobs", "sha256",
                                               m2["layers"][0]["digest"][7:]))
        # more bytes than the descriptor's size: refused while streaming
        with open(os.path.join(served, "wrong.tar.gz"), "wb") as f:
            f.write(ndgz + b"x" * 100000)
        p = hoist("unpack", "--allow-foreign-urls", f"oci:{bad}:t", f"{d}/out3", check=False)
        assert p.returncode != 0 and "bytes" in p.stderr, p.stderr
        # only http(s)
        local = os.path.join(d, "local")
        make_image(local, "t", [(nd, ND_GZIP, [f"file://{served}/nd.tar.gz"], False)])
        p = hoist("unpack", "--allow-foreign-urls", f"oci:{local}:t", f"{d}/out4",
                  check=False)
        assert p.returncode != 0 and "only http and https" in p.stderr, p.stderr
        # a later url that works after one that fails
        two = os.path.join(d, "two")
        make_image(two, "t", [(nd, ND_GZIP, [srv.url("missing"), srv.url("nd.tar.gz")], False)])
        hoist("unpack", "--allow-foreign-urls", f"oci:{two}:t", f"{d}/out5")
        assert open(f"{d}/out5/nd.txt").read() == "from the url\n"
    finally:
        srv.stop()


class Recorder:
    """An HTTP proxy on loopback in front of a registry that records each
    request's method, path and Content-Type."""

    def __init__(self, upstream_port):
        self.seen = []
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _relay(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                outer.seen.append((self.command, self.path, self.headers.get("Content-Type")))
                c = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=60)
                hdrs = {k: v for k, v in self.headers.items()
                        if k.lower() not in ("connection", "transfer-encoding")}
                hdrs["Content-Length"] = str(len(body))
                c.request(self.command, self.path, body=body, headers=hdrs)
                r = c.getresponse()
                data = r.read()
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in ("connection", "transfer-encoding", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                c.close()

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _relay

            def log_message(self, *a):
                pass

        self.httpd = QuietServer(("127.0.0.1", 0), H)
        self.host = f"127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@test
def upload_requests_carry_no_form_content_type():
    d = tmpdir()
    reg = Registry(d).start()
    rec = Recorder(reg.port)
    try:
        tree = os.path.join(d, "tree")
        os.makedirs(tree)
        with open(os.path.join(tree, "f"), "w") as f:
            f.write("content type\n")
        # a small layer goes up in one PUT, a larger one in PATCH chunks
        with open(os.path.join(tree, "big"), "wb") as f:
            f.write(os.urandom(3 << 20))
        hoist("append", "scratch", "--target", f"oci:{d}/img:c", "--layer", tree)
        hoist("copy", f"oci:{d}/img:c", f"{rec.host}/ct:c", env={"HOIST_CHUNK_SIZE": str(1 << 20)})
        hoist("copy", f"{rec.host}/ct:c", f"{rec.host}/ct2:c")  # mounts: POST ?mount=
        methods = {(m, ct) for m, _, ct in rec.seen if m in ("POST", "PUT", "PATCH")}
        assert any(m == "POST" for m, _ in methods), rec.seen
        assert any(m == "PATCH" for m, _ in methods), rec.seen  # chunked: a bodiless PUT closes
        for m, path, ct in rec.seen:
            assert ct is None or ct != "application/x-www-form-urlencoded", (m, path, ct)
            if m == "POST" or (m == "PUT" and "/blobs/uploads/" in path):
                assert ct in (None, "application/octet-stream"), (m, path, ct)
        skopeo("inspect", "--tls-verify=false", f"docker://{reg.host}/ct2:c")
    finally:
        rec.stop()


# ------------------------------------------------------------------------ ACLs

# star's form, as in libarchive's test_compat_star_acl_posix1e.tar: the
# header's mode has the mask as its group bits, the ACL the owning group's
STAR_ACL = "user::r-x,user:1234:rwx,group::r--,mask::rwx,other::-wx"
DEFAULT_ACL = "user::rwx,user:1234:r-x,group::r-x,mask::r-x,other::r-x"


def acl_supported(d):
    probe = os.path.join(d, "probe")
    open(probe, "w").close()
    return run("setfacl", "-m", "u:1234:r", probe, check=False).returncode == 0


@test
def posix_acls_are_applied_and_the_mode_kept():
    d = tmpdir()
    tar = tar_of([
        (file_info("dir", mode=0o755, kind=tarfile.DIRTYPE,
                   pax={"SCHILY.acl.default": DEFAULT_ACL}), None),
        (file_info("dir/acl", b"acl\n", mode=0o573, pax={"SCHILY.acl.access": STAR_ACL}),
         b"acl\n"),
        (file_info("dir/plain", b"plain\n", mode=0o640), b"plain\n"),
    ])
    img = os.path.join(d, "img")
    make_image(img, "a", [(tar, LAYER_GZIP, None, True)])
    out = os.path.join(d, "out")
    p = hoist("unpack", "--json", f"oci:{img}:a", out)
    rep = json.loads(p.stdout)
    # the header's mode, as GNU tar gives it (libarchive's group entry gave 0543)
    assert oct(os.stat(f"{out}/dir/acl").st_mode & 0o7777) == "0o573"
    assert oct(os.stat(f"{out}/dir/plain").st_mode & 0o7777) == "0o640"
    if not acl_supported(d):
        assert rep["acls_skipped"] >= 1, rep
        return
    assert rep["acls_skipped"] == 0, rep
    acl = run("getfacl", "-cn", f"{out}/dir/acl").stdout.split()
    for e in ("user::r-x", "user:1234:rwx", "group::r--", "mask::rwx", "other::-wx"):
        assert e in acl, acl
    dacl = run("getfacl", "-cnd", f"{out}/dir").stdout.split()
    assert "user:1234:r-x" in dacl, dacl
    # the default ACL was set after the directory's members: they did not inherit it
    plain = run("getfacl", "-cn", f"{out}/dir/plain").stdout.split()
    assert not any(e.startswith("user:1234") for e in plain), plain

    # the xattr form (containerd's) is applied too; a malformed one is reported
    value = os.getxattr(f"{out}/dir/acl", "system.posix_acl_access")
    tar2 = tar_of([
        (file_info("x", b"x", mode=0o660,
                   pax={"SCHILY.xattr.system.posix_acl_access": value.decode("utf-8", "surrogateescape")}), b"x"),
        (file_info("bad", b"b", mode=0o644,
                   pax={"SCHILY.xattr.system.posix_acl_access": "\x02\0\0\0\x01"}), b"b"),
    ])
    img2 = os.path.join(d, "img2")
    make_image(img2, "a", [(tar2, LAYER_GZIP, None, True)])
    p = hoist("unpack", "--json", f"oci:{img2}:a", f"{d}/out2")
    rep = json.loads(p.stdout)
    assert rep["acls_skipped"] == 1, rep
    acl = run("getfacl", "-cn", f"{d}/out2/x").stdout.split()
    assert "user:1234:rwx" in acl, acl


@test
def layer_create_keeps_acls():
    d = tmpdir()
    if not acl_supported(d):
        raise Skip("no POSIX ACLs on this file system")
    tree = os.path.join(d, "tree")
    os.makedirs(os.path.join(tree, "dir"))
    with open(os.path.join(tree, "dir", "f"), "w") as f:
        f.write("f\n")
    os.chmod(os.path.join(tree, "dir", "f"), 0o640)
    run("setfacl", "-m", "u:1234:rwx,g:2345:r", os.path.join(tree, "dir", "f"))
    run("setfacl", "-d", "-m", "u:1234:rx", os.path.join(tree, "dir"))
    mode = os.stat(os.path.join(tree, "dir", "f")).st_mode & 0o7777
    out = os.path.join(d, "l.tar")
    # host ids 1234 and 2345 are 0 and 1 in the image
    hoist("layer", "create", tree, "-o", out, "--compress", "none",
          "--uid-map", "0:1234:1", "--gid-map", "1:2345:1")
    with tarfile.open(out) as t:
        f = t.getmember("dir/f")
        assert "SCHILY.xattr.system.posix_acl_access" in f.pax_headers, f.pax_headers
        assert f.mode == mode, (oct(f.mode), oct(mode))  # the stat mode: mask as group bits
        assert "SCHILY.xattr.system.posix_acl_default" in t.getmember("dir").pax_headers
    img = os.path.join(d, "img")
    with open(out, "rb") as f:
        make_image(img, "k", [(f.read(), LAYER_GZIP, None, True)])
    hoist("unpack", f"oci:{img}:k", f"{d}/out")
    acl = run("getfacl", "-cn", f"{d}/out/dir/f").stdout.split()
    assert "user:0:rwx" in acl and "group:1:r--" in acl, acl
    assert os.stat(f"{d}/out/dir/f").st_mode & 0o7777 == mode
    dacl = run("getfacl", "-cnd", f"{d}/out/dir").stdout.split()
    assert "user:0:r-x" in dacl, dacl
    # umoci (Go, as podman's storage) restores the same ACLs from this form
    run("umoci", "unpack", "--rootless", "--image", f"{img}:k", f"{d}/bundle")
    acl = run("getfacl", "-cn", f"{d}/bundle/rootfs/dir/f").stdout.split()
    assert "user:0:rwx" in acl and "group:1:r--" in acl, acl


if __name__ == "__main__":
    main()
