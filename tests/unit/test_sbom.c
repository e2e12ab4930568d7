/* attest's SBOM: each record format from a realistic sample, the paths read
 * and not, dedupe, a table of bad inputs per parser, the scanners of a layer
 * and a tree, and the SPDX document's fields. */
#include "test_util.h"

#include <archive.h>
#include <archive_entry.h>
#include <jansson.h>
#include <sys/stat.h>

#include "hoist/attest.h"
#include "hoist/store.h"

#define S(lit) lit, sizeof(lit) - 1

/* The package whose purl is purl, or NULL. */
static const hoist_sbom_package *find(const hoist_sbom *s, const char *purl) {
  for (size_t i = 0; i < hoist_sbom_count(s); i++)
    if (strcmp(hoist_sbom_get(s, i)->purl, purl) == 0)
      return hoist_sbom_get(s, i);
  return NULL;
}

static void add_ok(hoist_sbom *s, const char *path, const char *data, size_t len) {
  hoist_err *err = NULL;
  assert_ok(hoist_sbom_add_file(s, path, data, len, HOIST_SBOM_LAYER, &err), &err);
}

static void test_sbom_pip(void **state) {
  (void)state;
  _cleanup_sbom_ hoist_sbom *s = hoist_sbom_new();
  add_ok(s, "usr/local/lib/python3.11/site-packages/Foo_Bar.Baz-2.31.0.dist-info/METADATA",
         S("Metadata-Version: 2.1\r\n"
           "Name: Foo_Bar.Baz\r\n"
           "Version: 2.31.0\r\n"
           "Summary: a\r\n"
           "  folded summary line\r\n"
           "License: Apache-2.0\r\n"
           "\r\n"
           "Name: not-a-header-of-the-body\r\n"));
  add_ok(s, "opt/app/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA",
         S("Name: six\nVersion: 1.16.0\nLicense-Expression: MIT\nLicense: whatever\n"));
  assert_int_equal(hoist_sbom_count(s), 2);
  const hoist_sbom_package *p = find(s, "pkg:pypi/foo-bar-baz@2.31.0");
  assert_non_null(p);
  assert_string_equal(p->name, "Foo_Bar.Baz");
  assert_string_equal(p->version, "2.31.0");
  assert_string_equal(p->purl_type, "pypi");
  assert_string_equal(p->license, "Apache-2.0");
  assert_int_equal(p->origin, HOIST_SBOM_LAYER);
  p = find(s, "pkg:pypi/six@1.16.0");
  assert_non_null(p);
  assert_string_equal(p->license, "MIT"); /* License-Expression wins */
}

static const char lock_v3[] =
    "{\"name\": \"app\", \"version\": \"1.0.0\", \"lockfileVersion\": 3,\n"
    " \"packages\": {\n"
    "  \"\": {\"name\": \"app\", \"version\": \"1.0.0\"},\n"
    "  \"node_modules/left-pad\": {\"version\": \"1.3.0\", \"license\": \"WTFPL\"},\n"
    "  \"node_modules/@babel/core\": {\"version\": \"7.23.2\", \"license\": \"MIT\"},\n"
    "  \"node_modules/@babel/core/node_modules/semver\": {\"version\": \"6.3.1\"},\n"
    "  \"node_modules/alias\": {\"name\": \"real-name\", \"version\": \"2.0.0\"},\n"
    "  \"node_modules/devonly\": {\"version\": \"9.9.9\", \"dev\": true},\n"
    "  \"node_modules/fsevents\": {\"version\": \"2.3.3\", \"optional\": true},\n"
    "  \"node_modules/linked\": {\"resolved\": \"packages/linked\", \"link\": true},\n"
    "  \"packages/linked\": {\"name\": \"linked\", \"version\": \"0.1.0\"}\n"
    " }}\n";

static void test_sbom_npm(void **state) {
  (void)state;
  _cleanup_sbom_ hoist_sbom *s = hoist_sbom_new();
  add_ok(s, "opt/hoist/nodejs/package-lock.json", S(lock_v3));
  assert_int_equal(hoist_sbom_count(s), 4);
  const hoist_sbom_package *p = find(s, "pkg:npm/%40babel/core@7.23.2");
  assert_non_null(p);
  assert_string_equal(p->name, "@babel/core");
  assert_string_equal(p->license, "MIT");
  assert_non_null(find(s, "pkg:npm/left-pad@1.3.0"));
  assert_non_null(find(s, "pkg:npm/semver@6.3.1"));
  assert_non_null(find(s, "pkg:npm/real-name@2.0.0"));
  assert_null(find(s, "pkg:npm/devonly@9.9.9"));
  assert_null(find(s, "pkg:npm/fsevents@2.3.3"));

  /* the hidden lock file says what is installed: its optional ones too */
  _cleanup_sbom_ hoist_sbom *h = hoist_sbom_new();
  add_ok(h, "opt/hoist/nodejs/node_modules/.package-lock.json",
         S("{\"lockfileVersion\": 3, \"packages\": {"
           "\"node_modules/fsevents\": {\"version\": \"2.3.3\", \"optional\": true}}}"));
  assert_non_null(find(h, "pkg:npm/fsevents@2.3.3"));

  /* lockfileVersion 1: nested dependencies */
  _cleanup_sbom_ hoist_sbom *v1 = hoist_sbom_new();
  add_ok(v1, "srv/app/package-lock.json",
         S("{\"lockfileVersion\": 1, \"dependencies\": {"
           "\"express\": {\"version\": \"4.18.2\", \"dependencies\": {"
           "  \"@types/node\": {\"version\": \"20.8.0\"}}},"
           "\"mocha\": {\"version\": \"10.0.0\", \"dev\": true}}}"));
  assert_int_equal(hoist_sbom_count(v1), 2);
  assert_non_null(find(v1, "pkg:npm/express@4.18.2"));
  assert_non_null(find(v1, "pkg:npm/%40types/node@20.8.0"));

  /* node_modules' own package.json files, scoped or not; the name from the
   * directory when the file has none */
  _cleanup_sbom_ hoist_sbom *nm = hoist_sbom_new();
  add_ok(nm, "app/node_modules/@scope/pkg/package.json",
         S("{\"name\": \"@scope/pkg\", \"version\": \"1.0.0-beta.1\", \"license\": \"ISC\"}"));
  add_ok(nm, "app/node_modules/plain/package.json", S("{\"version\": \"3.1.4\"}"));
  add_ok(nm, "app/node_modules/plain/node_modules/@s/n/package.json",
         S("{\"version\": \"1.0.0\"}"));
  add_ok(nm, "app/node_modules/noversion/package.json", S("{\"name\": \"noversion\"}"));
  assert_int_equal(hoist_sbom_count(nm), 3);
  assert_non_null(find(nm, "pkg:npm/%40scope/pkg@1.0.0-beta.1"));
  assert_non_null(find(nm, "pkg:npm/plain@3.1.4"));
  assert_non_null(find(nm, "pkg:npm/%40s/n@1.0.0"));
}

