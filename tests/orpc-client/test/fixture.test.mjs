// @ts-check
// The npm oRPC client against the test plugins of fixture_server.py: dates and other meta types
// round trip, and the error codes the hello plugin cannot reach arrive as ORPCError too, alone
// and inside batches.
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { ORPCError } from '@orpc/client'
import { BatchLinkPlugin } from '@orpc/client/plugins'
import {
  FIXTURE,
  LIMITED_TOKEN,
  TOKEN,
  USER_TOKEN,
  makeClient,
  recordingFetch,
  rejectsWith,
} from '../helpers.mjs'

const skip = !FIXTURE && 'the server does not run the orpcfixture plugin (CHECKSTACK_FIXTURE=1)'

describe('meta types', { skip }, () => {
  test('dates round trip as Date objects', async () => {
    const at = new Date('2024-02-29T12:30:00.250Z')
    const also = [new Date('2024-03-01T00:00:00Z'), new Date('2030-12-31T23:59:59.999Z')]
    const out = await makeClient().orpcfixture.echoDates({
      at,
      also,
      maybe: null,
      byName: { launch: at },
      note: 'dates',
    })
    assert.ok(out.moments.at instanceof Date)
    assert.equal(out.moments.at.getTime(), at.getTime())
    assert.deepEqual(out.moments.also, also)
    assert.equal(out.moments.maybe, null)
    assert.deepEqual(out.moments.byName, { launch: at })
    assert.deepEqual(out.dayAfter, new Date('2024-03-01T12:30:00.250Z'))
    assert.equal(out.history.length, 2)
    assert.deepEqual(out.history[1].also, also)
  })

  test('a Map and a Set are revived on the server', async () => {
    const when = new Date('2025-01-02T03:04:05Z')
    const out = await makeClient().orpcfixture.echoDates({
      at: when,
      also: new Set([when]),
      byName: new Map([['x', when]]),
    })
    assert.deepEqual(out.moments.also, [when])
    assert.deepEqual(out.moments.byName, { x: when })
  })

  test('a bigint is revived as an integer', async () => {
    assert.deepEqual(await makeClient().orpcfixture.double({ n: 123456789n }), {
      n: 123456789,
      doubled: 246913578,
    })
  })

  test('a procedure without input or output', async () => {
    assert.equal(await makeClient().orpcfixture.touch(), undefined)
  })

  test('an invalid date is a validation error', async () => {
    const error = await rejectsWith(
      makeClient().orpcfixture.echoDates({ at: new Date('not a date') }),
      'BAD_REQUEST',
      400,
      'Input validation failed',
    )
    assert.deepEqual(error.data.issues[0].path, ['at'])
  })
})

describe('error codes only the fixture plugins reach', { skip }, () => {
  test('CONFLICT', async () => {
    await rejectsWith(makeClient().orpcfixture.conflict(), 'CONFLICT', 409, 'Thing already exists: one')
  })

  test('INTERNAL_SERVER_ERROR hides the detail', async () => {
    const error = await rejectsWith(
      makeClient().orpcfixture.crash(),
      'INTERNAL_SERVER_ERROR',
      500,
      'Internal server error',
    )
    assert.deepEqual(error.data, {})
  })

  test('SERVICE_UNAVAILABLE for a plugin that failed to start', async () => {
    await rejectsWith(
      makeClient().orpcbroken.ping(),
      'SERVICE_UNAVAILABLE',
      503,
      'Plugin orpcbroken is unavailable',
    )
  })

  test('UNAUTHORIZED for an anonymous caller of an authenticated procedure', async () => {
    await rejectsWith(makeClient().orpcfixture.secret(), 'UNAUTHORIZED', 401)
  })

  test('FORBIDDEN Missing access and users-only', { skip: !LIMITED_TOKEN && 'set CHECKSTACK_LIMITED_TOKEN' }, async () => {
    const client = makeClient({ token: LIMITED_TOKEN })
    await rejectsWith(client.orpcfixture.secret(), 'FORBIDDEN', 403, 'Missing access: orpcfixture.things.manage')
    await rejectsWith(client.orpcfixture.whoAmI(), 'FORBIDDEN', 403, 'This procedure is for users only')
  })

  test('a users-only procedure for a user', { skip: !USER_TOKEN && 'set CHECKSTACK_USER_TOKEN' }, async () => {
    assert.deepEqual(await makeClient({ token: USER_TOKEN }).orpcfixture.whoAmI(), { message: 'Ann' })
  })
})

for (const mode of /** @type {const} */ (['buffered', 'streaming'])) {
  test(`every error code inside a ${mode} batch`, { skip }, async () => {
    const { fetch, sent } = recordingFetch()
    const client = makeClient({
      token: TOKEN,
      fetch,
      plugins: [new BatchLinkPlugin({ mode, groups: [{ condition: () => true, context: {} }] })],
    })
    const when = new Date('2024-06-01T10:00:00Z')
    const results = await Promise.allSettled([
      client.orpcfixture.echoDates({ at: when }),
      client.orpcfixture.touch(),
      client.orpcfixture.double({ n: 'two' }),
      client.orpcfixture.secret(),
      client.orpcfixture.whoAmI(),
      client.orpcfixture.nothing(),
      client.orpcfixture.conflict(),
      client.orpcfixture.crash(),
      client.orpcbroken.ping(),
      client.hello.setGreeting({ template: `${mode} {name}` }),
    ])
    assert.deepEqual(
      sent.map((s) => [s.url.pathname, s.batch, s.status]),
      [['/api/orpcfixture/echoDates/__batch__', mode, 207]],
    )
    const [dates, touched, ...rest] = results
    assert.equal(dates.status, 'fulfilled')
    assert.deepEqual(/** @type {any} */ (dates).value.dayAfter, new Date('2024-06-02T10:00:00Z'))
    assert.deepEqual(touched, { status: 'fulfilled', value: undefined })
    const codes = rest.map((r) =>
      r.status === 'rejected' && r.reason instanceof ORPCError
        ? [r.reason.code, r.reason.status]
        : [r.status],
    )
    const secret = TOKEN ? ['FORBIDDEN', 403] : ['UNAUTHORIZED', 401]
    assert.deepEqual(codes, [
      ['BAD_REQUEST', 400],
      secret,
      TOKEN ? ['FORBIDDEN', 403] : ['UNAUTHORIZED', 401],
      ['NOT_FOUND', 404],
      ['CONFLICT', 409],
      ['INTERNAL_SERVER_ERROR', 500],
      ['SERVICE_UNAVAILABLE', 503],
      TOKEN ? ['fulfilled'] : ['UNAUTHORIZED', 401],
    ])
  })
}
