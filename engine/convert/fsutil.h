/* File-system steps the workspace writer needs to be atomic and durable: temp directory
 * beside the destination, full writes, fsync of files and directories, directory swap. */
#ifndef IG_FSUTIL_H
#define IG_FSUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ignis.h"

/* Removes a file or a directory tree (no error if absent). Returns 0 on success. */
int ig_rmrf(const char *path);
bool ig_path_exists(const char *path);
bool ig_is_dir(const char *path);
/* True when dir exists and holds no entries. */
bool ig_dir_is_empty(const char *dir);
/* Writes all n bytes at offset, retrying short writes and EINTR. */
ignis_status ig_pwrite_all(int fd, const void *buf, size_t n, uint64_t off, const char *what);
/* Writes a whole file (create/truncate) and fsyncs it. */
ignis_status ig_write_file(const char *path, const void *data, size_t n);
/* Copies src to dst (create/truncate) and fsyncs dst. */
ignis_status ig_copy_file(const char *src, const char *dst);
ignis_status ig_fsync_path(const char *path);
/* Moves `from` into place at `to`: a plain rename when `to` is absent, an atomic exchange
 * (renameat2 RENAME_EXCHANGE) when it exists, after which the old tree (now at `from`)
 * is removed. The parent directory is fsynced. */
ignis_status ig_replace_dir(const char *from, const char *to);
/* Directory part of path ("." when none), written into buf. */
void ig_dirname(const char *path, char *buf, size_t n);

#endif
