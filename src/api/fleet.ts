// Fleet migration routes (start, follow, retry, cancel) and the fleet's schema at a glance.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Counts } from '../db/fleet.js'
import type { FleetItem, FleetRun } from '../db/schema.js'
import {
  cancelFleetMigration,
  describeFleetMigration,
  fleetMigrationTenants,
  listFleetMigrations,
  retryFleetMigration,
  runSummary,
  startFleetMigration,
} from '../fleet/runs.js'
import { fleetSchema } from '../fleet/schema.js'
import { decodeCursor, encodeCursor } from './cursor.js'
import type { ApiDeps } from './deps.js'
import {
  FleetMigrationDetail,
  FleetMigrationList,
  FleetMigrationRef,
  FleetSchema,
  ItemList,
  ItemsQuery,
  ListQuery,
  StartFleetMigrationBody,
} from './fleet.schemas.js'
import { problems } from './problem.js'

const iso = (d: Date | null) => d?.toISOString() ?? null

function detail(run: FleetRun, counts: Counts, failures: FleetItem[]) {
  return {
    ...runSummary(run, counts),
    selection: { tenants: run.tenants, plan: run.plan },
    concurrency: run.concurrency,
    canary: run.canary,
    on_error: run.on_error,
    stop_reason: run.stop_reason,
    requested_by: run.requested_by,
    retried_at: iso(run.retried_at),
    files: run.files,
    failures: failures.map((f) => ({ tenant: f.slug, version: f.failed_version, error: f.error ?? '' })),
  }
}

function itemResource(i: FleetItem) {
  return {
    tenant: i.slug,
    tenant_id: i.tenant_id,
    status: i.status,
    canary: i.canary,
    reason: i.reason,
    from_version: i.from_version,
    to_version: i.to_version,
    failed_version: i.failed_version,
    error: i.error,
    attempts: i.attempts,
    started_at: iso(i.started_at),
    finished_at: iso(i.finished_at),
  }
}

const fleetRoutes: FastifyPluginAsyncTypebox<ApiDeps> = async (app, deps) => {
  const { db } = deps
  const tags = ['fleet']
  const show = async (id: string) => {
    const { run, counts, failures } = await describeFleetMigration(db, id)
    return detail(run, counts, failures)
  }

  app.post(
    '/fleet-migrations',
    {
      config: { idempotency: 'replay' },
      schema: {
        tags,
        operationId: 'startFleetMigration',
        summary: 'Migrate the fleet (or a selection) to a tenant migration version, in the background',
        body: StartFleetMigrationBody,
        response: { 202: FleetMigrationDetail, ...problems(400, 401, 409, 422) },
      },
    },
    async (request, reply) => {
      const run = await startFleetMigration(deps, request.body, request.principal)
      return reply.code(202).header('location', `/fleet-migrations/${run.id}`).send(await show(run.id))
    },
  )

  app.get(
    '/fleet-migrations',
    {
      schema: {
        tags,
        operationId: 'listFleetMigrations',
        summary: 'List fleet migrations, newest first',
        querystring: ListQuery,
        response: { 200: FleetMigrationList, ...problems(400, 401) },
      },
    },
    async (request) => {
      const page = await listFleetMigrations(db, request.query.limit ?? 20, decodeCursor(request.query.cursor))
      return { items: page.items.map(({ run, counts }) => runSummary(run, counts)), next_cursor: encodeCursor(page.last) }
    },
  )

  app.get(
    '/fleet-migrations/:id',
    {
      schema: {
        tags,
        operationId: 'getFleetMigration',
        summary: 'A fleet migration: status, counts and failures',
        params: FleetMigrationRef,
        response: { 200: FleetMigrationDetail, ...problems(401, 404) },
      },
    },
    async (request) => show(request.params.id),
  )

  app.get(
    '/fleet-migrations/:id/tenants',
    {
      schema: {
        tags,
        operationId: 'listFleetMigrationTenants',
        summary: "A fleet migration's tenants and each one's outcome",
        params: FleetMigrationRef,
        querystring: ItemsQuery,
        response: { 200: ItemList, ...problems(400, 401, 404) },
      },
    },
    async (request) => {
      const limit = request.query.limit ?? 100
      const after = decodeCursor(request.query.cursor)
      const items = await fleetMigrationTenants(db, request.params.id, { status: request.query.status, limit: limit + 1, after: after === undefined ? undefined : Number(after) })
      const page = items.slice(0, limit)
      return { items: page.map(itemResource), next_cursor: items.length > limit ? encodeCursor(String(page.at(-1)!.ordinal)) : null }
    },
  )

  app.post(
    '/fleet-migrations/:id/retry',
    {
      schema: {
        tags,
        operationId: 'retryFleetMigration',
        summary: "Run a finished fleet migration's failed tenants again, against the folder as it is now",
        params: FleetMigrationRef,
        response: { 202: FleetMigrationDetail, ...problems(401, 404, 409, 422) },
      },
    },
    async (request, reply) => {
      const run = await retryFleetMigration(deps, request.params.id)
      return reply.code(202).send(await show(run.id))
    },
  )

  app.post(
    '/fleet-migrations/:id/cancel',
    {
      schema: {
        tags,
        operationId: 'cancelFleetMigration',
        summary: 'Stop scheduling tenants; those already migrating finish',
        params: FleetMigrationRef,
        response: { 202: FleetMigrationDetail, ...problems(401, 404, 409) },
      },
    },
    async (request, reply) => {
      const run = await cancelFleetMigration(db, request.params.id)
      return reply.code(202).send(await show(run.id))
    },
  )

  app.get(
    '/fleet/schema',
    {
      schema: {
        tags,
        operationId: 'getFleetSchema',
        summary: 'Tenants per schema version, and the tenants behind the head version',
        response: { 200: FleetSchema, ...problems(401) },
      },
    },
    async () => fleetSchema(db, deps.config),
  )
}

export default fleetRoutes
