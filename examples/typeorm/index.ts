// TypeORM on freshet: the DataSource gets freshet's pool through its `driver` option; an author writes a
// post in a transaction, reads it back at once, then lists the feed from a replica.
//
// Run (beside a running `npx freshet sandbox`, which writes freshet.yaml):
//   FRESHET_CONFIG=freshet.yaml npx tsx examples/typeorm/index.ts
// Each statement prints the node and port it ran on, read from the server.
// The three lines that change when adopting freshet are marked "freshet (n)".

import { pathToFileURL } from 'node:url'
import { DataSource, EntitySchema } from 'typeorm'
// freshet (1): new import. In your app: `from 'freshet'`.
import {
  createPool,
  type FreshetConfigInput,
  type FreshetPool,
  freshness,
  withScope,
} from '../../src/index.js'
import { SERVED_BY, servedBy } from '../served-by.js'

export interface Author {
  id: number
  email: string
  name: string
  posts?: Post[]
}
export interface Post {
  id: number
  title: string
  published: boolean
  author: Author
}

export const AuthorEntity = new EntitySchema<Author>({
  name: 'Author',
  tableName: 'authors',
  columns: {
    id: { type: Number, primary: true, generated: 'increment' },
    email: { type: String, unique: true },
    name: { type: String },
  },
  relations: { posts: { type: 'one-to-many', target: 'Post', inverseSide: 'author' } },
})

export const PostEntity = new EntitySchema<Post>({
  name: 'Post',
  tableName: 'posts',
  columns: {
    id: { type: Number, primary: true, generated: 'increment' },
    title: { type: String },
    published: { type: Boolean, default: false },
  },
  relations: {
    author: {
      type: 'many-to-one',
      target: 'Author',
      joinColumn: { name: 'author_id' },
      inverseSide: 'posts',
    },
  },
})

/**
 * A stand-in for the `pg` module in TypeORM's `driver` option: TypeORM builds its pool with
 * `new driver.Pool(options)`, and a constructor that returns an object yields that object, here freshet's
 * pool. TypeORM's connection options (host, poolSize ...) are ignored; the freshet config has them.
 */
export function freshetDriver(pool: FreshetPool): { Pool: new (options?: unknown) => FreshetPool } {
  return {
    Pool: function FreshetPoolForTypeOrm() {
      return pool
    } as unknown as new (
      options?: unknown,
    ) => FreshetPool,
  }
}

/** A DataSource whose every statement goes through `pool`. `dataSource.destroy()` ends the pool. */
export function dataSourceFor(pool: FreshetPool): DataSource {
  return new DataSource({
    type: 'postgres',
    // freshet (2): was host/port/username/password; TypeORM now asks freshet's pool for connections.
    driver: freshetDriver(pool),
    entities: [AuthorEntity, PostEntity],
    synchronize: false,
  })
}

/** Runs the demo against the cluster in `config` (a config object or a YAML/JSON path) and returns what it read. */
export async function main(config: FreshetConfigInput | string, log: (line: string) => void = console.log) {
  const pool = createPool(config)
  pool.on('decision', (d) => log(`routed to ${d.target} (${d.reason})`))
  const dataSource = await dataSourceFor(pool).initialize()
  try {
    await dataSource.query(
      'CREATE TABLE IF NOT EXISTS authors (id serial PRIMARY KEY, email text UNIQUE NOT NULL, name text NOT NULL)',
    )
    await dataSource.query(`CREATE TABLE IF NOT EXISTS posts (id serial PRIMARY KEY, title text NOT NULL,
      published boolean NOT NULL DEFAULT false, author_id int NOT NULL REFERENCES authors (id))`)
    const posts = dataSource.getRepository(PostEntity)
    // One scope per unit of work (an HTTP request, a job): reads in it see its own writes.
    return await withScope(async () => {
      const postId = await dataSource.transaction(async (manager) => {
        await manager
          .createQueryBuilder()
          .insert()
          .into(AuthorEntity)
          .values({ email: 'grace@example.com', name: 'Grace' })
          .orIgnore()
          .execute()
        const author = await manager.findOneByOrFail(AuthorEntity, { email: 'grace@example.com' })
        const post = await manager.save(PostEntity, {
          title: 'Compilers for everyone',
          published: true,
          author,
        })
        // a transaction runs on one node: ask it which
        const [where] = await manager.query(`SELECT ${SERVED_BY}`)
        log(servedBy('write (transaction) save(PostEntity)', where))
        return post.id
      })
      // Read-your-writes: a replica that has replayed the transaction, or the primary.
      const mine = await freshness('eventual', () =>
        posts
          .createQueryBuilder('p')
          .addSelect("current_setting('cluster_name')", 'node')
          .addSelect('inet_server_port()', 'port')
          .where('p.id = :id', { id: postId })
          .getRawAndEntities(),
      )
      log(servedBy('read (eventual, own write) post by id', mine.raw[0]))
      // freshet (3): say how fresh a read must be; the builder's `comment` becomes a leading hint comment.
      const feed = await posts
        .createQueryBuilder('p')
        .comment('FRESHNESS: EVENTUAL')
        .innerJoinAndSelect('p.author', 'a')
        .addSelect("current_setting('cluster_name')", 'node')
        .addSelect('inet_server_port()', 'port')
        .where('p.published')
        .orderBy('p.id', 'DESC')
        .take(10)
        .getRawAndEntities()
      log(servedBy('read (eventual) the feed', feed.raw[0]))
      return {
        postId,
        mine: mine.entities[0]?.title,
        feed: feed.entities.map((p) => ({ title: p.title, author: p.author.name })),
      }
    })
  } finally {
    await dataSource.destroy()
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  console.log(await main(process.env.FRESHET_CONFIG ?? 'freshet.yaml'))
}
