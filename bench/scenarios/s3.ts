/**
 * Section 6: the `s3` store, on SeaweedFS's S3 gateway (`weed server -s3`, started for the section),
 * against the same gateway used directly with the AWS SDK from the bench's process, in the same
 * run (without the SDK's default CRC32s, as the store): 1 GiB up (the SDK's lib-storage `Upload`, in
 * parts of the store's size and number in flight)
 * and down (GetObject into nothing), and 4 KiB GET and PUT per second (wrk through our service;
 * the SDK with as many requests in flight as wrk has connections). Target for large files: at
 * least 0.9x the SDK.
 *
 * One more row measures what the design the store did not take would cost: staging a file in parts
 * and then copying it to its key with its sha256 in its metadata (CopyObject, `MetadataDirective:
 * REPLACE`; a copy onto itself SeaweedFS makes without copying, AWS not), against the upload itself.
 */
import { createReadStream, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { CopyObjectCommand, CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import { compare } from '../lib/compare.js'
import type { BenchContext } from '../lib/context.js'
import { download, upload, type Transfer } from '../lib/curl.js'
import { comparedRow, type Row, type RunSample, unavailable } from '../lib/results.js'
import { loadSample, transferSample } from '../lib/samples.js'
import { startSeaweedS3, WEED, WEED_INSTALL, weedVersion } from '../lib/seaweedfs.js'
import { startService } from '../lib/service.js'
import { sizeLabel } from '../lib/settings.js'
import { load } from '../lib/wrk.js'

const SECTION = '6. S3 (SeaweedFS)'
const PEER = 'SeaweedFS S3 gateway, AWS SDK directly'
const BUCKET = 'bench'
/** The store's defaults (S3DriverOptions): the SDK peer uploads in the same shape. */
const PART_SIZE = 8 * 1024 * 1024
const CONCURRENCY = 4
/** Names the 4 KiB PUTs cycle over, per wrk thread (most replace a file), as section 2. */
const NAMES = 64

export async function s3(ctx: BenchContext): Promise<Row[]> {
  const { largeBytes, smallBytes, runs } = ctx.settings
  const names = {
    up: `upload ${sizeLabel(largeBytes)} (PUT)`,
    down: `download ${sizeLabel(largeBytes)} (GET)`,
    get: `download ${sizeLabel(smallBytes)} (GET)`,
    put: `upload ${sizeLabel(smallBytes)} (PUT)`,
    copy: `CopyObject ${sizeLabel(largeBytes)} (REPLACE), the design not taken`,
  }
  if (!weedVersion()) {
    return Object.values(names).map((n) => unavailable(SECTION, n, n === names.get || n === names.put ? 'req/s' : 'MB/s', `SeaweedFS is not installed (${WEED}; ${WEED_INSTALL})`))
  }
  const seaweed = await startSeaweedS3({ dataDir: join(ctx.workDir, 'seaweedfs'), logFile: join(ctx.workDir, 'seaweedfs.log') })
  // The SDK without the CRC32 it adds to every request and checks on every answer by default (the
  // store turns them off too): each side hashes every byte once, the SDK to sign a part, the store
  // for its sha256.
  const client = new S3Client({
    endpoint: seaweed.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: seaweed.accessKeyId, secretAccessKey: seaweed.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  })
  const service = await startService({
    storageDir: join(ctx.workDir, 'store'),
    logFile: join(ctx.workDir, 'service.log'),
    env: {
      S3_BUCKET: BUCKET,
      S3_ENDPOINT: seaweed.endpoint,
      S3_PREFIX: 'service',
      AWS_ACCESS_KEY_ID: seaweed.accessKeyId,
      AWS_SECRET_ACCESS_KEY: seaweed.secretAccessKey,
    },
  })
  try {
    await client.send(new CreateBucketCommand({ Bucket: BUCKET }))
    const source = ctx.sourceFile(largeBytes)
    const { api, token } = service
    const rows: Row[] = []
    const transfer = (name: string, ours: () => Promise<RunSample>, peer: () => Promise<RunSample>, warmup: { ours: () => Promise<unknown>; peer: () => Promise<unknown> }) =>
      compare(runs, { pids: service.pids, warmup: warmup.ours, measure: ours }, { pids: [], warmup: warmup.peer, measure: () => ownCpu(peer) }).then((r) =>
        comparedRow({ section: SECTION, name, unit: 'MB/s', peerName: PEER, target: 0.9, ...r }),
      )
    // A smaller transfer first, each side: a fresh bucket's first writes wait for its volumes to be allocated.
    const warm = ctx.sourceFile(Math.min(largeBytes, 64 * 1024 * 1024))

    ctx.log(names.up)
    rows.push(
      await transfer(
        names.up,
        async () => rate(await upload(`${api}/s3/upload/bench/large.bin`, source, 900, token)),
        () => timed(largeBytes, () => sdkUpload(client, 'peer/large.bin', source)),
        { ours: () => upload(`${api}/s3/upload/bench/warm.bin`, warm, 900, token), peer: () => sdkUpload(client, 'peer/warm.bin', warm) },
      ),
    )

    ctx.log(names.down)
    rows.push(
      await transfer(
        names.down,
        async () => rate(await download(`${api}/s3/download/bench/large.bin`, 900, token)),
        () => timed(largeBytes, () => sdkDownload(client, 'peer/large.bin')),
        { ours: () => download(`${api}/s3/download/bench/warm.bin`, 900, token), peer: () => sdkDownload(client, 'peer/warm.bin') },
      ),
    )

    ctx.log(names.copy)
    const copy = await compare(runs, { pids: [], measure: () => timed(largeBytes, () => copyWithSha256(client, 'peer/large.bin', 'peer/copied.bin')) }, {
      pids: [],
      measure: () => timed(largeBytes, () => sdkUpload(client, 'peer/large.bin', source)),
    })
    rows.push(
      comparedRow({
        section: SECTION,
        name: names.copy,
        unit: 'MB/s',
        peerName: 'the SDK upload it would follow',
        reference: true,
        ...copy,
        note: `a staged file copied once more: ${((largeBytes / (copy.ours.median * 1e6)) / (largeBytes / (copy.peer!.median * 1e6)) * 100).toFixed(0)}% of the upload's time added`,
      }),
    )

    const small = join(ctx.workDir, 'small.bin')
    writeFileSync(small, Buffer.alloc(smallBytes, 0x61))
    await upload(`${api}/s3/upload/bench/small.bin`, small, undefined, token)
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'peer/small.bin', Body: Buffer.alloc(smallBytes, 0x61) }))
    const settings = ctx.settings
    for (const operation of ['GET', 'PUT'] as const) {
      const name = operation === 'GET' ? names.get : names.put
      ctx.log(name)
      const options = {
        url: operation === 'GET' ? `${api}/s3/download/bench/small.bin` : api.replace(/\/filestorage\/v1$/, ''),
        method: operation,
        connections: settings.connections,
        threads: settings.wrkThreads,
        token,
        ...(operation === 'PUT' ? { pathPrefix: '/filestorage/v1/s3/upload/bench/small/', names: NAMES, bodyBytes: smallBytes } : {}),
      }
      const peer = (seconds: number) => sdkLoad(client, operation, seconds, settings.connections, smallBytes)
      const result = await compare(
        runs,
        { pids: service.pids, warmup: () => load({ ...options, seconds: settings.warmupSeconds }), measure: async () => loadSample(await load({ ...options, seconds: settings.loadSeconds })) },
        { pids: [], warmup: () => peer(settings.warmupSeconds), measure: () => ownCpu(() => peer(settings.loadSeconds)) },
      )
      rows.push(
        comparedRow({
          section: SECTION,
          name,
          unit: 'req/s',
          peerName: PEER,
          ...result,
          note: `ours: wrk, ${settings.connections} connections; peer: the SDK in the bench's process, ${settings.connections} requests in flight`,
        }),
      )
    }
    return rows.map((r) => ({ ...r, note: [r.note, `SeaweedFS ${weedVersion()}`].filter(Boolean).join('; ') }))
  } finally {
    await service.stop()
    client.destroy()
    await seaweed.stop()
  }
}

