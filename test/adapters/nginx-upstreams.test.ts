/**
 * The upstream sync's pieces without nginx: the `server` lines it writes, and its configuration.
 */
import { describe, expect, it } from 'vitest'
import type { ServiceInstance } from '../../src/adapters/discovery/index.js'
import { loadUpstreamSyncConfig } from '../../src/adapters/nginx/config.js'
import { upstreamServers } from '../../src/adapters/nginx/upstream-servers.js'

const instance = (address: string, port: number): ServiceInstance => ({
  id: `fs-${address}:${port}`,
  name: 'fs',
  node: 'n1',
  address,
  port,
  origin: `http://${address}:${port}`,
  tags: [],
  meta: {},
})

describe('the upstream file', () => {
  it('lists every passing instance once, sorted, with the passive health parameters', () => {
    const file = upstreamServers('fs', [instance('10.0.0.2', 8081), instance('10.0.0.1', 8081), instance('10.0.0.1', 8081)])
    expect(file.split('\n').filter((l) => l.startsWith('server'))).toEqual([
      'server 10.0.0.1:8081 max_fails=1 fail_timeout=10s;',
      'server 10.0.0.2:8081 max_fails=1 fail_timeout=10s;',
    ])
  })

  it('is the same text for the same instances in any order, so nothing reloads for nothing', () => {
    const one = [instance('10.0.0.1', 1), instance('10.0.0.2', 2)]
    expect(upstreamServers('fs', one)).toBe(upstreamServers('fs', [...one].reverse()))
  })

  it('brackets IPv6 addresses and takes other parameters', () => {
    expect(upstreamServers('fs', [instance('fd00::1', 8081)], 'max_fails=3')).toContain('server [fd00::1]:8081 max_fails=3;')
  })

  it('holds one server marked down when no instance passes: an upstream block needs one', () => {
    expect(upstreamServers('fs', []).split('\n').filter((l) => l.startsWith('server'))).toEqual(['server 127.0.0.1:9 down;'])
  })
})

describe("the upstream sync's configuration", () => {
  it('needs the Consul agent, the upstream file and the pid file, naming what is missing', () => {
    expect(() => loadUpstreamSyncConfig({})).toThrow(/CONSUL_HTTP_ADDR=""[\s\S]*NGINX_UPSTREAM_FILE=""[\s\S]*NGINX_PID_FILE=""/)
    expect(
      loadUpstreamSyncConfig({ CONSUL_HTTP_ADDR: 'consul:8500', NGINX_UPSTREAM_FILE: '/u.conf', NGINX_PID_FILE: '/n.pid' }),
    ).toMatchObject({ SERVICE_NAME: 'filestorage', NGINX_SERVER_PARAMS: 'max_fails=1 fail_timeout=10s' })
  })
})
