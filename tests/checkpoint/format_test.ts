import assert from "node:assert/strict";
import { CheckpointError } from "../../checkpoint/mod.ts";
import { serializeState } from "../../checkpoint/_serialize.ts";
import {
  CheckFailure,
  checkFile,
  CHECKPOINT_FORMAT,
  type CheckpointHeader,
  decodePayload,
  encodeHeader,
  encodePayload,
  parseHeader,
  parseState,
  sha256Hex,
} from "../../checkpoint/_format.ts";

const EXPECT = {
  agentId: "a",
  id: "000000000001.routine",
  seq: 1,
  type: "routine" as const,
};

async function serialize(
  value: unknown,
  options: { maxBytes?: number; chunkBytes?: number } = {},
): Promise<{ text: string; chunks: number }> {
  const parts: Uint8Array[] = [];
  await serializeState(value, {
    maxBytes: options.maxBytes ?? Infinity,
    chunkBytes: options.chunkBytes ?? 1 << 20,
    agentId: "a",
    onChunk: (c) => {
      parts.push(c);
    },
  });
  return {
    text: new TextDecoder().decode(
      new Uint8Array(parts.flatMap((p) => [...p])),
    ),
    chunks: parts.length,
  };
}

async function fileOf(
  state: unknown,
  encoding: "json" | "gzip" = "json",
  header: Partial<CheckpointHeader> = {},
): Promise<Uint8Array> {
  const payload = await encodePayload(state, {
    encoding,
    autoGzipBytes: 0,
    maxBytes: Infinity,
    agentId: "a",
  });
  const head = encodeHeader({
    format: CHECKPOINT_FORMAT,
    agentId: "a",
    id: EXPECT.id,
    type: "routine",
    seq: 1,
    createdAt: new Date(0).toISOString(),
    stateVersion: 1,
    encoding: payload.encoding,
    size: payload.size,
    sha256: payload.sha256,
    stateBytes: payload.stateBytes,
    ...header,
  });
  return new Uint8Array([head, ...payload.chunks].flatMap((c) => [...c]));
}

Deno.test("serializeState() gives exactly what JSON.stringify gives, however it chunks", async () => {
  const values: unknown[] = [
    0,
    'text with "quotes" and \u2028 and emoji 🙂',
    null,
    [],
    {},
    [1, undefined, "x", [2, [3, [4]]]],
    { a: undefined, b: { c: [new Date(0)], d: { e: { f: 1 } } }, "k/~": true },
    { toJSON: () => ({ replaced: true }) },
    {
      messages: Array.from(
        { length: 500 },
        (_, i) => ({ i, text: "é".repeat(i % 7) }),
      ),
    },
  ];
  for (const value of values) {
    for (const chunkBytes of [1, 7, 1 << 20]) {
      const { text } = await serialize(value, { chunkBytes });
      assert.equal(text, JSON.stringify(value));
    }
  }
});

Deno.test("serializeState() emits bounded chunks for a large state", async () => {
  const value = {
    items: Array.from({ length: 20_000 }, (_, i) => ({ i, s: "x".repeat(50) })),
  };
  const { text, chunks } = await serialize(value, { chunkBytes: 64 * 1024 });
  assert.equal(text, JSON.stringify(value));
  assert.ok(chunks > 10, `only ${chunks} chunks`);
});

Deno.test("serializeState() refuses what JSON cannot hold and names where it is", async () => {
  const cycle: Record<string, unknown> = { a: { b: [] } };
  (cycle.a as { b: unknown[] }).b.push(cycle);
  const cases: Array<[unknown, RegExp]> = [
    [{ f: () => 1 }, /"\/f" is a function/],
    [{ list: [1, NaN] }, /"\/list\/1" is NaN/],
    [{ deep: { x: Infinity } }, /"\/deep\/x" is Infinity/],
    [{ n: -Infinity }, /"\/n" is -Infinity/],
    [{ big: 1n }, /"\/big" is a bigint/],
    [{ s: Symbol("s") }, /"\/s" is a symbol/],
    [cycle, /"\/a\/b\/0" refers back to an enclosing value \(a cycle\)/],
    [undefined, /the state itself is undefined/],
    [{ "a/b": { "c~d": NaN } }, /"\/a~1b\/c~0d" is NaN/],
  ];
  for (const [value, message] of cases) {
    let emitted = 0;
    const err = await serializeState(value, {
      maxBytes: Infinity,
      chunkBytes: 1,
      agentId: "a",
      onChunk: () => {
        emitted++;
      },
    }).catch((e) => e);
    assert.ok(err instanceof CheckpointError, String(err));
    assert.equal(err.code, "invalid_state");
    assert.match(err.message, message);
    assert.equal(emitted, 0, "nothing is emitted for a refused state");
  }
});

Deno.test("serializeState() judges toJSON, inherited keys and sharing as JSON.stringify does", async () => {
  // toJSON is applied once: a function on what it returns is refused.
  const twice = { x: { toJSON: () => ({ f: () => 1 }) } };
  const err = await serialize(twice).catch((e) => e);
  assert.ok(err instanceof CheckpointError);
  assert.match(err.message, /"\/x\/f" is a function/);
  // Dates and other toJSON values are fine, and so is an inherited
  // enumerable function, which JSON.stringify never reads.
  const inherited = Object.create({ f() {} }, {
    a: { value: 1, enumerable: true },
  });
  const shared = { n: 1 };
  const value = {
    at: new Date(0),
    inherited,
    shared: [shared, shared],
    deep: [[[[[{ ok: true }]]]]],
  };
  assert.equal((await serialize(value)).text, JSON.stringify(value));
  // A cycle deep below the top: found, and named.
  const node: Record<string, unknown> = { next: null };
  let head = node;
  for (let i = 0; i < 50; i++) head = { next: head };
  node.next = head;
  const cyc = await serialize({ list: head }).catch((e) => e);
  assert.ok(cyc instanceof CheckpointError);
  assert.match(cyc.message, /a cycle/);
});

