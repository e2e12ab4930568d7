#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include "hoist/fs.h"
#include "hoist/map.h"
#include "unpack-private.h"

#define WH_PREFIX ".wh."
#define WH_OPAQUE ".wh..wh..opq"
#define DIR_CACHE_DEPTH 64

/* ------------------------------------------------------------ applier */

int unpack_test_threads;

typedef struct dir_meta {
  char *path;
  mode_t mode;
  struct timespec mtime;
  uint8_t *default_acl; /* system.posix_acl_default value, or NULL */
  size_t default_acl_len;
} dir_meta;

typedef struct applier {
  int rootfd;
  hoist_owner_mode owners;
  const hoist_unpack_opts *opts; /* id maps, or NULL */
  bool chown;
  uid_t euid;
  gid_t egid;
  hoist_unpack_report *rep;
  /* Directory fds of the components of the last parent path: cache_fd[i] is
   * the directory named by the first i+1 components of cache_path. Valid
   * while nothing has been removed from the tree since they were opened;
   * every fd was reached from the root without leaving it. */
  char *cache_path;
  size_t cache_len[DIR_CACHE_DEPTH];
  int cache_fd[DIR_CACHE_DEPTH];
  int cache_n;
  /* the paths this layer created (and their parents), so whiteouts and
   * opaque markers remove only lower-layer content whatever the member
   * order; member names are the layer's, hence the seeded map */
  hoist_map created;
  dir_meta *dirs;
  size_t n_dirs, cap_dirs;
  /* directories of lower layers this layer adds to or removes from, with
   * the mtime they had before, restored at the end (a layer's members set
   * their own) */
  hoist_map touched;
  dir_meta *kept;
  size_t n_kept, cap_kept;
  /* removals since the layer began: a path names the directory it named
   * before while this is unchanged (members never rename) */
  uint64_t gen;
  /* the directory of the last members (path, gen), shared with their file
   * jobs, and its owner and mode when it was opened */
  unpack_dir *pdir;
  char *pdir_path;
  uint64_t pdir_gen;
  struct stat pdir_st;
  /* writer threads (NULL: none, files are written here), and the paths of
   * the files queued to them since they were last drained */
  unpack_pool *pool;
  int threads;
  hoist_map pending;
  size_t n_pending;
  /* the root was empty when the layer began: whatever exists below it,
   * this layer made (in created) */
  bool fresh;
  /* a new file's mode is its create mode & ~umask, nothing else changes it
   * (a fresh root without a default ACL; the layer's own default ACLs wait
   * for finish_dirs), so a file created with its mode needs no chmod */
  bool create_mode_exact;
  mode_t umask;
} applier;

static void cache_drop(applier *ap) {
  for (int i = 0; i < ap->cache_n; i++)
    close(ap->cache_fd[i]);
  ap->cache_n = 0;
  free(ap->cache_path);
  ap->cache_path = NULL;
  ap->gen++;
}

/* Waits for the writers to end every queued file: afterwards the tree is
 * what applying the members one by one would have made. Needed before
 * anything is removed, before a queued path (or one below it, or a link
 * to it) is used again, and before directory times are set. */
HOIST_WUR static int barrier(applier *ap, hoist_err **err) {
  if (!ap->n_pending)
    return 0;
  hoist_map_clear(&ap->pending);
  ap->n_pending = 0;
  return unpack_pool_drain(ap->pool, err);
}

static bool is_pending(const applier *ap, const char *path) {
  return ap->n_pending && hoist_map_get(&ap->pending, path, strlen(path), NULL);
}

/* The shared handle of directory dir, whose fd (from get_dir) is parent,
 * with its owner and mode; kept while the members stay in dir. NULL when
 * it cannot be duplicated or read (callers do without). */
static unpack_dir *get_pdir(applier *ap, const char *dir, int parent) {
  if (ap->pdir && ap->pdir_gen == ap->gen && strcmp(ap->pdir_path, dir) == 0)
    return ap->pdir;
  unpack_dir_unref(ap->pdir);
  ap->pdir = NULL;
  free(ap->pdir_path);
  ap->pdir_path = NULL;
  int fd = fcntl(parent, F_DUPFD_CLOEXEC, 3);
  if (fd < 0)
    return NULL;
  if (fstat(fd, &ap->pdir_st) < 0) {
    close(fd);
    return NULL;
  }
  ap->pdir = unpack_dir_new(fd);
  ap->pdir_path = hoist_strdup(dir);
  ap->pdir_gen = ap->gen;
  return ap->pdir;
}

/* Whether a file just created in directory dir (fd parent) by this process
 * already has owner uid:gid: the creator's ids, the group the directory's
 * own when it is setgid. */
static bool new_owner_is(applier *ap, const char *dir, int parent, uid_t uid, gid_t gid) {
  if (uid != ap->euid || !get_pdir(ap, dir, parent))
    return false;
  return gid == ((ap->pdir_st.st_mode & S_ISGID) ? ap->pdir_st.st_gid : ap->egid);
}

static void dir_meta_push(dir_meta **v, size_t *n, size_t *cap, dir_meta d) {
  if (*n == *cap) {
    *cap = *cap ? *cap * 2 : 256;
    *v = hoist_reallocarray(*v, *cap, sizeof **v);
  }
  (*v)[(*n)++] = d;
}

/* Notes the mtime of the directory dfd (path dir, len bytes of it) the first
 * time this layer is about to change its entries. */
static void keep_dir_time(applier *ap, int dfd, const char *dir, size_t len) {
  if (!hoist_map_add(&ap->touched, dir, len, 0, NULL))
    return; /* noted before */
  struct stat st;
  if (fstat(dfd, &st) < 0)
    return;
  char *path = strndup(dir, len);
  if (!path)
    abort();
  dir_meta_push(&ap->kept, &ap->n_kept, &ap->cap_kept, (dir_meta){path, 0, st.st_mtim, NULL, 0});
}

/* Normalizes a member name into a relative path without "." components,
 * repeated or trailing slashes. Refuses absolute names and "..". */
