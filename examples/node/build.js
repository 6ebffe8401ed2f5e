// The "compile" step of the example: bundles src/ into dist/, as a TypeScript or webpack build would.
const fs = require("fs");
fs.mkdirSync("dist", { recursive: true });
const source = fs.readFileSync("src/main.js", "utf8");
fs.writeFileSync("dist/main.js", "// built by build.js\n" + source);
console.log("built dist/main.js");
