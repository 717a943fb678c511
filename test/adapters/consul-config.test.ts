/**
 * The Consul side of the configuration: durations, their bounds, the registered address and what
 * the instance registers.
 */
import { describe, expect, it } from 'vitest'
import { consulBaseUrl } from '../../src/adapters/consul/agent-address.js'
import { loadConfig } from '../../src/adapters/service/config.js'
import { hostAddress } from '../../src/adapters/service/host-address.js'
import { serviceDefinition } from '../../src/adapters/service/service-definition.js'

describe('Consul configuration', () => {
  it('has defaults: checks every 10s with a 5s timeout, reaped after 1m, resync every 10s', () => {
    const config = loadConfig({ HOST: '127.0.0.1' })
    expect(config).toMatchObject({
      CONSUL_CHECK_INTERVAL: 10_000,
      CONSUL_CHECK_TIMEOUT: 5000,
      CONSUL_DEREGISTER_AFTER: 60_000,
      CONSUL_RESYNC_INTERVAL: 10_000,
      SERVICE_ADDRESS: '127.0.0.1',
    })
    expect(config.CONSUL_CHECK_URL).toBeUndefined()
  })

  it('reads durations as Consul writes them', () => {
    const config = loadConfig({ CONSUL_CHECK_INTERVAL: '1m30s', CONSUL_CHECK_TIMEOUT: '1500ms', CONSUL_DEREGISTER_AFTER: '2h' })
    expect(config.CONSUL_CHECK_INTERVAL).toBe(90_000)
    expect(config.CONSUL_CHECK_TIMEOUT).toBe(1500)
    expect(config.CONSUL_DEREGISTER_AFTER).toBe(7_200_000)
  })

  it.each([
    ['CONSUL_CHECK_INTERVAL', '10', /not a duration/],
    ['CONSUL_CHECK_INTERVAL', '500ms', /at least 1s/],
    ['CONSUL_CHECK_TIMEOUT', 'soon', /not a duration/],
    ['CONSUL_DEREGISTER_AFTER', '30s', /at least 1m/],
    ['CONSUL_CHECK_URL', 'ftp://x/check', /CONSUL_CHECK_URL=/],
    ['CONSUL_RESYNC_INTERVAL', '1x', /not a duration/],
  ])('refuses %s=%s, naming the variable', (name, value, message) => {
    expect(() => loadConfig({ [name]: value })).toThrow(new RegExp(`${name}="${value}"`))
    expect(() => loadConfig({ [name]: value })).toThrow(message)
  })

  it('takes CONSUL_HTTP_ADDR as host:port or as a URL', () => {
    expect(consulBaseUrl('127.0.0.1:8600').href).toBe('http://127.0.0.1:8600/')
    expect(consulBaseUrl('consul').href).toBe('http://consul:8500/')
    expect(consulBaseUrl('https://consul.internal').href).toBe('https://consul.internal:8501/')
    expect(consulBaseUrl('http://[::1]:8500').href).toBe('http://[::1]:8500/')
  })
})

describe('the registered address (SERVICE_ADDRESS unset)', () => {
  const eth0 = { address: '10.1.2.3', netmask: '255.0.0.0', family: 'IPv4', mac: '', internal: false, cidr: null } as const
  const lo = { ...eth0, address: '127.0.0.1', internal: true }
  const v6 = { ...eth0, address: 'fd00::1', family: 'IPv6', scopeid: 0 } as const

  it('is the address the service is bound to, when it is bound to one', () => {
    expect(hostAddress('127.0.0.1', { eth0: [eth0] })).toBe('127.0.0.1')
  })

  it('is the first non-internal IPv4 when bound to every interface', () => {
    expect(hostAddress('0.0.0.0', { lo: [lo], eth0: [v6, eth0] })).toBe('10.1.2.3')
    expect(hostAddress('::', { eth0: [eth0] })).toBe('10.1.2.3')
  })

  it('falls back to loopback on a host without one', () => {
    expect(hostAddress('0.0.0.0', { lo: [lo], eth0: [v6] })).toBe('127.0.0.1')
  })
})

describe('what an instance registers', () => {
  it('is name-address:port, with tags, meta (version, stores) and the check URL', () => {
    const config = loadConfig({ SERVICE_NAME: 'files', SERVICE_ADDRESS: '10.0.0.5', SERVICE_TAGS: 'eu,ssd', CONSUL_CHECK_INTERVAL: '5s' })
    const definition = serviceDefinition(config, { port: 8081, stores: ['disk', 'mongo'], version: '1.2.3', checkPath: '/filestorage/v1/check' })
    expect(definition).toEqual({
      id: 'files-10.0.0.5:8081',
      name: 'files',
      address: '10.0.0.5',
      port: 8081,
      tags: ['eu', 'ssd'],
      meta: { version: '1.2.3', stores: 'disk,mongo' },
      check: { http: 'http://10.0.0.5:8081/filestorage/v1/check', intervalMs: 5000, timeoutMs: 5000, deregisterAfterMs: 60_000 },
    })
  })

  it('lets CONSUL_CHECK_URL say where Consul reaches the check, and brackets IPv6 addresses', () => {
    const viaProxy = loadConfig({ SERVICE_ADDRESS: '10.0.0.5', CONSUL_CHECK_URL: 'http://host.docker.internal:18081/filestorage/v1/check' })
    expect(serviceDefinition(viaProxy, { port: 8081, stores: ['disk'], version: '1', checkPath: '/c' }).check.http).toBe(
      'http://host.docker.internal:18081/filestorage/v1/check',
    )
    const v6 = loadConfig({ SERVICE_ADDRESS: 'fd00::5' })
    expect(serviceDefinition(v6, { port: 8081, stores: ['disk'], version: '1', checkPath: '/c' }).check.http).toBe('http://[fd00::5]:8081/c')
  })
})