HOIST_WUR static int clean_path(const char *name, char **out, hoist_err **err) {
  if (!name)
    return hoist_err_set(err, HOIST_E_FORMAT, "member without a name");
  if (name[0] == '/')
    return hoist_err_set(err, HOIST_E_UNSAFE, "member %s: absolute name refused", name);
  int why = 0;
  *out = hoist_fs_path_clean(name, NAME_MAX, &why);
  if (!*out && why == HOIST_FS_PATH_LONG)
    return hoist_err_set(err, ENAMETOOLONG, "member %.64s...: component too long", name);
  if (!*out)
    return hoist_err_set(err, HOIST_E_UNSAFE, "member %s: \"..\" component refused", name);
  return 0;
}

/* Opens (O_PATH) the directory dir (a clean relative path, "" for the root)
 * inside the root, creating missing components with mode 0755 when create is
 * set. Returns a borrowed fd (owned by the cache) or -1 with *err set; with
 * !create, a missing directory returns -ENOENT without an error. */
HOIST_WUR static int get_dir(applier *ap, const char *dir, bool create, hoist_err **err) {
  if (!*dir)
    return ap->rootfd;
  size_t dlen = strlen(dir);
  /* longest cached prefix that ends at a component boundary of dir */
  int keep = 0;
  if (ap->cache_path) {
    while (keep < ap->cache_n) {
      size_t l = ap->cache_len[keep];
      if (l > dlen || strncmp(ap->cache_path, dir, l) != 0 || (dir[l] != '/' && dir[l] != '\0'))
        break;
      keep++;
    }
  }
  if (keep > 0 && ap->cache_len[keep - 1] == dlen) {
    /* exact hit; the cache may keep deeper entries of another branch */
    return ap->cache_fd[keep - 1];
  }
  for (int i = keep; i < ap->cache_n; i++)
    close(ap->cache_fd[i]);
  ap->cache_n = keep;
  free(ap->cache_path);
  ap->cache_path = hoist_strdup(dir);

  size_t pos = keep ? ap->cache_len[keep - 1] + 1 : 0;
  while (pos <= dlen) {
    const char *comp = dir + pos;
    size_t clen = (size_t)(strchrnul(comp, '/') - comp);
    char name[NAME_MAX + 1];
    memcpy(name, comp, clen);
    name[clen] = '\0';
    int parent = ap->cache_n ? ap->cache_fd[ap->cache_n - 1] : ap->rootfd;
    int fd = openat(parent, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && (errno == ENOENT || errno == ENOTDIR || errno == ELOOP) && ap->n_pending) {
      /* a queued file may be (or become) this component: wait, then look
       * again at what the members so far have made */
      if (barrier(ap, err) < 0)
        return -1;
      continue;
    }
    if (fd < 0 && errno == ENOENT && create) {
      keep_dir_time(ap, parent, dir, pos ? pos - 1 : 0);
      if (mkdirat(parent, name, 0755) < 0 && errno != EEXIST)
        return hoist_err_errno(err, errno, "mkdir %.*s", (int)(pos + clen), dir);
      fd = openat(parent, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0 && errno == ENOENT && !create)
      return -ENOENT;
    if (fd < 0 && (errno == ENOTDIR || errno == ELOOP)) {
      /* a symlink (or something that is not a directory): resolve the
       * prefix as a whole inside the root */
      _cleanup_free_ char *prefix = strndup(dir, pos + clen);
      hoist_err *e = NULL;
      fd = hoist_fs_open_in_root(ap->rootfd, prefix, O_PATH | O_DIRECTORY, 0, &e);
      if (fd < 0 && hoist_err_root_code(e) == ENOENT) {
        hoist_err_free(e);
        e = NULL;
        if (!create)
          return -ENOENT;
        fd = hoist_fs_mkdir_p_in_root(ap->rootfd, prefix, 0755, &e);
      }
      if (fd < 0) {
        hoist_err_set(err, hoist_err_root_code(e), "directory %s", prefix);
        hoist_err_free(e);
        return -1;
      }
    }
    if (fd < 0)
      return hoist_err_errno(err, errno, "open directory %.*s", (int)(pos + clen), dir);
    if (ap->cache_n == DIR_CACHE_DEPTH) {
      /* too deep to cache: resolve the rest from here without caching */
      close(fd);
      cache_drop(ap);
      hoist_err *e = NULL;
      int dfd = create ? hoist_fs_mkdir_p_in_root(ap->rootfd, dir, 0755, &e)
                       : hoist_fs_open_in_root(ap->rootfd, dir, O_PATH | O_DIRECTORY, 0, &e);
      if (dfd < 0) {
        int code = hoist_err_root_code(e);
        hoist_err_free(e);
        if (code == ENOENT && !create)
          return -ENOENT;
        return hoist_err_set(err, code, "directory %.64s...", dir);
      }
      ap->cache_path = hoist_strdup(dir);
      ap->cache_fd[0] = dfd;
      ap->cache_len[0] = dlen;
      ap->cache_n = 1;
      /* a one-entry cache whose single prefix is the whole path */
      return dfd;
    }
    ap->cache_fd[ap->cache_n] = fd;
    ap->cache_len[ap->cache_n] = pos + clen;
    ap->cache_n++;
    pos += clen + 1;
  }
  return ap->cache_fd[ap->cache_n - 1];
}

static void note(char **first, uint64_t *count, const char *name) {
  (*count)++;
  if (!*first)
    *first = hoist_strdup(name);
}

/* The host id of id under m, or false when m lacks it. */
static bool map_to_host(uint32_t id, const hoist_idmap *m, size_t n, uint32_t *out) {
  for (size_t i = 0; i < n; i++)
    if (id >= m[i].inside && id - m[i].inside < m[i].count) {
      *out = m[i].outside + (id - m[i].inside);
      return true;
    }
  return false;
}

uint32_t hoist_unpack_map_id(uint32_t id, const hoist_idmap *m, size_t n) {
  uint32_t host;
  if (!n || map_to_host(id, m, n, &host))
    return n ? host : id;
  /* not in the maps: nobody, as the namespace would show it */
  return map_to_host(65534, m, n, &host) ? host : id;
}

/* xattrs a layer does not get to set: the SELinux label belongs to the host's
 * policy, and overlayfs's own attributes would change what an overlay mount
 * with this tree as a lower layer shows (opaque, redirect, metacopy). */
static bool host_only_xattr(const char *name) {
  return strcmp(name, "security.selinux") == 0 || strncmp(name, "trusted.overlay.", 16) == 0 ||
         strncmp(name, "user.overlay.", 13) == 0;
}

/* ---------------------------------------------------------------- ACLs */

/* The Linux system.posix_acl_* xattr: a version, then entries sorted by tag
 * and id (include/uapi/linux/posix_acl_xattr.h). */
#define ACL_XATTR_VERSION 2
#define ACL_UNDEFINED_ID 0xffffffffu
#define ACL_ENTRIES_MAX 1024 /* far above what any file system stores */
enum { X_USER_OBJ = 1, X_USER = 2, X_GROUP_OBJ = 4, X_GROUP = 8, X_MASK = 0x10, X_OTHER = 0x20 };

typedef struct acl_x {
  uint16_t tag, perm;
  uint32_t id;
} acl_x;

static int cmp_acl_x(const void *a, const void *b) {
  const acl_x *x = a, *y = b;
  if (x->tag != y->tag)
    return x->tag < y->tag ? -1 : 1;
  return x->id < y->id ? -1 : x->id > y->id;
}

/* The id an ACL entry names, as the tree's owners are written (id maps). */
static uint32_t acl_id(const applier *ap, uint16_t tag, uint32_t id) {
  if (!ap->opts || !ap->opts->n_uid_map)
    return id;
  return tag == X_USER ? hoist_unpack_map_id(id, ap->opts->uid_map, ap->opts->n_uid_map)
                       : hoist_unpack_map_id(id, ap->opts->gid_map, ap->opts->n_gid_map);
}

/* Encodes entries v (sorted here) as the xattr value into *out (malloc'd).
 * False when the set is no valid POSIX ACL (an entry twice, a base entry
 * missing): the kernel would refuse it. A missing mask of an ACL with named
 * entries is the union of the group class, as setfacl computes it. */
static bool acl_encode(acl_x *v, size_t n, uint8_t **out, size_t *len) {
  bool named = false, mask = false;
  uint16_t group_class = 0;
  for (size_t i = 0; i < n; i++) {
    named |= v[i].tag == X_USER || v[i].tag == X_GROUP;
    mask |= v[i].tag == X_MASK;
    if (v[i].tag == X_USER || v[i].tag == X_GROUP || v[i].tag == X_GROUP_OBJ)
      group_class |= v[i].perm;
  }
  if (named && !mask)
    v[n++] = (acl_x){X_MASK, group_class, ACL_UNDEFINED_ID};
  qsort(v, n, sizeof *v, cmp_acl_x);
  unsigned base = 0;
  for (size_t i = 0; i < n; i++) {
    if (i > 0 && v[i].tag == v[i - 1].tag && v[i].id == v[i - 1].id)
      return false;
    if (v[i].tag == X_USER_OBJ || v[i].tag == X_GROUP_OBJ || v[i].tag == X_OTHER)
      base++;
  }
  if (base != 3)
    return false;
  *len = 4 + 8 * n;
  uint8_t *p = *out = malloc(*len);
  if (!p)
    abort();
  uint32_t version = htole32(ACL_XATTR_VERSION);
  memcpy(p, &version, 4);
  for (size_t i = 0; i < n; i++) {
    uint16_t tag = htole16(v[i].tag), perm = htole16(v[i].perm & 7);
    uint32_t id = htole32(v[i].id);
    memcpy(p + 4 + 8 * i, &tag, 2);
    memcpy(p + 6 + 8 * i, &perm, 2);
    memcpy(p + 8 + 8 * i, &id, 4);
  }
  return true;
}

/* The member's POSIX.1e ACL of type want (libarchive's from pax
 * SCHILY.acl.access/default, as star, GNU tar and bsdtar write them) as the
 * xattr value; *mask receives the access ACL's mask (-1: none). Returns 0
 * when the member has no such ACL beyond its mode, 1 with *out set, -1 when
 * it cannot be expressed (NFSv4 entries, a malformed set). */
HOIST_WUR static int acl_of(const applier *ap, struct archive_entry *e, int want, int *mask,
                            uint8_t **out, size_t *len) {
  *out = NULL;
  *mask = -1;
  int n = archive_entry_acl_count(e, want);
  if (n <= 0)
    return 0;
  if (n > ACL_ENTRIES_MAX)
    return -1;
  _cleanup_free_ acl_x *v = hoist_calloc((size_t)n + 4, sizeof *v);
  size_t k = 0;
  archive_entry_acl_reset(e, want);
  int type, perm, tag, id;
  const char *name;
  while (archive_entry_acl_next(e, want, &type, &perm, &tag, &id, &name) == ARCHIVE_OK) {
    if (k == (size_t)n + 3)
      return -1;
    uint16_t x = tag == ARCHIVE_ENTRY_ACL_USER_OBJ    ? X_USER_OBJ
                 : tag == ARCHIVE_ENTRY_ACL_USER      ? X_USER
                 : tag == ARCHIVE_ENTRY_ACL_GROUP_OBJ ? X_GROUP_OBJ
                 : tag == ARCHIVE_ENTRY_ACL_GROUP     ? X_GROUP
                 : tag == ARCHIVE_ENTRY_ACL_MASK      ? X_MASK
                 : tag == ARCHIVE_ENTRY_ACL_OTHER     ? X_OTHER
                                                      : 0;
    if (!x || (perm & ~7) || ((x == X_USER || x == X_GROUP) && id < 0))
      return -1;
    uint32_t xid = x == X_USER || x == X_GROUP ? acl_id(ap, x, (uint32_t)id) : ACL_UNDEFINED_ID;
    v[k++] = (acl_x){x, (uint16_t)perm, xid};
    if (x == X_MASK)
      *mask = perm;
  }
  return acl_encode(v, k, out, len) ? 1 : -1;
}

/* A system.posix_acl_* xattr value from the layer with the ids it names
 * mapped as owners are (a copy in *out), or false when it is malformed. */
static bool acl_xattr_mapped(const applier *ap, const void *val, size_t size, uint8_t **out) {
  uint32_t version;
  if (size < 4 || (size - 4) % 8 != 0 || (size - 4) / 8 > ACL_ENTRIES_MAX)
    return false;
  memcpy(&version, val, 4);
  if (le32toh(version) != ACL_XATTR_VERSION)
    return false;
  uint8_t *p = *out = malloc(size);
  if (!p)
    abort();
  memcpy(p, val, size);
  for (size_t off = 4; off < size; off += 8) {
    uint16_t tag;
    uint32_t id;
    memcpy(&tag, p + off, 2);
    memcpy(&id, p + off + 4, 4);
    tag = le16toh(tag);
    if (tag == X_USER || tag == X_GROUP) {
      id = htole32(acl_id(ap, tag, le32toh(id)));
      memcpy(p + off + 4, &id, 4);
    }
  }
  return true;
}

static bool is_acl_xattr(const char *name) {
  return strcmp(name, "system.posix_acl_access") == 0 ||
         strcmp(name, "system.posix_acl_default") == 0;
}

/* The owner member e's ids give, as the tree gets it (id maps). */
static void owner_of(const applier *ap, struct archive_entry *e, uid_t *uid, gid_t *gid) {
  *uid = (uid_t)archive_entry_uid(e);
  *gid = (gid_t)archive_entry_gid(e);
  if (ap->opts && ap->opts->n_uid_map) {
    *uid = (uid_t)hoist_unpack_map_id((uint32_t)*uid, ap->opts->uid_map, ap->opts->n_uid_map);
    *gid = (gid_t)hoist_unpack_map_id((uint32_t)*gid, ap->opts->gid_map, ap->opts->n_gid_map);
  }
}

/* Applies owner, mode, xattrs and times. fd is an open fd of the object when
 * there is one (regular files, directories), else -1 and (parent, base) name
 * it without following a symlink; dir is the parent's path. made: the
 * object was just created here (its owner is the creator's, no chown when
 * that is the wanted one). Directory mode and times are deferred. */
HOIST_WUR static int apply_meta(applier *ap, struct archive_entry *e, const char *path, int fd,
                                int parent, const char *dir, const char *base, mode_t type,
                                bool made, hoist_err **err) {
  uid_t uid;
  gid_t gid;
  owner_of(ap, e, &uid, &gid);
  if (ap->chown && made && new_owner_is(ap, dir, parent, uid, gid)) {
    /* already so */
  } else if (ap->chown) {
    int r = fd >= 0 ? fchown(fd, uid, gid) : fchownat(parent, base, uid, gid, AT_SYMLINK_NOFOLLOW);
    if (r < 0) {
      if (ap->owners == HOIST_OWNER_APPLY)
        return hoist_err_errno(err, errno, "chown %s to %u:%u", path, uid, gid);
      note(&ap->rep->first_owner, &ap->rep->owners_recorded, path);
    }
  } else if (uid != ap->euid || gid != ap->egid) {
    note(&ap->rep->first_owner, &ap->rep->owners_recorded, path);
  }

  const char *xname;
  const void *xval;
  size_t xsize;
  /* a directory's default ACL waits for its mode and times (finish_dirs):
   * set now, the members below would inherit it */
  _cleanup_free_ uint8_t *dacl = NULL;
  size_t dacl_len = 0;
  if (archive_entry_xattr_reset(e) > 0) {
    char procpath[64 + NAME_MAX];
    if (fd < 0)
      snprintf(procpath, sizeof procpath, "/proc/self/fd/%d/%s", parent, base);
    while (archive_entry_xattr_next(e, &xname, &xval, &xsize) == ARCHIVE_OK) {
      if (host_only_xattr(xname)) {
        hoist_debug("member %s: xattr %s not applied", path, xname);
        continue;
      }
      _cleanup_free_ uint8_t *mapped = NULL;
      if (is_acl_xattr(xname)) {
        /* an ACL in xattr form (containerd's): its ids are owners too */
        if (type == S_IFLNK || !acl_xattr_mapped(ap, xval, xsize, &mapped)) {
          note(&ap->rep->first_acl, &ap->rep->acls_skipped, path);
          continue;
        }
        xval = mapped;
        if (type == S_IFDIR && strcmp(xname, "system.posix_acl_default") == 0) {
          free(dacl); /* set with the directory's mode, once its members exist */
          dacl = steal_pointer(&mapped);
          dacl_len = xsize;
          continue;
        }
      }
      int r = fd >= 0 ? fsetxattr(fd, xname, xval, xsize, 0)
                      : lsetxattr(procpath, xname, xval, xsize, 0);
      if (r < 0)
        note(is_acl_xattr(xname) ? &ap->rep->first_acl : &ap->rep->first_xattr,
             is_acl_xattr(xname) ? &ap->rep->acls_skipped : &ap->rep->xattrs_skipped, path);
    }
  }

  /* POSIX.1e ACLs: set as the system.posix_acl_* xattrs where the file
   * system takes them, counted in the report where not. The mode keeps the
   * header's meaning: with a mask, its group bits are the mask (as stat
   * shows them and GNU tar restores them), not the owning group's entry. */
  int access_mask = -1;
  if (archive_entry_acl_types(e) != 0 && type == S_IFLNK)
    note(&ap->rep->first_acl, &ap->rep->acls_skipped, path); /* Linux has no symlink ACLs */
  else if (archive_entry_acl_types(e) != 0) {
    static const struct {
      int type;
      const char *xattr;
    } kinds[] = {{ARCHIVE_ENTRY_ACL_TYPE_ACCESS, "system.posix_acl_access"},
                 {ARCHIVE_ENTRY_ACL_TYPE_DEFAULT, "system.posix_acl_default"}};
    for (size_t i = 0; i < 2; i++) {
      if (kinds[i].type == ARCHIVE_ENTRY_ACL_TYPE_DEFAULT && type != S_IFDIR)
        continue;
      _cleanup_free_ uint8_t *val = NULL;
      size_t len = 0;
      int mask = -1;
      int got = acl_of(ap, e, kinds[i].type, &mask, &val, &len);
      if (kinds[i].type == ARCHIVE_ENTRY_ACL_TYPE_ACCESS)
        access_mask = mask;
      if (got == 0)
        continue;
      if (got > 0 && kinds[i].type == ARCHIVE_ENTRY_ACL_TYPE_DEFAULT) {
        free(dacl);
        dacl = steal_pointer(&val);
        dacl_len = len;
        continue;
      }
      char procpath[64 + NAME_MAX];
      if (fd < 0)
        snprintf(procpath, sizeof procpath, "/proc/self/fd/%d/%s", parent, base);
      if (got < 0 || (fd >= 0 ? fsetxattr(fd, kinds[i].xattr, val, len, 0)
                              : lsetxattr(procpath, kinds[i].xattr, val, len, 0)) < 0)
        note(&ap->rep->first_acl, &ap->rep->acls_skipped, path);
    }
    if (archive_entry_acl_count(e, ARCHIVE_ENTRY_ACL_TYPE_NFS4) > 0)
      note(&ap->rep->first_acl, &ap->rep->acls_skipped, path); /* no NFSv4 ACLs here */
  }

  mode_t mode = archive_entry_perm(e) & 07777;
  if (access_mask >= 0)
    mode = (mode & ~(mode_t)070) | ((mode_t)access_mask << 3);
  struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT},
                           {archive_entry_mtime(e), archive_entry_mtime_nsec(e)}};
  if (!archive_entry_mtime_is_set(e))
    ts[1].tv_nsec = UTIME_OMIT;
  if (type == S_IFDIR) {
    dir_meta_push(&ap->dirs, &ap->n_dirs, &ap->cap_dirs,
                  (dir_meta){hoist_strdup(path), mode, ts[1], steal_pointer(&dacl), dacl_len});
    return 0;
  }
  if (type == S_IFLNK)
    return utimensat(parent, base, ts, AT_SYMLINK_NOFOLLOW) < 0 && errno != EOPNOTSUPP
               ? hoist_err_errno(err, errno, "set times of %s", path)
               : 0;
  if (fd >= 0 ? fchmod(fd, mode) : fchmodat(parent, base, mode, 0))
    return hoist_err_errno(err, errno, "chmod %s", path);
  if ((fd >= 0 ? futimens(fd, ts) : utimensat(parent, base, ts, AT_SYMLINK_NOFOLLOW)) < 0)
    return hoist_err_errno(err, errno, "set times of %s", path);
  return 0;
}

