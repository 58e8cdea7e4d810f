// The broker's admin tool for the RabbitMQ fault specs: outages, dropped connections, memory alarms.
import { execFileSync } from 'node:child_process';

/** Runs `rabbitmqctl` with `args` and returns what it printed (throws with its output when it fails). */
export function rabbitmqctl(...args: string[]): string {
  return execFileSync('rabbitmqctl', args, { stdio: 'pipe', timeout: 120_000 }).toString();
}

/**
 * Closes, from the broker's side, the connections whose client-provided name starts with `prefix` (amqpModule's
 * `connectionName`), as an operator or a network failure would, leaving other clients of the broker alone.
 * Returns how many it closed.
 * @example closeConnectionsNamed(topology.prefix); // both of the app's connections: publish and consume
 */
export function closeConnectionsNamed(prefix: string): number {
  // `<rabbit@host.…>` pids, as close_connection takes them, with the client properties on the same line.
  const ours = rabbitmqctl('list_connections', 'pid', 'client_properties', '-q')
    .split('\n')
    .filter((line) => line.includes(`"connection_name","${prefix} `));
  for (const line of ours) rabbitmqctl('close_connection', line.split('\t')[0]!, 'spec: connection drop');
  return ours.length;
}

/**
 * The broker's memory watermark as `set_vm_memory_high_watermark` arguments, to put it back after an alarm. A value
 * this small is an alarm a crashed run left behind: the default (0.4) is given back instead.
 */
export function currentWatermark(): string[] {
  const raw = rabbitmqctl('eval', 'vm_memory_monitor:get_vm_memory_high_watermark().').trim();
  const absolute = raw.match(/^\{absolute,\s*"?([^"}]+)"?\}$/);
  if (absolute) return ['absolute', absolute[1]!];
  if (/^[0-9.]+$/.test(raw)) return Number(raw) < 0.01 ? ['0.4'] : [raw];
  throw new Error(`cannot read the memory watermark (rabbitmqctl eval said ${raw}): restore it by hand`);
}

/** A queue as `rabbitmqctl list_queues` shows it: its type and declared arguments (name → value). */
export interface ListedQueue {
  readonly type: string;
  readonly arguments: Readonly<Record<string, unknown>>;
}

/**
 * The broker's queues whose name starts with `prefix`, by name, as the broker itself has them (no management plugin
 * needed): what a spec checks the library declared.
 * @example expect(queuesNamed(topology.prefix).get(queue)?.type).to.equal('quorum');
 */
export function queuesNamed(prefix: string): Map<string, ListedQueue> {
  const listed = JSON.parse(
    rabbitmqctl('list_queues', 'name', 'type', 'arguments', '--formatter', 'json', '-q'),
  ) as Array<{ name: string; type: string; arguments: Array<[string, string, unknown]> }>;
  return new Map(
    listed
      .filter((queue) => queue.name.startsWith(prefix))
      .map((queue) => [
        queue.name,
        { type: queue.type, arguments: Object.fromEntries(queue.arguments.map(([name, , value]) => [name, value])) },
      ]),
  );
}
