// Parse an AsyncAPI document with the official parser and print its diagnostics as JSON.
// Usage: node asyncapi_parse.cjs FILE   (with NODE_PATH pointing at the installed package)
"use strict";
const fs = require("fs");
const { Parser } = require("@asyncapi/parser");

(async () => {
  const text = fs.readFileSync(process.argv[2], "utf8");
  const { diagnostics } = await new Parser().parse(text);
  const out = diagnostics.map((d) => ({
    code: d.code,
    message: d.message,
    path: d.path.join("/"),
    severity: d.severity,
  }));
  process.stdout.write(JSON.stringify(out) + "\n");
})().catch((err) => {
  process.stderr.write(String(err && err.stack ? err.stack : err) + "\n");
  process.exit(2);
});
