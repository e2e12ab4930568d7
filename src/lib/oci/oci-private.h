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
int oci_json_load(const char *data, size_t len, json_t **out, hoist_err **err);

/* Optional string field: absent or null gives NULL; anything but a string is
 * an error naming key. */
int oci_opt_string(const json_t *obj, const char *key, const char **out, hoist_err **err);
/* Required non-empty string field. */
int oci_req_string(const json_t *obj, const char *key, const char **out, hoist_err **err);
/* Validates that j is an object whose values are all strings. */
int oci_check_string_map(const json_t *j, const char *field, hoist_err **err);
/* Validates that j is an array of strings. */
int oci_check_string_array(const json_t *j, const char *field, hoist_err **err);

/* schemaVersion must be the integer 2. */
int oci_schema_version(const json_t *root, hoist_err **err);
/* Optional top-level "annotations": a deep copy in *out, or NULL. */
int oci_annotations(const json_t *root, json_t **out, hoist_err **err);

/* True for a syntactically valid media type (RFC 6838 type/subtype). */
bool oci_media_type_valid(const char *s);

/* NULL-terminated string vectors. */
int oci_strv_from_json(const json_t *j, const char *field, char ***out, hoist_err **err);
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
