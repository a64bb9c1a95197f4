// Where a statement ran, as the server itself says: its cluster_name (the node's name) and its port.
// Every example prints one such line per statement, so what you see is not freshet's opinion.

/** Select-list columns naming the server that runs the statement (set cluster_name on each node). */
export const SERVED_BY = "current_setting('cluster_name') AS node, inet_server_port() AS port"

/**
 * One printed line per statement.
 * @example servedBy('read (eventual) the feed', { node: 'replica_1', port: 54321 }) // 'read (eventual) the feed: ran on replica_1 (port 54321)'
 */
export function servedBy(label: string, row: object | undefined): string {
  if (!row) return `${label}: no row came back to tell where it ran`
  const { node, port } = row as { node?: unknown; port?: unknown }
  return `${label}: ran on ${String(node)} (port ${String(port)})`
}
