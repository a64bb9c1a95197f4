// The proxy fixture with the ORM suites' blog tables, usable by the proxy's `app` user (Knex and
// postgres.js suites through the proxy).

import { BLOG_SCHEMA } from './orm-cluster.js'
import { type ProxyFixture, startProxyFixture } from './proxy-fixture.js'

/** Tables owned by the superuser, granted to `app`, which the tests and examples log in as. */
const APP_BLOG_SCHEMA = [
  ...BLOG_SCHEMA,
  'GRANT ALL ON SCHEMA public TO app',
  'GRANT ALL ON ALL TABLES IN SCHEMA public TO app',
  'GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO app',
]

/** A primary, two replicas and the proxy in front, seeded with the blog tables. */
export function startBlogProxy(patch: Record<string, unknown> = {}): Promise<ProxyFixture> {
  return startProxyFixture(patch, 2, async (cluster) => {
    for (const sql of APP_BLOG_SCHEMA) await cluster.query('primary', sql)
  })
}
