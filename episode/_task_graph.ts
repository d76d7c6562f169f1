// Dependency order of tasks (`needs`) and the cycles that prevent one.

/** The part of a task the graph looks at. */
export interface GraphTask {
  readonly id: string;
  readonly needs: readonly string[];
}

/** What {@linkcode orderTasks} found. */
export interface TaskGraph {
  /** Ids in an order where every task comes after the tasks it needs. */
  order: string[];
  /** Each cycle as ids from a task back to itself: `["a", "b", "a"]`. */
  cycles: string[][];
}

/**
 * Orders tasks so each comes after everything it needs, keeping file order
 * wherever the dependencies allow (Kahn's algorithm, always taking the
 * earliest ready task). Needs naming unknown tasks are ignored here; tasks
 * on a cycle, and tasks that need them, are left out of `order` and each
 * cycle is reported once, starting at its earliest task.
 */
export function orderTasks(tasks: readonly GraphTask[]): TaskGraph {
  const indexOf = new Map<string, number>();
  tasks.forEach((task, i) => {
    if (!indexOf.has(task.id)) indexOf.set(task.id, i);
  });
  // needs[i]: the task indexes task i waits for; dependents: the reverse.
  const needs = tasks.map((task) => [
    ...new Set(
      task.needs.flatMap((id) => {
        const j = indexOf.get(id);
        return j === undefined ? [] : [j];
      }),
    ),
  ]);
  const dependents: number[][] = tasks.map(() => []);
  const waiting = needs.map((list) => list.length);
  needs.forEach((list, i) => list.forEach((j) => dependents[j]!.push(i)));

  const ready = waiting.flatMap((count, i) => count === 0 ? [i] : []);
  const order: string[] = [];
  const placed = new Set<number>();
  while (ready.length > 0) {
    const i = ready.shift()!; // `ready` stays sorted, so this is the earliest
    order.push(tasks[i]!.id);
    placed.add(i);
    for (const d of dependents[i]!) {
      if (--waiting[d]! === 0) ready.splice(insertionPoint(ready, d), 0, d);
    }
  }

  const cycles: string[][] = [];
  const onReportedCycle = new Set<number>();
  for (let start = 0; start < tasks.length; start++) {
    if (placed.has(start) || onReportedCycle.has(start)) continue;
    const cycle = shortestCycle(start, needs, placed);
    if (cycle === undefined) continue; // it only waits on a cycle
    cycle.forEach((i) => onReportedCycle.add(i));
    cycles.push(cycle.map((i) => tasks[i]!.id));
  }
  return { order, cycles };
}

/** Breadth-first search along `needs` from `start` back to itself. */
function shortestCycle(
  start: number,
  needs: readonly number[][],
  placed: ReadonlySet<number>,
): number[] | undefined {
  const cameFrom = new Map<number, number>();
  const queue = [start];
  for (let head = 0; head < queue.length; head++) {
    const from = queue[head]!;
    for (const to of needs[from]!) {
      if (placed.has(to)) continue;
      if (to === start) {
        const back: number[] = [];
        for (let at = from; at !== start; at = cameFrom.get(at)!) back.push(at);
        return [start, ...back.reverse(), start];
      }
      if (!cameFrom.has(to)) {
        cameFrom.set(to, from);
        queue.push(to);
      }
    }
  }
  return undefined;
}

function insertionPoint(sorted: readonly number[], value: number): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const mid = (low + high) >> 1;
    if (sorted[mid]! < value) low = mid + 1;
    else high = mid;
  }
  return low;
}
