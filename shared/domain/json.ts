import * as z from "zod";

/**
 * Any JSON value: what task inputs and outputs, message payloads and metadata values are. One
 * schema instance for all of them, so the OpenAPI document names it once (`JsonValue`) instead of
 * expanding the recursive shape at every use.
 */
export const JsonValueSchema = z.json();
export type JsonValue = z.output<typeof JsonValueSchema>;
