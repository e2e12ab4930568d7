// A CouchDB-compatible HTTP server for the tests: express-pouchdb over
// in-memory PouchDB databases (not CouchDB itself). It speaks the CouchDB
// API the couchdb authenticator uses: PUT /db, PUT /db/doc, POST /db/_find.
//   node couchdb_compat.js PORT
const express = require("express");
const PouchDB = require("pouchdb-core")
  .plugin(require("pouchdb-adapter-memory"))
  .plugin(require("pouchdb-mapreduce"))
  .plugin(require("pouchdb-find"))
  .defaults({ adapter: "memory" });

const app = express();
app.use("/", require("express-pouchdb")(PouchDB, {
  inMemoryConfig: true,
  mode: "minimumForPouchDB",
  overrideMode: { include: ["routes/find"] },
}));
const server = app.listen(parseInt(process.argv[2], 10), "127.0.0.1", () => {
  console.log("ready");
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
