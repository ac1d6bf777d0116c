// @ts-check
// The npm oRPC client (RPCLink) against a live Checkstack server serving the hello plugin:
// the same data as the documented protocol, every error code it can reach as an ORPCError,
// both batch modes, and a client built from the served contract.
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { ORPCError } from '@orpc/client'
import { BatchLinkPlugin } from '@orpc/client/plugins'
import { isContractProcedure, minifyContractRouter } from '@orpc/contract'
import {
  BASE_URL,
  LIMITED_TOKEN,
  TOKEN,
  documented,
  makeClient,
  recordingFetch,
  rejectsWith,
} from '../helpers.mjs'

const NO_TOKEN = 'set CHECKSTACK_TOKEN to an API key holding hello.hello.manage'
const NO_LIMITED = 'set CHECKSTACK_LIMITED_TOKEN to an API key lacking hello.hello.manage'

describe('calls', () => {
  test('a query with input returns what the documented protocol returns', async () => {
    const client = makeClient()
    const expected = await documented('hello', { getGreeting: { name: 'Ann' } })
    assert.equal(expected.status, 200)
    assert.deepEqual(await client.hello.getGreeting({ name: 'Ann' }), expected.body.getGreeting)
  })

  test('a query without input', async () => {
    const client = makeClient()
    const expected = await documented('hello', { getGreeting: {} })
    assert.deepEqual(await client.hello.getGreeting(), expected.body.getGreeting)
    assert.deepEqual(await client.hello.getGreeting({}), expected.body.getGreeting)
  })

  test('queries over GET with ?data=', async () => {
    const { fetch, sent } = recordingFetch()
    const client = makeClient({ method: () => 'GET', fetch })
    const expected = await documented('hello', { getGreeting: { name: 'Get' } })
    assert.deepEqual(await client.hello.getGreeting({ name: 'Get' }), expected.body.getGreeting)
    assert.equal(sent.length, 1)
    assert.equal(sent[0].method, 'GET')
    assert.equal(sent[0].url.pathname, '/api/hello/getGreeting')
    assert.deepEqual(JSON.parse(sent[0].url.searchParams.get('data') ?? ''), {
      json: { name: 'Get' },
    })
  })

  test('a mutation needs credentials', async () => {
    await rejectsWith(
      makeClient().hello.setGreeting({ template: 'Hey {name}' }),
      'UNAUTHORIZED',
      401,
      'Authentication required',
    )
  })

  test('a mutation with an API key holding the rule', { skip: !TOKEN && NO_TOKEN }, async () => {
    const client = makeClient({ token: TOKEN })
    const before = await client.hello.getGreeting({ name: 'Ann' })
    const original = (await documented('hello', { getGreeting: { name: '{name}' } })).body
    assert.deepEqual(await client.hello.setGreeting({ template: 'Hey {name}' }), {
      template: 'Hey {name}',
    })
    assert.deepEqual(await client.hello.getGreeting({ name: 'Ann' }), { message: 'Hey Ann' })
    const expected = await documented('hello', { getGreeting: { name: 'Ann' } }, TOKEN)
    assert.deepEqual(expected.body.getGreeting, { message: 'Hey Ann' })
    // Put the template back for the other tests.
    await client.hello.setGreeting({ template: original.getGreeting.message })
    assert.deepEqual(await client.hello.getGreeting({ name: 'Ann' }), before)
  })
})

