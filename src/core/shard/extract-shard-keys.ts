// Finds the shard key of a statement in PostgreSQL's own parse tree (libpg-query JSON): key equality at the
// top level of WHERE (literal or $n, aliases and qualified names), IN lists, INSERT ... VALUES / SELECT,
// UPDATE / DELETE by key. Conservative: anything it cannot prove names no single key.

import type { ShardKeyType } from './shard-key.js'

/** A sharded table's key column, from `sharding.tables` (names lower-cased). */
export interface ShardedTable {
  /** The name as configured (`orders` or `sales.orders`), lower-cased. */
  readonly table: string
  readonly key: string
  readonly type: ShardKeyType
}

/** A key value in the statement: a literal, or a parameter resolved at Bind. */
export type KeyRef =
  | { readonly table: string; readonly kind: 'literal'; readonly value: string | null }
  | { readonly table: string; readonly kind: 'param'; readonly index: number }

/** What a statement says about its shard keys. */
export interface ShardKeyFacts {
  /** Every key value that selects or writes rows of a sharded table. */
  readonly keys: readonly KeyRef[]
  /** Sharded tables (configured names) reached without a key: the statement then spans shards. */
  readonly unkeyed: readonly string[]
  /** Sharded tables the statement names at all. */
  readonly sharded: readonly string[]
  /** New key values an UPDATE (or INSERT ... ON CONFLICT DO UPDATE) assigns to the key column. */
  readonly moves: readonly KeyRef[]
  /** An assignment to a key column that is not a literal or parameter: the row may move anywhere. */
  readonly unknownMove: boolean
}

// biome-ignore lint/suspicious/noExplicitAny: libpg-query's JSON parse tree, walked generically
type Node = any

/** Looks sharded tables up by `relname` and by `schema.relname`. */
export class ShardedTables {
  readonly #byName = new Map<string, ShardedTable>()

  constructor(tables: readonly ShardedTable[]) {
    for (const t of tables) this.#byName.set(t.table.toLowerCase(), { ...t, key: t.key.toLowerCase() })
  }

  /** The sharded table a RangeVar names, or undefined. `public.orders` matches a configured `orders`. */
  lookup(rv: { schemaname?: string; relname?: string }): ShardedTable | undefined {
    const rel = rv.relname?.toLowerCase()
    if (!rel) return undefined
    if (rv.schemaname) {
      const q = this.#byName.get(`${rv.schemaname.toLowerCase()}.${rel}`)
      if (q) return q
      if (rv.schemaname.toLowerCase() !== 'public') return undefined
    }
    return this.#byName.get(rel)
  }

  get size(): number {
    return this.#byName.size
  }
}

interface ScopeTable {
  readonly spec: ShardedTable
  /** Names the scope may qualify the table's columns with (alias, or relname and schema.relname). */
  readonly refs: readonly string[]
  readonly group: number
}

class Collector {
  readonly keys: KeyRef[] = []
  readonly unkeyed = new Set<string>()
  readonly sharded = new Set<string>()
  readonly moves: KeyRef[] = []
  unknownMove = false
  readonly claimed = new WeakSet<object>()
}

/** A literal or $n (through casts), or undefined when the expression is anything else. */
function keyValue(node: Node, table: string): KeyRef | undefined {
  if (!node || typeof node !== 'object') return undefined
  if (node.TypeCast) return keyValue(node.TypeCast.arg, table)
  if (node.ParamRef) return { table, kind: 'param', index: node.ParamRef.number as number }
  const c = node.A_Const
  if (!c) return undefined
  if (c.isnull) return { table, kind: 'literal', value: null }
  if (c.ival) return { table, kind: 'literal', value: String(c.ival.ival ?? 0) }
  if (c.fval) return { table, kind: 'literal', value: String(c.fval.fval) }
  if (c.sval) return { table, kind: 'literal', value: String(c.sval.sval ?? '') }
  if (c.boolval) return undefined
  return undefined
}

function columnRef(node: Node): string[] | undefined {
  const fields = node?.ColumnRef?.fields
  if (!Array.isArray(fields) || fields.some((f: Node) => f.String === undefined)) return undefined
  return fields.map((f: Node) => String(f.String.sval).toLowerCase())
}

/** The scope tables a column reference can mean: qualified by a ref, or unqualified by key name. */
function tablesOfColumn(ref: string[], tables: readonly ScopeTable[]): ScopeTable[] {
  const col = ref[ref.length - 1]!
  if (ref.length === 1) return tables.filter((t) => t.spec.key === col)
  const qualifier = ref.slice(0, -1).join('.')
  return tables.filter((t) => t.spec.key === col && t.refs.includes(qualifier))
}

function conjuncts(node: Node, out: Node[]): Node[] {
  if (!node) return out
  if (node.BoolExpr?.boolop === 'AND_EXPR') for (const a of node.BoolExpr.args) conjuncts(a, out)
  else out.push(node)
  return out
}

