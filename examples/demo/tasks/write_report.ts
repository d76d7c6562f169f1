// Demo task: writes work/report.json with Sturdy's durable atomic write.
import { writeJson } from "../../../fs/mod.ts";

const report = { generated: new Date().toISOString(), items: 42 };
await writeJson("work/report.json", report);
console.log("write-report: wrote work/report.json durably");
