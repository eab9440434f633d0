// Node's own dynamic import. Kept in a CommonJS file that Node loads itself (through createRequire),
// because vitest rewrites `import()` in the files it transforms and runs them in a context where a
// `new Function("import(…)")` has no module loader.
module.exports = (specifier) => import(specifier);
