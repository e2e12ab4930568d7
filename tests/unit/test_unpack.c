#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>

#include "../../src/lib/unpack/unpack-private.h"
#include "hoist/digest.h"
#include "hoist/fs.h"
#include "hoist/store.h"
#include "hoist/unpack.h"
#include "test_util.h"

/* ------------------------------------------------------ layer builder */

enum { REG = 1, DIR_, SYM, HARD, CHR, FIFO };

typedef struct member {
  int type;
  const char *name;
  const char *data; /* content (REG) or link target (SYM, HARD) */
  int mode;         /* 0: 0644 / 0755 */
} member;

#define END                                                                                        \
  { 0, NULL, NULL, 0 }

/* Writes members as a pax tar (compressed with filter, an ARCHIVE_FILTER_*
 * code) into memory; caller frees. */
static char *make_layer(const member *m, int filter, size_t *len) {
  size_t cap = 1 << 20;
  char *buf = malloc(cap);
  struct archive *a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  if (filter == ARCHIVE_FILTER_GZIP)
    archive_write_add_filter_gzip(a);
  else if (filter == ARCHIVE_FILTER_ZSTD)
    archive_write_add_filter_zstd(a);
  archive_write_set_bytes_in_last_block(a, 1);
  assert_int_equal(archive_write_open_memory(a, buf, cap, len), ARCHIVE_OK);
  for (; m->type; m++) {
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, m->name);
    archive_entry_set_mtime(e, 1700000000, 0);
    size_t size = 0;
    switch (m->type) {
    case REG:
      archive_entry_set_filetype(e, AE_IFREG);
      size = strlen(m->data);
      archive_entry_set_size(e, (la_int64_t)size);
      archive_entry_set_perm(e, m->mode ? m->mode : 0644);
      break;
    case DIR_:
      archive_entry_set_filetype(e, AE_IFDIR);
      archive_entry_set_perm(e, m->mode ? m->mode : 0755);
      break;
    case SYM:
      archive_entry_set_filetype(e, AE_IFLNK);
      archive_entry_set_symlink(e, m->data);
      archive_entry_set_perm(e, 0777);
      break;
    case HARD:
      archive_entry_set_filetype(e, AE_IFREG);
      archive_entry_set_hardlink(e, m->data);
      archive_entry_set_perm(e, 0644);
      break;
    case CHR:
      archive_entry_set_filetype(e, AE_IFCHR);
      archive_entry_set_rdev(e, makedev(1, 3));
      archive_entry_set_perm(e, 0666);
      break;
    case FIFO:
      archive_entry_set_filetype(e, AE_IFIFO);
      archive_entry_set_perm(e, 0644);
      break;
    }
    assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
    if (size)
      assert_int_equal(archive_write_data(a, m->data, size), (ssize_t)size);
    archive_entry_free(e);
  }
  assert_int_equal(archive_write_close(a), ARCHIVE_OK);
  archive_write_free(a);
  return buf;
}

static int mem_fd(const void *data, size_t len) {
  int fd = memfd_create("layer", MFD_CLOEXEC);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, data, len), (ssize_t)len);
  lseek(fd, 0, SEEK_SET);
  return fd;
}

/* Applies members (compressed with filter) onto rootfd; returns the result
 * and leaves the error in *err. */
static int apply(int rootfd, const member *m, int filter, hoist_unpack_report *rep,
                 hoist_err **err) {
  size_t len;
  _cleanup_free_ char *tar = make_layer(m, filter, &len);
  _cleanup_close_ int fd = mem_fd(tar, len);
  hoist_compression c = filter == ARCHIVE_FILTER_GZIP   ? HOIST_COMPRESS_GZIP
                        : filter == ARCHIVE_FILTER_ZSTD ? HOIST_COMPRESS_ZSTD
                                                        : HOIST_COMPRESS_NONE;
  return hoist_unpack_layer(rootfd, fd, c, NULL, NULL, NULL, rep, err);
}

typedef struct fixture {
  char *parent;
  char *dest;
  int rootfd;
} fixture;