describe('errors arrive as ORPCError with the code and status of SPEC §4.3', () => {
  test('BAD_REQUEST with data.issues for invalid input', async () => {
    const error = await rejectsWith(
      makeClient().hello.getGreeting({ name: 42 }),
      'BAD_REQUEST',
      400,
      'Input validation failed',
    )
    assert.deepEqual(error.data, {
      issues: [{ message: 'Expected `str`, got `int`', path: ['name'] }],
    })
  })

  test('UNAUTHORIZED for a key that is not valid, even on a public procedure', async () => {
    await rejectsWith(
      makeClient({ token: 'ck_not_a_real_key' }).hello.getGreeting({ name: 'x' }),
      'UNAUTHORIZED',
      401,
    )
  })

  test('FORBIDDEN Missing access for a key lacking the rule', { skip: !LIMITED_TOKEN && NO_LIMITED }, async () => {
    const client = makeClient({ token: LIMITED_TOKEN })
    assert.ok((await client.hello.getGreeting({ name: 'L' })).message)
    await rejectsWith(
      client.hello.setGreeting({ template: 'x {name}' }),
      'FORBIDDEN',
      403,
      'Missing access: hello.hello.manage',
    )
  })

  test('NOT_FOUND for an unknown procedure or plugin', async () => {
    const client = makeClient()
    await rejectsWith(client.hello.getNothing(), 'NOT_FOUND', 404, 'Procedure not found: hello.getNothing')
    await rejectsWith(client.nosuchplugin.getThing({}), 'NOT_FOUND', 404, 'Plugin not found: nosuchplugin')
  })

  test('METHOD_NOT_SUPPORTED for a mutation over GET', async () => {
    const client = makeClient({ method: () => 'GET', token: TOKEN })
    await rejectsWith(client.hello.setGreeting({ template: 'x {name}' }), 'METHOD_NOT_SUPPORTED', 405)
  })

  test('PAYLOAD_TOO_LARGE for a body over the limit', async () => {
    await rejectsWith(
      makeClient().hello.getGreeting({ name: 'x'.repeat(1100 * 1024) }),
      'PAYLOAD_TOO_LARGE',
      413,
    )
  })

  test('UNSUPPORTED_MEDIA_TYPE for a file input (multipart body)', async () => {
    await rejectsWith(
      makeClient().hello.getGreeting({ name: new Blob(['a file']) }),
      'UNSUPPORTED_MEDIA_TYPE',
      415,
    )
  })
})

/**
 * A client batching every call, recording the requests.
 * @param {'buffered' | 'streaming'} mode
 * @param {number} [maxSize]
 */
function batchingClient(mode, maxSize) {
  const { fetch, sent } = recordingFetch()
  const plugin = new BatchLinkPlugin({
    mode,
    groups: [{ condition: () => true, context: {} }],
    ...(maxSize ? { maxSize } : {}),
  })
  return { client: makeClient({ plugins: [plugin], fetch }), sent }
}

