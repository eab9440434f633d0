import { describe, expect, it } from "vitest";
import { matchesEventPattern, validateEventPattern } from "#shared/adapters/memory/event-pattern";
import { ValidationError } from "#shared/domain/errors";

// Patterns and events follow the examples in the Amazon EventBridge user guide ("Event patterns",
// "Content filtering", "Arrays", "Null values"), so these tests pin the documented behaviour.

/** The guide's EC2 state-change event; a fresh copy each time so a test may change it. */
function ec2Event(detail: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    version: "0",
    id: "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
    "detail-type": "EC2 Instance State-change Notification",
    source: "aws.ec2",
    account: "111122223333",
    time: "2017-12-22T18:43:48Z",
    region: "us-west-1",
    resources: ["arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0"],
    detail: { "instance-id": "i-1234567890abcdef0", state: "terminated", ...detail },
  };
}

/** An event whose detail holds exactly `detail`. */
function eventWithDetail(detail: Record<string, unknown>): Record<string, unknown> {
  return { source: "aws.ec2", "detail-type": "EC2 Instance State-change Notification", detail };
}

function validationErrorFor(pattern: unknown): ValidationError {
  try {
    validateEventPattern(pattern);
  } catch (error) {
    if (error instanceof ValidationError) return error;
    throw error;
  }
  throw new Error("expected the pattern to be rejected");
}

