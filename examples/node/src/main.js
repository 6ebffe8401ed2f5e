const isNumber = require("is-number");
console.log(`hello from a multi-stage node build: is-number(42) = ${isNumber(42)}`);
