// The sigstore JavaScript packages as an independent implementation of
// key-based message signatures, for test_sign.py.
//
//   node sigstore_check.js NODE_MODULES verify PUB.pem PAYLOAD SIG_BASE64
//     builds a Sigstore bundle (v0.3, messageSignature of PAYLOAD's SHA-256,
//     a publicKey hint, no transparency log entry, no timestamp) and has
//     @sigstore/verify's Verifier check it against PUB with no log, CT or
//     timestamp required: prints {"ok": true} or {"ok": false, "code", "message"}.
//   node sigstore_check.js NODE_MODULES sign KEY.pem PUB.pem PAYLOAD
//     signs PAYLOAD through @sigstore/sign's MessageSignatureBundleBuilder
//     (no witnesses) and prints the bundle's JSON.
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');

const [mods, mode, ...args] = process.argv.slice(2);
const need = (name) => require(path.join(mods, name));

async function main() {
  const bundleLib = need('@sigstore/bundle');
  if (mode === 'verify') {
    const [pubFile, payloadFile, sigB64] = args;
    const payload = fs.readFileSync(payloadFile);
    const bundle = bundleLib.bundleFromJSON(
      bundleLib.bundleToJSON(
        bundleLib.toMessageSignatureBundle({
          digest: crypto.createHash('sha256').update(payload).digest(),
          signature: Buffer.from(sigB64, 'base64'),
          keyHint: 'hoist',
          certificateChain: false,
        })
      )
    );
    const { Verifier, toSignedEntity, toTrustMaterial } = need('@sigstore/verify');
    const pem = fs.readFileSync(pubFile, 'utf8');
    const der = crypto.createPublicKey(pem).export({ type: 'spki', format: 'der' });
    const trust = toTrustMaterial(
      { certificateAuthorities: [], timestampAuthorities: [], tlogs: [], ctlogs: [] },
      { hoist: { rawBytes: der } }
    );
    const verifier = new Verifier(trust, {
      tlogThreshold: 0,
      ctlogThreshold: 0,
      timestampThreshold: 0,
    });
    try {
      verifier.verify(toSignedEntity(bundle, payload));
      console.log(JSON.stringify({ ok: true, mediaType: bundle.mediaType }));
    } catch (e) {
      console.log(JSON.stringify({ ok: false, code: e.code, message: e.message }));
    }
  } else if (mode === 'sign') {
    const [keyFile, pubFile, payloadFile] = args;
    const key = crypto.createPrivateKey(fs.readFileSync(keyFile, 'utf8'));
    const pub = fs.readFileSync(pubFile, 'utf8');
    const { MessageSignatureBundleBuilder } = need('@sigstore/sign');
    const signer = {
      sign: async (data) => ({
        signature: crypto.sign('sha256', data, key),
        key: { $case: 'publicKey', publicKey: pub, hint: 'node' },
      }),
    };
    const builder = new MessageSignatureBundleBuilder({ signer, witnesses: [] });
    const bundle = await builder.create({ data: fs.readFileSync(payloadFile) });
    console.log(JSON.stringify(bundleLib.bundleToJSON(bundle)));
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
}

main().catch((e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});
