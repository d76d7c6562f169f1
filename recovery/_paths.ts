// Every path recovery/ touches, built from validated task ids only, so
// nothing user-supplied reaches the file system unchecked.
import { join } from "node:path";

/** The folders under `<root>/recovery/`. */
export interface RecoveryPaths {
  dir: string;
  tasks: string;
  logs: string;
  escalations: string;
  snapshots: string;
  task(id: string): string;
  log(id: string): string;
  escalation(id: string): string;
  snapshot(id: string): string;
}

export function recoveryPaths(root: string): RecoveryPaths {
  const dir = join(root, "recovery");
  const tasks = join(dir, "tasks");
  const logs = join(dir, "logs");
  const escalations = join(dir, "escalations");
  const snapshots = join(dir, "snapshots");
  return {
    dir,
    tasks,
    logs,
    escalations,
    snapshots,
    task: (id) => join(tasks, `${id}.json`),
    log: (id) => join(logs, `${id}.jsonl`),
    escalation: (id) => join(escalations, `${id}.json`),
    snapshot: (id) => join(snapshots, id),
  };
}
