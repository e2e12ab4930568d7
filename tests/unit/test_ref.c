#include "hoist/ref.h"
#include "test_util.h"

#define HEX64 "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
#define DG "sha256:" HEX64
#define DG2 "sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c"

/* A valid reference with its normalized form and parts, or an invalid one
 * (str == NULL) with a piece of the expected message. */
typedef struct {
  const char *in;
  const char *str;
  const char *domain;
  const char *path;
  const char *tag;
  const char *digest;
  const char *error;
} ref_case;

#define OK(in, str, domain, path, tag, digest)                                                     \
  { in, str, domain, path, tag, digest, NULL }
#define BAD(in, error)                                                                             \
  { in, NULL, NULL, NULL, NULL, NULL, error }

static const ref_case ref_cases[] = {
    /* normalization */
    OK("busybox", "docker.io/library/busybox:latest", "docker.io", "library/busybox", "latest",
       NULL),
    OK("busybox:1.36", "docker.io/library/busybox:1.36", "docker.io", "library/busybox", "1.36",
       NULL),
    OK("user/app", "docker.io/user/app:latest", "docker.io", "user/app", "latest", NULL),
    OK("docker.io/busybox", "docker.io/library/busybox:latest", "docker.io", "library/busybox",
       "latest", NULL),
    OK("docker.io/library/busybox:1", "docker.io/library/busybox:1", "docker.io", "library/busybox",
       "1", NULL),
    OK("index.docker.io/busybox", "docker.io/library/busybox:latest", "docker.io",
       "library/busybox", "latest", NULL),
    OK("index.docker.io/user/app:v1", "docker.io/user/app:v1", "docker.io", "user/app", "v1", NULL),
    OK("library/foo/bar", "docker.io/library/foo/bar:latest", "docker.io", "library/foo/bar",
       "latest", NULL),
    OK("store/foo/bar", "docker.io/store/foo/bar:latest", "docker.io", "store/foo/bar", "latest",
       NULL),
    OK("localhost:5000/x", "localhost:5000/x:latest", "localhost:5000", "x", "latest", NULL),
    OK("localhost/x", "localhost/x:latest", "localhost", "x", "latest", NULL),
    /* as Docker: a bare "localhost" is an image name, ":5000" then a tag */
    OK("localhost", "docker.io/library/localhost:latest", "docker.io", "library/localhost",
       "latest", NULL),
    OK("localhost:5000", "docker.io/library/localhost:5000", "docker.io", "library/localhost",
       "5000", NULL),
    OK("127.0.0.1:5000/a/b/c:tag", "127.0.0.1:5000/a/b/c:tag", "127.0.0.1:5000", "a/b/c", "tag",
       NULL),
    OK("test_com", "docker.io/library/test_com:latest", "docker.io", "library/test_com", "latest",
       NULL),
    OK("test_com/foo", "docker.io/test_com/foo:latest", "docker.io", "test_com/foo", "latest",
       NULL),
    OK("test.com:tag", "docker.io/library/test.com:tag", "docker.io", "library/test.com", "tag",
       NULL),
    OK("test.com:5000", "docker.io/library/test.com:5000", "docker.io", "library/test.com", "5000",
       NULL),
    OK("test.com/repo:tag", "test.com/repo:tag", "test.com", "repo", "tag", NULL),
    OK("test:5000/repo", "test:5000/repo:latest", "test:5000", "repo", "latest", NULL),
    OK("test-com:8080/foo", "test-com:8080/foo:latest", "test-com:8080", "foo", "latest", NULL),
    /* a digest without a tag keeps the tag empty */
    OK("test:5000/repo@" DG, "test:5000/repo@" DG, "test:5000", "repo", NULL, DG),
    OK("test:5000/repo:tag@" DG, "test:5000/repo:tag@" DG, "test:5000", "repo", "tag", DG),
    OK("redis@" DG2, "docker.io/library/redis@" DG2, "docker.io", "library/redis", NULL, DG2),
    OK("busybox:latest@" DG2, "docker.io/library/busybox:latest@" DG2, "docker.io",
       "library/busybox", "latest", DG2),
    OK("lowercase:Uppercase", "docker.io/library/lowercase:Uppercase", "docker.io",
       "library/lowercase", "Uppercase", NULL),
    OK("sub-dom1.foo.com/bar/baz/quux:some-long-tag", "sub-dom1.foo.com/bar/baz/quux:some-long-tag",
       "sub-dom1.foo.com", "bar/baz/quux", "some-long-tag", NULL),
    OK("b.gcr.io/test.example.com/my-app:test.example.com",
       "b.gcr.io/test.example.com/my-app:test.example.com", "b.gcr.io", "test.example.com/my-app",
       "test.example.com", NULL),
    OK("xn--n3h.com/myimage:xn--n3h.com", "xn--n3h.com/myimage:xn--n3h.com", "xn--n3h.com",
       "myimage", "xn--n3h.com", NULL),
    OK("xn--n3h.com:18080/foo", "xn--n3h.com:18080/foo:latest", "xn--n3h.com:18080", "foo",
       "latest", NULL),
    OK("foo/foo_bar.com:8080", "docker.io/foo/foo_bar.com:8080", "docker.io", "foo/foo_bar.com",
       "8080", NULL),
    OK("192.168.1.1", "docker.io/library/192.168.1.1:latest", "docker.io", "library/192.168.1.1",
       "latest", NULL),
    OK("192.168.1.1:5000/repo:5050", "192.168.1.1:5000/repo:5050", "192.168.1.1:5000", "repo",
       "5050", NULL),
    OK("192.168.0.1:8/debian", "192.168.0.1:8/debian:latest", "192.168.0.1:8", "debian", "latest",
       NULL),
    OK("[2001:db8::1]/repo", "[2001:db8::1]/repo:latest", "[2001:db8::1]", "repo", "latest", NULL),
    OK("[2001:db8:1:2:3:4:5:6]/repo:tag", "[2001:db8:1:2:3:4:5:6]/repo:tag",
       "[2001:db8:1:2:3:4:5:6]", "repo", "tag", NULL),
    OK("[2001:db8::1]:5000/repo@" DG, "[2001:db8::1]:5000/repo@" DG, "[2001:db8::1]:5000", "repo",
       NULL, DG),
    OK("[::1]:5000/repo", "[::1]:5000/repo:latest", "[::1]:5000", "repo", "latest", NULL),
    OK("[2001:db8::]:5000/repo", "[2001:db8::]:5000/repo:latest", "[2001:db8::]:5000", "repo",
       "latest", NULL),
    OK("[fc00:1:2:3:4:5:6:7]:5000/library/debian",
       "[fc00:1:2:3:4:5:6:7]:5000/library/debian:latest", "[fc00:1:2:3:4:5:6:7]:5000",
       "library/debian", "latest", NULL),
    /* as Docker: an uppercase first component can only be a domain */
    OK("Docker/docker", "Docker/docker:latest", "Docker", "docker", "latest", NULL),
    OK("docker.io/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
       "docker.io/library/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a:latest",
       "docker.io", "library/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
       "latest", NULL),
    OK("dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9",
       "docker.io/library/dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9:latest",
       "docker.io", "library/dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9",
       "latest", NULL),
    OK("docker---rules/docker", "docker.io/docker---rules/docker:latest", "docker.io",
       "docker---rules/docker", "latest", NULL),
    OK("dock__er/d.o_c-k", "docker.io/dock__er/d.o_c-k:latest", "docker.io", "dock__er/d.o_c-k",
       "latest", NULL),
    OK("jess/t", "docker.io/jess/t:latest", "docker.io", "jess/t", "latest", NULL),
    OK("registry.example.com:443/team/app:_v1.2-rc.3",
       "registry.example.com:443/team/app:_v1.2-rc.3", "registry.example.com:443", "team/app",
       "_v1.2-rc.3", NULL),

    /* empty and missing parts */
    BAD("", "empty reference"),
    BAD(":justtag", "missing repository name"),
    BAD("@" DG, "missing repository name"),
    BAD("busybox:", "empty tag"),
    BAD("busybox@", "empty digest after '@'"),
    BAD("busybox:1@", "empty digest after '@'"),
    /* digests */
    BAD("repo@sha256:ffffffffffffffffffffffffffffffffff", "64 hex digits"),
    BAD("validname@invaliddigest:" HEX64, "unsupported digest algorithm invaliddigest"),
    BAD("busybox@sha512:" HEX64 HEX64, "unsupported digest algorithm sha512"),
    BAD("busybox@sha256:"
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF",
        "not lowercase hex"),
    BAD("busybox@" HEX64, "missing algorithm"),
    BAD("busybox@" DG "@" DG, "more than one '@'"),
    BAD("1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a", "image ID"),
    /* case */
    BAD("Uppercase:tag", "repository name must be lowercase"),
    BAD("test:5000/Uppercase/lowercase:tag", "repository name must be lowercase"),
    BAD("docker/Docker", "repository name must be lowercase"),
    BAD("docker.io/docker/Docker", "repository name must be lowercase"),
    /* tags */
    BAD("busybox:-x", "tag must start with a letter, digit or '_'"),
    BAD("busybox:.x", "tag must start with a letter, digit or '_'"),
    BAD("busybox:a[b", "invalid character '[' in tag"),
    /* bad characters */
    BAD("aa/asdf$$^/aa", "invalid character '$' at position 7"),
    BAD("busybox;rm", "invalid character ';' at position 7"),
    BAD("busy box", "invalid character space at position 4"),
    BAD("busybox\n", "invalid character newline at position 7"),
    BAD("busy\tbox", "invalid character tab"),
    BAD("busybox\x7f", "invalid character byte 0x7f"),
    BAD("caf\xc3\xa9", "invalid character byte 0xc3 at position 3"),
    BAD("busybox:1+2", "invalid character '+'"),
    BAD("a:b:c", "invalid character ':' in repository path"),
    BAD("a/[b]", "invalid character '[' in repository path"),
    /* slashes and path components */
    BAD("docker///docker", "empty path component"),
    BAD("docker.io/docker///docker", "empty path component"),
    BAD("https://github.com/docker/docker", "empty path component"),
    BAD("docker/", "repository name ends with '/'"),
    BAD("docker/:tag", "repository name ends with '/'"),
    BAD("/docker", "repository name starts with '/'"),
    BAD("-docker", "must start with a lowercase letter or digit"),
    BAD("-docker/docker", "must start with a lowercase letter or digit"),
    BAD("docker-/docker", "must end with a lowercase letter or digit"),
    BAD("____/____", "must start with a lowercase letter or digit"),
    BAD("_docker/_docker", "must start with a lowercase letter or digit"),
    BAD("foo/dock..er", "invalid separator \"..\""),
    BAD("foo/dock_.er", "invalid separator \"_.\""),
    BAD("foo/dock-.er", "invalid separator \"-.\""),
    BAD("foo/a___b", "invalid separator \"___\""),
    /* domains */
    BAD("dock..er/docker", "empty label in domain"),
    BAD(".docker.io/x", "empty label in domain"),
    BAD("dock_.er/docker", "invalid character '_' in domain"),
    BAD("-docker.io/docker/docker", "domain label \"-docker\" starts or ends with '-'"),
    BAD("docker-.io/x", "starts or ends with '-'"),
    BAD(":5000/x", "empty host name"),
    BAD("localhost:/x", "empty port"),
    BAD("localhost:abc/x", "invalid port \"abc\": not a number"),
    BAD("localhost:70000/x", "out of range"),
    BAD("localhost:0/x", "out of range"),
    BAD("busybox:tag/x", "invalid port \"tag\""),
    BAD("fc00::1:5000/debian", "must be enclosed in brackets"),
    BAD("[fc00::1]", "needs a repository path"),
    BAD("[fc00::1]:5000", "needs a repository path"),
    BAD("[2001:db8::1]:tag", "needs a repository path"),
    BAD("[fe80::1%eth0]:5000/debian", "invalid character '%'"),
    BAD("[2001:db8:3:4::192.0.2.33]:5000/debian", "invalid character '.' in IPv6 address"),
    BAD("[2001:db8::1::2]:5000/x", "invalid IPv6 address \"2001:db8::1::2\""),
    BAD("[::1/x", "missing ']'"),
    BAD("[]:5000/x", "empty IPv6 address"),
    BAD("[::1]x/y", "unexpected 'x' after IPv6 address"),
    BAD("[::1]:/y", "empty port"),
};

