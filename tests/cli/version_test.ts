import assert from "node:assert/strict";
import { VERSION } from "../../cli/_version.ts";

Deno.test("the CLI's version constant matches deno.json", async () => {
  const config = JSON.parse(
    await Deno.readTextFile(new URL("../../deno.json", import.meta.url)),
  );
  assert.equal(VERSION, config.version);
});