function opName(expr: Node): string | undefined {
  const n = expr.name
  return Array.isArray(n) && n.length === 1 ? n[0]?.String?.sval : undefined
}

/** Reads key constraints and key-to-key joins out of one conjunct. */
function constrain(
  node: Node,
  tables: readonly ScopeTable[],
  keyed: Map<number, KeyRef[]>,
  join: (a: number, b: number) => void,
): void {
  const e = node.A_Expr
  if (!e || opName(e) !== '=') return
  if (e.kind === 'AEXPR_OP') {
    const l = columnRef(e.lexpr)
    const r = columnRef(e.rexpr)
    if (l && r) {
      const lt = tablesOfColumn(l, tables)
      const rt = tablesOfColumn(r, tables)
      if (lt.length === 1 && rt.length === 1) join(lt[0]!.group, rt[0]!.group)
      return
    }
    const col = l ?? r
    const other = l ? e.rexpr : e.lexpr
    if (!col) return
    for (const t of tablesOfColumn(col, tables)) {
      const v = keyValue(other, t.spec.table)
      if (v) keyed.set(t.group, [...(keyed.get(t.group) ?? []), v])
    }
  } else if (e.kind === 'AEXPR_IN') {
    const col = columnRef(e.lexpr)
    const items = e.rexpr?.List?.items
    if (!col || !Array.isArray(items)) return
    for (const t of tablesOfColumn(col, tables)) {
      const vs: (KeyRef | undefined)[] = items.map((i: Node) => keyValue(i, t.spec.table))
      if (vs.every((v): v is KeyRef => v !== undefined))
        keyed.set(t.group, [...(keyed.get(t.group) ?? []), ...vs])
    }
  }
}

/** Collects FROM-clause tables (through joins), join conditions and USING lists of one scope. */
function fromItems(
  items: Node[] | undefined,
  tables: ScopeTable[],
  quals: Node[],
  using: string[][],
  c: Collector,
  st: ShardedTables,
): void {
  for (const item of items ?? []) {
    if (item.RangeVar) addTable(item.RangeVar, tables, c, st)
    else if (item.JoinExpr) {
      const j = item.JoinExpr
      fromItems([j.larg, j.rarg], tables, quals, using, c, st)
      if (j.quals) quals.push(j.quals)
      if (Array.isArray(j.usingClause))
        using.push(j.usingClause.map((u: Node) => String(u.String?.sval).toLowerCase()))
    }
  }
}

function addTable(rv: Node, tables: ScopeTable[], c: Collector, st: ShardedTables): void {
  c.claimed.add(rv)
  const spec = st.lookup(rv)
  if (!spec) return
  c.sharded.add(spec.table)
  const rel = String(rv.relname).toLowerCase()
  const refs = rv.alias?.aliasname
    ? [String(rv.alias.aliasname).toLowerCase()]
    : [rel, ...(rv.schemaname ? [`${String(rv.schemaname).toLowerCase()}.${rel}`] : [])]
  tables.push({ spec, refs, group: tables.length })
}

/**
 * One query level: its sharded tables, grouped by key-to-key equalities (co-located joins); every group
 * needs a key from the top-level WHERE (or an inner join's condition), else its tables count as unkeyed.
 */
function scope(tables: ScopeTable[], where: Node, quals: Node[], using: string[][], c: Collector): void {
  if (tables.length === 0) return
  const parent = tables.map((_, i) => i)
  const find = (i: number): number => {
    let root = i
    while (parent[root] !== root) root = parent[root]!
    return root
  }
  const join = (a: number, b: number) => {
    parent[find(a)] = find(b)
  }
  const keyed = new Map<number, KeyRef[]>()
  for (const u of using) {
    const withCol = tables.filter((t) => u.includes(t.spec.key))
    for (let i = 1; i < withCol.length; i++) join(withCol[0]!.group, withCol[i]!.group)
  }
  for (const node of [...conjuncts(where, []), ...quals.flatMap((q) => conjuncts(q, []))]) {
    constrain(node, tables, keyed, join)
  }
  const groupKeys = new Map<number, KeyRef[]>()
  for (const [g, refs] of keyed) groupKeys.set(find(g), [...(groupKeys.get(find(g)) ?? []), ...refs])
  for (const t of tables) {
    const refs = groupKeys.get(find(t.group))
    if (!refs) c.unkeyed.add(t.spec.table)
  }
  for (const refs of groupKeys.values()) c.keys.push(...refs)
}

function selectScope(s: Node, c: Collector, st: ShardedTables): void {
  // UNION / INTERSECT / EXCEPT: the branches are bare SelectStmt bodies, each its own query level
  if (s.larg) selectScope(s.larg, c, st)
  if (s.rarg) selectScope(s.rarg, c, st)
  const tables: ScopeTable[] = []
  const quals: Node[] = []
  const using: string[][] = []
  fromItems(s.fromClause, tables, quals, using, c, st)
  scope(tables, s.whereClause, quals, using, c)
}

