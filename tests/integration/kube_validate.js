// Checks Kubernetes objects against the JSON schemas of the npm package
// kubernetes-models (generated from the Kubernetes OpenAPI document): one JSON
// object per line on stdin, one answer per line on stdout,
// {"ok": true} or {"ok": false, "error": "..."}. The package is found through
// NODE_PATH (the test set-up installs it outside the repository).
//
// Where the schemas are: kubernetes-models/_schemas/IoK8s*.js are the JSON schemas of the
// Kubernetes OpenAPI document's definitions, compiled with ajv into validate functions;
// each model class (kubernetes-models/<group>/<version>/<Kind>) is tied to its own, and
// its validate() throws with ajv's message when the object breaks the schema.
'use strict';
const readline = require('readline');

// apiVersion "batch/v1" -> kubernetes-models/batch/v1/Kind; "v1" -> kubernetes-models/v1/Kind
function model(apiVersion, kind) {
  if (typeof apiVersion !== 'string' || typeof kind !== 'string' || !/^[A-Za-z]+$/.test(kind) ||
      !/^([a-z0-9.-]+\/)?v[0-9a-z]+$/.test(apiVersion))
    throw new Error(`no model for apiVersion ${apiVersion} kind ${kind}`);
  const mod = require(`kubernetes-models/${apiVersion}/${kind}`);
  if (!mod[kind]) throw new Error(`kubernetes-models has no ${apiVersion} ${kind}`);
  return mod[kind];
}

function check(obj) {
  const M = model(obj.apiVersion, obj.kind);
  new M(obj).validate();
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  let answer;
  try {
    check(JSON.parse(line));
    answer = { ok: true };
  } catch (e) {
    answer = { ok: false, error: String(e && e.message ? e.message : e) };
  }
  process.stdout.write(JSON.stringify(answer) + '\n');
});
