// Validates a JSON document against a JSON Schema with Ajv, for the tests of
// hoist's attestations (SPDX, in-toto, SLSA).
//
//   node schema_check.js NODE_MODULES SCHEMA [SCHEMA...] < doc.json
//
// NODE_MODULES holds ajv and ajv-formats. The first SCHEMA is the one the
// document is checked against; the others are registered by their $id so
// that its $refs reach them. The engine follows the first schema's $schema:
// draft-07 (and earlier 06), 2019-09 or 2020-12; draft-07 schemas may be
// registered beside a newer one. Formats are checked (ajv-formats).
// Prints one JSON object: {"valid": bool, "errors": [...] or null}; exits 2
// when a schema cannot be read or compiled.
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const [mods, main, ...extra] = process.argv.slice(2);
if (!mods || !main) {
  process.stderr.write("usage: node schema_check.js NODE_MODULES SCHEMA [SCHEMA...] < doc.json\n");
  process.exit(2);
}
const need = (name) => require(path.join(mods, name));
const read = (file) => JSON.parse(fs.readFileSync(file, "utf8"));

function engine(dialect) {
  const opts = { strict: false, allErrors: true, allowUnionTypes: true };
  if (/2020-12/.test(dialect)) return new (need("ajv/dist/2020").default)(opts);
  if (/2019-09/.test(dialect)) return new (need("ajv/dist/2019").default)(opts);
  return new (need("ajv").default)(opts);
}

try {
  const schema = read(main);
  const ajv = engine(schema.$schema || "");
  need("ajv-formats").default(ajv);
  const draft7 = "http://json-schema.org/draft-07/schema";
  if (!ajv.getSchema(draft7)) ajv.addMetaSchema(need("ajv/dist/refs/json-schema-draft-07.json"));
  for (const file of extra) {
    const s = read(file);
    if (ajv.getSchema(s.$id || "")) continue;
    ajv.addSchema(s);
  }
  const check = ajv.compile(schema);
  const doc = JSON.parse(fs.readFileSync(0, "utf8"));
  const valid = check(doc);
  process.stdout.write(JSON.stringify({ valid, errors: valid ? null : check.errors }) + "\n");
} catch (e) {
  process.stderr.write(String((e && e.stack) || e) + "\n");
  process.exit(2);
}
