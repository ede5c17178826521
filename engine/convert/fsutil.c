#include "convert/fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

int ig_rmrf(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) != 0) return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(sb.st_mode)) return unlink(path);
    return nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

bool ig_path_exists(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0;
}

bool ig_is_dir(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

bool ig_dir_is_empty(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return false;
    struct dirent *e;
    bool empty = true;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            empty = false;
            break;
        }
    closedir(d);
    return empty;
}

ignis_status ig_pwrite_all(int fd, const void *buf, size_t n, uint64_t off, const char *what)
{
    const char *p = buf;
    while (n) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);
        if (w < 0) {
            if (errno == EINTR) continue;
            return ig_err(IGNIS_E_IO, "%s: write failed: %s", what, strerror(errno));
        }
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return IGNIS_OK;
}

ignis_status ig_write_file(const char *path, const void *data, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return ig_err(IGNIS_E_IO, "%s: cannot create: %s", path, strerror(errno));
    ignis_status st = ig_pwrite_all(fd, data, n, 0, path);
    if (st == IGNIS_OK && fsync(fd) != 0) st = ig_err(IGNIS_E_IO, "%s: fsync failed: %s", path, strerror(errno));
    if (close(fd) != 0 && st == IGNIS_OK) st = ig_err(IGNIS_E_IO, "%s: close failed: %s", path, strerror(errno));
    return st;
}

ignis_status ig_copy_file(const char *src, const char *dst)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) return ig_err(IGNIS_E_IO, "%s: cannot open: %s", src, strerror(errno));
    int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0) {
        close(in);
        return ig_err(IGNIS_E_IO, "%s: cannot create: %s", dst, strerror(errno));
    }
    ignis_status st = IGNIS_OK;
    char *buf = malloc(1 << 20);
    if (!buf) st = ig_err(IGNIS_E_NOMEM, "out of memory");
    uint64_t off = 0;
    while (st == IGNIS_OK) {
        ssize_t r = read(in, buf, 1 << 20);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) st = ig_err(IGNIS_E_IO, "%s: read failed: %s", src, strerror(errno));
        if (r <= 0) break;
        st = ig_pwrite_all(out, buf, (size_t)r, off, dst);
        off += (uint64_t)r;
    }
    free(buf);
    if (st == IGNIS_OK && fsync(out) != 0) st = ig_err(IGNIS_E_IO, "%s: fsync failed: %s", dst, strerror(errno));
    close(in);
    if (close(out) != 0 && st == IGNIS_OK) st = ig_err(IGNIS_E_IO, "%s: close failed: %s", dst, strerror(errno));
    return st;
}

ignis_status ig_fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ig_err(IGNIS_E_IO, "%s: cannot open: %s", path, strerror(errno));
    /* some file systems refuse fsync on directories (EINVAL); the data is as durable as
     * they can make it, so that is not an error */
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    if (rc != 0 && e != EINVAL && e != EROFS) return ig_err(IGNIS_E_IO, "%s: fsync failed: %s", path, strerror(e));
    return IGNIS_OK;
}

void ig_dirname(const char *path, char *buf, size_t n)
{
    const char *s = strrchr(path, '/');
    if (!s)
        snprintf(buf, n, ".");
    else if (s == path)
        snprintf(buf, n, "/");
    else
        snprintf(buf, n, "%.*s", (int)(s - path), path);
}

ignis_status ig_replace_dir(const char *from, const char *to)
{
    char parent[4096];
    ig_dirname(to, parent, sizeof parent);
    if (!ig_path_exists(to)) {
        if (rename(from, to) != 0) return ig_err(IGNIS_E_IO, "cannot rename %s to %s: %s", from, to, strerror(errno));
        return ig_fsync_path(parent);
    }
    if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_EXCHANGE) == 0) {
        /* `from` now holds the previous tree */
        IG_TRY(ig_fsync_path(parent));
        if (ig_rmrf(from) != 0) ig_log(IGNIS_LOG_WARN, "could not remove the previous workspace moved to %s", from);
        return IGNIS_OK;
    }
    if (errno != EINVAL && errno != ENOSYS)
        return ig_err(IGNIS_E_IO, "cannot swap %s into %s: %s", from, to, strerror(errno));
    /* file system without RENAME_EXCHANGE: move the old tree aside, then the new one in,
     * so there is always a complete workspace at one of the two names */
    char old[4200];
    snprintf(old, sizeof old, "%s.old-%ld", to, (long)getpid());
    ig_rmrf(old);
    if (rename(to, old) != 0) return ig_err(IGNIS_E_IO, "cannot move %s aside: %s", to, strerror(errno));
    if (rename(from, to) != 0) {
        int e = errno;
        rename(old, to);
        return ig_err(IGNIS_E_IO, "cannot rename %s to %s: %s", from, to, strerror(e));
    }
    ig_rmrf(old);
    return ig_fsync_path(parent);
}