/* Writes the member's data into fd (a new, empty file): the blocks the tar
 * gives (a sparse entry's skip its holes), all-zero pieces left as holes,
 * and the file extended to the member's size. */
HOIST_WUR static int write_data(applier *ap, struct archive *a, int fd, const char *path,
                                struct archive_entry *e, hoist_err **err) {
  int64_t pos = 0; /* fd's offset: the end of what was written */
  for (;;) {
    const void *buf;
    size_t size;
    la_int64_t off;
    int r = archive_read_data_block(a, &buf, &size, &off);
    if (r == ARCHIVE_EOF)
      break;
    if (r < ARCHIVE_WARN)
      return hoist_err_set(err, HOIST_E_FORMAT, "member %s: %s", path, archive_error_string(a));
    if (unpack_write_at(fd, buf, size, off, &pos, path, err) < 0)
      return -1;
    ap->rep->bytes += size;
  }
  int64_t want = archive_entry_size(e);
  if (want > pos && ftruncate(fd, want) < 0)
    return hoist_err_errno(err, errno, "truncate %s", path);
  return 0;
}

/* Removes parent/base (anything, recursively) and forgets cached dir fds. */
HOIST_WUR static int remove_existing(applier *ap, int parent, const char *base, const char *path,
                                     hoist_err **err) {
  if (barrier(ap, err) < 0)
    return hoist_err_wrap(err, "replace %s", path);
  cache_drop(ap);
  if (hoist_fs_rm_rf_at(parent, base, err) < 0)
    return hoist_err_wrap(err, "replace %s", path);
  return 0;
}