static void test_sbom_go(void **state) {
  (void)state;
  _cleanup_sbom_ hoist_sbom *s = hoist_sbom_new();
  add_ok(s, "opt/hoist/go/go.sum",
         S("github.com/google/uuid v1.4.0 h1:MtMxsa51/r9yyhkyLsVeVt0B+BGQZzpQiTQ4eHZ8bc4=\n"
           "github.com/google/uuid v1.4.0/go.mod h1:TIyPZe4MgqvfeYDBFedMoGGpEw/LqOeaOT+nhxU+yHo=\n"
           "golang.org/x/mod v0.14.0/go.mod h1:hTbmBsO62+eylJbnUtE2MGJUyE7QWk4xUqPFrRgJ+7c=\n"
           "gopkg.in/yaml.v3 v3.0.0-20200313102051-9f266ea9e77c+incompatible h1:x=\n"
           "\n"));
  /* a version whose go.mod alone was read (the module graph) is not listed */
  assert_int_equal(hoist_sbom_count(s), 2);
  const hoist_sbom_package *p = find(s, "pkg:golang/github.com/google/uuid@v1.4.0");
  assert_non_null(p);
  assert_string_equal(p->name, "github.com/google/uuid");
  assert_null(find(s, "pkg:golang/golang.org/x/mod@v0.14.0"));
  assert_non_null(
      find(s, "pkg:golang/gopkg.in/yaml.v3@v3.0.0-20200313102051-9f266ea9e77c%2Bincompatible"));
  /* the module cache: the zips fetched, their case-encoded paths */
  add_ok(s, "opt/hoist/go/mod/cache/download/github.com/!burnt!sushi/toml/@v/v1.3.2.zip", NULL, 0);
  add_ok(s, "opt/hoist/go/mod/cache/download/github.com/google/uuid/@v/v1.4.0.zip", NULL, 0);
  assert_int_equal(hoist_sbom_count(s), 3);
  assert_non_null(find(s, "pkg:golang/github.com/BurntSushi/toml@v1.3.2"));
}

/* A jar (a zip) holding a pom.properties for g:a:v. */
static size_t make_jar(char *buf, size_t cap, const char *props) {
  struct archive *a = archive_write_new();
  archive_write_set_format_zip(a);
  size_t used = 0;
  assert_int_equal(archive_write_open_memory(a, buf, cap, &used), ARCHIVE_OK);
  struct archive_entry *e = archive_entry_new();
  archive_entry_set_pathname(e, "META-INF/maven/org.slf4j/slf4j-api/pom.properties");
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_perm(e, 0644);
  archive_entry_set_size(e, (la_int64_t)strlen(props));
  assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
  assert_int_equal(archive_write_data(a, props, strlen(props)), (la_ssize_t)strlen(props));
  archive_entry_free(e);
  archive_write_close(a);
  archive_write_free(a);
  return used;
}

static void test_sbom_maven(void **state) {
  (void)state;
  _cleanup_sbom_ hoist_sbom *s = hoist_sbom_new();
  add_ok(s, "root/.m2/repository/org/apache/commons/commons-lang3/3.13.0/commons-lang3-3.13.0.pom",
         NULL, 0);
  add_ok(s, "root/.m2/repository/org/apache/commons/commons-lang3/3.13.0/commons-lang3-3.13.0.jar",
         NULL, 0);
  assert_int_equal(hoist_sbom_count(s), 1);
  const hoist_sbom_package *p = find(s, "pkg:maven/org.apache.commons/commons-lang3@3.13.0");
  assert_non_null(p);
  assert_string_equal(p->name, "org.apache.commons:commons-lang3");
  static char jar[8192];
  size_t n = make_jar(jar, sizeof jar,
                      "#Created by Apache Maven\ngroupId=org.slf4j\nartifactId=slf4j-api\n"
                      "version=2.0.9\n");
  add_ok(s, "opt/hoist/java/lib/slf4j-api-2.0.9.jar", jar, n);
  assert_non_null(find(s, "pkg:maven/org.slf4j/slf4j-api@2.0.9"));
}

