// Demo task: read-modify-write of work/counter.json, slowly, so two copies
// running at once would lose an update without the episode's lock.
import { readJson, writeJson } from "../../../fs/mod.ts";

const path = "work/counter.json";
const { count } = await readJson<{ count: number }>(path);
await new Promise((r) => setTimeout(r, 200));
await writeJson(path, { count: count + 1 });
console.log(
  `${Deno.env.get("STURDY_TASK_ID")}: counter ${count} -> ${count + 1}`,
);
