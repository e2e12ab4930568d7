// Checks an OpenAPI 3.1 document and answers against it, for test_openapi.
//
//   node openapi_check.js NODE_MODULES SPEC < cases.json
//
// cases.json: [{"where": "...", "schema": {...}, "body": ...}], each schema
// a response schema of SPEC whose $refs point into SPEC (#/components/...).
// Prints one JSON object:
//   spec:    @seriousme/openapi-schema-validator's verdict on SPEC (the
//            OpenAPI 3.1 schema), with its errors;
//   refs:    every $ref of SPEC that points nowhere;
//   schemas: what Ajv (JSON Schema 2020-12, strict: unknown keywords and
//            formats refused) says of each schema of SPEC, by its place;
//   cases:   per case, null when body matches schema, else Ajv's errors.
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const { pathToFileURL } = require("node:url");

const [mods, specPath] = process.argv.slice(2);
const need = (name) => require(path.join(mods, name));

function pointer(doc, ref) {
  let node = doc;
  for (const part of ref.replace(/^#\//, "").split("/")) {
    const key = part.replace(/~1/g, "/").replace(/~0/g, "~");
    if (node === null || typeof node !== "object" || !(key in node)) return undefined;
    node = node[key];
  }
  return node;
}

// Every schema of the document with its place: components, parameters,
// request bodies, responses, headers.
function schemasOf(doc) {
  const out = [];
  const walk = (node, where) => {
    if (node === null || typeof node !== "object") return;
    for (const [k, v] of Object.entries(node)) {
      const here = `${where}/${k.replace(/~/g, "~0").replace(/\//g, "~1")}`;
      if (k === "schema" && v && typeof v === "object") out.push([here, v]);
      else walk(v, here);
    }
  };
  for (const [name, s] of Object.entries(doc.components?.schemas || {}))
    out.push([`#/components/schemas/${name}`, s]);
  walk(doc.paths, "#/paths");
  walk({ parameters: doc.components?.parameters, responses: doc.components?.responses },
       "#/components");
  return out;
}

function refsOf(node, found = []) {
  if (node && typeof node === "object") {
    for (const [k, v] of Object.entries(node)) {
      if (k === "$ref" && typeof v === "string") found.push(v);
      else refsOf(v, found);
    }
  }
  return found;
}

// $refs into the document become refs into one schema holding the document's
// component schemas as $defs ("#/components/schemas/X" -> "doc#/$defs/X").
function rewrite(node) {
  if (Array.isArray(node)) return node.map(rewrite);
  if (node === null || typeof node !== "object") return node;
  const out = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === "$ref" && typeof v === "string" && v.startsWith("#/components/schemas/"))
      out[k] = "doc#/$defs/" + v.slice("#/components/schemas/".length);
    else out[k] = rewrite(v);
  }
  return out;
}

(async () => {
  const { Validator } = await import(
    pathToFileURL(path.join(mods, "@seriousme/openapi-schema-validator/index.js")).href);
  const Ajv2020 = need("ajv/dist/2020").default;
  const addFormats = need("ajv-formats").default;
  const doc = JSON.parse(fs.readFileSync(specPath, "utf8"));
  const cases = JSON.parse(fs.readFileSync(0, "utf8") || "[]");

  const validator = new Validator();
  const spec = await validator.validate(doc);
  const refs = refsOf(doc).filter((r) => !r.startsWith("#/") || pointer(doc, r) === undefined);

  const ajv = new Ajv2020({ strict: true, allowUnionTypes: true, allErrors: true });
  addFormats(ajv);
  const schemas = [];
  try {
    ajv.addSchema({ $id: "doc", $defs: rewrite(doc.components?.schemas || {}) });
  } catch (e) {
    schemas.push({ where: "#/components/schemas", error: e.message });
  }
  for (const [where, s] of schemasOf(doc)) {
    try {
      ajv.compile(where.startsWith("#/components/schemas/")
        ? { $ref: "doc#/$defs/" + where.split("/").pop() }
        : rewrite(s));
    } catch (e) {
      schemas.push({ where, error: e.message });
    }
  }

  const results = cases.map((c) => {
    try {
      const check = ajv.compile(rewrite(c.schema));
      return check(c.body) ? null : check.errors;
    } catch (e) {
      return [{ message: e.message }];
    }
  });
  process.stdout.write(JSON.stringify({
    spec: { valid: spec.valid, errors: spec.errors || null }, refs, schemas, cases: results,
  }) + "\n");
})().catch((e) => {
  process.stderr.write(String(e && e.stack || e) + "\n");
  process.exit(2);
});
