import { describe, expect, it } from "vitest";
import { JobStepError } from "#shared/core/jobs/errors";
import { canonicalJson, createReducerRegistry, defineReducer } from "#shared/core/jobs/reducers";

const context = (n: number) => ({
  jobId: "job-1",
  step: 0,
  taskIds: Array.from({ length: n }, (_, i) => `t${i}`),
});

describe("built-in reducers", () => {
  const reducers = createReducerRegistry();

  it("collect lists the outputs in the order given", () => {
    expect(reducers.reduce("collect", [3, { a: 1 }, "x", null], context(4))).toEqual([
      3,
      { a: 1 },
      "x",
      null,
    ]);
  });

  it("merge merges objects shallowly, a later output's field winning", () => {
    const merged = reducers.reduce(
      "merge",
      [{ a: 1, n: { x: 1 } }, { b: 2, n: { y: 2 } }, { a: 3 }],
      context(3),
    );

    expect(merged).toEqual({ a: 3, b: 2, n: { y: 2 } });
  });

  it("merge refuses an output that is not an object, naming the task", () => {
    expect(() => reducers.reduce("merge", [{ a: 1 }, [1]], context(2))).toThrow(/reducer "merge" failed.*t1/);
  });

  it("concat concatenates arrays in order, one level deep", () => {
    expect(reducers.reduce("concat", [[1, 2], [], [[3], 4]], context(3))).toEqual([1, 2, [3], 4]);
  });

  it("concat refuses an output that is not an array", () => {
    expect(() => reducers.reduce("concat", [[1], { a: 1 }], context(2))).toThrow(JobStepError);
  });

  it("vote picks the most frequent output, comparing objects by canonical JSON", () => {
    const winner = reducers.reduce(
      "vote",
      [{ label: "cat", score: 1 }, { label: "dog" }, { score: 1, label: "cat" }],
      context(3),
    );

    expect(winner).toEqual({ label: "cat", score: 1 });
  });

  it("vote breaks a tie by submission order", () => {
    expect(reducers.reduce("vote", ["b", "a", "a", "b", "c"], context(5))).toBe("b");
    expect(reducers.reduce("vote", ["a", "b", "b", "a"], context(4))).toBe("a");
  });

  it('vote tells 1 from "1" and [1,2] from [2,1]', () => {
    expect(reducers.reduce("vote", [1, "1", "1"], context(3))).toBe("1");
    expect(
      reducers.reduce(
        "vote",
        [
          [1, 2],
          [2, 1],
          [2, 1],
        ],
        context(3),
      ),
    ).toEqual([2, 1]);
  });
});

describe("custom reducers", () => {
  const sum = defineReducer("sum", (outputs) => outputs.reduce<number>((total, o) => total + Number(o), 0));

  it("runs a reducer registered with defineReducer, with the task ids in its context", () => {
    const seen: string[][] = [];
    const spy = defineReducer("spy", (outputs, ctx) => {
      seen.push([...ctx.taskIds]);
      return outputs.length;
    });
    const reducers = createReducerRegistry([sum, spy]);

    expect(reducers.reduce("sum", [1, 2, 3], context(3))).toBe(6);
    expect(reducers.reduce("spy", [1, 2], context(2))).toBe(2);
    expect(seen).toEqual([["t0", "t1"]]);
  });

  it("keeps registries apart: a reducer exists only where it was registered", () => {
    expect(createReducerRegistry([sum]).has("sum")).toBe(true);
    expect(createReducerRegistry().has("sum")).toBe(false);
    expect(() => createReducerRegistry().reduce("sum", [1], context(1))).toThrow(/no reducer named "sum"/);
  });

  it("refuses to redefine a built-in or to define a name twice", () => {
    expect(() => createReducerRegistry([defineReducer("collect", () => 1)])).toThrow(/built in/);
    expect(() => createReducerRegistry([sum, sum])).toThrow(/defined twice/);
  });

  it("refuses an invalid name", () => {
    expect(() => defineReducer("no spaces", () => 1)).toThrow(TypeError);
  });

  it("turns a throwing reducer into reducer_failed", () => {
    const reducers = createReducerRegistry([
      defineReducer("broken", () => {
        throw new Error("boom");
      }),
    ]);

    let caught: unknown;
    try {
      reducers.reduce("broken", [1], context(1));
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(JobStepError);
    expect(caught).toMatchObject({ code: "reducer_failed", message: 'reducer "broken" failed: boom' });
  });

  it("stores what JSON keeps of a reducer's value", () => {
    const reducers = createReducerRegistry([
      defineReducer("dated", () => ({ at: new Date(0), gone: undefined })),
    ]);

    expect(reducers.reduce("dated", [1], context(1))).toEqual({ at: "1970-01-01T00:00:00.000Z" });
  });
});

describe("canonicalJson", () => {
  it("spells deeply equal values the same whatever their key order", () => {
    expect(canonicalJson({ b: 1, a: [{ d: 2, c: 3 }] })).toBe('{"a":[{"c":3,"d":2}],"b":1}');
    expect(canonicalJson({ a: 1, b: 2 })).toBe(canonicalJson({ b: 2, a: 1 }));
  });
});