/* Removes from the directory dfd (path dpath) every child this layer did not
 * create; recurses into children this layer created or passed through. */
HOIST_WUR static int clean_lower(applier *ap, int dfd, const char *dpath, hoist_err **err) {
  int rfd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (rfd < 0)
    return hoist_err_errno(err, errno, "open %s", *dpath ? dpath : "/");
  DIR *d = fdopendir(rfd);
  if (!d) {
    close(rfd);
    return hoist_err_errno(err, errno, "opendir %s", dpath);
  }
  int r = 0;
  struct dirent *de;
  hoist_buf child = HOIST_BUF_INIT(0);
  while ((de = readdir(d))) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    hoist_buf_reset(&child);
    /* a shorter path would name another entry: a full buffer is an error */
    if ((*dpath && (r = hoist_buf_appendf(&child, err, "%s/", dpath)) < 0) ||
        (r = hoist_buf_append(&child, de->d_name, strlen(de->d_name), err)) < 0) {
      r = hoist_err_wrap(err, "clean %s", *dpath ? dpath : "/");
      break;
    }
    if (!hoist_map_get(&ap->created, child.data, child.len, NULL)) {
      cache_drop(ap);
      r = hoist_fs_rm_rf_at(dirfd(d), de->d_name, err);
    } else {
      struct stat st;
      if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
        int cfd = openat(dirfd(d), de->d_name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (cfd < 0) {
          r = hoist_err_errno(err, errno, "open %s", child.data);
        } else {
          r = clean_lower(ap, cfd, child.data, err);
          close(cfd);
        }
      }
    }
    if (r < 0)
      break;
  }
  hoist_buf_free(&child);
  closedir(d);
  return r;
}

