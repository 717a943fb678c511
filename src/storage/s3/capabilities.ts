/**
 * What this S3 server can do beyond the basics, told by the operator or found out once by trying it
 * on a probe object under `<prefix>.filestorage/probes/`:
 *
 * - conditional writes (`If-None-Match: *` and `If-Match` on PutObject, honoured with 412): AWS since
 *   2024, SeaweedFS, Ceph RGW, R2, MinIO. Without them, the store cannot make a write conditional
 *   without racing, so it refuses conditional requests (and uploads in parts, whose records change
 *   by compare-and-set) with `501 not_supported` rather than race;
 * - RenameObject (SeaweedFS; AWS for directory buckets only): an atomic, instant move of one object,
 *   used instead of copy + delete where the server has it.
 *
 * A probe that fails because the server does not answer is tried again at the next use.
 */
import { randomBytes } from 'node:crypto'
import { RenameObjectCommand } from '@aws-sdk/client-s3'
import type { Bucket } from './bucket.js'
import { isNotImplemented, statusOf } from './client.js'
import { INTERNAL, type S3Keys } from './keys.js'

/** `auto`: probe the server; a boolean: believe the operator. */
export type Capability = 'auto' | boolean

export class Capabilities {
  #conditional: Promise<boolean> | undefined
  #rename: Promise<boolean> | undefined

  constructor(
    private readonly bucket: Bucket,
    private readonly keys: S3Keys,
    conditionalWrites: Capability,
    rename: Capability,
  ) {
    if (conditionalWrites !== 'auto') this.#conditional = Promise.resolve(conditionalWrites)
    if (rename !== 'auto') this.#rename = Promise.resolve(rename)
  }

  conditionalWrites(): Promise<boolean> {
    return (this.#conditional ??= this.#remembered(() => this.#probeConditional(), () => (this.#conditional = undefined)))
  }

  rename(): Promise<boolean> {
    return (this.#rename ??= this.#remembered(() => this.#probeRename(), () => (this.#rename = undefined)))
  }

  /** A probe's answer, kept; forgotten when the probe failed (the server did not answer), to try again. */
  #remembered(probe: () => Promise<boolean>, forget: () => void): Promise<boolean> {
    const answer = probe()
    answer.catch(forget)
    return answer
  }

  #probeKey(): string {
    return this.keys.reserved(`${INTERNAL.probes}${randomBytes(8).toString('hex')}`)
  }

  async #probeConditional(): Promise<boolean> {
    const key = this.#probeKey()
    try {
      if ((await this.bucket.put(key, 'probe', { ifNoneMatch: '*' })) === null) return false
      const second = await this.bucket.put(key, 'probe again', { ifNoneMatch: '*' })
      const wrongMatch = await this.bucket.put(key, 'probe again', { ifMatch: '"0123456789abcdef0123456789abcdef"' })
      return second === null && wrongMatch === null
    } catch (e) {
      if (isNotImplemented(e) || statusOf(e) === 400) return false
      throw e
    } finally {
      await this.bucket.delete(key).catch(() => {})
    }
  }

  async #probeRename(): Promise<boolean> {
    const from = this.#probeKey()
    const to = this.#probeKey()
    try {
      await this.bucket.put(from, 'probe')
      await this.bucket.client.send(new RenameObjectCommand({ Bucket: this.bucket.name, Key: to, RenameSource: this.bucket.copySource(from) }))
      return (await this.bucket.head(to)) !== null && (await this.bucket.head(from)) === null
    } catch (e) {
      const status = statusOf(e)
      if (isNotImplemented(e) || (status !== undefined && status >= 400 && status < 500)) return false
      throw e
    } finally {
      await Promise.allSettled([this.bucket.delete(from), this.bucket.delete(to)])
    }
  }
}