static void fixture_open(fixture *f) {
  f->parent = test_mkdtemp();
  f->dest = hoist_asprintf("%s/dest", f->parent);
  assert_int_equal(mkdir(f->dest, 0755), 0);
  f->rootfd = open(f->dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  assert_true(f->rootfd >= 0);
}

static void fixture_close(fixture *f) {
  close(f->rootfd);
  assert_int_equal(hoist_fs_rm_rf_at(AT_FDCWD, f->parent, NULL), 0);
  free(f->parent);
  free(f->dest);
}

static bool exists(int rootfd, const char *path) {
  struct stat st;
  return fstatat(rootfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static mode_t type_of(int rootfd, const char *path) {
  struct stat st;
  if (fstatat(rootfd, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return 0;
  return st.st_mode & S_IFMT;
}

static char *content(int rootfd, const char *path) {
  char *data = NULL;
  size_t len;
  if (hoist_fs_read_file(rootfd, path, 1 << 20, &data, &len, NULL) < 0)
    return NULL;
  return data;
}

/* True when no name under dirfd (recursively) starts with ".wh.". */
static bool no_whiteouts(int dfd) {
  int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY);
  DIR *d = fdopendir(fd);
  bool ok = true;
  struct dirent *de;
  while (ok && (de = readdir(d))) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
      continue;
    if (!strncmp(de->d_name, ".wh.", 4))
      ok = false;
    else if (de->d_type == DT_DIR) {
      int c = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
      ok = no_whiteouts(c);
      close(c);
    }
  }
  closedir(d);
  return ok;
}

/* ------------------------------------------------------------ whiteouts */

static void test_whiteouts(void **state) {
  (void)state;
  fixture f;
  fixture_open(&f);
  hoist_err *err = NULL;
  const member lower[] = {{DIR_, "a", NULL, 0},        {REG, "a/f1", "one", 0},
                          {REG, "a/f2", "two", 0},     {DIR_, "d", NULL, 0},
                          {REG, "d/x", "x", 0},        {DIR_, "d/sub", NULL, 0},
                          {REG, "d/sub/y", "y", 0},    {DIR_, "o", NULL, 0},
                          {REG, "o/lower", "l", 0},    {DIR_, "o/deep", NULL, 0},
                          {REG, "o/deep/old", "o", 0}, {REG, "top", "old top", 0},
                          {DIR_, "p", NULL, 0},        {REG, "p/lower", "l", 0},
                          {REG, "gone", "g", 0},       END};
  assert_ok(apply(f.rootfd, lower, ARCHIVE_FILTER_NONE, NULL, &err), &err);
  const member upper[] = {/* delete a file, delete a directory */
                          {REG, "a/.wh.f1", "", 0},
                          {REG, ".wh.d", "", 0},
                          /* opaque directory, marker after this layer's entries */
                          {REG, "o/new", "new", 0},
                          {REG, "o/deep/kept", "k", 0},
                          {REG, "o/.wh..wh..opq", "", 0},
                          /* opaque marker first */
                          {REG, "p/.wh..wh..opq", "", 0},
                          {REG, "p/mine", "m", 0},
                          /* re-create after delete in the same layer, both orders */
                          {REG, ".wh.top", "", 0},
                          {DIR_, "top", NULL, 0},
                          {REG, "top/in", "in", 0},
                          {REG, "a/f2", "two again", 0},
                          {REG, "a/.wh.f2", "", 0},
                          /* a whiteout of something that never existed */
                          {REG, ".wh.never", "", 0},
                          {REG, ".wh.gone", "", 0},
                          END};
  hoist_unpack_report rep = {0};
  assert_ok(apply(f.rootfd, upper, ARCHIVE_FILTER_NONE, &rep, &err), &err);
  assert_int_equal(rep.whiteouts, 8);
  assert_false(exists(f.rootfd, "a/f1"));
  _cleanup_free_ char *f2 = content(f.rootfd, "a/f2");
  assert_string_equal(f2, "two again");
  assert_false(exists(f.rootfd, "d"));
  assert_false(exists(f.rootfd, "o/lower"));
  assert_false(exists(f.rootfd, "o/deep/old"));
  assert_true(exists(f.rootfd, "o/new"));
  assert_true(exists(f.rootfd, "o/deep/kept"));
  assert_false(exists(f.rootfd, "p/lower"));
  assert_true(exists(f.rootfd, "p/mine"));
  assert_int_equal(type_of(f.rootfd, "top"), S_IFDIR);
  assert_true(exists(f.rootfd, "top/in"));
  assert_false(exists(f.rootfd, "gone"));
  assert_true(no_whiteouts(f.rootfd));
  hoist_unpack_report_clear(&rep);
  fixture_close(&f);
}

static void test_hardlinks(void **state) {
  (void)state;
  fixture f;
  fixture_open(&f);
  hoist_err *err = NULL;
  const member l1[] = {
      {DIR_, "bin", NULL, 0}, {REG, "bin/a", "payload", 04755}, {HARD, "bin/b", "bin/a", 0}, END};
  assert_ok(apply(f.rootfd, l1, ARCHIVE_FILTER_GZIP, NULL, &err), &err);
  const member l2[] = {{HARD, "c", "bin/a", 0}, END};
  assert_ok(apply(f.rootfd, l2, ARCHIVE_FILTER_ZSTD, NULL, &err), &err);
  struct stat a, b, c;
  assert_int_equal(fstatat(f.rootfd, "bin/a", &a, 0), 0);
  assert_int_equal(fstatat(f.rootfd, "bin/b", &b, 0), 0);
  assert_int_equal(fstatat(f.rootfd, "c", &c, 0), 0);
  assert_int_equal(a.st_ino, b.st_ino);
  assert_int_equal(a.st_ino, c.st_ino);
  assert_int_equal(a.st_nlink, 3);
  assert_int_equal(a.st_mode & 07777, 04755);
  _cleanup_free_ char *data = content(f.rootfd, "c");
  assert_string_equal(data, "payload");
  fixture_close(&f);
}

static void test_modes_and_types(void **state) {
  (void)state;
  fixture f;
  fixture_open(&f);
  hoist_err *err = NULL;
  const member l[] = {{DIR_, "tmp", NULL, 01777}, {DIR_, "ro", NULL, 0555},
                      {REG, "ro/f", "x", 0400},   {SYM, "link", "ro/f", 0},
                      {FIFO, "pipe", NULL, 0},    END};
  assert_ok(apply(f.rootfd, l, ARCHIVE_FILTER_NONE, NULL, &err), &err);
  struct stat st;
  assert_int_equal(fstatat(f.rootfd, "tmp", &st, 0), 0);
  assert_int_equal(st.st_mode & 07777, 01777);
  assert_int_equal(st.st_mtime, 1700000000);
  assert_int_equal(fstatat(f.rootfd, "ro", &st, 0), 0);
  assert_int_equal(st.st_mode & 07777, 0555);
  assert_int_equal(fstatat(f.rootfd, "ro/f", &st, 0), 0);
  assert_int_equal(st.st_mode & 07777, 0400);
  assert_int_equal(st.st_mtime, 1700000000);
  assert_int_equal(type_of(f.rootfd, "link"), S_IFLNK);
  assert_int_equal(type_of(f.rootfd, "pipe"), S_IFIFO);
  fixture_close(&f);
}

static time_t mtime_of(int rootfd, const char *path) {
  struct stat st;
  assert_int_equal(fstatat(rootfd, path, &st, AT_SYMLINK_NOFOLLOW), 0);
  return st.st_mtime;
}

/* A layer that adds to, replaces in or whites out of a lower directory
 * without a member of its own for it leaves that directory's mtime as the
 * lower layer set it; a member for the directory sets its own. */
static void test_lower_dir_times(void **state) {
  (void)state;
  fixture f;
  fixture_open(&f);
  hoist_err *err = NULL;
  const member lower[] = {{DIR_, "a", NULL, 0}, {REG, "a/f", "f", 0},   {DIR_, "a/b", NULL, 0},
                          {DIR_, "o", NULL, 0}, {REG, "o/old", "o", 0}, {DIR_, "w", NULL, 0},
                          {REG, "w/x", "x", 0}, {REG, "gone", "g", 0},  END};
  assert_ok(apply(f.rootfd, lower, ARCHIVE_FILTER_NONE, NULL, &err), &err);
  const struct timespec old[2] = {{.tv_nsec = UTIME_OMIT}, {1500000000, 0}};
  const char *dirs[] = {"a", "a/b", "o", "w"};
  for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++)
    assert_int_equal(utimensat(f.rootfd, dirs[i], old, 0), 0);
  assert_int_equal(futimens(f.rootfd, old), 0);

  const member upper[] = {
      {REG, "a/new", "n", 0},         {REG, "a/f", "replaced", 0}, {REG, "a/b/c/d/deep", "d", 0},
      {REG, "o/.wh..wh..opq", "", 0}, {REG, "o/mine", "m", 0},     {REG, ".wh.gone", "", 0},
      {DIR_, "w", NULL, 0},           {REG, "w/.wh.x", "", 0},     END};
  assert_ok(apply(f.rootfd, upper, ARCHIVE_FILTER_NONE, NULL, &err), &err);
  assert_true(exists(f.rootfd, "a/b/c/d/deep"));
  assert_false(exists(f.rootfd, "o/old"));
  assert_false(exists(f.rootfd, "w/x"));
  assert_int_equal(mtime_of(f.rootfd, "a"), 1500000000);
  assert_int_equal(mtime_of(f.rootfd, "a/b"), 1500000000);
  assert_int_equal(mtime_of(f.rootfd, "o"), 1500000000);
  assert_int_equal(mtime_of(f.rootfd, "w"), 1700000000);
  struct stat root;
  assert_int_equal(fstat(f.rootfd, &root), 0);
  assert_int_equal(root.st_mtime, 1500000000);
  fixture_close(&f);
}

/* ------------------------------------------------------- digests, streams */

static void test_digests(void **state) {
  (void)state;
  const member l[] = {{REG, "f", "hello", 0}, END};
  size_t tlen, glen, zlen;
  _cleanup_free_ char *tar = make_layer(l, ARCHIVE_FILTER_NONE, &tlen);
  _cleanup_free_ char *gz = make_layer(l, ARCHIVE_FILTER_GZIP, &glen);
  _cleanup_free_ char *zs = make_layer(l, ARCHIVE_FILTER_ZSTD, &zlen);
  char diff_id[HOIST_DIGEST_STR_LEN], gdig[HOIST_DIGEST_STR_LEN], zdig[HOIST_DIGEST_STR_LEN];
  hoist_sha256_of(tar, tlen, diff_id);
  hoist_sha256_of(gz, glen, gdig);
  hoist_sha256_of(zs, zlen, zdig);
  struct {
    const char *data;
    size_t len;
    hoist_compression c;
    const char *digest, *diff_id, *want_err;
  } cases[] = {
      {tar, tlen, HOIST_COMPRESS_NONE, diff_id, diff_id, NULL},
      {gz, glen, HOIST_COMPRESS_GZIP, gdig, diff_id, NULL},
      {zs, zlen, HOIST_COMPRESS_ZSTD, zdig, diff_id, NULL},
      {gz, glen, HOIST_COMPRESS_GZIP, gdig, gdig, "diffID mismatch"},
      {gz, glen, HOIST_COMPRESS_GZIP, diff_id, diff_id, "blob digest mismatch"},
      {zs, zlen, HOIST_COMPRESS_ZSTD, zdig, gdig, "diffID mismatch"},
      {gz, glen - 6, HOIST_COMPRESS_GZIP, NULL, NULL, "gzip"},
      {zs, zlen - 3, HOIST_COMPRESS_ZSTD, NULL, NULL, "zstd"},
      {tar, tlen, HOIST_COMPRESS_GZIP, NULL, NULL, "gzip"},
      {"garbage!", 8, HOIST_COMPRESS_NONE, NULL, NULL, "tar"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    fixture f;
    fixture_open(&f);
    hoist_err *err = NULL;
    _cleanup_close_ int fd = mem_fd(cases[i].data, cases[i].len);
    int r = hoist_unpack_layer(f.rootfd, fd, cases[i].c, cases[i].digest, cases[i].diff_id, NULL,
                               NULL, &err);
    if (!cases[i].want_err) {
      assert_ok(r, &err);
      _cleanup_free_ char *d = content(f.rootfd, "f");
      assert_string_equal(d, "hello");
    } else {
      if (r == 0)
        fail_msg("case %zu: expected an error with \"%s\"", i, cases[i].want_err);
      assert_err_contains(&err, cases[i].want_err);
    }
    fixture_close(&f);
  }
}

/* A multi-member gzip stream (two gzip members concatenated) is one tar. */
static void test_gzip_multi_member(void **state) {
  (void)state;
  const member l[] = {{REG, "f", "hello", 0}, {REG, "g", "world", 0}, END};
  size_t tlen;
  _cleanup_free_ char *tar = make_layer(l, ARCHIVE_FILTER_NONE, &tlen);
  /* compress the two halves separately with libarchive's raw gzip writer */
  char *parts[2];
  size_t plen[2];
  size_t half = 1024;
  for (int i = 0; i < 2; i++) {
    parts[i] = malloc(1 << 16);
    struct archive *a = archive_write_new();
    archive_write_set_format_raw(a);
    archive_write_add_filter_gzip(a);
    archive_write_open_memory(a, parts[i], 1 << 16, &plen[i]);
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_filetype(e, AE_IFREG);
    archive_write_header(a, e);
    archive_write_data(a, i ? tar + half : tar, i ? tlen - half : half);
    archive_entry_free(e);
    archive_write_close(a);
    archive_write_free(a);
  }
  _cleanup_free_ char *both = malloc(plen[0] + plen[1]);
  memcpy(both, parts[0], plen[0]);
  memcpy(both + plen[0], parts[1], plen[1]);
  free(parts[0]);
  free(parts[1]);
  char diff_id[HOIST_DIGEST_STR_LEN];
  hoist_sha256_of(tar, tlen, diff_id);
  fixture f;
  fixture_open(&f);
  hoist_err *err = NULL;
  _cleanup_close_ int fd = mem_fd(both, plen[0] + plen[1]);
  assert_ok(hoist_unpack_layer(f.rootfd, fd, HOIST_COMPRESS_GZIP, NULL, diff_id, NULL, NULL, &err),
            &err);
  _cleanup_free_ char *g = content(f.rootfd, "g");
  assert_string_equal(g, "world");
  fixture_close(&f);
}

/* --------------------------------------------------------- hostile layers */

#define PROBE "hoist-unpack-escape-probe"

typedef struct hostile {
  const char *what;
  member layers[2][8];
  /* what must happen, one or the other: a refusal whose error names
   * want_err, or (want_err NULL) the layers apply and inside exists in the
   * destination with type inside_type, reached through real directories */
  const char *want_err;
  const char *inside;
  mode_t inside_type;
} hostile;

static char long_component[300];
static char long_path[5000];

static const hostile hostiles[] = {
    {"dotdot", {{{REG, "../" PROBE, "x", 0}, END}}, "\"..\" component refused", NULL, 0},
    {"dotdot inside",
     {{{REG, "a/../../" PROBE, "x", 0}, END}},
     "\"..\" component refused",
     NULL,
     0},
    {"absolute", {{{REG, "/tmp/" PROBE, "x", 0}, END}}, "absolute name refused", NULL, 0},
    /* inside the root, etc -> /etc names itself: a loop */
    {"symlink to /etc then a file through it",
     {{{SYM, "etc", "/etc", 0}, {REG, "etc/" PROBE, "x", 0}, END}},
     "member etc/" PROBE ": directory etc",
     NULL,
     0},
    {"symlink to /tmp then a file through it",
     {{{SYM, "t", "/tmp", 0}, {REG, "t/" PROBE, "x", 0}, END}},
     NULL,
     "tmp/" PROBE,
     S_IFREG},
    {"symlink up then a file",
     {{{SYM, "up", "../../..", 0}, {REG, "up/" PROBE, "x", 0}, END}},
     NULL,
     PROBE,
     S_IFREG},
    {"symlink chain",
     {{{SYM, "l1", "l2", 0},
       {SYM, "l2", "l3/../..", 0},
       {DIR_, "l3", NULL, 0},
       {REG, "l1/" PROBE, "x", 0},
       END}},
     NULL,
     PROBE,
     S_IFREG},
    {"symlink planted by an earlier layer",
     {{{SYM, "lib", "/", 0}, END}, {{REG, "lib/" PROBE, "x", 0}, END}},
     NULL,
     PROBE,
     S_IFREG},
    {"symlink loop",
     {{{SYM, "loop", "loop", 0}, {REG, "loop/x", "x", 0}, END}},
     "member loop/x: directory loop",
     NULL,
     0},
    {"hardlink to outside",
     {{{HARD, "pw", "../../etc/passwd", 0}, END}},
     "\"..\" component refused",
     NULL,
     0},
    {"hardlink to absolute",
     {{{HARD, "pw", "/etc/passwd", 0}, END}},
     "absolute name refused",
     NULL,
     0},
    /* s -> /etc is the root's own etc, which has no passwd */
    {"hardlink through a symlink",
     {{{SYM, "s", "/etc", 0}, {HARD, "pw", "s/passwd", 0}, END}},
     "hardlink target s/passwd",
     NULL,
     0},
    {"whiteout of ..", {{{REG, ".wh...", "", 0}, END}}, "whiteout of \"..\" refused", NULL, 0},
    {"whiteout of .. in a dir",
     {{{DIR_, "a", NULL, 0}, {REG, "a/.wh...", "", 0}, END}},
     "whiteout of \"..\" refused",
     NULL,
     0},
    {"whiteout of the root", {{{REG, ".wh.", "", 0}, END}}, "whiteout of \"\" refused", NULL, 0},
    {"whiteout of the root dot",
     {{{REG, ".wh..", "", 0}, END}},
     "whiteout of \".\" refused",
     NULL,
     0},
    /* s -> / is the root: the whiteout hides the root's "keep" (there is
     * none), never the symlink */
    {"whiteout through a symlink",
     {{{SYM, "s", "/", 0}, {REG, "s/.wh.keep", "", 0}, END}},
     NULL,
     "s",
     S_IFLNK},
    {"device nodes", {{{CHR, "dev/null", NULL, 0}, {REG, "ok", "x", 0}, END}}, NULL, "ok", S_IFREG},
    {"member repeated with different types",
     {{{REG, "x", "1", 0},
       {DIR_, "x", NULL, 0},
       {REG, "x/y", "2", 0},
       {SYM, "x", "/etc", 0},
       {REG, "x", "final", 0},
       END}},
     NULL,
     "x",
     S_IFREG},
    {"symlink then a directory of the same name",
     {{{SYM, "s", "/tmp", 0}, {DIR_, "s", NULL, 0}, {REG, "s/" PROBE, "x", 0}, END}},
     NULL,
     "s/" PROBE,
     S_IFREG},
    {"directory then a symlink of the same name then a file",
     {{{DIR_, "d", NULL, 0},
       {REG, "d/a", "a", 0},
       {SYM, "d", "/tmp", 0},
       {REG, "d/" PROBE, "x", 0},
       END}},
     NULL,
     "tmp/" PROBE,
     S_IFREG},
    {"a file below a dangling relative symlink",
     {{{SYM, "lib", "usr/lib", 0}, {REG, "lib/" PROBE, "x", 0}, END}},
     NULL,
     "usr/lib/" PROBE,
     S_IFREG},
    {"a file below a dangling absolute symlink of a lower layer",
     {{{DIR_, "var", NULL, 0}, {SYM, "var/run", "/run", 0}, END},
      {{REG, "var/run/" PROBE, "x", 0}, END}},
     NULL,
     "run/" PROBE,
     S_IFREG},
    {"a file below a dangling symlink pointing up",
     {{{SYM, "up", "../../../made", 0}, {REG, "up/" PROBE, "x", 0}, END}},
     NULL,
     "made/" PROBE,
     S_IFREG},
    {"very long component", {{{REG, long_component, "x", 0}, END}}, "component too long", NULL, 0},
    {"very long path", {{{REG, long_path, "x", 0}, END}}, NULL, long_path, S_IFREG},
};

/* The type of path inside rootfd, walked a component at a time without
 * following any symlink (so a path longer than PATH_MAX works too); 0 when
 * it is missing or a component on the way is not a real directory. */
static mode_t type_inside(int rootfd, const char *path) {
  int dfd = fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
  mode_t type = 0;
  _cleanup_free_ char *copy = hoist_strdup(path);
  char *save = NULL;
  char *comp = strtok_r(copy, "/", &save);
  while (comp && dfd >= 0) {
    char *next = strtok_r(NULL, "/", &save);
    struct stat st;
    if (fstatat(dfd, comp, &st, AT_SYMLINK_NOFOLLOW) < 0)
      break;
    if (!next) {
      type = st.st_mode & S_IFMT;
      break;
    }
    int fd = S_ISDIR(st.st_mode) ? openat(dfd, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW) : -1;
    close(dfd);
    dfd = fd;
    comp = next;
  }
  if (dfd >= 0)
    close(dfd);
  return type;
}

static bool probe_anywhere(void) {
  const char *places[] = {"/" PROBE, "/tmp/" PROBE, "/etc/" PROBE};
  for (size_t i = 0; i < sizeof places / sizeof places[0]; i++)
    if (access(places[i], F_OK) == 0)
      return true;
  return false;
}

/* Only "dest" is left in the parent. */
static void assert_parent_clean(const fixture *f, const char *what) {
  DIR *d = opendir(f->parent);
  struct dirent *de;
  while ((de = readdir(d)))
    if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") && strcmp(de->d_name, "dest"))
      fail_msg("%s: %s appeared beside the destination", what, de->d_name);
  closedir(d);
}

static void run_hostiles(void) {
  memset(long_component, 'n', 299);
  for (size_t i = 0; i + 200 < sizeof long_path; i += 200) {
    memset(long_path + i, 'p', 199);
    long_path[i + 199] = '/';
  }
  long_path[sizeof long_path - 201] = 'f';
  long_path[sizeof long_path - 200] = '\0';

  struct stat etc_before, etc_after;
  assert_int_equal(stat("/etc/passwd", &etc_before), 0);
  for (size_t i = 0; i < sizeof hostiles / sizeof hostiles[0]; i++) {
    const hostile *h = &hostiles[i];
    fixture f;
    fixture_open(&f);
    hoist_err *err = NULL;
    int r = 0;
    hoist_unpack_report rep = {0};
    for (int l = 0; l < 2 && r == 0 && h->layers[l][0].type; l++)
      r = apply(f.rootfd, h->layers[l], l ? ARCHIVE_FILTER_GZIP : ARCHIVE_FILTER_NONE, &rep, &err);
    if (h->want_err) {
      if (r == 0)
        fail_msg("%s: expected refusal \"%s\", got success", h->what, h->want_err);
      assert_err_contains(&err, h->want_err);
    } else {
      if (r != 0) {
        char *t = hoist_err_text(err);
        fail_msg("%s: expected success, got %d: %s", h->what, r, t ? t : "(no error)");
      }
      mode_t type = type_inside(f.rootfd, h->inside);
      if (type != h->inside_type)
        fail_msg("%s: %.80s inside the destination has type %o, want %o", h->what, h->inside,
                 (unsigned)type, (unsigned)h->inside_type);
    }
    assert_parent_clean(&f, h->what);
    if (probe_anywhere())
      fail_msg("%s: wrote outside the destination", h->what);
    hoist_unpack_report_clear(&rep);
    fixture_close(&f);
  }
  assert_int_equal(stat("/etc/passwd", &etc_after), 0);
  assert_int_equal(etc_before.st_size, etc_after.st_size);
  assert_int_equal(etc_before.st_mtime, etc_after.st_mtime);
  assert_int_equal(etc_before.st_ino, etc_after.st_ino);
}

static void test_hostile_layers(void **state) {
  (void)state;
  run_hostiles();
}

static void test_hostile_layers_fallback(void **state) {
  (void)state;
  hoist_fs_force_fallback(true);
  run_hostiles();
  hoist_fs_force_fallback(false);
}

static void test_repeated_member_result(void **state) {
  (void)state;
  fixture f;
  fixture_open(&f);
  hoist_err *err = NULL;
  assert_ok(apply(f.rootfd, hostiles[18].layers[0], ARCHIVE_FILTER_NONE, NULL, &err), &err);
  assert_int_equal(type_of(f.rootfd, "x"), S_IFREG);
  _cleanup_free_ char *x = content(f.rootfd, "x");
  assert_string_equal(x, "final");
  fixture_close(&f);
}

/* ------------------------------------------- writer threads: same tree */

/* Appends to *out a line per entry below dfd (path, sorted): type and mode,
 * owner, link count, size, content or target, and the mtime of all but
 * directories (implicit ones get the time of the run). */
static void tree_listing(int dfd, const char *dir, hoist_buf *out) {
  _cleanup_close_ int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  assert_true(fd >= 0);
  struct dirent **names;
  char proc[64];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
  int n = scandir(proc, &names, NULL, alphasort);
  assert_true(n >= 0);
  for (int i = 0; i < n; i++) {
    const char *name = names[i]->d_name;
    if (strcmp(name, ".") != 0 && strcmp(name, "..") != 0) {
      struct stat st;
      assert_int_equal(fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW), 0);
      _cleanup_free_ char *path = *dir ? hoist_asprintf("%s/%s", dir, name) : hoist_strdup(name);
      assert_int_equal(hoist_buf_appendf(out, NULL, "%s %o %u:%u n%lu s%lld", path, st.st_mode,
                                         st.st_uid, st.st_gid, (unsigned long)st.st_nlink,
                                         (long long)st.st_size),
                       0);
      if (!S_ISDIR(st.st_mode))
        assert_int_equal(hoist_buf_appendf(out, NULL, " t%lld.%ld", (long long)st.st_mtim.tv_sec,
                                           st.st_mtim.tv_nsec),
                         0);
      if (S_ISREG(st.st_mode)) {
        _cleanup_free_ char *c = content(fd, name);
        assert_int_equal(hoist_buf_appendf(out, NULL, " [%s]", c), 0);
      } else if (S_ISLNK(st.st_mode)) {
        char t[256] = {0};
        assert_true(readlinkat(fd, name, t, sizeof t - 1) >= 0);
        assert_int_equal(hoist_buf_appendf(out, NULL, " -> %s", t), 0);
      }
      assert_int_equal(hoist_buf_append(out, "\n", 1, NULL), 0);
      if (S_ISDIR(st.st_mode)) {
        _cleanup_close_ int cfd = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        assert_true(cfd >= 0);
        tree_listing(cfd, path, out);
      }
    }
    free(names[i]);
  }
  free(names);
}

/* Applies layers (each END-terminated, a NULL after the last) with threads
 * writers pausing delay_us before each file into a new tree; returns its
 * listing, or "error: <message>" when a layer fails. Caller frees. */
static char *outcome(const member *const *layers, int threads, unsigned delay_us) {
  fixture f;
  fixture_open(&f);
  unpack_test_threads = threads;
  unpack_test_delay_us = delay_us;
  hoist_buf out = HOIST_BUF_INIT(0);
  hoist_err *err = NULL;
  int r = 0;
  for (size_t i = 0; layers[i] && r == 0; i++)
    r = apply(f.rootfd, layers[i], ARCHIVE_FILTER_NONE, NULL, &err);
  unpack_test_threads = 0;
  unpack_test_delay_us = 0;
  if (r < 0) {
    _cleanup_free_ char *text = hoist_err_text(err);
    assert_int_equal(hoist_buf_appendf(&out, NULL, "error: %s", text), 0);
    hoist_err_free(err);
  } else {
    tree_listing(f.rootfd, "", &out);
  }
  fixture_close(&f);
  assert_int_equal(hoist_buf_append(&out, "", 1, NULL), 0);
  return (char *)out.data;
}

/* Members that reuse the path of a file still queued to a writer (or a
 * directory below it, or link to it) make the tree (or the error) that
 * applying them one by one makes: the writers only ever run ahead on new
 * paths. Each case runs without writers, with two, and with two that pause
 * before every file (so the file is not there yet when the next member
 * comes). */
static void test_writers_same_tree(void **state) {
  (void)state;
  static const member repeat[] = {{REG, "a", "first", 0}, {REG, "a", "second", 0600}, END};
  static const member file_then_dir[] = {
      {REG, "x", "file", 0}, {DIR_, "x", NULL, 0750}, {REG, "x/y", "below", 0}, END};
  static const member file_then_symlink[] = {
      {DIR_, "d", NULL, 0}, {REG, "d/f", "file", 0}, {SYM, "d/f", "../t", 0}, END};
  static const member file_then_below[] = {{REG, "x", "file", 0}, {REG, "x/y", "below", 0}, END};
  static const member hardlink[] = {{DIR_, "bin", NULL, 0},
                                    {REG, "bin/a", "payload", 0755},
                                    {HARD, "bin/b", "bin/a", 0},
                                    {HARD, "c", "bin/b", 0},
                                    END};
  static const member hardlink_below_file[] = {{REG, "x", "file", 0}, {HARD, "y", "x/z", 0}, END};
  static const member whiteouts[] = {{DIR_, "d", NULL, 0},           {REG, "d/f", "file", 0},
                                     {REG, "d/g", "g", 0},           {REG, "d/.wh.f", "", 0},
                                     {REG, "d/.wh..wh..opq", "", 0}, END};
  static const member modes[] = {{DIR_, "s", NULL, 02775},
                                 {REG, "s/suid", "x", 04755},
                                 {REG, "s/ro", "x", 0444},
                                 {REG, "s/none", "x", 01000},
                                 {REG, "s/empty", "", 0640},
                                 {REG, "top", "t", 0600},
                                 END};
  static const member dir_replaces_dir_with_queued[] = {{DIR_, "d", NULL, 0},
                                                        {REG, "d/f1", "1", 0},
                                                        {REG, "d/f2", "2", 0},
                                                        {REG, "d", "now a file", 0},
                                                        END};
  static const member lower[] = {
      {DIR_, "d", NULL, 0}, {REG, "d/old", "old", 0}, {REG, "d/keep", "keep", 0}, END};
  static const member upper[] = {{REG, "d/new", "new", 0},
                                 {REG, "d/old", "replaced", 0},
                                 {REG, "d/.wh.keep", "", 0},
                                 {HARD, "d/link", "d/new", 0},
                                 END};
  static const struct {
    const char *name;
    const member *layers[3];
  } cases[] = {
      {"same file twice", {repeat, NULL}},
      {"file then a directory of that name", {file_then_dir, NULL}},
      {"file then a symlink of that name", {file_then_symlink, NULL}},
      {"file then a member below it", {file_then_below, NULL}},
      {"hardlinks to a queued file", {hardlink, NULL}},
      {"hardlink through a queued file", {hardlink_below_file, NULL}},
      {"whiteouts of queued files", {whiteouts, NULL}},
      {"modes and a setgid directory", {modes, NULL}},
      {"a file replaces a directory of queued files", {dir_replaces_dir_with_queued, NULL}},
      {"second layer over queued files", {lower, upper, NULL}},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    _cleanup_free_ char *serial = outcome(cases[i].layers, 1, 0);
    _cleanup_free_ char *pooled = outcome(cases[i].layers, 2, 0);
    _cleanup_free_ char *paused = outcome(cases[i].layers, 2, 3000);
    if (strcmp(serial, pooled) != 0 || strcmp(serial, paused) != 0)
      fail_msg("%s:\n-- one by one:\n%s\n-- writers:\n%s\n-- paused writers:\n%s", cases[i].name,
               serial, pooled, paused);
  }
}

/* xattrs come back, security.capability included (as root). */
static void test_xattrs(void **state) {
  (void)state;
  if (geteuid() != 0)
    skip();
  size_t cap = 1 << 16, len;
  _cleanup_free_ char *buf = malloc(cap);
  struct archive *a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_open_memory(a, buf, cap, &len);
  struct archive_entry *e = archive_entry_new();
  archive_entry_set_pathname(e, "ping");
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_perm(e, 0755);
  archive_entry_set_size(e, 2);
  /* cap_net_raw+ep, VFS_CAP_REVISION_2 */
  static const unsigned char capv[20] = {0x01, 0, 0, 0x02, 0x00, 0x20, 0, 0, 0x00, 0x20};
  archive_entry_xattr_add_entry(e, "security.capability", capv, sizeof capv);
  archive_entry_xattr_add_entry(e, "trusted.hoist", "v", 1);
  /* host-only attributes a layer must not set */
  archive_entry_xattr_add_entry(e, "trusted.overlay.opaque", "y", 1);
  archive_entry_xattr_add_entry(e, "user.overlay.redirect", "/etc", 4);
  assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
  archive_write_data(a, "hi", 2);
  archive_entry_free(e);
  archive_write_close(a);
  archive_write_free(a);
  fixture f;
  fixture_open(&f);
  hoist_err *err = NULL;
  hoist_unpack_report rep = {0};
  _cleanup_close_ int fd = mem_fd(buf, len);
  assert_ok(hoist_unpack_layer(f.rootfd, fd, HOIST_COMPRESS_NONE, NULL, NULL, NULL, &rep, &err),
            &err);
  _cleanup_free_ char *p = hoist_asprintf("%s/ping", f.dest);
  unsigned char got[64];
  ssize_t n = lgetxattr(p, "security.capability", got, sizeof got);
  if (n < 0 && (errno == ENOTSUP || errno == EOPNOTSUPP)) {
    fixture_close(&f);
    skip();
  }
  assert_int_equal(n, sizeof capv);
  assert_memory_equal(got, capv, sizeof capv);
  assert_int_equal(lgetxattr(p, "trusted.hoist", got, sizeof got), 1);
  assert_int_equal(lgetxattr(p, "trusted.overlay.opaque", got, sizeof got), -1);
  assert_int_equal(lgetxattr(p, "user.overlay.redirect", got, sizeof got), -1);
  assert_int_equal(rep.xattrs_skipped, 0);
  fixture_close(&f);
}

/* One member "f" (mode 0543 as libarchive stores a file whose ACL's owning
 * group entry is r--) with the POSIX.1e ACL text acl, as a pax tar. */
static char *acl_layer(const char *acl, size_t *len) {
  size_t cap = 1 << 16;
  char *buf = malloc(cap);
  struct archive *a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_open_memory(a, buf, cap, len);
  struct archive_entry *e = archive_entry_new();
  archive_entry_set_pathname(e, "f");
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_perm(e, 0543);
  archive_entry_set_size(e, 2);
  if (acl)
    assert_int_equal(archive_entry_acl_from_text(e, acl, ARCHIVE_ENTRY_ACL_TYPE_ACCESS),
                     ARCHIVE_OK);
  assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
  archive_write_data(a, "hi", 2);
  archive_entry_free(e);
  archive_write_close(a);
  archive_write_free(a);
  return buf;
}

/* POSIX ACLs (pax SCHILY.acl.access) are set as system.posix_acl_access, and
 * the mode's group bits are the mask, as stat showed them where the layer
 * was made; an ACL the kernel refuses is reported, the mode still right. */
static void test_acls(void **state) {
  (void)state;
  static const struct {
    const char *acl;
    mode_t mode;       /* expected */
    bool applied;      /* system.posix_acl_access set */
    uint64_t reported; /* acls_skipped */
  } cases[] = {
      {NULL, 0543, false, 0},
      {"user::r-x,group::r--,other::-wx", 0543, false, 0}, /* just the mode */
      {"user::r-x,user:1234:rwx,group::r--,mask::rwx,other::-wx", 0573, true, 0},
      /* no mask: setfacl's, the union of the group class */
      {"user::r-x,user:1234:rw-,group::r--,other::-wx", 0543, true, 0},
      {"user::r-x,group:4321:r-x,group::r--,mask::r--,other::-wx", 0543, true, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    size_t len;
    _cleanup_free_ char *tar = acl_layer(cases[i].acl, &len);
    fixture f;
    fixture_open(&f);
    hoist_err *err = NULL;
    hoist_unpack_report rep = {0};
    _cleanup_close_ int fd = mem_fd(tar, len);
    assert_ok(hoist_unpack_layer(f.rootfd, fd, HOIST_COMPRESS_NONE, NULL, NULL, NULL, &rep, &err),
              &err);
    struct stat st;
    assert_int_equal(fstatat(f.rootfd, "f", &st, 0), 0);
    if ((st.st_mode & 07777) != cases[i].mode)
      fail_msg("case %zu: mode %o, want %o", i, st.st_mode & 07777, cases[i].mode);
    _cleanup_free_ char *p = hoist_asprintf("%s/f", f.dest);
    uint8_t v[256];
    ssize_t n = getxattr(p, "system.posix_acl_access", v, sizeof v);
    if (cases[i].applied && n < 0 && rep.acls_skipped == 1) {
      /* a file system without ACLs: reported, and the mode is right */
      hoist_unpack_report_clear(&rep);
      fixture_close(&f);
      continue;
    }
    if (cases[i].applied != (n > 0))
      fail_msg("case %zu: xattr %zd", i, n);
    assert_int_equal(rep.acls_skipped, cases[i].reported);
    if (n > 0) {
      /* version 2, then entries of 8 bytes, a named one among them */
      assert_int_equal((n - 4) % 8, 0);
      assert_int_equal(v[0], 2);
      bool named = false;
      for (ssize_t o = 4; o < n; o += 8)
        named |= v[o] == 2 || v[o] == 8;
      assert_true(named);
    }
    hoist_unpack_report_clear(&rep);
    fixture_close(&f);
  }
}

/* Without privileges device nodes are skipped and owners recorded, both
 * reported; the rest of the layer is applied. */
static void test_rootless_report(void **state) {
  (void)state;
  if (geteuid() != 0) {
    skip();
  }
  fixture f;
  fixture_open(&f);
  assert_int_equal(chown(f.dest, 65534, 65534), 0);
  pid_t pid = fork();
  if (pid == 0) {
    if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
        setresuid(65534, 65534, 65534) < 0)
      _exit(10);
    const member l[] = {
        {DIR_, "dev", NULL, 0}, {CHR, "dev/null", NULL, 0}, {REG, "f", "data", 04755}, END};
    hoist_unpack_report rep = {0};
    hoist_err *err = NULL;
    if (apply(f.rootfd, l, ARCHIVE_FILTER_NONE, &rep, &err) < 0)
      _exit(11);
    if (rep.devices_skipped != 1 || strcmp(rep.first_device, "dev/null") != 0)
      _exit(12);
    if (rep.owners_recorded != 2)
      _exit(13);
    struct stat st;
    if (fstatat(f.rootfd, "f", &st, 0) < 0 || (st.st_mode & 07777) != 04755)
      _exit(14);
    if (exists(f.rootfd, "dev/null"))
      _exit(15);
    /* a read-only directory of a lower layer still takes new entries */
    const member l1[] = {{DIR_, "ro", NULL, 0555}, {REG, "ro/a", "a", 0}, END};
    const member l2[] = {{REG, "ro/b", "b", 0}, {REG, "ro/.wh.a", "", 0}, END};
    if (apply(f.rootfd, l1, ARCHIVE_FILTER_NONE, &rep, &err) < 0)
      _exit(16);
    if (apply(f.rootfd, l2, ARCHIVE_FILTER_NONE, &rep, &err) < 0)
      _exit(17);
    if (!exists(f.rootfd, "ro/b") || exists(f.rootfd, "ro/a") ||
        fstatat(f.rootfd, "ro", &st, 0) < 0 || (st.st_mode & 07777) != 0555)
      _exit(18);
    hoist_unpack_report_clear(&rep);
    _exit(0);
  }
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  fixture_close(&f);
}

/* ------------------------------------------------- images in a layout */

/* Stores an image of n layers (members, compressed with filters[i]) tagged
 * tag; with bad_diff_id, the config's last diff_id is wrong. */
static void store_image(hoist_store *s, const char *tag, const member *const *layers,
                        const int *filters, size_t n, bool bad_diff_id) {
  hoist_err *err = NULL;
  _cleanup_platform_ hoist_platform *p = hoist_platform_host();
  _cleanup_config_ hoist_config *c = hoist_config_new(p);
  _cleanup_manifest_ hoist_manifest *m = hoist_manifest_new(HOIST_MT_OCI_MANIFEST);
  for (size_t i = 0; i < n; i++) {
    size_t tlen, blen;
    _cleanup_free_ char *tar = make_layer(layers[i], ARCHIVE_FILTER_NONE, &tlen);
    _cleanup_free_ char *blob = make_layer(layers[i], filters[i], &blen);
    char diff_id[HOIST_DIGEST_STR_LEN];
    hoist_sha256_of(tar, tlen, diff_id);
    if (bad_diff_id && i == n - 1)
      hoist_sha256_of("x", 1, diff_id);
    assert_ok(hoist_config_add_layer(c, diff_id, "test", NULL, 1700000000, &err), &err);
    assert_ok(hoist_store_put_blob(s, blob, blen, NULL, NULL, &err), &err);
    hoist_descriptor d;
    hoist_descriptor_of_bytes(&d,
                              filters[i] == ARCHIVE_FILTER_GZIP   ? HOIST_MT_OCI_LAYER_GZIP
                              : filters[i] == ARCHIVE_FILTER_ZSTD ? HOIST_MT_OCI_LAYER_ZSTD
                                                                  : HOIST_MT_OCI_LAYER,
                              blob, blen);
    hoist_manifest_add_layer(m, &d);
    hoist_descriptor_clear(&d);
  }
  _cleanup_free_ char *cj = NULL, *mj = NULL;
  size_t cjl, mjl;
  assert_ok(hoist_config_to_json(c, &cj, &cjl, &err), &err);
  assert_ok(hoist_store_put_blob(s, cj, cjl, NULL, NULL, &err), &err);
  hoist_descriptor_of_bytes(&m->config, HOIST_MT_OCI_CONFIG, cj, cjl);
  assert_ok(hoist_manifest_to_json(m, &mj, &mjl, &err), &err);
  assert_ok(hoist_store_put_blob(s, mj, mjl, NULL, NULL, &err), &err);
  hoist_descriptor md;
  hoist_descriptor_of_bytes(&md, HOIST_MT_OCI_MANIFEST, mj, mjl);
  assert_ok(hoist_store_tag(s, tag, &md, &err), &err);
  hoist_descriptor_clear(&md);
}

static void test_image_and_cache(void **state) {
  (void)state;
  _cleanup_free_ char *tmp = test_mkdtemp();
  _cleanup_free_ char *layout = hoist_asprintf("%s/layout", tmp);
  hoist_err *err = NULL;
  _cleanup_store_ hoist_store *s = NULL;
  assert_ok(hoist_store_open(layout, true, &s, &err), &err);
  const member l1[] = {{DIR_, "etc", NULL, 0}, {REG, "etc/a", "a", 0}, {REG, "etc/b", "b", 0}, END};
  const member l2[] = {{REG, "etc/.wh.a", "", 0}, {REG, "etc/c", "c", 0}, END};
  const member l3[] = {{REG, "etc/d", "d", 0}, END};
  const member *layers[] = {l1, l2, l3};
  const int filters[] = {ARCHIVE_FILTER_GZIP, ARCHIVE_FILTER_ZSTD, ARCHIVE_FILTER_NONE};
  store_image(s, "good", layers, filters, 3, false);
  store_image(s, "bad", layers, filters, 3, true);

  _cleanup_manifest_ hoist_manifest *m = NULL;
  assert_ok(hoist_unpack_resolve(s, "good", NULL, &m, &err), &err);
  _cleanup_free_ char *dest = hoist_asprintf("%s/dest", tmp);
  assert_ok(hoist_unpack_image(s, m, dest, NULL, NULL, &err), &err);
  _cleanup_close_ int rootfd = open(dest, O_RDONLY | O_DIRECTORY);
  assert_false(exists(rootfd, "etc/a"));
  assert_true(exists(rootfd, "etc/b") && exists(rootfd, "etc/c") && exists(rootfd, "etc/d"));
  /* a destination that is not empty is refused */
  assert_int_not_equal(hoist_unpack_image(s, m, dest, NULL, NULL, &err), 0);
  assert_err_contains(&err, "not empty");

  /* a wrong diffID in the last layer: nothing is left behind */
  _cleanup_manifest_ hoist_manifest *bad = NULL;
  assert_ok(hoist_unpack_resolve(s, "bad", NULL, &bad, &err), &err);
  _cleanup_free_ char *bdest = hoist_asprintf("%s/bad", tmp);
  assert_int_not_equal(hoist_unpack_image(s, bad, bdest, NULL, NULL, &err), 0);
  assert_err_contains(&err, "diffID mismatch");
  assert_int_equal(access(bdest, F_OK), -1);

  /* the rootfs cache: built once, keyed by the config digest */
  _cleanup_free_ char *cache = hoist_asprintf("%s/cache/rootfs", tmp);
  _cleanup_free_ char *p1 = NULL, *p2 = NULL;
  bool hit = true;
  assert_ok(hoist_unpack_cached(s, m, cache, NULL, &p1, &hit, NULL, NULL, &err), &err);
  assert_false(hit);
  _cleanup_free_ char *want = hoist_asprintf("%s/%s", cache, m->config.digest + 7);
  assert_string_equal(p1, want);
  assert_ok(hoist_unpack_cached(s, m, cache, NULL, &p2, &hit, NULL, NULL, &err), &err);
  assert_true(hit);
  assert_string_equal(p1, p2);
  _cleanup_free_ char *pb = NULL;
  assert_int_not_equal(hoist_unpack_cached(s, bad, cache, NULL, &pb, &hit, NULL, NULL, &err), 0);
  hoist_err_free(err);
  err = NULL;
  DIR *d = opendir(cache);
  struct dirent *de;
  int n = 0;
  while ((de = readdir(d)))
    if (de->d_name[0] != '.')
      n++;
    else if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
      fail_msg("temp dir %s left in the cache", de->d_name);
  closedir(d);
  assert_int_equal(n, 2); /* the tree, and the marker of its last use */
  _cleanup_free_ char *marker = hoist_asprintf("%s.used", p1);
  assert_int_equal(access(marker, F_OK), 0);

  /* a held tree outlives a prune; released, it goes, and the next reader
   * unpacks it again */
  int hold = -1;
  _cleanup_free_ char *p3 = NULL, *p4 = NULL;
  assert_ok(hoist_unpack_cached(s, m, cache, NULL, &p3, &hit, &hold, NULL, &err), &err);
  assert_true(hit && hold >= 0);
  hoist_prune_report pr;
  assert_ok(hoist_unpack_cache_prune(cache, 0, false, &pr, &err), &err);
  assert_int_equal(pr.removed, 0);
  assert_int_equal(pr.in_use, 1);
  assert_int_equal(access(p3, F_OK), 0);
  close(hold);
  assert_ok(hoist_unpack_cache_prune(cache, 0, false, &pr, &err), &err);
  assert_int_equal(pr.removed, 1);
  assert_int_equal(pr.in_use, 0);
  assert_int_not_equal(access(p3, F_OK), 0);
  assert_int_not_equal(access(marker, F_OK), 0);
  assert_ok(hoist_unpack_cached(s, m, cache, NULL, &p4, &hit, NULL, NULL, &err), &err);
  assert_false(hit);
  assert_string_equal(p4, p3);

  /* unpacked for a user namespace (as root, which applies owners): its own
   * tree, owned as the namespace's maps give the image's ids */
  if (geteuid() == 0) {
    hoist_idmap um[] = {{0, 300000, 65536}}, gm[] = {{0, 400000, 65536}};
    hoist_unpack_opts uo = {.uid_map = um, .n_uid_map = 1, .gid_map = gm, .n_gid_map = 1};
    _cleanup_free_ char *p5 = NULL;
    assert_ok(hoist_unpack_cached(s, m, cache, &uo, &p5, &hit, NULL, NULL, &err), &err);
    assert_false(hit);
    assert_string_not_equal(p5, p4);
    assert_int_equal(strncmp(p5, p4, strlen(p4)), 0);
    assert_int_equal(strncmp(p5 + strlen(p4), "-ids", 4), 0);
    struct stat st;
    assert_int_equal(stat(p5, &st), 0);
    assert_true(st.st_uid == 300000 && st.st_gid == 400000);
    _cleanup_free_ char *f = hoist_asprintf("%s/etc/b", p5);
    assert_int_equal(lstat(f, &st), 0);
    assert_true(st.st_uid == 300000 && st.st_gid == 400000);
    /* prune knows such a tree */
    assert_ok(hoist_unpack_cache_prune(cache, 0, false, &pr, &err), &err);
    assert_int_equal(pr.removed, 2);
    assert_int_not_equal(access(p5, F_OK), 0);
  }

  /* a cache directory another user owns or may write to could hold a
   * planted tree: refused before any tree in it is looked at */
  static const struct {
    mode_t mode;
    bool foreign_owner; /* owned by uid 65534 (as root only) */
    const char *error;
  } untrusted[] = {
      {0777, false, "may be written by other users (mode 0777)"},
      {0775, false, "may be written by other users (mode 0775)"},
      {01777, false, "may be written by other users (mode 1777)"},
      {0755, true, "belongs to uid 65534, not to this user"},
  };
  for (size_t i = 0; i < sizeof untrusted / sizeof *untrusted; i++) {
    if (untrusted[i].foreign_owner && geteuid() != 0)
      continue;
    assert_int_equal(chmod(cache, untrusted[i].mode), 0);
    if (untrusted[i].foreign_owner)
      assert_int_equal(chown(cache, 65534, 65534), 0);
    _cleanup_free_ char *p6 = NULL;
    assert_int_equal(hoist_unpack_cached(s, m, cache, NULL, &p6, &hit, NULL, NULL, &err),
                     -HOIST_E_UNSAFE);
    assert_null(p6);
    assert_err_contains(&err, untrusted[i].error);
    assert_int_equal(chown(cache, geteuid(), getegid()), 0);
  }
  assert_int_equal(chmod(cache, 0755), 0);
  _cleanup_free_ char *p7 = NULL;
  assert_ok(hoist_unpack_cached(s, m, cache, NULL, &p7, &hit, NULL, NULL, &err), &err);
  assert_string_equal(p7, p4); /* the caller's own again: used */
  assert_int_equal(hoist_fs_rm_rf_at(AT_FDCWD, tmp, NULL), 0);
}

/* An image id to the host id of a user namespace's maps; ids the maps lack
 * are nobody's (65534), mapped in turn. */
static void test_map_id(void **state) {
  (void)state;
  const hoist_idmap two[] = {{0, 1000, 1}, {1, 100000, 65536}};
  const hoist_idmap small[] = {{0, 500000, 100}};
  static const struct {
    int maps; /* 0: none, 1: two, 2: small */
    uint32_t id, want;
  } cases[] = {
      {0, 0, 0},          {0, 70000, 70000},  {1, 0, 1000}, {1, 1, 100000},
      {1, 65536, 165535}, {1, 65537, 165533}, /* unmapped: nobody, 65534 -> 165533 */
      {2, 99, 500099},    {2, 100, 100},      /* neither it nor nobody mapped: as it is */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const hoist_idmap *m = cases[i].maps == 1 ? two : cases[i].maps == 2 ? small : NULL;
    size_t n = cases[i].maps == 1 ? 2 : cases[i].maps == 2 ? 1 : 0;
    uint32_t got = hoist_unpack_map_id(cases[i].id, m, n);
    if (got != cases[i].want)
      fail_msg("case %zu: id %u -> %u, want %u", i, cases[i].id, got, cases[i].want);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_whiteouts),
      cmocka_unit_test(test_hardlinks),
      cmocka_unit_test(test_modes_and_types),
      cmocka_unit_test(test_lower_dir_times),
      cmocka_unit_test(test_digests),
      cmocka_unit_test(test_gzip_multi_member),
      cmocka_unit_test(test_hostile_layers),
      cmocka_unit_test(test_hostile_layers_fallback),
      cmocka_unit_test(test_repeated_member_result),
      cmocka_unit_test(test_writers_same_tree),
      cmocka_unit_test(test_rootless_report),
      cmocka_unit_test(test_xattrs),
      cmocka_unit_test(test_acls),
      cmocka_unit_test(test_image_and_cache),
      cmocka_unit_test(test_map_id),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