static void check_ok(const ref_case *c, const hoist_ref *r) {
  char *s = hoist_ref_string(r);
  if (strcmp(s, c->str) != 0)
    fail_msg("%s: got \"%s\", want \"%s\"", c->in, s, c->str);
  free(s);
  assert_string_equal(r->domain, c->domain);
  assert_string_equal(r->path, c->path);
  if (c->tag)
    assert_string_equal(r->tag, c->tag);
  else
    assert_null(r->tag);
  if (c->digest)
    assert_string_equal(r->digest, c->digest);
  else
    assert_null(r->digest);
}

static void test_ref_table(void **state) {
  (void)state;
  size_t n = sizeof ref_cases / sizeof *ref_cases;
  assert_true(n >= 60);
  for (size_t i = 0; i < n; i++) {
    const ref_case *c = &ref_cases[i];
    hoist_err *err = NULL;
    _cleanup_ref_ hoist_ref *r = NULL;
    int ret = hoist_ref_parse(c->in, &r, &err);
    if (c->str) {
      assert_ok(ret, &err);
      check_ok(c, r);
      /* the normalized form is a fixed point */
      _cleanup_free_ char *s = hoist_ref_string(r);
      _cleanup_ref_ hoist_ref *again = NULL;
      assert_ok(hoist_ref_parse(s, &again, &err), &err);
      _cleanup_free_ char *s2 = hoist_ref_string(again);
      assert_string_equal(s, s2);
    } else {
      if (ret == 0)
        fail_msg("\"%s\" was accepted, expected \"%s\"", c->in, c->error);
      assert_int_equal(ret, -HOIST_E_FORMAT);
      assert_null(r);
      assert_err_contains(&err, "invalid reference");
      ret = hoist_ref_parse(c->in, &r, &err);
      assert_err_contains(&err, c->error);
      /* without an error object only the code comes back */
      assert_int_equal(hoist_ref_parse(c->in, &r, NULL), -HOIST_E_FORMAT);
    }
  }
}