function assignments(targets: Node[] | undefined, spec: ShardedTable, c: Collector): void {
  for (const t of targets ?? []) {
    const rt = t.ResTarget
    if (rt?.name?.toLowerCase() !== spec.key) continue
    const v = keyValue(rt.val, spec.table)
    if (v) c.moves.push(v)
    else c.unknownMove = true
  }
}

function updateScope(u: Node, c: Collector, st: ShardedTables, usingKey: 'fromClause' | 'usingClause'): void {
  const tables: ScopeTable[] = []
  const quals: Node[] = []
  const using: string[][] = []
  addTable(u.relation, tables, c, st)
  fromItems(u[usingKey], tables, quals, using, c, st)
  scope(tables, u.whereClause, quals, using, c)
  const target = st.lookup(u.relation)
  if (target && usingKey === 'fromClause') assignments(u.targetList, target, c)
}

function insertScope(ins: Node, c: Collector, st: ShardedTables): void {
  c.claimed.add(ins.relation)
  const spec = st.lookup(ins.relation)
  if (!spec) return
  c.sharded.add(spec.table)
  const cols: string[] = (ins.cols ?? []).map((r: Node) => String(r.ResTarget?.name).toLowerCase())
  const at = cols.indexOf(spec.key)
  const sel = ins.selectStmt?.SelectStmt
  const rows: Node[][] | undefined = sel?.valuesLists
    ? sel.valuesLists.map((l: Node) => l.List?.items ?? [])
    : sel && (sel.op ?? 'SETOP_NONE') === 'SETOP_NONE' && Array.isArray(sel.targetList)
      ? [sel.targetList.map((t: Node) => t.ResTarget?.val)]
      : undefined
  if (at < 0 || !rows) {
    c.unkeyed.add(spec.table)
  } else {
    for (const row of rows) {
      const v = keyValue(row[at], spec.table)
      if (v) c.keys.push(v)
      else c.unkeyed.add(spec.table)
    }
  }
  const conflict = ins.onConflictClause
  if (conflict?.action === 'ONCONFLICT_UPDATE') assignments(conflict.targetList, spec, c)
}

function walk(node: Node, c: Collector, st: ShardedTables): void {
  if (Array.isArray(node)) {
    for (const n of node) walk(n, c, st)
    return
  }
  if (!node || typeof node !== 'object') return
  if (node.SelectStmt) selectScope(node.SelectStmt, c, st)
  else if (node.UpdateStmt) updateScope(node.UpdateStmt, c, st, 'fromClause')
  else if (node.DeleteStmt) updateScope(node.DeleteStmt, c, st, 'usingClause')
  else if (node.InsertStmt) insertScope(node.InsertStmt, c, st)
  else {
    // a sharded table named outside any FROM list we read (DDL, COPY, TRUNCATE, LOCK, MERGE ...); fields
    // such as `relation` hold a bare RangeVar, lists hold `{ RangeVar }`
    const rv = node.RangeVar ?? (typeof node.relname === 'string' && 'relpersistence' in node ? node : null)
    const spec = rv && !c.claimed.has(rv) ? st.lookup(rv) : undefined
    if (spec) {
      c.sharded.add(spec.table)
      c.unkeyed.add(spec.table)
    }
  }
  for (const v of Object.values(node)) if (v && typeof v === 'object') walk(v, c, st)
}

/**
 * Reads the shard keys out of a parsed statement list (`parseSync(sql).stmts`).
 *
 * Each query level (a SELECT with its FROM list, an UPDATE, a DELETE, an INSERT) is looked at on its own:
 * its sharded tables must be keyed by equality or IN at the top level of WHERE, or joined key-to-key to
 * a keyed table (`o.customer_id = c.id`, `USING (customer_id)`: such tables are co-located). A table
 * reached any other way (a subquery without its own key, OR, ANY(array), DDL) is reported in `unkeyed`.
 *
 * @example
 * extractShardKeys(parseSync('SELECT * FROM orders o WHERE o.customer_id = $1').stmts, tables)
 * // { keys: [{ table: 'orders', kind: 'param', index: 1 }], unkeyed: [], sharded: ['orders'], moves: [], unknownMove: false }
 */
export function extractShardKeys(stmts: readonly Node[], tables: ShardedTables): ShardKeyFacts {
  const c = new Collector()
  if (tables.size > 0) walk(stmts, c, tables)
  return Object.freeze({
    keys: Object.freeze(c.keys),
    unkeyed: Object.freeze([...c.unkeyed]),
    sharded: Object.freeze([...c.sharded]),
    moves: Object.freeze(c.moves),
    unknownMove: c.unknownMove,
  })
}
