// The two state shapes the checkpoint benchmarks measure: "blob" (one long
// string: JSON costs next to nothing, so a ratio shows the manager's own
// costs) and "records" (many small objects, as agents keep: JSON.stringify
// and JSON.parse dominate).

/** The state shapes. */
export type StateShape = "blob" | "records";

/** A state of `shape` whose JSON is about `bytes` long. */
export function makeState(shape: StateShape, bytes: number): unknown {
  if (shape === "blob") return { step: 1, data: "x".repeat(bytes - 22) };
  // ~100 bytes of JSON per record.
  const items = Array.from(
    { length: Math.max(1, Math.round(bytes / 100)) },
    (_, i) => ({
      id: i,
      name: `item-${i}`,
      tags: ["a", "b"],
      score: i * 0.5,
      done: i % 2 === 0,
      note: "lorem ipsum",
    }),
  );
  return { step: 1, items };
}