static char *repeat(const char *unit, size_t times, const char *tail) {
  hoist_buf b = HOIST_BUF_INIT(0);
  for (size_t i = 0; i < times; i++)
    assert_int_equal(hoist_buf_append(&b, unit, strlen(unit), NULL), 0);
  assert_int_equal(hoist_buf_append(&b, tail, strlen(tail), NULL), 0);
  return hoist_buf_steal(&b);
}

static void expect_ok(const char *in, const char *want) {
  hoist_err *err = NULL;
  _cleanup_ref_ hoist_ref *r = NULL;
  assert_ok(hoist_ref_parse(in, &r, &err), &err);
  if (want) {
    _cleanup_free_ char *s = hoist_ref_string(r);
    assert_string_equal(s, want);
  }
}

static void expect_bad(const char *in, const char *needle) {
  hoist_err *err = NULL;
  _cleanup_ref_ hoist_ref *r = NULL;
  assert_true(hoist_ref_parse(in, &r, &err) < 0);
  assert_err_contains(&err, needle);
}

static void test_ref_lengths(void **state) {
  (void)state;
  /* tag: 128 characters at most */
  _cleanup_free_ char *t128 = repeat("a", 128, "");
  char *in = hoist_asprintf("busybox:%s", t128);
  expect_ok(in, NULL);
  free(in);
  in = hoist_asprintf("busybox:%sa", t128);
  expect_bad(in, "tag too long (129 characters, at most 128)");
  free(in);
  /* name: 255 characters at most, counted after normalization */
  in = repeat("a", 255 - strlen("localhost/"), "");
  char *full = hoist_asprintf("localhost/%s", in);
  _cleanup_free_ char *with_tag = hoist_asprintf("%s:%s@%s", full, t128, DG);
  expect_ok(with_tag, with_tag);
  free(full);
  full = hoist_asprintf("localhost/%sb", in);
  expect_bad(full, "repository name too long (256 characters, at most 255)");
  free(in);
  in = repeat("a", 255 - strlen("docker.io/library/"), "");
  expect_ok(in, NULL);
  free(full);
  full = hoist_asprintf("%sb", in);
  expect_bad(full, "repository name too long (256");
  free(full);
  free(in);
  in = repeat("a/", 128, "a:tag");
  expect_bad(in, "repository name too long");
  free(in);
  /* the message quotes hostile input escaped and bounded */
  in = repeat("\"\x01", 5000, "");
  hoist_err *err = NULL;
  _cleanup_ref_ hoist_ref *r = NULL;
  assert_true(hoist_ref_parse(in, &r, &err) < 0);
  _cleanup_free_ char *text = hoist_err_text(err);
  assert_true(strlen(text) < 400);
  assert_non_null(strstr(text, "invalid reference \"\\\"\\x01\\\"\\x01"));
  assert_non_null(strstr(text, "...\": invalid character byte 0x01 at position 1"));
  hoist_err_free(err);
  free(in);
}