describe("matchesEventPattern", () => {
  describe("exact values", () => {
    const terminations = {
      source: ["aws.ec2"],
      "detail-type": ["EC2 Instance State-change Notification"],
      detail: { state: ["terminated"] },
    };

    it("matches an event whose named fields all equal the pattern's values", () => {
      expect(matchesEventPattern(terminations, ec2Event())).toBe(true);
    });

    it("does not match when a nested field has another value", () => {
      expect(matchesEventPattern(terminations, ec2Event({ state: "pending" }))).toBe(false);
    });

    it("does not match when a field the pattern names is missing from the event", () => {
      const event = ec2Event();
      delete event["detail-type"];

      expect(matchesEventPattern(terminations, event)).toBe(false);
    });

    it("matches when the value equals any one of the listed alternatives", () => {
      const pattern = { source: ["aws.ec2", "aws.fargate"] };

      expect(matchesEventPattern(pattern, { ...ec2Event(), source: "aws.fargate" })).toBe(true);
    });

    it("compares strings exactly, without case folding", () => {
      expect(matchesEventPattern({ source: ["AWS.EC2"] }, ec2Event())).toBe(false);
    });

    it("matches numbers by value, as in the guide's Macie risk-score example", () => {
      const pattern = { source: ["aws.macie"], detail: { "risk-score": [80], trigger: { risk: [8] } } };
      const event = {
        source: "aws.macie",
        detail: { "risk-score": 80, trigger: { "alert-type": "basic", risk: 8 } },
      };

      expect(matchesEventPattern(pattern, event)).toBe(true);
    });

    it("does not match a string that spells the pattern's number", () => {
      expect(matchesEventPattern({ detail: { limit: [300] } }, eventWithDetail({ limit: "300" }))).toBe(
        false,
      );
    });

    it("matches booleans", () => {
      expect(matchesEventPattern({ detail: { retried: [true] } }, eventWithDetail({ retried: true }))).toBe(
        true,
      );
    });

    it("matches a null value with a null pattern value", () => {
      const pattern = { detail: { responseElements: [null] } };

      expect(
        matchesEventPattern(pattern, eventWithDetail({ eventVersion: "", responseElements: null })),
      ).toBe(true);
    });

    it("matches an empty string with an empty-string pattern value", () => {
      const pattern = { detail: { eventVersion: [""] } };

      expect(
        matchesEventPattern(pattern, eventWithDetail({ eventVersion: "", responseElements: null })),
      ).toBe(true);
    });

    it("does not treat an empty string and null as interchangeable", () => {
      expect(
        matchesEventPattern(
          { detail: { responseElements: [""] } },
          eventWithDetail({ responseElements: null }),
        ),
      ).toBe(false);
    });

    it("does not look pattern fields up on the event's prototype chain", () => {
      // Parsed from JSON, "__proto__" is an ordinary field name; {}.__proto__.__proto__ is null.
      const pattern = JSON.parse('{ "__proto__": { "__proto__": [null] } }') as Record<string, unknown>;

      expect(matchesEventPattern(pattern, {})).toBe(false);
    });

    it("does not match an event that is not a JSON object", () => {
      expect(matchesEventPattern({ source: [{ exists: false }] }, "aws.ec2")).toBe(false);
    });
  });

  describe("arrays in the event", () => {
    const pattern = {
      resources: [
        "arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f",
        "arn:aws:ec2:us-east-1:111122223333:instance/i-b188560f",
        "arn:aws:ec2:us-east-1:444455556666:instance/i-b188560f",
      ],
    };

    it("matches when any element of the event's array equals any pattern value", () => {
      const event = {
        resources: [
          "arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:eb56d16b-bbf0-401d-b893-d5978ed4a025:autoScalingGroupName/ASGTerminate",
          "arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f",
        ],
      };

      expect(matchesEventPattern(pattern, event)).toBe(true);
    });

    it("does not match when the event's array and the pattern's values have nothing in common", () => {
      expect(matchesEventPattern(pattern, ec2Event())).toBe(false);
    });

    it("matches a nested pattern against any object in an event array", () => {
      const event = eventWithDetail({
        employees: [{ firstName: "John" }, { firstName: "Anna", lastName: "Smith" }],
      });

      expect(matchesEventPattern({ detail: { employees: { firstName: ["Anna"] } } }, event)).toBe(true);
    });

    it("does not combine fields from different elements of the same array", () => {
      const event = eventWithDetail({
        employees: [
          { firstName: "Anna", lastName: "Smith" },
          { firstName: "Peter", lastName: "Jones" },
        ],
      });

      expect(
        matchesEventPattern({ detail: { employees: { firstName: ["Anna"], lastName: ["Jones"] } } }, event),
      ).toBe(false);
    });
  });

  describe("prefix", () => {
    const pattern = { time: [{ prefix: "2017-10-02" }] };

    it("matches a string that starts with the prefix", () => {
      expect(matchesEventPattern(pattern, { ...ec2Event(), time: "2017-10-02T18:43:48Z" })).toBe(true);
    });

    it("does not match a string that starts otherwise", () => {
      expect(matchesEventPattern(pattern, { ...ec2Event(), time: "2017-10-03T18:43:48Z" })).toBe(false);
    });

    it("does not match a non-string value", () => {
      expect(
        matchesEventPattern({ detail: { count: [{ prefix: "1" }] } }, eventWithDetail({ count: 12 })),
      ).toBe(false);
    });

    it("ignores case when given equals-ignore-case", () => {
      const ignoringCase = { detail: { service: [{ prefix: { "equals-ignore-case": "EventB" } }] } };

      expect(matchesEventPattern(ignoringCase, eventWithDetail({ service: "eventbridge" }))).toBe(true);
    });

    it("still requires the prefix when given equals-ignore-case", () => {
      const ignoringCase = { detail: { service: [{ prefix: { "equals-ignore-case": "EventB" } }] } };

      expect(matchesEventPattern(ignoringCase, eventWithDetail({ service: "sqs" }))).toBe(false);
    });
  });

  describe("suffix", () => {
    const pattern = { detail: { FileName: [{ suffix: ".png" }] } };

    it("matches a string that ends with the suffix", () => {
      expect(matchesEventPattern(pattern, eventWithDetail({ FileName: "image.png" }))).toBe(true);
    });

    it("does not match a string that ends otherwise", () => {
      expect(matchesEventPattern(pattern, eventWithDetail({ FileName: "image.jpg" }))).toBe(false);
    });

    it("is case-sensitive by default", () => {
      expect(matchesEventPattern(pattern, eventWithDetail({ FileName: "image.PNG" }))).toBe(false);
    });

    it("ignores case when given equals-ignore-case", () => {
      const ignoringCase = { detail: { FileName: [{ suffix: { "equals-ignore-case": ".png" } }] } };

      expect(matchesEventPattern(ignoringCase, eventWithDetail({ FileName: "image.PNG" }))).toBe(true);
    });
  });

  describe("equals-ignore-case", () => {
    const pattern = { detail: { name: [{ "equals-ignore-case": "alice" }] } };

    it("matches the same string in another case", () => {
      expect(matchesEventPattern(pattern, eventWithDetail({ name: "ALICE" }))).toBe(true);
    });

    it("does not match a different string", () => {
      expect(matchesEventPattern(pattern, eventWithDetail({ name: "Alicia" }))).toBe(false);
    });
  });

  describe("wildcard", () => {
    const pattern = { EventBusArn: [{ wildcard: "arn:aws:events:us-east-1:*:event-bus/*" }] };

    it("matches when each * stands for some run of characters", () => {
      const event = { EventBusArn: "arn:aws:events:us-east-1:123456789012:event-bus/orders" };

      expect(matchesEventPattern(pattern, event)).toBe(true);
    });

    it("does not match when the literal parts differ", () => {
      const event = { EventBusArn: "arn:aws:events:us-west-2:123456789012:event-bus/orders" };

      expect(matchesEventPattern(pattern, event)).toBe(false);
    });

    it("lets * match an empty run and runs that contain slashes", () => {
      const files = { detail: { FilePath: [{ wildcard: "dir/*.png" }] } };

      expect(
        [".png", "a/b/c.png"].map((name) =>
          matchesEventPattern(files, eventWithDetail({ FilePath: `dir/${name}` })),
        ),
      ).toEqual([true, true]);
    });

    it("matches an escaped asterisk only literally", () => {
      const literal = { detail: { label: [{ wildcard: "a\\*b" }] } };

      expect(["a*b", "axb"].map((label) => matchesEventPattern(literal, eventWithDetail({ label })))).toEqual(
        [true, false],
      );
    });

    it("matches an escaped backslash as one backslash", () => {
      const pattern = { detail: { path: [{ wildcard: "C:\\\\*" }] } };

      expect(matchesEventPattern(pattern, eventWithDetail({ path: "C:\\temp" }))).toBe(true);
    });
  });

  describe("anything-but", () => {
    it("matches any string except the one given", () => {
      const pattern = { detail: { state: [{ "anything-but": "initializing" }] } };

      expect(
        ["running", "initializing"].map((state) => matchesEventPattern(pattern, eventWithDetail({ state }))),
      ).toEqual([true, false]);
    });

    it("matches any number except the one given", () => {
      const pattern = { detail: { "x-limit": [{ "anything-but": 123 }] } };

      expect(
        [124, 123].map((limit) => matchesEventPattern(pattern, eventWithDetail({ "x-limit": limit }))),
      ).toEqual([true, false]);
    });

    it("excludes every string in a list", () => {
      const pattern = { detail: { state: [{ "anything-but": ["stopped", "overloaded"] }] } };

      expect(
        ["running", "stopped", "overloaded"].map((state) =>
          matchesEventPattern(pattern, eventWithDetail({ state })),
        ),
      ).toEqual([true, false, false]);
    });

    it("excludes every number in a list", () => {
      const pattern = { detail: { "x-limit": [{ "anything-but": [100, 200, 300] }] } };

      expect(
        [150, 100, 300].map((limit) => matchesEventPattern(pattern, eventWithDetail({ "x-limit": limit }))),
      ).toEqual([true, false, false]);
    });

    it("excludes strings that start with a prefix", () => {
      const pattern = { detail: { state: [{ "anything-but": { prefix: "init" } }] } };

      expect(
        ["running", "initializing"].map((state) => matchesEventPattern(pattern, eventWithDetail({ state }))),
      ).toEqual([true, false]);
    });

    it("excludes strings that end with a suffix", () => {
      const pattern = { detail: { FileName: [{ "anything-but": { suffix: ".png" } }] } };

      expect(
        ["notes.txt", "image.png"].map((name) =>
          matchesEventPattern(pattern, eventWithDetail({ FileName: name })),
        ),
      ).toEqual([true, false]);
    });

    it("excludes strings in any case when given equals-ignore-case", () => {
      const pattern = { detail: { state: [{ "anything-but": { "equals-ignore-case": "initializing" } }] } };

      expect(
        ["running", "INITIALIZING"].map((state) => matchesEventPattern(pattern, eventWithDetail({ state }))),
      ).toEqual([true, false]);
    });

    it("excludes a list of strings in any case when given equals-ignore-case", () => {
      const pattern = {
        detail: { state: [{ "anything-but": { "equals-ignore-case": ["Stopped", "Overloaded"] } }] },
      };

      expect(matchesEventPattern(pattern, eventWithDetail({ state: "OVERLOADED" }))).toBe(false);
    });

    it("excludes strings that match a wildcard", () => {
      const pattern = { detail: { FilePath: [{ "anything-but": { wildcard: "*/lib/*" } }] } };

      expect(
        ["/usr/bin/env", "/usr/lib/libc.so"].map((path) =>
          matchesEventPattern(pattern, eventWithDetail({ FilePath: path })),
        ),
      ).toEqual([true, false]);
    });

    it("matches values of another type than the excluded ones", () => {
      const pattern = { detail: { state: [{ "anything-but": "initializing" }] } };

      expect(matchesEventPattern(pattern, eventWithDetail({ state: 5 }))).toBe(true);
    });

    it("does not match when the field is missing", () => {
      const pattern = { detail: { state: [{ "anything-but": "initializing" }] } };

      expect(matchesEventPattern(pattern, eventWithDetail({}))).toBe(false);
    });

    it("matches an event array that holds at least one value that is not excluded", () => {
      const pattern = { detail: { state: [{ "anything-but": "initializing" }] } };

      expect(matchesEventPattern(pattern, eventWithDetail({ state: ["initializing", "running"] }))).toBe(
        true,
      );
    });
  });

  describe("numeric", () => {
    const pattern = {
      detail: {
        "c-count": [{ numeric: [">", 0, "<=", 5] }],
        "d-count": [{ numeric: ["<", 10] }],
        "x-limit": [{ numeric: ["=", 3.018e2] }],
      },
    };

    it("matches when every numeric condition holds", () => {
      expect(
        matchesEventPattern(pattern, eventWithDetail({ "c-count": 5, "d-count": 3, "x-limit": 301.8 })),
      ).toBe(true);
    });

    it("does not match above an inclusive upper bound", () => {
      expect(
        matchesEventPattern(pattern, eventWithDetail({ "c-count": 6, "d-count": 3, "x-limit": 301.8 })),
      ).toBe(false);
    });

    it("does not match at an exclusive lower bound", () => {
      expect(
        matchesEventPattern(pattern, eventWithDetail({ "c-count": 0, "d-count": 3, "x-limit": 301.8 })),
      ).toBe(false);
    });

    it("does not match at an exclusive upper bound", () => {
      expect(
        matchesEventPattern(pattern, eventWithDetail({ "c-count": 1, "d-count": 10, "x-limit": 301.8 })),
      ).toBe(false);
    });

    it("includes the lower bound of a >= range", () => {
      const range = { detail: { attempt: [{ numeric: [">=", 1, "<", 3] }] } };

      expect([1, 3].map((attempt) => matchesEventPattern(range, eventWithDetail({ attempt })))).toEqual([
        true,
        false,
      ]);
    });

    it("does not match a string that holds a number", () => {
      expect(
        matchesEventPattern(pattern, eventWithDetail({ "c-count": "5", "d-count": 3, "x-limit": 301.8 })),
      ).toBe(false);
    });
  });

  describe("cidr", () => {
    const pattern = { detail: { sourceIPAddress: [{ cidr: "10.0.0.0/24" }] } };

    it("matches an IPv4 address inside the block", () => {
      expect(matchesEventPattern(pattern, eventWithDetail({ sourceIPAddress: "10.0.0.255" }))).toBe(true);
    });

    it("does not match an IPv4 address outside the block", () => {
      expect(matchesEventPattern(pattern, eventWithDetail({ sourceIPAddress: "10.0.1.0" }))).toBe(false);
    });

    it("matches an IPv6 address inside an IPv6 block", () => {
      const v6 = { detail: { sourceIPAddress: [{ cidr: "2001:db8::/32" }] } };

      expect(
        matchesEventPattern(v6, eventWithDetail({ sourceIPAddress: "2001:0db8:85a3::8a2e:0370:7334" })),
      ).toBe(true);
    });

    it("does not match a string that is not an IP address", () => {
      expect(matchesEventPattern(pattern, eventWithDetail({ sourceIPAddress: "10.0.0.x" }))).toBe(false);
    });
  });

  describe("exists", () => {
    it("matches with exists true when the leaf field is present", () => {
      const pattern = { detail: { state: [{ exists: true }] } };

      expect(matchesEventPattern(pattern, ec2Event({ state: "pending" }))).toBe(true);
    });

    it("does not match with exists true when the leaf field is missing", () => {
      const pattern = { detail: { state: [{ exists: true }] } };

      expect(matchesEventPattern(pattern, eventWithDetail({ "c-count": { c1: 100 } }))).toBe(false);
    });

    it("matches with exists false when the field is missing", () => {
      const pattern = { detail: { "c-count": [{ exists: false }] } };

      expect(matchesEventPattern(pattern, eventWithDetail({ state: ["initializing", "running"] }))).toBe(
        true,
      );
    });

    it("matches with exists false when the field is an object, because it is not a leaf", () => {
      const pattern = { detail: { "c-count": [{ exists: false }] } };

      expect(matchesEventPattern(pattern, eventWithDetail({ "c-count": { c1: 100 } }))).toBe(true);
    });

    it("does not match with exists false when the field is present", () => {
      const pattern = { detail: { "c-count": [{ exists: false }] } };

      expect(matchesEventPattern(pattern, eventWithDetail({ "c-count": 3 }))).toBe(false);
    });

    it("matches with exists false when the enclosing object is missing too", () => {
      const pattern = { detail: { "c-count": [{ exists: false }] } };

      expect(matchesEventPattern(pattern, { source: "aws.ec2" })).toBe(true);
    });
  });

  describe("$or", () => {
    const pattern = {
      source: ["aws.cloudwatch"],
      $or: [{ metricName: ["CPUUtilization", "ReadLatency"] }, { namespace: ["AWS/EC2", "AWS/ES"] }],
    };

    it("matches when one of the sub-patterns matches", () => {
      expect(matchesEventPattern(pattern, { source: "aws.cloudwatch", namespace: "AWS/EC2" })).toBe(true);
    });

    it("does not match when none of the sub-patterns matches", () => {
      expect(matchesEventPattern(pattern, { source: "aws.cloudwatch", metricName: "NetworkIn" })).toBe(false);
    });

    it("still requires the fields outside $or", () => {
      expect(matchesEventPattern(pattern, { source: "aws.ec2", metricName: "CPUUtilization" })).toBe(false);
    });

    it("applies to the fields of the object it appears in", () => {
      const nested = {
        detail: {
          $or: [
            { "c-count": [{ numeric: [">", 0, "<=", 5] }] },
            { "d-count": [{ numeric: ["<", 10] }] },
            { "x-limit": [{ numeric: ["=", 3.018e2] }] },
          ],
        },
      };

      expect(matchesEventPattern(nested, eventWithDetail({ "d-count": 3 }))).toBe(true);
    });

    it("requires every field of a sub-pattern", () => {
      const withAnd = {
        source: ["aws.cloudwatch"],
        $or: [
          { metricName: ["CPUUtilization"] },
          { metricType: ["MetricType"], namespace: ["AWS/EC2", "AWS/ES"] },
        ],
      };

      expect(matchesEventPattern(withAnd, { source: "aws.cloudwatch", metricType: "MetricType" })).toBe(
        false,
      );
    });
  });

  it("combines several operators in one pattern, as in the guide's complex example", () => {
    const pattern = {
      time: [{ prefix: "2017-10-02" }],
      detail: {
        state: [{ "anything-but": "initializing" }],
        "c-count": [{ numeric: [">", 0, "<=", 5] }],
        "d-count": [{ numeric: ["<", 10] }],
        "x-limit": [{ "anything-but": [100, 200, 300] }],
      },
    };
    const event = {
      time: "2017-10-02T16:24:49Z",
      detail: { state: "running", "c-count": 5, "d-count": 3, "x-limit": 301.8, "source-ip": "10.0.0.33" },
    };

    expect(matchesEventPattern(pattern, event)).toBe(true);
  });

  it("throws a ValidationError for an invalid pattern", () => {
    expect(() => matchesEventPattern({ source: "aws.ec2" }, ec2Event())).toThrow(ValidationError);
  });
});

