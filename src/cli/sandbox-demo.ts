// The sandbox's demo data: accounts, orders and a ledger, loaded into database `freshet` on the primary.

/** Statements run in order on the primary as the superuser; tables are owned by postgres, granted to app. */
export const DEMO_SCHEMA = [
  `CREATE TABLE accounts (
    id bigserial PRIMARY KEY,
    email text NOT NULL UNIQUE,
    name text NOT NULL,
    balance_cents bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now())`,
  `CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    account_id bigint NOT NULL REFERENCES accounts,
    status text NOT NULL,
    total_cents bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now())`,
  `CREATE TABLE ledger_entries (
    id bigserial PRIMARY KEY,
    account_id bigint NOT NULL REFERENCES accounts,
    order_id bigint REFERENCES orders,
    amount_cents bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now())`,
  `INSERT INTO accounts (email, name, balance_cents)
    SELECT 'user' || g || '@example.com', 'User ' || g, (g * 7919) % 100000 FROM generate_series(1, 1000) g`,
  `INSERT INTO orders (account_id, status, total_cents, created_at)
    SELECT 1 + g % 1000, (ARRAY['pending', 'paid', 'shipped', 'cancelled'])[1 + g % 4], 500 + (g * 31) % 20000,
           now() - g * interval '1 minute'
    FROM generate_series(1, 5000) g`,
  `INSERT INTO ledger_entries (account_id, order_id, amount_cents)
    SELECT account_id, id, -total_cents FROM orders WHERE status <> 'cancelled'`,
  'CREATE INDEX ON orders (account_id)',
  'CREATE INDEX ON ledger_entries (account_id)',
  'ANALYZE',
]