/* A whiteout member: dir/.wh.<name> or dir/.wh..wh..opq. */
HOIST_WUR static int apply_whiteout(applier *ap, const char *path, const char *dir,
                                    const char *base, hoist_err **err) {
  ap->rep->whiteouts++;
  if (barrier(ap, err) < 0)
    return hoist_err_wrap(err, "member %s", path);
  bool opaque = strcmp(base, WH_OPAQUE) == 0;
  const char *name = base + strlen(WH_PREFIX);
  if (!opaque && (!*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0))
    return hoist_err_set(err, HOIST_E_UNSAFE, "member %s: whiteout of \"%s\" refused", path, name);
  if (!opaque && strncmp(name, WH_PREFIX, strlen(WH_PREFIX)) == 0) {
    /* other ".wh..wh." names are aufs metadata, not content */
    hoist_debug("member %s: aufs metadata skipped", path);
    return 0;
  }
  hoist_err *e = NULL;
  int dfd = get_dir(ap, dir, false, &e);
  if (dfd == -ENOENT) {
    hoist_err_free(e);
    return 0; /* nothing below to hide */
  }
  if (dfd < 0) {
    if (err && !*err)
      *err = e;
    else
      hoist_err_free(e);
    return hoist_err_wrap(err, "member %s", path);
  }
  keep_dir_time(ap, dfd, dir, strlen(dir));
  if (opaque)
    return clean_lower(ap, dfd, dir, err);

  _cleanup_free_ char *target = *dir ? hoist_asprintf("%s/%s", dir, name) : hoist_strdup(name);
  if (hoist_map_get(&ap->created, target, strlen(target), NULL)) {
    /* this layer already put something there: hide only what lies below */
    struct stat st;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
      _cleanup_close_ int cfd = openat(dfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (cfd < 0)
        return hoist_err_errno(err, errno, "open %s", target);
      return clean_lower(ap, cfd, target, err);
    }
    return 0;
  }
  int keep = dfd == ap->rootfd ? -1 : fcntl(dfd, F_DUPFD_CLOEXEC, 3);
  int pfd = dfd == ap->rootfd ? ap->rootfd : keep;
  cache_drop(ap);
  int r = hoist_fs_rm_rf_at(pfd, name, err);
  if (keep >= 0)
    close(keep);
  return r < 0 ? hoist_err_wrap(err, "whiteout %s", path) : 0;
}

