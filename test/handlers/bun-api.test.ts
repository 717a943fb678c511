/**
 * The file API over HTTP (the HTTP suite, SPEC 3) against the bun adapter, as a process on Bun:
 * anonymously, and with access control on and a bearer token on every request; then the
 * access-control suite.
 */
import { describe } from 'vitest'
import { mintToken, scopeOf } from '../../src/auth/index.js'
import { bearer, hmacKey, keysEnv } from '../helpers/auth.js'
import { BUN } from '../helpers/process-service.js'
import { startServiceOn } from '../helpers/test-service.js'
import { describeAccessControl } from './access-control.js'
import { API_LIMITS, describeFileApi } from './file-api.js'

const key = hmacKey('suite')
const everyRight = await mintToken({ key, sub: 'spec-suite', scopes: [scopeOf('*', '*')] })

describe.runIf(BUN)('the bun adapter', () => {
  describeFileApi('disk', () => startServiceOn('bun', API_LIMITS), { label: 'on Bun', runtime: 'bun' })

  describeFileApi('disk', () => startServiceOn('bun', { ...API_LIMITS, AUTH_HMAC_SECRETS: keysEnv(key) }), {
    label: 'on Bun, with a bearer token',
    headers: bearer(everyRight),
    runtime: 'bun',
  })

  describeAccessControl('bun')
})
