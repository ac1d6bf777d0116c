// @ts-check
// The npm oRPC client against the first-party plugins a `checkstack serve` has loaded: every
// documented call answers with the same data as the documented protocol (dates come back as
// Date objects through the meta codes; Date inputs travel the other way).
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { BASE_URL, TOKEN, documented, makeClient } from '../helpers.mjs'

const ready = await (await fetch(`${BASE_URL}/readyz`)).json()
/** @type {Set<string>} */
const active = new Set(ready.plugins.active)
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/

/**
 * Dates as the same instant to the millisecond, whichever side they came from (a Date from
 * the oRPC client, an ISO string with microseconds from the documented protocol).
 * @param {unknown} value
 * @returns {unknown}
 */
function normalize(value) {
  if (value instanceof Date) return value.toISOString()
  if (typeof value === 'string' && ISO.test(value)) return new Date(value).toISOString()
  if (Array.isArray(value)) return value.map(normalize)
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normalize(v)]))
  }
  return value
}

/**
 * @param {any} fromOrpc
 * @param {any} fromDocumented
 */
function assertSameData(fromOrpc, fromDocumented) {
  assert.deepEqual(normalize(fromOrpc), normalize(fromDocumented))
}

const skipCatalog = !active.has('catalog') && 'the catalog plugin is not loaded'
const skipKeyed = !TOKEN && 'set CHECKSTACK_TOKEN to an API key holding the manage rules'

describe('first-party plugins through RPCLink', { skip: skipCatalog || skipKeyed }, () => {
  /** @type {any} */
  let system

  test('catalog: createSystem, getSystem and getSystems', async () => {
    const client = makeClient({ token: TOKEN })
    system = await client.catalog.createSystem({ name: `orpc ${Date.now()}` })
    assert.ok(system.createdAt instanceof Date, 'createdAt arrives as a Date')
    const one = await documented('catalog', { getSystem: { id: system.id } }, TOKEN)
    assertSameData(system, one.body.getSystem)
    const both = await documented('catalog', { getSystems: {}, getGroups: {} }, TOKEN)
    assertSameData(await client.catalog.getSystems({}), both.body.getSystems)
    assertSameData(await client.catalog.getGroups({}), both.body.getGroups)
  })

  test('incident: createIncident and getIncidents', { skip: !active.has('incident') }, async () => {
    const client = makeClient({ token: TOKEN })
    const created = await client.incident.createIncident({
      title: 'Database latency',
      severity: 'major',
      systemIds: [system.id],
    })
    assert.equal(created.status, 'investigating')
    const listed = await documented('incident', { getIncidents: {} }, TOKEN)
    assertSameData(await client.incident.getIncidents({}), listed.body.getIncidents)
  })

  test('maintenance: scheduleWindow with Date inputs and getWindows', { skip: !active.has('maintenance') }, async () => {
    const client = makeClient({ token: TOKEN })
    const startAt = new Date(Date.now() + 3_600_000)
    const endAt = new Date(Date.now() + 7_200_000)
    const window = await client.maintenance.scheduleWindow({
      title: 'Upgrade',
      startAt,
      endAt,
      systemIds: [system.id],
    })
    assert.ok(window.startAt instanceof Date)
    assert.equal(window.startAt.getTime(), startAt.getTime())
    assert.equal(window.status, 'scheduled')
    const listed = await documented('maintenance', { getWindows: {} }, TOKEN)
    assertSameData(await client.maintenance.getWindows({}), listed.body.getWindows)
  })

  test('healthcheck: createHealthCheck, runNow, getHealthChecks and getHistory', { skip: !active.has('healthcheck') || !active.has('healthcheck-tcp') }, async () => {
    const client = makeClient({ token: TOKEN })
    // A TCP check of a closed loopback port: fails fast, no traffic leaves the machine.
    // Paused, so the scheduler's own first run cannot land between the two reads compared below;
    // runNow runs a paused check all the same.
    const check = await client.healthcheck.createHealthCheck({
      name: 'orpc tcp',
      strategyId: 'tcp',
      config: { host: '127.0.0.1', port: 9 },
      timeoutSeconds: 1,
      paused: true,
    })
    assert.ok(check.createdAt instanceof Date)
    await client.healthcheck.assignHealthCheck({ id: check.id, systemId: system.id })
    const run = await client.healthcheck.runNow({ id: check.id, systemId: system.id })
    assert.equal(run.status, 'unhealthy')
    assert.ok(run.timestamp instanceof Date)
    const query = { checkId: check.id, limit: 5 }
    const both = await documented('healthcheck', { getHealthChecks: {}, getHistory: query }, TOKEN)
    assertSameData(await client.healthcheck.getHealthChecks({}), both.body.getHealthChecks)
    assertSameData(await client.healthcheck.getHistory(query), both.body.getHistory)
    assert.equal(both.body.getHistory.runs[0].id, run.id)
  })
})