/* Marks path and all its parents as created by this layer: the deepest
 * first, until one marked before (whose parents are marked too). */
static void mark_created(applier *ap, const char *path) {
  for (size_t i = strlen(path) + 1; i-- > 0;)
    if ((path[i] == '/' || path[i] == '\0') && !hoist_map_add(&ap->created, path, i, 0, NULL))
      return;
}

/* Whether the hardlink target name, or a directory on its way, is a queued
 * file's path. */
static bool link_pending(const applier *ap, const char *name) {
  _cleanup_free_ char *target = NULL;
  if (clean_path(name, &target, NULL) < 0)
    return false; /* refused later */
  for (size_t i = strlen(target) + 1; i-- > 0;)
    if ((target[i] == '/' || target[i] == '\0') && hoist_map_get(&ap->pending, target, i, NULL))
      return true;
  return false;
}

/* Regular files up to this size may go to the writers (bigger ones are
 * written here: one large file gains nothing from a queue). */
#define QUEUE_FILE_MAX (256u << 10)

/* Queues the regular file member e (path, in directory dir of fd parent;
 * seen: this layer made that path before) to the writers when they would
 * make what writing it here makes: a plain file (no xattrs, ACLs, sparse
 * map), at a path that does not exist (a fresh root and not seen, or
 * nothing there), in a directory this process may write (no read-only
 * lower directory to open up). Reads its data. Returns 1 when queued, 0 to
 * write it here, -1 on error. */