describe("validateEventPattern", () => {
  it.each([
    {
      name: "exact values",
      pattern: { source: ["aws.ec2", "aws.fargate"], detail: { state: ["terminated"] } },
    },
    { name: "null and empty string", pattern: { detail: { responseElements: [null], eventVersion: [""] } } },
    { name: "prefix", pattern: { time: [{ prefix: "2017-10-02" }] } },
    {
      name: "prefix ignoring case",
      pattern: { detail: { service: [{ prefix: { "equals-ignore-case": "EventB" } }] } },
    },
    {
      name: "suffix ignoring case",
      pattern: { detail: { FileName: [{ suffix: { "equals-ignore-case": ".png" } }] } },
    },
    { name: "anything-but list", pattern: { detail: { "x-limit": [{ "anything-but": [100, 200, 300] }] } } },
    { name: "anything-but wildcard", pattern: { FilePath: [{ "anything-but": { wildcard: "*/lib/*" } }] } },
    { name: "numeric range", pattern: { detail: { "c-count": [{ numeric: [">", 0, "<=", 5] }] } } },
    { name: "cidr", pattern: { detail: { sourceIPAddress: [{ cidr: "10.0.0.0/24" }] } } },
    { name: "exists", pattern: { detail: { "c-count": [{ exists: false }] } } },
    {
      name: "$or",
      pattern: {
        source: ["aws.cloudwatch"],
        $or: [{ metricName: ["CPUUtilization"] }, { namespace: ["AWS/EC2"] }],
      },
    },
  ])("accepts the guide's $name pattern", ({ pattern }) => {
    expect(() => validateEventPattern(pattern)).not.toThrow();
  });

  it.each([
    { name: "an empty pattern", pattern: {}, path: "" },
    { name: "a pattern that is not an object", pattern: ["aws.ec2"], path: "" },
    { name: "a null pattern", pattern: null, path: "" },
    { name: "a leaf that is not an array", pattern: { source: "aws.ec2" }, path: "source" },
    { name: "a leaf that is an empty array", pattern: { source: [] }, path: "source" },
    { name: "an empty nested object", pattern: { detail: {} }, path: "detail" },
    { name: "a nested array as a match value", pattern: { source: [["aws.ec2"]] }, path: "source[0]" },
    { name: "an unknown operator", pattern: { source: [{ contains: "ec2" }] }, path: "source[0]" },
    {
      name: "an operator object with two keys",
      pattern: { source: [{ prefix: "a", suffix: "b" }] },
      path: "source[0]",
    },
    { name: "a prefix that is not a string", pattern: { source: [{ prefix: 1 }] }, path: "source[0].prefix" },
    {
      name: "exists that is not a boolean",
      pattern: { state: [{ exists: "yes" }] },
      path: "state[0].exists",
    },
    { name: "numeric that is not an array", pattern: { n: [{ numeric: ">" }] }, path: "n[0].numeric" },
    { name: "an unknown numeric operator", pattern: { n: [{ numeric: ["!=", 3] }] }, path: "n[0].numeric" },
    {
      name: "a numeric operator without a number",
      pattern: { n: [{ numeric: [">", "0"] }] },
      path: "n[0].numeric",
    },
    {
      name: "a numeric range whose bounds are reversed",
      pattern: { n: [{ numeric: [">", 5, "<", 1] }] },
      path: "n[0].numeric",
    },
    {
      name: "a numeric range that starts at the top",
      pattern: { n: [{ numeric: ["<", 5, ">", 1] }] },
      path: "n[0].numeric",
    },
    {
      name: "a numeric range with too many terms",
      pattern: { n: [{ numeric: [">", 0, "<", 5, "<", 9] }] },
      path: "n[0].numeric",
    },
    {
      name: "an anything-but list mixing strings and numbers",
      pattern: { s: [{ "anything-but": ["a", 1] }] },
      path: "s[0].anything-but",
    },
    {
      name: "an empty anything-but list",
      pattern: { s: [{ "anything-but": [] }] },
      path: "s[0].anything-but",
    },
    { name: "anything-but null", pattern: { s: [{ "anything-but": null }] }, path: "s[0].anything-but" },
    {
      name: "an empty anything-but prefix",
      pattern: { s: [{ "anything-but": { prefix: "" } }] },
      path: "s[0].anything-but.prefix",
    },
    {
      name: "an unsupported anything-but operator",
      pattern: { s: [{ "anything-but": { numeric: [">", 1] } }] },
      path: "s[0].anything-but",
    },
    {
      name: "consecutive wildcard characters",
      pattern: { s: [{ wildcard: "a**b" }] },
      path: "s[0].wildcard",
    },
    {
      name: "a backslash escaping another character",
      pattern: { s: [{ wildcard: "a\\b" }] },
      path: "s[0].wildcard",
    },
    { name: "a cidr without a prefix length", pattern: { ip: [{ cidr: "10.0.0.0" }] }, path: "ip[0].cidr" },
    {
      name: "a cidr prefix length beyond the address size",
      pattern: { ip: [{ cidr: "10.0.0.0/33" }] },
      path: "ip[0].cidr",
    },
    { name: "$or that is not an array", pattern: { $or: { a: ["x"] } }, path: "$or" },
    { name: "$or with a single sub-pattern", pattern: { $or: [{ a: ["x"] }] }, path: "$or" },
    {
      name: "an operator used as a field name inside $or",
      pattern: { $or: [{ numeric: [1] }, { a: ["x"] }] },
      path: "$or[0].numeric",
    },
  ])("rejects $name with a ValidationError that names the path", ({ pattern, path }) => {
    const error = validationErrorFor(pattern);

    expect(error.details).toEqual([{ path, message: expect.any(String) }]);
  });

  it("explains the problem in the error message", () => {
    const error = validationErrorFor({ detail: { state: "running" } });

    expect(error.message).toBe(
      'invalid event pattern at detail.state: must be an array of match values or a nested object, got string "running"',
    );
  });

  it("reports an unknown operator by name", () => {
    const error = validationErrorFor({ source: [{ contains: "ec2" }] });

    expect(error.message).toContain('unknown operator "contains"');
  });
});
