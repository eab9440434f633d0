import { writeFileSync } from "node:fs";
import { buildOpenApiDocument } from "#shared/http/openapi";

/** `npm run openapi`: regenerates shared/http/openapi.json, the document `GET /openapi.json` serves. */
const repositoryRoot = new URL("..", import.meta.url);
const target = new URL("shared/http/openapi.json", repositoryRoot);
writeFileSync(target, `${JSON.stringify(buildOpenApiDocument(), null, 2)}\n`);
console.log(`wrote ${target.pathname}`);
