import { ValidationError } from "@foreman/shared";
import { expect } from "chai";
import fc from "fast-check";
import { jobRequestSchema, parseJobRequest, passesJobSchema } from "../../src/jobs/job-request.js";

const open = { webhookAllowedHosts: [] as string[] };

/** Any JSON value at all, and objects that use the schema's own keys with any JSON values. */
const schemaKeys = [
  "model",
  "messages",
  "prompt",
  "system",
  "suffix",
  "images",
  "options",
  "format",
  "tools",
  "think",
  "keep_alive",
  "stream",
  "metadata",
  "webhook",
];
const anyBody = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }),
  fc.dictionary(fc.constantFrom(...schemaKeys, "__proto__", "constructor", "x"), fc.jsonValue({ maxDepth: 3 }), {
    maxKeys: 6,
  }),
);

const text = fc.string({ unit: "grapheme", maxLength: 30 });
const message = fc.record(
  { role: fc.constantFrom("system", "user", "assistant", "tool"), content: text, thinking: text },
  { requiredKeys: ["role"] },
);
const validBody = fc
  .record(
    {
      model: fc.string({ minLength: 1, maxLength: 40 }),
      input: fc.oneof(fc.record({ prompt: text }), fc.record({ messages: fc.array(message, { maxLength: 4 }) })),
      system: text,
      options: fc.dictionary(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 5 }),
      format: fc.oneof(fc.constant("json"), fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }))),
      think: fc.oneof(fc.boolean(), fc.constantFrom("high", "medium", "low")),
      keep_alive: fc.oneof(fc.constantFrom("5m", "-1", "0", "1h30m", "10s"), fc.integer()),
      stream: fc.boolean(),
      metadata: fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }),
    },
    { requiredKeys: ["model", "input"] },
  )
  .map(({ input, ...rest }) => ({ ...rest, ...input }) as Record<string, unknown>);

/** The same object with its keys, at every level, in another order. */
function reorder(value: unknown, seed: number): unknown {
  if (Array.isArray(value)) return value.map((v) => reorder(v, seed));
  if (value && typeof value === "object") {
    const entries = Object.entries(value);
    const rotated = entries
      .slice(seed % Math.max(1, entries.length))
      .concat(entries.slice(0, seed % Math.max(1, entries.length)));
    return Object.fromEntries(rotated.reverse().map(([k, v]) => [k, reorder(v, seed)]));
  }
  return value;
}

describe("jobs/job-request (properties)", () => {
  it("answers any body with a job or a ValidationError, never another error", () => {
    fc.assert(
      fc.property(anyBody, (body) => {
        try {
          parseJobRequest(body, open);
        } catch (err) {
          expect(err, String(err)).to.be.instanceOf(ValidationError);
          expect((err as Error).message)
            .to.be.a("string")
            .and.not.equal("");
        }
      }),
      { numRuns: 2000 },
    );
  });

  it("accepts every well-formed body as an async job that streams from the target and keeps its fields", () => {
    fc.assert(
      fc.property(validBody, (body) => {
        const { job } = parseJobRequest(body, open);
        expect(job.kind).to.equal("messages" in body ? "chat" : "generate");
        expect(job).to.include({ api: "ollama", mode: "async", model: body.model });
        expect(job.request.stream).to.equal(true);
        expect(job.request).to.not.have.any.keys("metadata", "webhook");
        for (const key of ["prompt", "messages", "options", "format", "system"]) {
          if (key in body) expect(job.request[key], key).to.deep.equal(body[key]);
        }
        expect(job.metadata ?? undefined).to.deep.equal(body.metadata);
      }),
      { numRuns: 1000 },
    );
  });

  it("hashes a body the same whatever the order of its keys, and differently when a value changes", () => {
    fc.assert(
      fc.property(validBody, fc.nat(10), (body, seed) => {
        const first = parseJobRequest(body, open).requestHash;
        expect(parseJobRequest(reorder(body, seed), open).requestHash).to.equal(first);
        expect(parseJobRequest({ ...body, model: `${body.model as string}-other` }, open).requestHash).to.not.equal(
          first,
        );
      }),
      { numRuns: 500 },
    );
  });

  it("skips joi only for bodies joi accepts unchanged, and does skip it for the common ones", () => {
    const joiAccepts = (body: unknown) => {
      const { value, error } = jobRequestSchema.validate(body, { abortEarly: true, convert: false });
      return error === undefined && JSON.stringify(value) === JSON.stringify(body);
    };
    // Bodies near the edge: the well-formed ones with one field's value swapped for any JSON value.
    const nearlyValid = fc
      .tuple(validBody, fc.constantFrom(...schemaKeys, "role", "content", "x"), fc.jsonValue({ maxDepth: 2 }))
      .map(([body, key, value]) => {
        const messages = body.messages as Array<Record<string, unknown>> | undefined;
        if ((key === "role" || key === "content") && messages?.[0]) messages[0] = { ...messages[0], [key]: value };
        else body[key] = value;
        return body;
      });
    let skipped = 0;
    fc.assert(
      fc.property(fc.oneof(anyBody, validBody, nearlyValid), (body) => {
        if (!passesJobSchema(body)) return;
        skipped++;
        expect(joiAccepts(body), JSON.stringify(body)).to.equal(true);
      }),
      { numRuns: 3000 },
    );
    expect(skipped).to.be.greaterThan(300);
    expect(passesJobSchema({ model: "m", messages: [{ role: "user", content: "hi" }], metadata: { a: 1 } })).to.equal(
      true,
    );
  });

  it("names the field whose value has the wrong type", () => {
    const wrong: Record<string, fc.Arbitrary<unknown>> = {
      model: fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.string())),
      prompt: fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.dictionary(fc.string(), fc.string())),
      system: fc.oneof(fc.integer(), fc.boolean(), fc.array(fc.string())),
      options: fc.oneof(fc.integer(), fc.string(), fc.array(fc.integer())),
      stream: fc.oneof(fc.integer(), fc.string(), fc.constant(null)),
      metadata: fc.oneof(fc.integer(), fc.string(), fc.array(fc.integer())),
      images: fc.oneof(fc.integer(), fc.string(), fc.array(fc.integer(), { minLength: 1 })),
    };
    for (const [field, values] of Object.entries(wrong)) {
      fc.assert(
        fc.property(values, (value) => {
          const body = { model: "m", prompt: "p", [field]: value };
          expect(() => parseJobRequest(body, open), field)
            .to.throw(ValidationError)
            .with.property("message")
            .that.includes(field);
        }),
        { numRuns: 100 },
      );
    }
  });
});
