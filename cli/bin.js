#!/usr/bin/env node
// The `agentry` bin: the CLI is TypeScript run through tsx, like `npm start`, so nothing is built first.
import { register } from "tsx/esm/api";

register();
const { runCli } = await import("./agentry.ts");
process.exitCode = await runCli(process.argv.slice(2));
