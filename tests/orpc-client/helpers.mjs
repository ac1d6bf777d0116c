// @ts-check
// What the oRPC client tests share: the server under test, clients as an API user builds them,
// a fetch that records what went over the wire, and assertions on ORPCError.
//
// Environment:
//   CHECKSTACK_URL            base URL of a running Checkstack server (required)
//   CHECKSTACK_TOKEN          an API key holding hello.hello.manage (mutation cases; else skipped)
//   CHECKSTACK_LIMITED_TOKEN  an API key lacking hello.hello.manage (Missing access; else skipped)
//   CHECKSTACK_USER_TOKEN     a user's key or session token (users-only procedure; else skipped)
//   CHECKSTACK_FIXTURE=1      the server also runs the orpcfixture/orpcbroken test plugins
import assert from 'node:assert/strict'
import { createORPCClient, ORPCError } from '@orpc/client'
import { RPCLink } from '@orpc/client/fetch'

export const BASE_URL = (process.env.CHECKSTACK_URL ?? '').replace(/\/$/, '')
if (!BASE_URL) {
  throw new Error('Set CHECKSTACK_URL to the base URL of a running Checkstack server')
}
export const TOKEN = process.env.CHECKSTACK_TOKEN
export const LIMITED_TOKEN = process.env.CHECKSTACK_LIMITED_TOKEN
export const USER_TOKEN = process.env.CHECKSTACK_USER_TOKEN
export const FIXTURE = process.env.CHECKSTACK_FIXTURE === '1'

/**
 * @typedef {{ method: string, url: URL, batch: string | null, status: number }} Sent
 */

/**
 * A fetch that records each request and its status (to see GET vs POST and batching).
 * @returns {{ fetch: typeof fetch, sent: Sent[] }}
 */
export function recordingFetch() {
  /** @type {Sent[]} */
  const sent = []
  /** @type {typeof fetch} */
  const wrapped = async (input, init) => {
    const request = new Request(input, init)
    const response = await fetch(request)
    sent.push({
      method: request.method,
      url: new URL(request.url),
      batch: request.headers.get('x-orpc-batch'),
      status: response.status,
    })
    return response
  }
  return { fetch: wrapped, sent }
}

/**
 * A client configured as an API user would: the server URL and an Authorization header only.
 * @param {{ token?: string, method?: any, plugins?: any[], fetch?: typeof fetch }} [options]
 * @returns {any}
 */
export function makeClient({ token, method, plugins, fetch } = {}) {
  const link = new RPCLink({
    url: `${BASE_URL}/api`,
    headers: token ? { Authorization: `Bearer ${token}` } : {},
    ...(method ? { method } : {}),
    ...(plugins ? { plugins } : {}),
    ...(fetch ? { fetch } : {}),
  })
  return createORPCClient(link)
}

/**
 * The documented protocol's answer (SPEC §4.1), to compare with the oRPC one.
 * @param {string} plugin
 * @param {Record<string, unknown>} calls
 * @param {string} [token]
 */
export async function documented(plugin, calls, token) {
  const response = await fetch(`${BASE_URL}/api/${plugin}/`, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      ...(token ? { Authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify(calls),
  })
  return { status: response.status, body: await response.json() }
}

/**
 * Assert that `promise` rejects with an ORPCError of `code` and `status` (and `message`).
 * @param {Promise<unknown>} promise
 * @param {string} code
 * @param {number} status
 * @param {string} [message]
 * @returns {Promise<ORPCError<any, any>>}
 */
export async function rejectsWith(promise, code, status, message) {
  /** @type {ORPCError<any, any> | undefined} */
  let caught
  await assert.rejects(promise, (error) => {
    assert.ok(error instanceof ORPCError, `expected an ORPCError, got ${error}`)
    caught = error
    return true
  })
  assert.ok(caught)
  assert.notEqual(caught.code, 'MALFORMED_ORPC_ERROR_RESPONSE')
  assert.equal(caught.code, code, caught.message)
  assert.equal(caught.status, status)
  assert.equal(caught.defined, false)
  if (message !== undefined) {
    assert.equal(caught.message, message)
  }
  return caught
}