static void test_ref_accessors(void **state) {
  (void)state;
  hoist_err *err = NULL;
  _cleanup_ref_ hoist_ref *r = NULL;
  assert_ok(hoist_ref_parse("localhost:5000/a/b:1@" DG, &r, &err), &err);
  _cleanup_free_ char *repo = hoist_ref_repository(r);
  assert_string_equal(repo, "localhost:5000/a/b");
  /* tag and digest: the digest wins, as Docker pulls by digest */
  assert_string_equal(hoist_ref_reference(r), DG);
  _cleanup_ref_ hoist_ref *d = hoist_ref_dup(r);
  assert_ptr_not_equal(d->path, r->path);
  _cleanup_free_ char *s1 = hoist_ref_string(r);
  _cleanup_free_ char *s2 = hoist_ref_string(d);
  assert_string_equal(s1, s2);
  _cleanup_ref_ hoist_ref *by_digest = NULL;
  assert_ok(hoist_ref_parse("localhost:5000/a/b@" DG, &by_digest, &err), &err);
  assert_string_equal(hoist_ref_reference(by_digest), DG);
  assert_null(hoist_ref_dup(NULL));
  hoist_ref_free(NULL);
}

static void test_ref_short(void **state) {
  (void)state;
#define PREFIX "ghcr.io/org/sandboxes"
  static const struct {
    const char *in;
    const char *prefix;
    const char *want; /* NULL: invalid */
    const char *error;
  } cases[] = {
      {"base", PREFIX, "ghcr.io/org/sandboxes/base:latest", NULL},
      {"my-base__2", PREFIX, "ghcr.io/org/sandboxes/my-base__2:latest", NULL},
      {"base", "localhost:5000/", "localhost:5000/base:latest", NULL},
      {"base", NULL, "docker.io/library/base:latest", NULL},
      {"base", "", "docker.io/library/base:latest", NULL},
      /* anything with '/', ':', '.' or '@' parses as usual */
      {"base:1", PREFIX, "docker.io/library/base:1", NULL},
      {"user/app", PREFIX, "docker.io/user/app:latest", NULL},
      {"example.com/x", PREFIX, "example.com/x:latest", NULL},
      {"base@" DG, PREFIX, "docker.io/library/base@" DG, NULL},
      {"Base", PREFIX, NULL, "invalid reference \"Base\": repository name must be lowercase"},
      {"-base", PREFIX, NULL, "invalid reference \"-base\": path component \"-base\" must start"},
      {"ba;se", PREFIX, NULL, "invalid reference \"ba;se\": invalid character ';' at position 2"},
      {"ba se", PREFIX, NULL, "invalid character space at position 2"},
      {"", PREFIX, NULL, "empty reference"},
      {"base", "Bad Prefix", NULL, "invalid character space"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    hoist_err *err = NULL;
    _cleanup_ref_ hoist_ref *r = NULL;
    int ret = hoist_ref_parse_short(cases[i].in, cases[i].prefix, &r, &err);
    if (cases[i].want) {
      assert_ok(ret, &err);
      _cleanup_free_ char *s = hoist_ref_string(r);
      assert_string_equal(s, cases[i].want);
    } else {
      assert_true(ret < 0);
      assert_err_contains(&err, cases[i].error);
    }
  }
}

static void test_loc(void **state) {
  (void)state;
  static const struct {
    const char *in;
    hoist_loc_kind kind; /* 0: invalid */
    const char *dir_or_ref;
    const char *tag;
    const char *str;
    const char *error;
  } cases[] = {
      {"oci:/tmp/layout", HOIST_LOC_LAYOUT, "/tmp/layout", NULL, "oci:/tmp/layout", NULL},
      {"oci:/tmp/layout:v1.0", HOIST_LOC_LAYOUT, "/tmp/layout", "v1.0", "oci:/tmp/layout:v1.0",
       NULL},
      {"oci:rel dir/x:_t", HOIST_LOC_LAYOUT, "rel dir/x", "_t", "oci:rel dir/x:_t", NULL},
      {"oci:5000/x", HOIST_LOC_LAYOUT, "5000/x", NULL, "oci:5000/x", NULL},
      {"docker://busybox", HOIST_LOC_REGISTRY, "docker.io/library/busybox:latest", NULL,
       "docker.io/library/busybox:latest", NULL},
      {"docker://localhost:5000/x:1", HOIST_LOC_REGISTRY, "localhost:5000/x:1", NULL,
       "localhost:5000/x:1", NULL},
      {"busybox@" DG, HOIST_LOC_REGISTRY, "docker.io/library/busybox@" DG, NULL,
       "docker.io/library/busybox@" DG, NULL},
      /* a registry host named "oci" keeps its transport when printed */
      {"docker://oci:5000/x", HOIST_LOC_REGISTRY, "oci:5000/x:latest", NULL,
       "docker://oci:5000/x:latest", NULL},
      {"", 0, NULL, NULL, NULL, "invalid location \"\": empty location"},
      {"oci:", 0, NULL, NULL, NULL, "empty directory"},
      {"oci::v1", 0, NULL, NULL, NULL, "empty directory"},
      {"oci:dir:", 0, NULL, NULL, NULL, "empty tag"},
      {"oci:dir:-x", 0, NULL, NULL, NULL, "tag must start"},
      {"oci:dir:a:b", 0, NULL, NULL, NULL, "invalid character ':' in tag"},
      {"oci:d\nir", 0, NULL, NULL, NULL,
       "invalid location \"oci:d\\nir\": invalid character "
       "newline in directory"},
      {"docker://", 0, NULL, NULL, NULL, "empty reference"},
      {"docker://Busybox", 0, NULL, NULL, NULL, "must be lowercase"},
      {"docker:///busybox", 0, NULL, NULL, NULL, "starts with '/'"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    hoist_err *err = NULL;
    _cleanup_loc_ hoist_loc *l = NULL;
    int ret = hoist_loc_parse(cases[i].in, &l, &err);
    if (!cases[i].kind) {
      if (ret == 0)
        fail_msg("\"%s\" was accepted", cases[i].in);
      assert_err_contains(&err, cases[i].error);
      continue;
    }
    assert_ok(ret, &err);
    assert_int_equal(l->kind, cases[i].kind);
    if (l->kind == HOIST_LOC_LAYOUT) {
      assert_string_equal(l->dir, cases[i].dir_or_ref);
      if (cases[i].tag)
        assert_string_equal(l->tag, cases[i].tag);
      else
        assert_null(l->tag);
      assert_null(l->ref);
    } else {
      _cleanup_free_ char *s = hoist_ref_string(l->ref);
      assert_string_equal(s, cases[i].dir_or_ref);
      assert_null(l->dir);
    }
    _cleanup_free_ char *str = hoist_loc_string(l);
    assert_string_equal(str, cases[i].str);
    /* the printed form reads back as the same location */
    _cleanup_loc_ hoist_loc *again = NULL;
    assert_ok(hoist_loc_parse(str, &again, &err), &err);
    _cleanup_free_ char *str2 = hoist_loc_string(again);
    assert_string_equal(str, str2);
  }
}

/* Which strings name a transport (ref.h has the rule): every kind of
 * location, the registry forms that look like a prefix, and the refusals. */
static void test_loc_transports(void **state) {
  (void)state;
  static const struct {
    const char *in;
    hoist_loc_kind kind; /* 0: invalid */
    const char *where;   /* dir, archive path, or the normalized reference */
    const char *tag;     /* layout and oci-archive tag; docker-archive: its REF */
    int index;
    const char *error;
  } cases[] = {
      /* registry references, with and without docker:// */
      {"docker://busybox", HOIST_LOC_REGISTRY, "docker.io/library/busybox:latest", NULL, -1, NULL},
      {"busybox:1.36", HOIST_LOC_REGISTRY, "docker.io/library/busybox:1.36", NULL, -1, NULL},
      {"localhost:5000/x", HOIST_LOC_REGISTRY, "localhost:5000/x:latest", NULL, -1, NULL},
      {"myhost:5000/x", HOIST_LOC_REGISTRY, "myhost:5000/x:latest", NULL, -1, NULL},
      {"myreg:443/team/app:2", HOIST_LOC_REGISTRY, "myreg:443/team/app:2", NULL, -1, NULL},
      {"registry.example.com:5000/x", HOIST_LOC_REGISTRY, "registry.example.com:5000/x:latest",
       NULL, -1, NULL},
      {"[::1]:5000/x", HOIST_LOC_REGISTRY, "[::1]:5000/x:latest", NULL, -1, NULL},
      {"foo:bar", HOIST_LOC_REGISTRY, "docker.io/library/foo:bar", NULL, -1, NULL},
      {"foo:5000", HOIST_LOC_REGISTRY, "docker.io/library/foo:5000", NULL, -1, NULL},
      {"foo:v1@" DG, HOIST_LOC_REGISTRY, "docker.io/library/foo:v1@" DG, NULL, -1, NULL},
      /* Docker Hub's docker image: docker is a transport only as docker:// */
      {"docker:24-dind", HOIST_LOC_REGISTRY, "docker.io/library/docker:24-dind", NULL, -1, NULL},
      {"docker://docker:24", HOIST_LOC_REGISTRY, "docker.io/library/docker:24", NULL, -1, NULL},
      {"docker://localhost:5000/a/b:1", HOIST_LOC_REGISTRY, "localhost:5000/a/b:1", NULL, -1, NULL},
      /* archives */
      {"docker-archive:/tmp/x.tar", HOIST_LOC_DOCKER_ARCHIVE, "/tmp/x.tar", NULL, -1, NULL},
      {"docker-archive:x.tar", HOIST_LOC_DOCKER_ARCHIVE, "x.tar", NULL, -1, NULL},
      {"docker-archive:/tmp/x.tar:busybox", HOIST_LOC_DOCKER_ARCHIVE, "/tmp/x.tar",
       "docker.io/library/busybox:latest", -1, NULL},
      {"docker-archive:/tmp/x.tar:localhost:5000/app:1", HOIST_LOC_DOCKER_ARCHIVE, "/tmp/x.tar",
       "localhost:5000/app:1", -1, NULL},
      {"docker-archive:x.tar:@2", HOIST_LOC_DOCKER_ARCHIVE, "x.tar", NULL, 2, NULL},
      {"oci-archive:/tmp/o.tar", HOIST_LOC_OCI_ARCHIVE, "/tmp/o.tar", NULL, -1, NULL},
      {"oci-archive:o.tar:v1", HOIST_LOC_OCI_ARCHIVE, "o.tar", "v1", -1, NULL},
      {"oci:5000/x:v1", HOIST_LOC_LAYOUT, "5000/x", "v1", -1, NULL},
      /* refusals */
      {"containers-storage:busy", 0, NULL, NULL, -1,
       "transport \"containers-storage\" is not supported (hoist reads and writes docker://REF, "
       "oci:DIR[:TAG], oci-archive:PATH[:TAG], docker-archive:PATH[:REF])"},
      {"dir:/tmp/x", 0, NULL, NULL, -1, "transport \"dir\" is not supported"},
      {"docker-daemon:busybox:latest", 0, NULL, NULL, -1, "\"docker-daemon\" is not supported"},
      {"foo:/tmp/x", 0, NULL, NULL, -1,
       "unknown transport \"foo\" (hoist reads and writes docker://REF"},
      {"foo-archive:./x.tar", 0, NULL, NULL, -1, "unknown transport \"foo-archive\""},
      {"a:b/c", 0, NULL, NULL, -1, "unknown transport \"a\""},
      {"docker:/tmp/x", 0, NULL, NULL, -1, "the registry transport is written docker://REF"},
      {"docker-archive:", 0, NULL, NULL, -1, "empty path after \"docker-archive:\""},
      {"docker-archive::x:1", 0, NULL, NULL, -1, "empty path"},
      {"docker-archive:x.tar:Bad", 0, NULL, NULL, -1, "must be lowercase"},
      {"docker-archive:x.tar:busybox@" DG, 0, NULL, NULL, -1, "not by digest"},
      {"docker-archive:x.tar:@", 0, NULL, NULL, -1, "@N, N a number"},
      {"docker-archive:x.tar:@1x", 0, NULL, NULL, -1, "@N, N a number"},
      {"oci-archive:", 0, NULL, NULL, -1, "empty path after \"oci-archive:\""},
      {"oci-archive:o.tar:a:b", 0, NULL, NULL, -1, "invalid character ':' in tag"},
      {"oci-archive:o\tx.tar", 0, NULL, NULL, -1, "invalid character tab in path"},
      {"localhost:abc/x", 0, NULL, NULL, -1, "invalid port"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    hoist_err *err = NULL;
    _cleanup_loc_ hoist_loc *l = NULL;
    int ret = hoist_loc_parse(cases[i].in, &l, &err);
    if (!cases[i].kind) {
      if (ret == 0)
        fail_msg("\"%s\" was accepted", cases[i].in);
      assert_err_contains(&err, cases[i].error);
      continue;
    }
    if (ret < 0) {
      char *t = hoist_err_text(err);
      fail_msg("\"%s\": %s", cases[i].in, t);
    }
    assert_int_equal(l->kind, cases[i].kind);
    assert_int_equal(l->index, cases[i].index);
    switch (l->kind) {
    case HOIST_LOC_REGISTRY: {
      _cleanup_free_ char *s = hoist_ref_string(l->ref);
      assert_string_equal(s, cases[i].where);
      break;
    }
    case HOIST_LOC_LAYOUT:
      assert_string_equal(l->dir, cases[i].where);
      break;
    default:
      assert_string_equal(l->path, cases[i].where);
      assert_null(l->dir);
    }
    if (l->kind == HOIST_LOC_DOCKER_ARCHIVE && cases[i].tag) {
      _cleanup_free_ char *s = hoist_ref_string(l->ref);
      assert_string_equal(s, cases[i].tag);
    } else if (l->kind == HOIST_LOC_DOCKER_ARCHIVE) {
      assert_null(l->ref);
    } else if (l->kind != HOIST_LOC_REGISTRY) {
      if (cases[i].tag)
        assert_string_equal(l->tag, cases[i].tag);
      else
        assert_null(l->tag);
    }
    /* the printed form reads back as the same location */
    _cleanup_free_ char *str = hoist_loc_string(l);
    _cleanup_loc_ hoist_loc *again = NULL;
    assert_ok(hoist_loc_parse(str, &again, &err), &err);
    _cleanup_free_ char *str2 = hoist_loc_string(again);
    assert_string_equal(str, str2);
    assert_int_equal(again->kind, l->kind);
  }
  /* registries named like a transport print with docker:// */
  static const char *const named[] = {"docker://oci-archive:5000/x", "docker://dir:5000/x",
                                      "docker://containers-storage:1/x"};
  for (size_t i = 0; i < sizeof named / sizeof *named; i++) {
    hoist_err *err = NULL;
    _cleanup_loc_ hoist_loc *l = NULL;
    assert_ok(hoist_loc_parse(named[i], &l, &err), &err);
    assert_int_equal(l->kind, HOIST_LOC_REGISTRY);
    _cleanup_free_ char *str = hoist_loc_string(l);
    assert_true(strncmp(str, "docker://", 9) == 0);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ref_table),     cmocka_unit_test(test_ref_lengths),
      cmocka_unit_test(test_ref_accessors), cmocka_unit_test(test_ref_short),
      cmocka_unit_test(test_loc),           cmocka_unit_test(test_loc_transports),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
