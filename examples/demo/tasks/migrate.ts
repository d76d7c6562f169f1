// Demo task: a migration that rewrites two files, then fails half-way.
// The episode rolls both files back to their exact bytes.
await Deno.writeTextFile("work/config.json", '{ "schema": 2, "half": ');
await Deno.writeTextFile("work/users.csv", "id;name\n");
console.error("migrate-schema: step 2 of 3 failed: column 'email' is missing");
Deno.exit(1);