const rate = (t: Transfer): RunSample => transferSample(t.bytes, t.seconds)

async function timed(bytes: number, run: () => Promise<unknown>): Promise<RunSample> {
  const started = performance.now()
  await run()
  return transferSample(bytes, (performance.now() - started) / 1000)
}

/** The peer runs in this process, which does nothing else meanwhile: its CPU is this process's own over the run. */
async function ownCpu(run: () => Promise<RunSample>): Promise<RunSample> {
  const before = process.cpuUsage()
  const sample = await run()
  const used = process.cpuUsage(before)
  return { ...sample, cpuMs: (used.user + used.system) / 1000 }
}

async function sdkUpload(client: S3Client, Key: string, source: string): Promise<void> {
  await new Upload({ client, params: { Bucket: BUCKET, Key, Body: createReadStream(source, { highWaterMark: 1024 * 1024 }) }, partSize: PART_SIZE, queueSize: CONCURRENCY }).done()
}

async function sdkDownload(client: S3Client, Key: string): Promise<void> {
  const r = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key }))
  await pipeline(r.Body as NodeJS.ReadableStream, new Writable({ write: (_chunk, _encoding, callback) => callback() }))
}

/** What staging a file and then giving it its sha256 would cost: a copy from the staged key to the file's, its metadata replaced. */
async function copyWithSha256(client: S3Client, from: string, to: string): Promise<void> {
  await client.send(new CopyObjectCommand({ Bucket: BUCKET, Key: to, CopySource: `${BUCKET}/${from}`, MetadataDirective: 'REPLACE', Metadata: { 'fs-sha256': '0'.repeat(64) } }))
}

/** `inFlight` requests at a time for `seconds`: GETs of one object, or PUTs over `NAMES` keys. */
async function sdkLoad(client: S3Client, operation: 'GET' | 'PUT', seconds: number, inFlight: number, bytes: number): Promise<RunSample> {
  const body = Buffer.alloc(bytes, 0x61)
  const latencies: number[] = []
  let errors = 0
  const until = performance.now() + seconds * 1000
  const started = performance.now()
  await Promise.all(
    Array.from({ length: inFlight }, async (_, w) => {
      for (let n = 0; performance.now() < until; n++) {
        const t0 = performance.now()
        try {
          if (operation === 'GET') {
            const r = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'peer/small.bin' }))
            await r.Body!.transformToByteArray()
          } else {
            await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: `peer/small/${w}-${n % NAMES}`, Body: body }))
          }
        } catch {
          errors++
        }
        latencies.push(performance.now() - t0)
      }
    }),
  )
  const elapsed = (performance.now() - started) / 1000
  latencies.sort((a, b) => a - b)
  return {
    value: latencies.length / elapsed,
    p50Ms: latencies[Math.floor(latencies.length * 0.5)] ?? 0,
    p99Ms: latencies[Math.floor(latencies.length * 0.99)] ?? 0,
    errors,
    units: latencies.length / 1000,
  }
}
