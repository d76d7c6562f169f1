// Child of recover_dir_test.ts, run without --allow-all: starts
// writeStream(<path>) with a stream that yields one chunk and then never
// ends, prints "writing" once its temp holds that chunk, and waits to be
// stopped or killed.

import { writeStream } from "../../fs/mod.ts";

const [path] = Deno.args;
let sent = false;
const stream = new ReadableStream<Uint8Array>({
  pull(controller) {
    if (!sent) {
      sent = true;
      controller.enqueue(new TextEncoder().encode("half"));
      return;
    }
    console.log("writing");
    return new Promise<void>(() => {}); // the rest never comes
  },
}, { highWaterMark: 0 });
setInterval(() => {}, 60_000); // stay alive while the write waits
await writeStream(path!, stream);
