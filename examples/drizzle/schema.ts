// Drizzle table definitions for the example: authors and their posts.

import { relations } from 'drizzle-orm'
import { boolean, integer, pgTable, serial, text } from 'drizzle-orm/pg-core'

export const authors = pgTable('authors', {
  id: serial('id').primaryKey(),
  email: text('email').notNull().unique(),
  name: text('name').notNull(),
})

export const posts = pgTable('posts', {
  id: serial('id').primaryKey(),
  title: text('title').notNull(),
  published: boolean('published').notNull().default(false),
  authorId: integer('author_id')
    .notNull()
    .references(() => authors.id),
})

export const authorsRelations = relations(authors, ({ many }) => ({ posts: many(posts) }))
export const postsRelations = relations(posts, ({ one }) => ({
  author: one(authors, { fields: [posts.authorId], references: [authors.id] }),
}))

/** DDL matching the tables above (the example creates them; an app would use drizzle-kit migrations). */
export const SCHEMA_SQL = [
  'CREATE TABLE IF NOT EXISTS authors (id serial PRIMARY KEY, email text UNIQUE NOT NULL, name text NOT NULL)',
  `CREATE TABLE IF NOT EXISTS posts (id serial PRIMARY KEY, title text NOT NULL,
     published boolean NOT NULL DEFAULT false, author_id int NOT NULL REFERENCES authors (id))`,
]