static void test_sbom_composer_and_gems(void **state) {
  (void)state;
  _cleanup_sbom_ hoist_sbom *s = hoist_sbom_new();
  add_ok(s, "opt/hoist/php/vendor/composer/installed.json",
         S("{\"packages\": [{\"name\": \"monolog/monolog\", \"version\": \"3.5.0\","
           " \"license\": [\"MIT\"]},"
           "{\"name\": \"psr/log\", \"version\": \"v3.0.0\","
           " \"license\": [\"MIT\", \"GPL-2.0-only OR BSD-3-Clause\"]}], \"dev\": false}"));
  add_ok(s, "var/www/vendor/composer/installed.json",
         S("[{\"name\": \"symfony/yaml\", \"version\": \"v6.3.0\"}]"));
  const hoist_sbom_package *p = find(s, "pkg:composer/psr/log@v3.0.0");
  assert_non_null(p);
  assert_string_equal(p->name, "psr/log");
  assert_string_equal(p->license, "MIT OR (GPL-2.0-only OR BSD-3-Clause)");
  assert_non_null(find(s, "pkg:composer/monolog/monolog@3.5.0"));
  assert_non_null(find(s, "pkg:composer/symfony/yaml@v6.3.0"));

  _cleanup_sbom_ hoist_sbom *g = hoist_sbom_new();
  add_ok(g, "opt/hoist/ruby/Gemfile.lock",
         S("GIT\n  remote: https://example.test/x.git\n  specs:\n    fromgit (0.1.0)\n\n"
           "GEM\n  remote: https://rubygems.org/\n  specs:\n"
           "    rack (3.0.8)\n"
           "    nokogiri (1.15.4-x86_64-linux)\n"
           "      racc (~> 1.4)\n"
           "    racc (1.7.1)\n\n"
           "PLATFORMS\n  x86_64-linux\n\nDEPENDENCIES\n  rack\n\nBUNDLED WITH\n   2.4.10\n"));
  add_ok(g,
         "opt/hoist/ruby/vendor/bundle/ruby/3.2.0/specifications/google-protobuf-3.25.1-"
         "x86_64-linux.gemspec",
         NULL, 0);
  add_ok(g, "opt/hoist/ruby/vendor/bundle/ruby/3.2.0/specifications/rack-3.0.8.gemspec", NULL, 0);
  assert_int_equal(hoist_sbom_count(g), 4);
  assert_non_null(find(g, "pkg:gem/rack@3.0.8"));
  assert_non_null(find(g, "pkg:gem/nokogiri@1.15.4"));
  assert_non_null(find(g, "pkg:gem/racc@1.7.1"));
  assert_non_null(find(g, "pkg:gem/google-protobuf@3.25.1"));
  assert_null(find(g, "pkg:gem/fromgit@0.1.0"));
}

static void test_sbom_system(void **state) {
  (void)state;
  _cleanup_sbom_ hoist_sbom *s = hoist_sbom_new();
  hoist_err *err = NULL;
  static const char status[] =
      "Package: libc6\nStatus: install ok installed\nPriority: optional\nArchitecture: amd64\n"
      "Multi-Arch: same\nVersion: 2.36-9+deb12u4\nDescription: GNU C Library\n"
      " Contains the standard libraries.\n\n"
      "Package: removed\nStatus: deinstall ok config-files\nArchitecture: amd64\n"
      "Version: 1.0\n\n"
      "Package: tzdata\nStatus: install ok installed\nArchitecture: all\n"
      "Version: 2024a-0+deb12u1\n";
  assert_ok(hoist_sbom_add_file(s, "var/lib/dpkg/status", S(status), HOIST_SBOM_BASE, &err), &err);
  assert_ok(hoist_sbom_add_file(s, "var/lib/dpkg/status.d/base-files",
                                S("Package: base-files\nVersion: 12.4+deb12u5\n"
                                  "Architecture: amd64\n"),
                                HOIST_SBOM_BASE, &err),
            &err);
  assert_ok(hoist_sbom_add_file(s, "lib/apk/db/installed",
                                S("C:Q1abc=\nP:musl\nV:1.2.4-r2\nA:x86_64\nL:MIT\n\n"
                                  "C:Q1def=\nP:busybox\nV:1.36.1-r15\nA:x86_64\nL:GPL-2.0-only\n"),
                                HOIST_SBOM_BASE, &err),
            &err);
  assert_int_equal(hoist_sbom_count(s), 5);
  const hoist_sbom_package *p = find(s, "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64");
  assert_non_null(p);
  assert_int_equal(p->origin, HOIST_SBOM_BASE);
  assert_string_equal(p->version, "2.36-9+deb12u4");
  assert_non_null(find(s, "pkg:deb/debian/tzdata@2024a-0%2Bdeb12u1?arch=all"));
  assert_non_null(find(s, "pkg:deb/debian/base-files@12.4%2Bdeb12u5?arch=amd64"));
  assert_null(find(s, "pkg:deb/debian/removed@1.0?arch=amd64"));
  p = find(s, "pkg:apk/alpine/busybox@1.36.1-r15?arch=x86_64");
  assert_non_null(p);
  assert_string_equal(p->license, "GPL-2.0-only");
}

