/**
 * SeaweedFS as a real cluster on loopback (test/helpers/seaweedfs.ts: one master, two volume servers,
 * the master's default replication `001`, a filer, the S3 gateway), driven with the AWS SDK straight
 * against the gateway, while one volume server is killed with SIGKILL and started again on the same
 * port and data dir. What the s3 store builds on (issue 20's fleet test):
 * - every object written before the crash reads back intact from the surviving copy;
 * - every write during the outage fails (replication 001 needs both servers) and leaves no object
 *   behind, so the store must answer those uploads `503 store_unavailable`, never acknowledge them.
 *   The gateway answers such a write only after about 30 s (it retries the volume assignment), with
 *   `500 InternalError`: the store's own request timeout decides how long a client waits;
 * - writes succeed again once the volume server is back, and nothing written before is lost.
 */
import { createHash, randomBytes } from 'node:crypto'
import { CreateBucketCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SeaweedCluster, s3Client, weedBinary } from '../helpers/seaweedfs.js'
import { waitFor } from '../helpers/wait.js'

const Bucket = 'fleet'
const BEFORE = 40
const DURING = 10
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex')

describe('SeaweedFS cluster: a volume server killed and started again', () => {
  const bin = weedBinary()
  let cluster: SeaweedCluster
  let client: S3Client

  beforeAll(async () => {
    if (!bin) return
    cluster = await SeaweedCluster.start(bin, { volumeServers: 2, replication: '001' })
    // One attempt per call: a failure shows as it happens, not after the SDK's retries. The timeout
    // outlasts the gateway's own 30 s of retrying a write that cannot be placed.
    client = s3Client(cluster.target, { maxAttempts: 1, requestTimeoutMs: 60_000 })
    await client.send(new CreateBucketCommand({ Bucket }))
  })
  afterAll(async () => {
    client?.destroy()
    await cluster?.dispose()
  })

  const put = async (Key: string, Body: Buffer) => {
    await client.send(new PutObjectCommand({ Bucket, Key, Body }))
    return sha256(Body)
  }
  const read = async (Key: string) => sha256(await (await client.send(new GetObjectCommand({ Bucket, Key }))).Body!.transformToByteArray())
  const exists = (Key: string) => client.send(new HeadObjectCommand({ Bucket, Key })).then(() => true, (e: { $metadata?: { httpStatusCode?: number } }) => {
    if (e.$metadata?.httpStatusCode === 404) return false
    throw e
  })
  // 64 KiB to 2 MiB: every object on the volume servers (none small enough to live in the filer).
  const body = (i: number) => randomBytes(64 * 1024 + ((i * 97_531) % (2 * 1024 * 1024 - 64 * 1024)))

  it.runIf(bin !== undefined)('reads survive the crash, writes fail cleanly during it and work again after', async () => {
    const written = new Map<string, string>()
    for (let i = 0; i < BEFORE; i++) written.set(`before/${i}`, await put(`before/${i}`, body(i)))

    const victim = cluster.volumes[1]!
    await victim.kill()

    // The writes first: the gateway holds each for about 30 s, and the reads go on meanwhile.
    const writing = Promise.allSettled(Array.from({ length: DURING }, (_, i) => put(`during/${i}`, body(i))))
    let readsIntact = 0
    for (const [key, sum] of written) if ((await read(key)) === sum) readsIntact++
    expect(readsIntact, cluster.output()).toBe(BEFORE)

    const outcomes = await writing
    const acknowledged = outcomes.filter((o) => o.status === 'fulfilled').length
    expect(acknowledged, 'writes acknowledged while one of two replicas was down').toBe(0)
    for (const o of outcomes) expect((o as PromiseRejectedResult).reason.$metadata?.httpStatusCode).toBeGreaterThanOrEqual(500)
    for (let i = 0; i < DURING; i++) expect(await exists(`during/${i}`), `during/${i} was refused but is visible`).toBe(false)

    victim.start()
    await cluster.waitForVolumeServers(2)
    // The master takes the volume server's volumes back as it reports them; writes resume then.
    await waitFor('a write to succeed with both volume servers back', () => put('after/probe', body(0)).then(() => true, () => false), {
      timeoutMs: 60_000,
      intervalMs: 500,
    })
    for (let i = 0; i < DURING; i++) written.set(`after/${i}`, await put(`after/${i}`, body(i)))

    let readsAfter = 0
    for (const [key, sum] of written) if ((await read(key)) === sum) readsAfter++
    expect(readsAfter).toBe(BEFORE + DURING)
    for (let i = 0; i < DURING; i++) expect(await exists(`during/${i}`)).toBe(false)
    console.log(
      `[seaweedfs cluster] written before the kill: ${BEFORE}, read back intact during the outage: ${readsIntact}; ` +
        `writes during the outage: ${DURING}, acknowledged: ${acknowledged}; after the restart: ${readsAfter} of ${BEFORE + DURING} read back intact`,
    )
  }, 240_000)
})
