import { describe, expect, it } from "vitest";
import { deepCopy } from "#shared/adapters/memory/copy";

describe("deepCopy (the memory adapters' record copy)", () => {
  it("copies plain objects and arrays deeply, equal to structuredClone and sharing nothing", () => {
    const source = { a: 1, b: "x", c: [1, { d: null, e: [true] }], f: { g: { h: -0.5 } }, u: undefined };
    const copy = deepCopy(source);
    expect(copy).toStrictEqual(structuredClone(source));
    expect("u" in copy).toBe(true);
    copy.c.push(2);
    (copy.f.g as { h: number }).h = 9;
    expect(source.c).toHaveLength(2);
    expect(source.f.g.h).toBe(-0.5);
  });

  it("keeps an own __proto__ key a key (as JSON.parse made it), never the copy's prototype", () => {
    const source = JSON.parse('{"__proto__":{"polluted":true},"ok":1}') as Record<string, unknown>;
    const copy = deepCopy(source);
    expect(Object.getPrototypeOf(copy)).toBe(Object.prototype);
    expect((copy as { polluted?: boolean }).polluted).toBeUndefined();
    expect(Object.keys(copy)).toEqual(["__proto__", "ok"]);
    const own = (o: object) => Object.getOwnPropertyDescriptor(o, "__proto__")?.value as unknown;
    expect(own(copy)).toStrictEqual({ polluted: true });
    expect(own(copy)).not.toBe(own(source));
  });

  it("hands non-plain values and very deep nesting to structuredClone", () => {
    const when = new Date(0);
    const copied = deepCopy({ when, map: new Map([["k", 1]]) });
    expect(copied.when).toBeInstanceOf(Date);
    expect(copied.when).not.toBe(when);
    expect(copied.map.get("k")).toBe(1);
    let deep: unknown = "leaf";
    for (let i = 0; i < 500; i++) deep = { next: deep };
    expect(deepCopy(deep)).toStrictEqual(deep);
  });
});