static void test_sbom_wants(void **state) {
  (void)state;
  static const struct {
    const char *path;
    bool wanted;
  } cases[] = {
      {"usr/lib/python3/dist-packages/a-1.dist-info/METADATA", true},
      {"usr/lib/python3/dist-packages/a-1.egg-info/METADATA", false},
      {"METADATA", false},
      {"app/package-lock.json", true},
      {"app/node_modules/x/package-lock.json", false},
      {"app/node_modules/.package-lock.json", true},
      {"app/node_modules/x/package.json", true},
      {"app/node_modules/@s/x/package.json", true},
      {"app/node_modules/x/lib/package.json", false},
      {"app/node_modules/.bin/package.json", false},
      {"app/package.json", false},
      {"opt/hoist/go/go.sum", true},
      {"opt/hoist/go/mod/github.com/a/b@v1.0.0/go.sum", false},
      {"usr/lib/go/src/crypto/internal/_asm/go.sum", false},
      {"x/cache/download/github.com/a/b/@v/v1.0.0.zip", true},
      {"x/cache/download/github.com/a/b/@v/v1.0.0.info", false},
      {"x/cache/download/github.com/a/b/@v/v1.0.0.mod", false},
      {"x/cache/download/sumdb/sum.golang.org/lookup/a@v1.zip", false},
      {"pkg/testdata/package-lock.json", false},
      {"usr/lib/python3/dist-packages/x/testdata/a-1.dist-info/METADATA", false},
      {"r/repository/org/x/a/1.0/a-1.0.pom", true},
      {"r/repository/a/1.0/a-1.0.pom", false},
      {"r/repository/org/x/a/1.0/b-1.0.pom", false},
      {"opt/hoist/java/lib/a-1.0.jar", true},
      {"usr/share/java/a.jar", false},
      {"v/vendor/composer/installed.json", true},
      {"v/composer/installed.json", false},
      {"opt/hoist/ruby/Gemfile.lock", true},
      {"opt/hoist/ruby/vendor/bundle/ruby/3.2.0/gems/rack-3.0.8/Gemfile.lock", false},
      {"x/specifications/rack-3.0.8.gemspec", true},
      {"x/specifications/default/rack-3.0.8.gemspec", false},
      {"var/lib/dpkg/status", true},
      {"chroot/var/lib/dpkg/status", false},
      {"var/lib/dpkg/status-old", false},
      {"var/lib/dpkg/status.d/libc6", true},
      {"var/lib/dpkg/status.d/libc6.md5sums", false},
      {"lib/apk/db/installed", true},
      {"", false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
    if (hoist_sbom_wants(cases[i].path) != cases[i].wanted)
      fail_msg("hoist_sbom_wants(\"%s\") is not %d", cases[i].path, cases[i].wanted);
}

static void test_sbom_dedupe(void **state) {
  (void)state;
  _cleanup_sbom_ hoist_sbom *s = hoist_sbom_new();
  add_ok(
      s, "app/package-lock.json",
      S("{\"lockfileVersion\": 2, \"packages\": {\"node_modules/a\": {\"version\": \"1.0.0\"}}}"));
  add_ok(s, "app/node_modules/.package-lock.json",
         S("{\"lockfileVersion\": 2, \"packages\": {\"node_modules/a\": {\"version\": \"1.0.0\"},"
           "\"node_modules/b/node_modules/a\": {\"version\": \"2.0.0\"}}}"));
  add_ok(s, "app/node_modules/a/package.json", S("{\"name\": \"a\", \"version\": \"1.0.0\"}"));
  assert_int_equal(hoist_sbom_count(s), 2);
  /* the first finding is kept */
  assert_string_equal(find(s, "pkg:npm/a@1.0.0")->path, "app/package-lock.json");
  hoist_err *err = NULL;
  _cleanup_sbom_ hoist_sbom *t = hoist_sbom_new();
  for (size_t i = 0; i < hoist_sbom_count(s); i++)
    assert_ok(hoist_sbom_add_package(t, hoist_sbom_get(s, i), &err), &err);
  assert_ok(hoist_sbom_add_package(t, hoist_sbom_get(s, 0), &err), &err);
  assert_int_equal(hoist_sbom_count(t), 2);
  assert_null(hoist_sbom_get(t, 2));
}

/* Bad records: each refused with its code and a message naming the file and
 * what is wrong. */
static void test_sbom_bad_inputs(void **state) {
  (void)state;
  static char huge_name[2048 + 64];
  memset(huge_name, 0, sizeof huge_name);
  strcpy(huge_name, "Name: ");
  memset(huge_name + 6, 'a', 2000);
  strcat(huge_name, "\nVersion: 1\n");
  static const struct {
    const char *path;
    const char *data;
    size_t len;
    int code;
    const char *needle;
  } cases[] = {
      /* pip */
      {"s/a-1.dist-info/METADATA", S("Version: 1\n"), HOIST_E_FORMAT, "no Name"},
      {"s/a-1.dist-info/METADATA", S("Name a\n"), HOIST_E_FORMAT, "line 1 is not a header"},
      {"s/a-1.dist-info/METADATA", S("Name: a\0\nVersion: 1\n"), HOIST_E_FORMAT, "NUL"},
      {"s/a-1.dist-info/METADATA", huge_name, 0, HOIST_E_LIMIT, "field limit of 1024"},
      {"s/a-1.dist-info/METADATA", S("Name: a\x01z\nVersion: 1\n"), HOIST_E_FORMAT, "UTF-8"},
      {"s/a-1.dist-info/METADATA", S("Name: a\xc3\nVersion: 1\n"), HOIST_E_FORMAT, "UTF-8"},
      /* npm */
      {"a/package-lock.json", S("{\"lockfileVersion\": 3, \"packages\": {"), HOIST_E_FORMAT,
       "line 1"},
      {"a/package-lock.json", S("[]"), HOIST_E_FORMAT, "an array, not an object"},
      {"a/package-lock.json", S("{\"lockfileVersion\": \"3\"}"), HOIST_E_FORMAT, "lockfileVersion"},
      {"a/package-lock.json", S("{\"lockfileVersion\": 3, \"packages\": []}"), HOIST_E_FORMAT,
       "\"packages\" is an array"},
      {"a/package-lock.json",
       S("{\"lockfileVersion\": 3, \"packages\": {\"node_modules/x\": {\"version\": 1}}}"),
       HOIST_E_FORMAT, "\"version\" is a number"},
      {"a/package-lock.json",
       S("{\"lockfileVersion\": 3, \"packages\": {\"node_modules/x\": \"1.0\"}}"), HOIST_E_FORMAT,
       "not an object"},
      {"a/package-lock.json",
       S("{\"lockfileVersion\": 3, \"packages\": {\"node_modules/a/b/c\": {\"version\": \"1\"}}}"),
       HOIST_E_FORMAT, "not an npm package name"},
      {"a/package-lock.json", S("{\"lockfileVersion\": 1, \"dependencies\": {\"x\": 3}}"),
       HOIST_E_FORMAT, "dependency \"x\" is a number"},
      {"a/package-lock.json",
       S("{\"lockfileVersion\": 1, \"dependencies\": {\"x\": {\"version\": \"1\\u0000\"}}}"),
       HOIST_E_FORMAT, "line 1"},
      {"n/node_modules/x/package.json", S("{\"name\": [], \"version\": \"1\"}"), HOIST_E_FORMAT,
       "\"name\" is an array"},
      {"n/node_modules/x/package.json", S("[\"1.0\"]"), HOIST_E_FORMAT, "an array, not an object"},
      /* Go */
      {"g/go.sum", S("github.com/a/b v1.0.0\n"), HOIST_E_FORMAT, "line 1 is not"},
      {"g/go.sum", S("a v1 h1:x= extra\n"), HOIST_E_FORMAT, "line 1 is not"},
      {"g/go.sum", S("/abs v1 h1:x=\n"), HOIST_E_FORMAT, "not a Go module path"},
      {"c/cache/download/github.com/A/b/@v/v1.0.0.zip", S(""), HOIST_E_FORMAT, "case encoding"},
      {"c/cache/download/github.com/a!/b/@v/v1.0.0.zip", S(""), HOIST_E_FORMAT, "case encoding"},
      /* Maven */
      {"opt/hoist/java/lib/a.jar", S("not a zip at all"), HOIST_E_FORMAT, "not a jar"},
      /* composer */
      {"v/vendor/composer/installed.json", S("{\"packages\": {}}"), HOIST_E_FORMAT,
       "\"packages\" array"},
      {"v/vendor/composer/installed.json", S("[{\"name\": \"noslash\", \"version\": \"1\"}]"),
       HOIST_E_FORMAT, "vendor/name"},
      {"v/vendor/composer/installed.json", S("[{\"name\": \"a/b\"}]"), HOIST_E_FORMAT,
       "no \"version\""},
      {"v/vendor/composer/installed.json", S("[{\"name\": \"a/b\", \"version\": null}]"),
       HOIST_E_FORMAT, "is null"},
      {"v/vendor/composer/installed.json", S("[7]"), HOIST_E_FORMAT, "package 0 is a number"},
      /* bundler */
      {"r/Gemfile.lock", S("GEM\n  specs:\n    rack 3.0.8\n"), HOIST_E_FORMAT, "line 3"},
      {"r/Gemfile.lock", S("GEM\n  specs:\n    rack (\n"), HOIST_E_FORMAT, "line 3"},
      {"r/specifications/nodigits.gemspec", S(""), HOIST_E_FORMAT, "<name>-<version>"},
      /* dpkg, apk */
      {"var/lib/dpkg/status", S("Package: a\nStatus: install ok installed\n"), HOIST_E_FORMAT,
       "no Package or no Version"},
      {"var/lib/dpkg/status", S("Package: a\nnot a field\n"), HOIST_E_FORMAT,
       "line 2 is not a field"},
      {"lib/apk/db/installed", S("P:a\nV:1\n\nP:b\n"), HOIST_E_FORMAT, "line 4 has no P: or"},
      {"lib/apk/db/installed", S("P:a\nxyz\n"), HOIST_E_FORMAT, "line 2 is not"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    _cleanup_sbom_ hoist_sbom *s = hoist_sbom_new();
    hoist_err *err = NULL;
    size_t len = cases[i].len ? cases[i].len : strlen(cases[i].data);
    int r = hoist_sbom_add_file(s, cases[i].path, cases[i].data, len, HOIST_SBOM_LAYER, &err);
    if (r >= 0)
      fail_msg("case %zu (%s): accepted", i, cases[i].path);
    if (hoist_err_root_code(err) != cases[i].code)
      fail_msg("case %zu (%s): code %d, not %d", i, cases[i].path, hoist_err_root_code(err),
               cases[i].code);
    _cleanup_free_ char *text = hoist_err_text(err);
    if (!strstr(text, cases[i].path) || !strstr(text, cases[i].needle))
      fail_msg("case %zu: \"%s\" does not name %s and \"%s\"", i, text, cases[i].path,
               cases[i].needle);
    hoist_err_free(err);
  }
}

/* A record over HOIST_SBOM_RECORD_MAX is refused before it is parsed, the
 * limit named; so is npm v1 nesting beyond the depth limit. */
static void test_sbom_limits(void **state) {
  (void)state;
  _cleanup_sbom_ hoist_sbom *s = hoist_sbom_new();
  hoist_err *err = NULL;
  assert_true(hoist_sbom_add_file(s, "a/package-lock.json", "{", HOIST_SBOM_RECORD_MAX + 1ul,
                                  HOIST_SBOM_LAYER, &err) < 0);
  assert_int_equal(hoist_err_root_code(err), HOIST_E_LIMIT);
  assert_err_contains(&err, "a/package-lock.json: 67108865 bytes, over the SBOM record limit");

  _cleanup_buf_ hoist_buf b = HOIST_BUF_INIT(0);
  assert_ok(hoist_buf_appendf(&b, &err, "{\"lockfileVersion\": 1, \"dependencies\": "), &err);
  for (int i = 0; i < 200; i++)
    assert_ok(hoist_buf_appendf(&b, &err, "{\"d%d\": {\"version\": \"1\", \"dependencies\": ", i),
              &err);
  assert_ok(hoist_buf_appendf(&b, &err, "{}"), &err);
  for (int i = 0; i < 200; i++)
    assert_ok(hoist_buf_appendf(&b, &err, "}}"), &err);
  assert_ok(hoist_buf_appendf(&b, &err, "}"), &err);
  assert_true(
      hoist_sbom_add_file(s, "deep/package-lock.json", b.data, b.len, HOIST_SBOM_LAYER, &err) < 0);
  assert_int_equal(hoist_err_root_code(err), HOIST_E_LIMIT);
  assert_err_contains(&err, "deeper than 128 levels");
}

/* Writes a gzip'd tar of (name, data) pairs (data NULL: a symlink to
 * /etc/passwd) to path. */
static void write_layer(const char *path, const char *const *entries) {
  struct archive *a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_add_filter_gzip(a);
  assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
  for (size_t i = 0; entries[i]; i += 2) {
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, entries[i]);
    const char *data = entries[i + 1];
    if (data) {
      archive_entry_set_filetype(e, AE_IFREG);
      archive_entry_set_size(e, (la_int64_t)strlen(data));
    } else {
      archive_entry_set_filetype(e, AE_IFLNK);
      archive_entry_set_symlink(e, "/etc/passwd");
    }
    archive_entry_set_perm(e, 0644);
    assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
    if (data)
      assert_int_equal(archive_write_data(a, data, strlen(data)), (la_ssize_t)strlen(data));
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
}

static void test_sbom_scan_layer(void **state) {
  (void)state;
  _cleanup_free_ char *dir = test_mkdtemp();
  _cleanup_free_ char *path = hoist_asprintf("%s/layer.tar.gz", dir);
  const char *const entries[] = {
      "./usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA",
      "Name: six\nVersion: 1.16.0\n",
      "usr/lib/python3/dist-packages/six-1.16.0.dist-info/RECORD",
      "ignored",
      "opt/hoist/nodejs/node_modules/.wh.old",
      "",
      "/var/lib/dpkg/status",
      "Package: a\nStatus: install ok installed\nVersion: 1\n",
      "opt/hoist/nodejs/node_modules/x/package.json",
      NULL, /* a symlink: not read */
      "../escape/var/lib/dpkg/status",
      "Package: evil\nStatus: install ok installed\nVersion: 6\n",
      NULL,
  };
  write_layer(path, entries);
  _cleanup_sbom_ hoist_sbom *s = hoist_sbom_new();
  hoist_err *err = NULL;
  _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
  assert_true(fd >= 0);
  assert_ok(hoist_sbom_scan_layer(s, fd, HOIST_SBOM_LAYER, &err), &err);
  assert_int_equal(hoist_sbom_count(s), 2);
  assert_string_equal(hoist_sbom_get(s, 0)->path,
                      "usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA");
  assert_string_equal(hoist_sbom_get(s, 1)->purl, "pkg:deb/debian/a@1");

  /* a record the layer cannot give whole is an error naming the layer */
  _cleanup_free_ char *junk = hoist_asprintf("%s/junk", dir);
  assert_ok(hoist_fs_write_atomic(AT_FDCWD, junk, S("\x1f\x8b\x08garbage"), 0644, &err), &err);
  _cleanup_close_ int jfd = open(junk, O_RDONLY | O_CLOEXEC);
  assert_true(hoist_sbom_scan_layer(s, jfd, HOIST_SBOM_LAYER, &err) < 0);
  assert_err_contains(&err, "layer");
}

/* Stores a layer of entries in s; its digest in digest. */
static void put_layer(hoist_store *s, const char *dir, const char *const *entries,
                      char digest[HOIST_DIGEST_STR_LEN]) {
  _cleanup_free_ char *path = hoist_asprintf("%s/layer", dir);
  write_layer(path, entries);
  hoist_err *err = NULL;
  _cleanup_free_ char *data = NULL;
  size_t len;
  assert_ok(hoist_fs_read_file(AT_FDCWD, path, 1 << 20, &data, &len, &err), &err);
  assert_ok(hoist_store_put_blob(s, data, len, NULL, digest, &err), &err);
}

#define DPKG(...) "var/lib/dpkg/status", __VA_ARGS__
#define INSTALLED(name) "Package: " name "\nStatus: install ok installed\nVersion: 1\n\n"

/* An image's layers as they stack: of dpkg's database the last copy alone,
 * what an earlier copy held of the base; --layer's choice. */
static void test_sbom_scan_image(void **state) {
  (void)state;
  _cleanup_free_ char *dir = test_mkdtemp();
  _cleanup_free_ char *layout = hoist_asprintf("%s/layout", dir);
  hoist_err *err = NULL;
  _cleanup_store_ hoist_store *st = NULL;
  assert_ok(hoist_store_open(layout, true, &st, &err), &err);
  char l1[HOIST_DIGEST_STR_LEN], l2[HOIST_DIGEST_STR_LEN], l3[HOIST_DIGEST_STR_LEN];
  put_layer(st, dir,
            (const char *const[]){DPKG(INSTALLED("a") INSTALLED("b")),
                                  "usr/lib/python3/dist-packages/x-1.dist-info/METADATA",
                                  "Name: x\nVersion: 1\n", NULL},
            l1);
  put_layer(st, dir,
            (const char *const[]){DPKG(INSTALLED("a") INSTALLED("b") INSTALLED("d")), NULL}, l2);
  put_layer(st, dir,
            (const char *const[]){DPKG(INSTALLED("a") INSTALLED("b") INSTALLED("c")),
                                  "opt/app/node_modules/n/package.json", "{\"version\": \"1\"}",
                                  NULL},
            l3);
  _cleanup_free_ char *json = hoist_asprintf(
      "{\"schemaVersion\": 2, \"mediaType\": \"application/vnd.oci.image.manifest.v1+json\","
      " \"config\": {\"mediaType\": \"application/vnd.oci.image.config.v1+json\", \"digest\":"
      " \"sha256:%064d\", \"size\": 2}, \"layers\": ["
      "{\"mediaType\": \"application/vnd.oci.image.layer.v1.tar+gzip\", \"digest\": \"%s\","
      " \"size\": 1},"
      "{\"mediaType\": \"application/vnd.oci.image.layer.v1.tar+gzip\", \"digest\": \"%s\","
      " \"size\": 1},"
      "{\"mediaType\": \"application/vnd.example.not-a-layer\", \"digest\": \"sha256:%064d\","
      " \"size\": 1},"
      "{\"mediaType\": \"application/vnd.oci.image.layer.v1.tar+gzip\", \"digest\": \"%s\","
      " \"size\": 1}]}",
      0, l1, l2, 1, l3);
  _cleanup_manifest_ hoist_manifest *m = NULL;
  assert_ok(hoist_manifest_parse(json, strlen(json), &m, &err), &err);

  _cleanup_sbom_ hoist_sbom *all = hoist_sbom_new();
  assert_ok(hoist_sbom_scan_image(all, st, m, 0, &err), &err);
  assert_int_equal(hoist_sbom_count(all), 5);
  assert_int_equal(find(all, "pkg:deb/debian/a@1")->origin, HOIST_SBOM_BASE);
  assert_int_equal(find(all, "pkg:deb/debian/b@1")->origin, HOIST_SBOM_BASE);
  assert_int_equal(find(all, "pkg:deb/debian/c@1")->origin, HOIST_SBOM_LAYER);
  assert_null(find(all, "pkg:deb/debian/d@1")); /* removed by the last copy */
  assert_int_equal(find(all, "pkg:pypi/x@1")->origin, HOIST_SBOM_BASE);
  assert_int_equal(find(all, "pkg:npm/n@1")->origin, HOIST_SBOM_LAYER);

  _cleanup_sbom_ hoist_sbom *last = hoist_sbom_new();
  assert_ok(hoist_sbom_scan_image(last, st, m, -1, &err), &err);
  assert_int_equal(hoist_sbom_count(last), 4);
  for (size_t i = 0; i < hoist_sbom_count(last); i++)
    assert_int_equal(hoist_sbom_get(last, i)->origin, HOIST_SBOM_LAYER);
  _cleanup_sbom_ hoist_sbom *second = hoist_sbom_new();
  assert_ok(hoist_sbom_scan_image(second, st, m, 2, &err), &err);
  assert_int_equal(hoist_sbom_count(second), 3);
  assert_non_null(find(second, "pkg:deb/debian/d@1"));
  _cleanup_sbom_ hoist_sbom *none = hoist_sbom_new();
  assert_true(hoist_sbom_scan_image(none, st, m, 5, &err) < 0);
  assert_err_contains(&err, "has 4 layer(s), no layer 5");
  assert_true(hoist_sbom_scan_image(none, st, m, 3, &err) == 0); /* not a layer: nothing */
  assert_int_equal(hoist_sbom_count(none), 0);
}

static void test_sbom_scan_tree(void **state) {
  (void)state;
  _cleanup_free_ char *dir = test_mkdtemp();
  _cleanup_free_ char *outside = test_mkdtemp();
  hoist_err *err = NULL;
  int fd = -1;
  assert_ok(hoist_fs_mkdir_p(AT_FDCWD, outside, 0755, NULL, &err), &err);
  _cleanup_free_ char *o = hoist_asprintf("%s/node_modules/evil", outside);
  assert_ok(hoist_fs_mkdir_p(AT_FDCWD, o, 0755, &fd, &err), &err);
  assert_ok(hoist_fs_write_atomic(fd, "package.json", S("{\"name\":\"evil\",\"version\":\"6\"}"),
                                  0644, &err),
            &err);
  close(fd);
  _cleanup_free_ char *m = hoist_asprintf("%s/app/node_modules/@s/p", dir);
  assert_ok(hoist_fs_mkdir_p(AT_FDCWD, m, 0755, &fd, &err), &err);
  assert_ok(hoist_fs_write_atomic(fd, "package.json", S("{\"name\":\"@s/p\",\"version\":\"2\"}"),
                                  0644, &err),
            &err);
  close(fd);
  /* symlinks out of the root, to a directory and to a record, are not followed */
  _cleanup_free_ char *l1 = hoist_asprintf("%s/app/node_modules/evil", dir);
  _cleanup_free_ char *t1 = hoist_asprintf("%s/node_modules/evil", outside);
  assert_int_equal(symlink(t1, l1), 0);
  _cleanup_free_ char *l2 = hoist_asprintf("%s/app/node_modules/@s/q", dir);
  assert_int_equal(symlink(outside, l2), 0);
  _cleanup_sbom_ hoist_sbom *s = hoist_sbom_new();
  assert_ok(hoist_sbom_scan_tree(s, dir, HOIST_SBOM_LAYER, &err), &err);
  assert_int_equal(hoist_sbom_count(s), 1);
  assert_string_equal(hoist_sbom_get(s, 0)->path, "app/node_modules/@s/p/package.json");
  assert_string_equal(hoist_sbom_get(s, 0)->purl, "pkg:npm/%40s/p@2");

  /* a bad record fails the scan, named */
  _cleanup_free_ char *d2 = hoist_asprintf("%s/var/lib/dpkg", dir);
  assert_ok(hoist_fs_mkdir_p(AT_FDCWD, d2, 0755, &fd, &err), &err);
  assert_ok(hoist_fs_write_atomic(fd, "status", S("Package: x\nStatus: install ok installed\n"),
                                  0644, &err),
            &err);
  close(fd);
  assert_true(hoist_sbom_scan_tree(s, dir, HOIST_SBOM_LAYER, &err) < 0);
  assert_err_contains(&err, "var/lib/dpkg/status");
}

static void test_sbom_spdx(void **state) {
  (void)state;
  _cleanup_sbom_ hoist_sbom *s = hoist_sbom_new();
  hoist_err *err = NULL;
  add_ok(s, "a/node_modules/@evil\"<x>/pkg y/package.json", S("{\"version\": \"1\"}"));
  add_ok(s, "a/\xff/node_modules/n/package.json", S("{\"name\": \"n\", \"version\": \"1\"}"));
  add_ok(s, "a/package-lock.json",
         S("{\"lockfileVersion\": 3, \"packages\": {"
           "\"node_modules/@s/x y\": {\"version\": \"1.0.0\", \"license\": \"MIT OR Apache-2.0\"},"
           "\"node_modules/b\": {\"version\": \"2.0.0\", \"license\": \"SEE LICENSE IN x\"},"
           "\"node_modules/c\": {\"version\": \"3.0.0\","
           " \"license\": \"(GPL-2.0-or-later WITH Classpath-exception-2.0 AND MIT)\"},"
           "\"node_modules/d\": {\"version\": \"4.0.0\", \"license\": \"MIT AND\"}}}"));
  assert_ok(hoist_sbom_add_file(s, "var/lib/dpkg/status",
                                S("Package: libc6\nStatus: install ok installed\n"
                                  "Architecture: amd64\nVersion: 2.36-9\n"),
                                HOIST_SBOM_BASE, &err),
            &err);
  hoist_sbom_doc_info info = {.name = "127.0.0.1:5000/app:1",
                              .namespace_id = "sha256:0123",
                              .created = "2026-12-07T03:00:00Z",
                              .tool = "hoist-9.9.9"};
  _cleanup_free_ char *text = NULL;
  size_t len = 0;
  assert_ok(hoist_sbom_to_spdx(s, &info, &text, &len, &err), &err);
  assert_int_equal(len, strlen(text));
  json_error_t je;
  _cleanup_json_ json_t *doc = json_loads(text, 0, &je);
  assert_non_null(doc);
  assert_string_equal(json_string_value(json_object_get(doc, "spdxVersion")), "SPDX-2.3");
  assert_string_equal(json_string_value(json_object_get(doc, "dataLicense")), "CC0-1.0");
  assert_string_equal(json_string_value(json_object_get(doc, "SPDXID")), "SPDXRef-DOCUMENT");
  assert_string_equal(json_string_value(json_object_get(doc, "name")), "127.0.0.1:5000/app:1");
  assert_string_equal(json_string_value(json_object_get(doc, "documentNamespace")),
                      "https://spdx.org/spdxdocs/hoist/127.0.0.1%3A5000%2Fapp%3A1-sha256%3A0123");
  json_t *ci = json_object_get(doc, "creationInfo");
  assert_string_equal(json_string_value(json_object_get(ci, "created")), "2026-12-07T03:00:00Z");
  assert_string_equal(json_string_value(json_array_get(json_object_get(ci, "creators"), 0)),
                      "Tool: hoist-9.9.9");
  json_t *pkgs = json_object_get(doc, "packages"), *rels = json_object_get(doc, "relationships");
  assert_int_equal(json_array_size(pkgs), 7);
  assert_int_equal(json_array_size(rels), 7);
  static const char *const declared[] = {"NOASSERTION",
                                         "NOASSERTION",
                                         "MIT OR Apache-2.0",
                                         "NOASSERTION",
                                         "(GPL-2.0-or-later WITH Classpath-exception-2.0 AND MIT)",
                                         "NOASSERTION",
                                         "NOASSERTION"};
  for (size_t i = 0; i < json_array_size(pkgs); i++) {
    json_t *p = json_array_get(pkgs, i);
    const char *id = json_string_value(json_object_get(p, "SPDXID"));
    assert_true(strncmp(id, "SPDXRef-Package-", 16) == 0);
    for (const char *c = id; *c; c++)
      if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
            *c == '.' || *c == '-'))
        fail_msg("SPDXID %s has '%c'", id, *c);
    for (size_t k = 0; k < i; k++)
      assert_string_not_equal(
          id, json_string_value(json_object_get(json_array_get(pkgs, k), "SPDXID")));
    json_t *rel = json_array_get(rels, i);
    assert_string_equal(json_string_value(json_object_get(rel, "spdxElementId")),
                        "SPDXRef-DOCUMENT");
    assert_string_equal(json_string_value(json_object_get(rel, "relationshipType")), "DESCRIBES");
    assert_string_equal(json_string_value(json_object_get(rel, "relatedSpdxElement")), id);
    assert_string_equal(json_string_value(json_object_get(p, "downloadLocation")), "NOASSERTION");
    assert_string_equal(json_string_value(json_object_get(p, "licenseConcluded")), "NOASSERTION");
    assert_string_equal(json_string_value(json_object_get(p, "copyrightText")), "NOASSERTION");
    assert_true(json_is_false(json_object_get(p, "filesAnalyzed")));
    assert_string_equal(json_string_value(json_object_get(p, "licenseDeclared")), declared[i]);
    json_t *ref = json_array_get(json_object_get(p, "externalRefs"), 0);
    assert_string_equal(json_string_value(json_object_get(ref, "referenceCategory")),
                        "PACKAGE-MANAGER");
    assert_string_equal(json_string_value(json_object_get(ref, "referenceType")), "purl");
    assert_string_equal(json_string_value(json_object_get(ref, "referenceLocator")),
                        hoist_sbom_get(s, i)->purl);
  }
  json_t *first = json_array_get(pkgs, 0);
  assert_string_equal(json_string_value(json_object_get(first, "SPDXID")),
                      "SPDXRef-Package-npm--evil--x--pkg-y-1");
  assert_non_null(strstr(json_string_value(json_object_get(json_array_get(pkgs, 1), "comment")),
                         "a file whose name is not UTF-8"));
  json_t *libc = json_array_get(pkgs, 6);
  assert_string_equal(json_string_value(json_object_get(libc, "versionInfo")), "2.36-9");
  assert_non_null(strstr(json_string_value(json_object_get(libc, "comment")), "base image"));
  assert_non_null(strstr(json_string_value(json_object_get(first, "comment")), "layer"));

  /* name and namespace are required */
  hoist_sbom_doc_info bad = {.name = "x"};
  assert_true(hoist_sbom_to_spdx(s, &bad, &text, &len, &err) < 0);
  assert_err_contains(&err, "namespace");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sbom_pip),
      cmocka_unit_test(test_sbom_npm),
      cmocka_unit_test(test_sbom_go),
      cmocka_unit_test(test_sbom_maven),
      cmocka_unit_test(test_sbom_composer_and_gems),
      cmocka_unit_test(test_sbom_system),
      cmocka_unit_test(test_sbom_wants),
      cmocka_unit_test(test_sbom_dedupe),
      cmocka_unit_test(test_sbom_bad_inputs),
      cmocka_unit_test(test_sbom_limits),
      cmocka_unit_test(test_sbom_scan_layer),
      cmocka_unit_test(test_sbom_scan_image),
      cmocka_unit_test(test_sbom_scan_tree),
      cmocka_unit_test(test_sbom_spdx),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