for (const mode of /** @type {const} */ (['buffered', 'streaming'])) {
  describe(`batch plugin, ${mode} mode`, () => {
    test('a batch of 1 is sent as a plain call', async () => {
      const { client, sent } = batchingClient(mode)
      const expected = await documented('hello', { getGreeting: { name: 'One' } })
      assert.deepEqual(await client.hello.getGreeting({ name: 'One' }), expected.body.getGreeting)
      assert.deepEqual(
        sent.map((s) => [s.url.pathname, s.batch, s.status]),
        [['/api/hello/getGreeting', null, 200]],
      )
    })

    test('a batch of 10 is one request answered 207, errors per item', async () => {
      const { client, sent } = batchingClient(mode)
      const names = Array.from({ length: 9 }, (_, i) => `n${i}`)
      const expected = await documented('hello', { getGreeting: { name: 'n0' } })
      const results = await Promise.allSettled([
        ...names.map((name) => client.hello.getGreeting({ name })),
        client.hello.getGreeting({ name: 7 }),
      ])
      assert.deepEqual(
        sent.map((s) => [s.method, s.url.pathname, s.batch, s.status]),
        [['POST', '/api/hello/getGreeting/__batch__', mode, 207]],
      )
      assert.deepEqual(results[0], { status: 'fulfilled', value: expected.body.getGreeting })
      for (const [i, result] of results.slice(0, 9).entries()) {
        assert.equal(result.status, 'fulfilled')
        assert.match(/** @type {any} */ (result).value.message, new RegExp(`n${i}`))
      }
      const failed = /** @type {PromiseRejectedResult} */ (results[9])
      assert.equal(failed.status, 'rejected')
      assert.ok(failed.reason instanceof ORPCError)
      assert.equal(failed.reason.code, 'BAD_REQUEST')
      assert.equal(failed.reason.status, 400)
      assert.deepEqual(failed.reason.data.issues[0].path, ['name'])
    })

    test('over the client limit, the client splits the batch', async () => {
      const { client, sent } = batchingClient(mode)
      const results = await Promise.all(
        Array.from({ length: 11 }, (_, i) => client.hello.getGreeting({ name: `s${i}` })),
      )
      assert.equal(results.length, 11)
      assert.deepEqual(
        sent.map((s) => [s.batch, s.status]),
        [
          [mode, 207],
          [mode, 207],
        ],
      )
    })

    test('over the server limit, the server refuses the batch with 413', async () => {
      const { client, sent } = batchingClient(mode, 11)
      const results = await Promise.allSettled(
        Array.from({ length: 11 }, (_, i) => client.hello.getGreeting({ name: `x${i}` })),
      )
      assert.deepEqual(
        sent.map((s) => [s.url.pathname, s.batch, s.status]),
        [['/api/hello/getGreeting/__batch__', mode, 413]],
      )
      for (const result of results) {
        assert.equal(result.status, 'rejected')
      }
    })
  })
}

describe('contract documents', () => {
  /** @returns {Promise<any>} */
  async function getJson(/** @type {string} */ path) {
    const response = await fetch(`${BASE_URL}${path}`)
    assert.equal(response.status, 200)
    return response.json()
  }

  test("each plugin's contract is oRPC's minified contract router", async () => {
    const all = await getJson('/api/contract.json')
    const hello = await getJson('/api/hello/contract.json')
    assert.deepEqual(all.hello, hello)
    assert.deepEqual(minifyContractRouter(all), all)
    for (const [plugin, router] of Object.entries(all)) {
      for (const [name, procedure] of Object.entries(router)) {
        assert.ok(isContractProcedure(procedure), `${plugin}.${name} is a contract procedure`)
      }
    }
    assert.equal(hello.getGreeting['~orpc'].route.method, 'GET')
    assert.equal(hello.setGreeting['~orpc'].route.method, 'POST')
    assert.deepEqual(hello.setGreeting['~orpc'].meta.rules, ['hello.hello.manage'])
  })

  test('a typed client built from the served contract calls queries over GET', async () => {
    /** @type {import('@orpc/contract').AnyContractRouter} */
    const contract = await getJson('/api/contract.json')
    /** @param {readonly string[]} path */
    const procedureAt = (path) =>
      path.reduce((/** @type {any} */ node, key) => node?.[key], contract)
    const { fetch, sent } = recordingFetch()
    /** @type {import('@orpc/contract').ContractRouterClient<typeof contract>} */
    const client = makeClient({
      fetch,
      // The contract says which procedures accept GET (queries); everything else is POSTed.
      method: (/** @type {any} */ _options, /** @type {readonly string[]} */ path) =>
        procedureAt(path)?.['~orpc']?.route?.method ?? 'POST',
    })
    const expected = await documented('hello', { getGreeting: { name: 'Typed' } })
    const hello = /** @type {any} */ (client).hello
    assert.deepEqual(await hello.getGreeting({ name: 'Typed' }), expected.body.getGreeting)
    await rejectsWith(hello.setGreeting({ template: 'x {name}' }), 'UNAUTHORIZED', 401)
    assert.deepEqual(
      sent.map((s) => [s.method, s.url.pathname]),
      [
        ['GET', '/api/hello/getGreeting'],
        ['POST', '/api/hello/setGreeting'],
      ],
    )
  })
})
