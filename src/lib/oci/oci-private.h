/*
 * Helpers shared by the files of the oci module: bounded JSON loading,
 * typed field access with errors that name the field, string vectors.
 * Not part of the public API.
 */
#ifndef HOIST_OCI_PRIVATE_H
#define HOIST_OCI_PRIVATE_H

#include "hoist/oci.h"

/* Loads untrusted bytes (at most HOIST_MANIFEST_MAX) as a JSON object;
 * duplicate keys are refused. Errors carry jansson's line and column. */
int oci_json_load(const char *data, size_t len, json_t **out, hoist_err **err) HOIST_WUR;

/* Optional string field: absent or null gives NULL; anything but a string is
 * an error naming key. */
int oci_opt_string(const json_t *obj, const char *key, const char **out, hoist_err **err) HOIST_WUR;
/* Required non-empty string field. */
int oci_req_string(const json_t *obj, const char *key, const char **out, hoist_err **err) HOIST_WUR;
/* Validates that j is an object whose values are all strings. */
int oci_check_string_map(const json_t *j, const char *field, hoist_err **err) HOIST_WUR;
/* Validates that j is an array of strings. */
int oci_check_string_array(const json_t *j, const char *field, hoist_err **err) HOIST_WUR;

/* schemaVersion must be the integer 2. */
int oci_schema_version(const json_t *root, hoist_err **err) HOIST_WUR;
/* Optional top-level "annotations": a deep copy in *out, or NULL. */
int oci_annotations(const json_t *root, json_t **out, hoist_err **err) HOIST_WUR;

/* The optional mediaType of a document that must be a want (HOIST_MEDIA_INDEX
 * or HOIST_MEDIA_MANIFEST): the other kind, or no image kind at all, is an
 * error that says so. *mt is borrowed from root. */
int oci_document_media_type(const json_t *root, hoist_media_kind want, const char **mt,
                            hoist_err **err) HOIST_WUR;
/* The required array of descriptors at key ("manifests", "layers"): *v
 * (allocated) holds *n of them, each counted once parsed, so a failure leaves
 * what the caller frees in *v[0..*n). */
int oci_descriptors_from_json(const json_t *root, const char *key, hoist_descriptor **v, size_t *n,
                              hoist_err **err) HOIST_WUR;
/* Sets key of o to the array of the n descriptors of v. */
int oci_descriptors_to_json(json_t *o, const char *key, const hoist_descriptor *v, size_t n,
                            hoist_err **err) HOIST_WUR;
/* A new document object: {"schemaVersion": 2}. */
json_t *oci_document_new(void);
/* The canonical bytes of document o (consumed; NULL when building it failed,
 * with *err set), a what ("index", "manifest"), handed out in *out (caller
 * frees) only when check, the parser a reader of it would use, takes them
 * back. */
int oci_document_emit(json_t *o, const char *what,
                      int (*check)(const char *data, size_t len, hoist_err **err), char **out,
                      size_t *len, hoist_err **err) HOIST_WUR;

/* True for a syntactically valid media type (RFC 6838 type/subtype). */
bool oci_media_type_valid(const char *s);

/* NULL-terminated string vectors. */
int oci_strv_from_json(const json_t *j, const char *field, char ***out, hoist_err **err) HOIST_WUR;
json_t *oci_strv_to_json(char *const *v);
char **oci_strv_dup(char *const *v);
/* An alias of hoist_strfreev, the one free of a NULL-terminated array of
 * strings. */
static inline void oci_strv_free(char **v) { hoist_strfreev(v); }

/* Sets key to a new string; false when value is not valid UTF-8. */
bool oci_set_string(json_t *obj, const char *key, const char *value);
/* Sets key to value (stealing it); false when value is NULL. */
bool oci_set_new(json_t *obj, const char *key, json_t *value);

#endif