HOIST_WUR static int queue_file(applier *ap, struct archive *a, struct archive_entry *e,
                                const char *path, const char *dir, const char *base, int parent,
                                bool seen, hoist_err **err) {
  if (ap->threads < 2 || seen || !archive_entry_size_is_set(e) || archive_entry_size(e) < 0 ||
      archive_entry_size(e) > QUEUE_FILE_MAX || archive_entry_sparse_count(e) > 0 ||
      archive_entry_xattr_count(e) > 0 || archive_entry_acl_types(e) != 0)
    return 0;
  struct stat st;
  if (!ap->fresh && (fstatat(parent, base, &st, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT))
    return 0;
  unpack_dir *pdir = get_pdir(ap, dir, parent);
  if (!pdir ||
      (!ap->chown && ap->pdir_st.st_uid == ap->euid && (ap->pdir_st.st_mode & 0700) != 0700))
    return 0;
  if (!ap->pool && unpack_pool_new(ap->threads, ap->owners, ap->rep, &ap->pool, err) < 0)
    return -1;

  size_t size = (size_t)archive_entry_size(e);
  unpack_file_job *j = hoist_malloc0(sizeof *j);
  j->path = hoist_strdup(path);
  j->base = j->path + (base - path);
  j->size = (int64_t)size;
  j->data = size ? malloc(size) : NULL;
  if (size && !j->data)
    abort();
  for (;;) {
    const void *buf;
    size_t n;
    la_int64_t off;
    int r = archive_read_data_block(a, &buf, &n, &off);
    if (r == ARCHIVE_EOF)
      break;
    if (r < ARCHIVE_WARN || off != (la_int64_t)j->len || n > size - j->len) {
      if (r < ARCHIVE_WARN)
        hoist_err_set(err, HOIST_E_FORMAT, "member %s: %s", path, archive_error_string(a));
      else
        hoist_err_set(err, HOIST_E_FORMAT, "member %s: data out of order or beyond its size", path);
      unpack_file_job_free(j);
      return -1;
    }
    memcpy(j->data + j->len, buf, n);
    j->len += n;
    ap->rep->bytes += n;
  }

  uid_t uid;
  gid_t gid;
  owner_of(ap, e, &uid, &gid);
  if (ap->chown)
    j->chown = !new_owner_is(ap, dir, parent, uid, gid);
  else if (uid != ap->euid || gid != ap->egid)
    note(&ap->rep->first_owner, &ap->rep->owners_recorded, path);
  j->uid = uid;
  j->gid = gid;
  j->mode = archive_entry_perm(e) & 07777;
  j->chmod = !ap->create_mode_exact || (j->mode & 07000) || (j->mode & ap->umask);
  j->mtime = (struct timespec){archive_entry_mtime(e), archive_entry_mtime_nsec(e)};
  if (!archive_entry_mtime_is_set(e))
    j->mtime.tv_nsec = UTIME_OMIT;
  j->dir = unpack_dir_ref(pdir);
  if (unpack_pool_submit(ap->pool, j, err) < 0)
    return -1;
  if (hoist_map_add(&ap->pending, path, strlen(path), 0, NULL))
    ap->n_pending++;
  return 1;
}

HOIST_WUR static int apply_entry_once(applier *ap, struct archive *a, struct archive_entry *e,
                                      hoist_err **err) {
  _cleanup_free_ char *path = NULL;
  if (clean_path(archive_entry_pathname(e), &path, err) < 0)
    return -1;
  if (!*path)
    return 0; /* the root itself: its metadata stays the destination's */
  ap->rep->entries++;
  char *slash = strrchr(path, '/');
  _cleanup_free_ char *dir = slash ? strndup(path, (size_t)(slash - path)) : hoist_strdup("");
  const char *base = slash ? slash + 1 : path;

  if (strncmp(base, WH_PREFIX, strlen(WH_PREFIX)) == 0)
    return apply_whiteout(ap, path, dir, base, err);

  mode_t type = archive_entry_filetype(e);
  const char *hardlink = archive_entry_hardlink(e);
  /* a member on a queued file's path, or a link to it (or below it), waits
   * for the writers */
  if (ap->n_pending && (is_pending(ap, path) || (hardlink && link_pending(ap, hardlink))) &&
      barrier(ap, err) < 0)
    return hoist_err_wrap(err, "member %s", path);

  int parent = get_dir(ap, dir, true, err);
  if (parent < 0)
    return hoist_err_wrap(err, "member %s", path);
  keep_dir_time(ap, parent, dir, strlen(dir));

  bool seen = hoist_map_get(&ap->created, path, strlen(path), NULL);
  mark_created(ap, path);
  if (type == AE_IFREG && !hardlink) {
    int q = queue_file(ap, a, e, path, dir, base, parent, seen, err);
    if (q != 0)
      return q < 0 ? -1 : 0;
  }

  for (int attempt = 0;; attempt++) {
    int r = 0;
    bool made = true;
    _cleanup_close_ int fd = -1;
    if (hardlink) {
      _cleanup_free_ char *target = NULL;
      if (clean_path(hardlink, &target, err) < 0)
        return hoist_err_wrap(err, "member %s: hardlink", path);
      if (!*target || strcmp(target, path) == 0)
        return hoist_err_set(err, HOIST_E_UNSAFE, "member %s: hardlink to itself or the root",
                             path);
      char *ts = strrchr(target, '/');
      _cleanup_free_ char *tdir = ts ? strndup(target, (size_t)(ts - target)) : hoist_strdup("");
      const char *tbase = ts ? ts + 1 : target;
      _cleanup_close_ int tfd = -1;
      if (*tdir) {
        tfd = hoist_fs_open_in_root(ap->rootfd, tdir, O_PATH | O_DIRECTORY, 0, err);
        if (tfd < 0)
          return hoist_err_wrap(err, "member %s: hardlink target %s", path, hardlink);
      }
      /* the parent fd may have been invalidated by a removal: re-resolve */
      parent = get_dir(ap, dir, true, err);
      if (parent < 0)
        return hoist_err_wrap(err, "member %s", path);
      r = linkat(*tdir ? tfd : ap->rootfd, tbase, parent, base, 0);
      if (r < 0 && errno != EEXIST)
        return hoist_err_errno(err, errno, "member %s: hardlink to %s", path, hardlink);
      if (r == 0)
        return 0;
    } else {
      switch (type) {
      case AE_IFREG:
        fd = openat(parent, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        r = fd < 0 ? -1 : 0;
        break;
      case AE_IFDIR:
        r = mkdirat(parent, base, 0700);
        made = r == 0;
        if (r < 0 && errno == EEXIST) {
          struct stat st;
          if (fstatat(parent, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
            r = 0; /* merge into the lower directory */
          else
            errno = EEXIST;
        }
        if (r == 0) {
          fd = openat(parent, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
          if (fd < 0)
            return hoist_err_errno(err, errno, "open %s", path);
        }
        break;
      case AE_IFLNK: {
        const char *target = archive_entry_symlink(e);
        r = symlinkat(target ? target : "", parent, base);
        break;
      }
      case AE_IFCHR:
      case AE_IFBLK:
      case AE_IFIFO:
        r = mknodat(parent, base, type | 0600, archive_entry_rdev(e));
        if (r < 0 && (errno == EPERM || errno == EACCES) && type != AE_IFIFO) {
          note(&ap->rep->first_device, &ap->rep->devices_skipped, path);
          return 0;
        }
        break;
      default:
        hoist_warn("member %s: type %o skipped", path, (unsigned)type);
        return 0;
      }
    }
    if (r < 0 && errno == EEXIST && attempt == 0) {
      /* a member repeated (or replacing a lower one): the new one wins */
      int keep = parent == ap->rootfd ? -1 : fcntl(parent, F_DUPFD_CLOEXEC, 3);
      int pfd = keep >= 0 ? keep : ap->rootfd;
      r = remove_existing(ap, pfd, base, path, err);
      if (keep >= 0)
        close(keep);
      if (r < 0)
        return r;
      parent = get_dir(ap, dir, true, err);
      if (parent < 0)
        return hoist_err_wrap(err, "member %s", path);
      continue;
    }
    if (r < 0)
      return hoist_err_errno(err, errno, "member %s: create", path);
    if (type == AE_IFREG && write_data(ap, a, fd, path, e, err) < 0)
      return -1;
    return apply_meta(ap, e, path, fd, parent, dir, base, type, made, err);
  }
}

/* Applies one member. Without privileges, a read-only directory of a lower
 * layer refuses new entries: it is made writable for the member and its mode
 * restored afterwards. */
HOIST_WUR static int apply_entry(applier *ap, struct archive *a, struct archive_entry *e,
                                 hoist_err **err) {
  int r = apply_entry_once(ap, a, e, err);
  if (r >= 0 || ap->chown || !*err || hoist_err_root_code(*err) != EACCES)
    return r;
  _cleanup_free_ char *path = NULL;
  if (clean_path(archive_entry_pathname(e), &path, NULL) < 0)
    return r;
  char *slash = strrchr(path, '/');
  if (!slash)
    return r;
  *slash = '\0';
  int dfd = get_dir(ap, path, false, NULL);
  if (dfd < 0)
    return r;
  char proc[64];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", dfd);
  struct stat st;
  if (stat(proc, &st) < 0 || st.st_uid != ap->euid || (st.st_mode & 0700) == 0700 ||
      chmod(proc, (st.st_mode & 07777) | 0700) < 0)
    return r;
  hoist_err_free(*err);
  *err = NULL;
  r = apply_entry_once(ap, a, e, err);
  int dfd2 = get_dir(ap, path, false, NULL);
  if (dfd2 >= 0) {
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", dfd2);
    chmod(proc, st.st_mode & 07777);
  }
  return r;
}

/* Gives the lower directories this layer changed their mtimes back. One
 * replaced since, unreadable or not ours is skipped. */
HOIST_WUR static int restore_kept_times(applier *ap, hoist_err **err) {
  int r = 0;
  for (size_t i = 0; i < ap->n_kept; i++) {
    dir_meta *d = &ap->kept[i];
    if (r == 0) {
      hoist_err *e = NULL;
      int fd = *d->path ? hoist_fs_open_in_root(ap->rootfd, d->path,
                                                O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0, &e)
                        : openat(ap->rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      hoist_err_free(e);
      struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, d->mtime};
      /* not ours to set (a destination owned by another user): left as is */
      if (fd >= 0 && futimens(fd, ts) < 0 && errno != EPERM && errno != EACCES)
        r = hoist_err_errno(err, errno, "set times of %s", *d->path ? d->path : "/");
      if (fd >= 0)
        close(fd);
    }
    free(d->path);
  }
  ap->n_kept = 0;
  return r;
}

/* Sets the deferred modes and times of directories, deepest last-seen first
 * (after the lower directories' times: a member's own time wins). */
HOIST_WUR static int finish_dirs(applier *ap, hoist_err **err) {
  int r = restore_kept_times(ap, err);
  for (size_t i = ap->n_dirs; i-- > 0;) {
    dir_meta *d = &ap->dirs[i];
    if (r == 0) {
      hoist_err *e = NULL;
      int fd =
          hoist_fs_open_in_root(ap->rootfd, d->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0, &e);
      if (fd < 0) {
        /* removed or replaced by a later member of the layer */
        hoist_err_free(e);
      } else {
        struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, d->mtime};
        if (d->default_acl &&
            fsetxattr(fd, "system.posix_acl_default", d->default_acl, d->default_acl_len, 0) < 0)
          note(&ap->rep->first_acl, &ap->rep->acls_skipped, d->path);
        if (fchmod(fd, d->mode) < 0)
          r = hoist_err_errno(err, errno, "chmod %s", d->path);
        else if (futimens(fd, ts) < 0)
          r = hoist_err_errno(err, errno, "set times of %s", d->path);
        close(fd);
      }
    }
    free(d->path);
    free(d->default_acl);
  }
  ap->n_dirs = 0;
  return r;
}

static ssize_t tar_read(struct archive *a, void *client, const void **buf) {
  (void)a;
  void **ctx = client;
  layer_stream *s = ctx[0];
  hoist_err **err = ctx[1];
  ssize_t n = layer_stream_read(s, buf, err);
  if (n < 0) {
    archive_set_error(a, EIO, "layer stream");
    return -1;
  }
  return n;
}

/* Whether the directory rootfd has no entries; *no_dacl: nor a default
 * ACL (new files there get no mode but their create mode & ~umask). */
static bool root_is_empty(int rootfd, bool *no_dacl) {
  int fd = openat(rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return false;
  ssize_t n = fgetxattr(fd, "system.posix_acl_default", NULL, 0);
  *no_dacl = n < 0 && (errno == ENODATA || errno == EOPNOTSUPP);
  DIR *d = fdopendir(fd);
  if (!d) {
    close(fd);
    return false;
  }
  bool empty = true;
  struct dirent *de;
  while (empty && (de = readdir(d)))
    empty = strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0;
  closedir(d);
  return empty;
}

/* The process's umask, from /proc (reading it with umask(2) would change it
 * for a moment under other threads). False when unknown. */
static bool read_umask(mode_t *out) {
  _cleanup_fclose_ FILE *f = fopen("/proc/self/status", "re");
  if (!f)
    return false;
  char line[256];
  unsigned m;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "Umask: %o", &m) == 1) {
      *out = (mode_t)m & 0777;
      return true;
    }
  return false;
}

void hoist_unpack_report_clear(hoist_unpack_report *r) {
  free(r->first_device);
  free(r->first_owner);
  free(r->first_xattr);
  free(r->first_acl);
  memset(r, 0, sizeof *r);
}

int hoist_unpack_layer(int rootfd, int fd, hoist_compression comp, const char *expected_digest,
                       const char *expected_diff_id, const hoist_unpack_opts *opts,
                       hoist_unpack_report *report, hoist_err **err) {
  hoist_unpack_report local = {0};
  layer_stream *s = NULL;
  if (layer_stream_new(fd, comp, &s, err) < 0)
    return -1;
  applier ap = {
      .rootfd = rootfd,
      .owners = opts ? opts->owners : HOIST_OWNER_AUTO,
      .opts = opts,
      .euid = geteuid(),
      .egid = getegid(),
      .rep = report ? report : &local,
  };
  ap.chown = ap.owners == HOIST_OWNER_APPLY || (ap.owners == HOIST_OWNER_AUTO && ap.euid == 0);
  ap.threads = unpack_test_threads ? unpack_test_threads : unpack_pool_threads();
  bool no_dacl = false;
  ap.fresh = root_is_empty(rootfd, &no_dacl);
  ap.create_mode_exact = ap.fresh && no_dacl && read_umask(&ap.umask);

  hoist_err *stream_err = NULL;
  void *ctx[2] = {s, &stream_err};
  struct archive *a = archive_read_new();
  archive_read_support_format_tar(a);
  int r = 0;
  if (archive_read_open(a, ctx, NULL, tar_read, NULL) != ARCHIVE_OK) {
    r = stream_err ? -1 : hoist_err_set(err, HOIST_E_FORMAT, "tar: %s", archive_error_string(a));
  } else {
    for (;;) {
      struct archive_entry *e;
      int ar = archive_read_next_header(a, &e);
      if (ar == ARCHIVE_EOF)
        break;
      if (ar < ARCHIVE_WARN) {
        r = stream_err ? -1
                       : hoist_err_set(err, HOIST_E_FORMAT, "tar: %s", archive_error_string(a));
        break;
      }
      r = apply_entry(&ap, a, e, err);
      if (r < 0 || stream_err) {
        r = -1;
        break;
      }
    }
  }
  if (stream_err) {
    hoist_err_free(*err);
    *err = stream_err;
    stream_err = NULL;
  }
  /* the writers end before directory times are set (their files change
   * them) */
  if (r == 0)
    r = barrier(&ap, err);
  unpack_pool_free(ap.pool);
  if (r == 0)
    r = finish_dirs(&ap, err);
  else
    hoist_best_effort(finish_dirs(&ap, NULL)); /* the first error is the one reported */
  if (r == 0)
    r = layer_stream_finish(s, expected_digest, expected_diff_id, err);
  archive_read_free(a);
  layer_stream_free(s);
  cache_drop(&ap);
  unpack_dir_unref(ap.pdir);
  free(ap.pdir_path);
  hoist_map_clear(&ap.pending);
  hoist_map_clear(&ap.created);
  hoist_map_clear(&ap.touched);
  free(ap.dirs);
  free(ap.kept);
  hoist_unpack_report_clear(&local);
  return r < 0 ? -1 : 0;
}
