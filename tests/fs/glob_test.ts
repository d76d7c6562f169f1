import assert from "node:assert/strict";
import { compileGlobs, expandBraces, GlobSyntaxError } from "../../fs/_glob.ts";

// [pattern, path, isDir, expected]
const CASES: Array<[string, string, boolean, boolean]> = [
  ["*.ts", "a.ts", false, true],
  ["*.ts", "src/a.ts", false, false],
  ["*.ts", ".hidden.ts", false, true],
  ["**/*.ts", "a.ts", false, true],
  ["**/*.ts", "src/lib/a.ts", false, true],
  ["**/*.ts", "src/lib/a.tsx", false, false],
  ["**/*.ts", "src/lib/a.ts/b", false, false],
  ["*.{ts,tsx}", "a.tsx", false, true],
  ["*.{ts,tsx}", "a.ts", false, true],
  ["*.{ts,tsx}", "a.js", false, false],
  ["{src,lib}/**/*.ts", "lib/x/y.ts", false, true],
  ["{src,lib}/**/*.ts", "test/y.ts", false, false],
  ["a/{b,c{d,e}}/f", "a/ce/f", false, true],
  ["a/{b,c{d,e}}/f", "a/cf/f", false, false],
  ["src/**", "src", true, true],
  ["src/**", "src/a/b.ts", false, true],
  ["src/**", "srcx/a", false, false],
  ["src/**/test", "src/test", true, true],
  ["src/**/test", "src/a/b/test", true, true],
  ["src/**/test", "src/atest", true, false],
  ["**", "anything/at/all", false, true],
  ["?.ts", "a.ts", false, true],
  ["?.ts", "ab.ts", false, false],
  ["?", "/", false, false],
  ["[abc].ts", "b.ts", false, true],
  ["[abc].ts", "d.ts", false, false],
  ["[a-c]x", "bx", false, true],
  ["[!a-c]x", "dx", false, true],
  ["[!a-c]x", "ax", false, false],
  ["[^a-c]x", "ax", false, false],
  ["[]]", "]", false, true],
  ["[a-]", "-", false, true],
  ["a[!-~]b", "a/b", false, false],
  ["[[:digit:]][[:upper:]]", "7Q", false, true],
  ["[[:digit:]][[:upper:]]", "7q", false, false],
  ["\\*.ts", "*.ts", false, true],
  ["\\*.ts", "a.ts", false, false],
  ["a.b", "axb", false, false],
  ["(x)+", "(x)+", false, true],
  ["./src/*.ts", "src/a.ts", false, true],
  ["build/", "build", true, true],
  ["build/", "build", false, false],
  ["a//b", "a/b", false, true],
  ["**/**/x", "x", false, true],
  ["a**b", "axxb", false, true],
  ["a**b", "ax/b", false, false],
  ["{a}", "{a}", false, true],
  ["{a", "{a", false, true],
  ["é?", "éü", false, true],
];

for (const [pattern, path, isDir, expected] of CASES) {
  Deno.test(`glob "${pattern}" ${expected ? "matches" : "does not match"} ${isDir ? "directory" : "file"} "${path}"`, () => {
    assert.equal(compileGlobs([pattern]).match(path, isDir), expected);
  });
}

// [pattern, directory, could something below it match]
const BELOW: Array<[string, string, boolean]> = [
  ["src/**", "src", true],
  ["src/**", "lib", false],
  ["src/*.ts", "src", true],
  ["src/*.ts", "src/a", false],
  ["**/*.ts", "any/where", true],
  ["a/**/z/*.ts", "a/b/c", true],
  ["{src,lib}/x/*.ts", "lib/x", true],
  ["{src,lib}/x/*.ts", "lib/y", false],
  ["*.ts", "src", false],
];

for (const [pattern, dir, expected] of BELOW) {
  Deno.test(`glob "${pattern}" ${expected ? "may" : "cannot"} match below "${dir}"`, () => {
    assert.equal(
      compileGlobs([pattern]).couldMatchBelow(dir.split("/")),
      expected,
    );
  });
}

Deno.test("compileGlobs() matches when any of several patterns does", () => {
  const m = compileGlobs(["*.md", "docs/**"]);
  assert.ok(m.match("README.md", false));
  assert.ok(m.match("docs/a/b.txt", false));
  assert.ok(!m.match("src/a.ts", false));
});

Deno.test("compileGlobs() with no patterns matches nothing", () => {
  const m = compileGlobs([]);
  assert.ok(!m.match("a", false));
  assert.ok(!m.couldMatchBelow(["a"]));
});

Deno.test("compileGlobs() rejects an empty pattern, an unclosed [ and an unknown class", () => {
  assert.throws(() => compileGlobs([""]), GlobSyntaxError);
  assert.throws(() => compileGlobs(["a[bc"]), /no closing "\]"/);
  assert.throws(
    () => compileGlobs(["[[:nope:]]"]),
    /not a known character class/,
  );
});

Deno.test("expandBraces() expands nested alternatives and bounds the count", () => {
  assert.deepEqual(expandBraces("a{b,c{d,e}}f"), ["abf", "acdf", "acef"]);
  assert.deepEqual(expandBraces("\\{a,b}"), ["\\{a,b}"]);
  const huge = "{a,b,c,d}".repeat(6); // 4^6 = 4096 alternatives
  assert.throws(() => expandBraces(huge), /more than 1024 alternatives/);
});
