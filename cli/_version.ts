// Kept equal to deno.json's "version" by tests/cli/version_test.ts. A
// constant instead of importing deno.json keeps the compiled binary and the
// published package free of the project's config file.
export const VERSION = "0.1.0";