Deno.test("serializeState() refuses a state above maxBytes and names the largest keys", async () => {
  const err = await serialize({ small: 1, huge: "x".repeat(5000) }, {
    maxBytes: 1000,
    chunkBytes: 100,
  }).catch((e) => e);
  assert.equal(err.code, "too_large");
  assert.match(err.message, /larger than maxBytes \(1000 bytes\)/);
  assert.match(err.message, /"huge"/);
});

Deno.test("encodePayload() with gzip round-trips and hashes the stored bytes", async () => {
  const state = { text: "abc".repeat(10_000) };
  const payload = await encodePayload(state, {
    encoding: "gzip",
    autoGzipBytes: 0,
    maxBytes: Infinity,
    agentId: "a",
  });
  assert.equal(payload.encoding, "gzip");
  assert.ok(payload.size < payload.stateBytes / 10);
  const bytes = new Uint8Array(payload.chunks.flatMap((c) => [...c]));
  assert.equal(sha256Hex(bytes), payload.sha256);
  const text = await decodePayload(
    { encoding: "gzip" } as CheckpointHeader,
    bytes,
  );
  assert.deepEqual(JSON.parse(text), state);
});

Deno.test('encodePayload() with "auto" compresses only above the threshold', async () => {
  const options = {
    encoding: "auto" as const,
    autoGzipBytes: 10_000,
    maxBytes: Infinity,
    agentId: "a",
  };
  assert.equal(
    (await encodePayload({ s: "x".repeat(100) }, options)).encoding,
    "json",
  );
  const big = await encodePayload({ s: "x".repeat(3 << 20) }, options);
  assert.equal(big.encoding, "gzip");
  const bytes = new Uint8Array(big.chunks.flatMap((c) => [...c]));
  const text = await decodePayload(
    { encoding: "gzip" } as CheckpointHeader,
    bytes,
  );
  assert.equal(text.length, (3 << 20) + 8);
});

Deno.test("checkFile() accepts a whole file and returns its payload", async () => {
  const bytes = await fileOf({ step: 1 });
  const { header, payload } = checkFile(bytes, EXPECT);
  assert.equal(header.format, CHECKPOINT_FORMAT);
  assert.deepEqual(parseState(await decodePayload(header, payload)), {
    step: 1,
  });
});

Deno.test("checkFile() names each kind of damage", async () => {
  const good = await fileOf({ step: 1, text: "hello" });
  const failure = (bytes: Uint8Array, expect = EXPECT): CheckFailure => {
    try {
      checkFile(bytes, expect);
    } catch (err) {
      assert.ok(err instanceof CheckFailure);
      return err;
    }
    assert.fail("accepted a damaged file");
  };
  assert.match(
    failure(good.subarray(0, good.length - 1)).message,
    /^truncated: the header says \d+ payload bytes, the file holds \d+/,
  );
  assert.match(failure(new Uint8Array([...good, 32])).message, /^too long/);
  const flipped = good.slice();
  flipped[flipped.length - 3] = flipped[flipped.length - 3]! ^ 0x01;
  assert.match(failure(flipped).message, /^checksum mismatch/);
  assert.match(failure(new Uint8Array()).message, /^empty file/);
  assert.match(
    failure(new TextEncoder().encode("garbage\n")).message,
    /^unreadable header line/,
  );
  const v2 = await fileOf({}, "json", {
    format: "sturdy.checkpoint/2" as typeof CHECKPOINT_FORMAT,
  });
  const newer = failure(v2);
  assert.equal(newer.kind, "format");
  assert.match(newer.message, /unsupported format "sturdy.checkpoint\/2"/);
  assert.equal(
    newer.quarantine,
    false,
    "a newer format is left for newer code",
  );
  const alien = await fileOf({}, "json", {
    format: "other/1" as typeof CHECKPOINT_FORMAT,
  });
  assert.equal(failure(alien).quarantine, true);
  assert.equal(failure(good, { ...EXPECT, agentId: "b" }).kind, "mismatch");
  const badField = await fileOf({}, "json", {
    size: "12" as unknown as number,
  });
  assert.match(failure(badField).message, /header field "size"/);
});

Deno.test("decodePayload() and parseState() report bad bytes and bad JSON", async () => {
  const header = { encoding: "json" } as CheckpointHeader;
  // Decoding is lenient (the checksum already vouched for the bytes): a
  // stray byte becomes U+FFFD, and the JSON check still refuses it.
  const text = await decodePayload(header, new Uint8Array([0xff]));
  assert.equal(text, "\uFFFD");
  assert.throws(() => parseState(text), /invalid JSON in the payload/);
  await assert.rejects(
    decodePayload(
      { encoding: "gzip" } as CheckpointHeader,
      new Uint8Array([1, 2, 3]),
    ),
    /cannot decompress/,
  );
  assert.throws(() => parseState("{oops"), /invalid JSON in the payload/);
});

Deno.test("parseHeader() reads a header without the payload", async () => {
  const bytes = await fileOf({ step: 1 });
  const end = bytes.indexOf(10);
  const header = parseHeader(bytes.subarray(0, end + 1), EXPECT);
  assert.equal(header.seq, 1);
  assert.equal(header.stateBytes, 10);
});
