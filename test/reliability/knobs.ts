/**
 * The reliability suite's settings in one place: the service's environment variable names for the
 * limits it is tested against, the bounds asserted, and the sizes of every loop.
 */

/** Env var names the service reads for its connection limits (change here when they are renamed). */
export const TIMEOUT_VARS = {
  /** Seconds a client may take to send the request headers. */
  headers: 'HEADERS_TIMEOUT_SECONDS',
  /** Seconds a request body may send nothing before the request is cut (`408` when it can still be answered). */
  bodyIdle: 'BODY_IDLE_TIMEOUT_SECONDS',
} as const

/** The values the slow-clients audit configures, and the grace it allows on top before counting a connection as not cut. */
export const SLOW_CLIENTS = {
  headersTimeoutSeconds: 2,
  bodyIdleTimeoutSeconds: 2,
  graceSeconds: 4,
  slowloris: 300,
  stalledBodies: 50,
  /** Seconds between two header bytes of a slowloris connection. */
  byteIntervalMs: 400,
  /** A download slower than this is counted as failed (a generous bound, not a performance target). */
  downloadBoundMs: 15_000,
}

/**
 * On Bun, request headers have Bun's own deadline, not HEADERS_TIMEOUT_SECONDS: its server closes a
 * connection whose request has not arrived 10 s after it opened, checking every 4 s.
 */
export const BUN_HEADERS_SECONDS = 14

/**
 * Peak RSS bound of the memory audit (40 concurrent 64 MiB uploads and 40 downloads), in MiB.
 * Measured (memory.test.ts, with the service's own process.memoryUsage() sampled every 20 ms):
 * 263 and 283 MiB peak on 2 busy cores, from about 126 MiB at rest (V8 heap ~57 MiB of which ~22
 * used, native ~50-78 MiB). What the 80 transfers add is Buffers outside the V8 heap: 146 MiB at
 * the highest RSS, up to 189 MiB between samples, about 2 MiB per transfer:
 *  - an upload (40 alone: Buffers peak 131 MiB, ~3 MiB each): the file writer's 1 MiB buffer plus
 *    the 1 MiB writev in flight (STREAM_BUFFER_BYTES), 256 KiB of unread body (request-body.ts),
 *    one 64 KiB socket chunk per side of the digest;
 *  - a download (40 alone: Buffers peak 161 MiB, ~4 MiB each, when it still read one chunk
 *    ahead): one 1 MiB chunk being read, one queued on the socket while the client is slower than
 *    the disk; chunks are read on demand since (file-stream.ts).
 * The bound is the highest measured peak then plus 64 MiB: the Buffers swing between samples
 * (43 MiB) and the heap's growth under GC timing (~20 MiB) on a loaded machine. Later runs, as the
 * service grew (at rest ~125 MiB): 290 to 331 MiB, and once 346 MiB with Buffers at 243 MiB between
 * samples, before downloads stopped reading ahead (2026-11-30; since then 290, 310 and 315 MiB).
 *
 * "native" (RSS - heap - external) is mostly the same Buffers after V8 collected them: freed, they
 * stay resident in glibc's heap for the next allocation. A download's 1 MiB chunks start as mmaps,
 * but glibc's dynamic mmap threshold rises to 1 MiB at the first one freed, so the rest come from
 * the brk heap, as the 64 KiB socket chunks of uploads do. Sampling /proc/<pid>/smaps during the
 * audit: [heap] up to 193 MiB resident, every other anonymous mapping 47 MiB. So a sample taken
 * just after a GC shows them as native, one taken before it as Buffers (a CI run: native 171 MiB,
 * Buffers 111); their sum is what counts (Buffers plus native at the highest RSS, native at rest
 * ~65 MiB included: 192 to 219 MiB in 5 runs here; that CI run: 282, its machine slower to drain).
 * Allocator settings measured, 5 runs each alternating with plain runs (peaks 253 to 278 MiB):
 * MALLOC_MMAP_THRESHOLD_=131072 (a fixed threshold: the chunks stay mmaps, unmapped when freed)
 * takes native down to 13-46 MiB but not the peak (245 to 283 MiB), since the chunks not yet
 * collected still count, and costs a 1 GiB download about a fifth more CPU (medians of 6: 0.59 s
 * against 0.49 s; page faults on fresh maps); MALLOC_ARENA_MAX=2 (3 runs: 284 to 315 MiB, against
 * 292 to 330) changes nothing that shows, as the Buffers live in the main arena's [heap].
 * So neither is set, and the bound stands. What would lower the peak is fewer bytes in flight per
 * transfer (the 1 MiB download chunk READ_CHUNK and upload writer buffer STREAM_BUFFER_BYTES), at a
 * cost in throughput. Measured 2026-11-30 (this audit 4 times each; `BENCH_ONLY=disk BENCH_RUNS=3
 * npm run bench` once each, a noisy machine): both at 1 MiB, peaks 296 to 315 MiB, a 1 GiB download
 * 2,353 MB/s (440 ms of CPU per GiB), upload 494 MB/s (1,810 ms/GiB); both at 512 KiB, 253 to 275
 * MiB, 1,619 MB/s (650 ms/GiB), 441 MB/s; both at 256 KiB, 195 to 203 MiB, 1,489 MB/s (670 ms/GiB),
 * 437 MB/s; the upload buffer alone at 256 KiB, 282 to 304 MiB, upload 390 MB/s (2,510 ms/GiB).
 * A third of the memory for about a third of the download's speed: kept at 1 MiB.
 */
export const PEAK_RSS_BOUND_MIB = 283 + 64

/**
 * The same audit on Bun (the bun adapter): 409, 425, 433, 457 and 477 MiB peak in five runs, from
 * 113 to 132 MiB at rest; the downloads add nothing (Bun.file, sendfile: a 1 GiB download grows the RSS by
 * under 4 MiB), the uploads all of it, about 8 MiB each instead of Node's 3. Where it goes, measured
 * with a bare Bun.serve taking 40 uploads of 64 MiB at once (test/reliability has no copy of it):
 * reading the bodies and dropping them, 91 MiB peak; writing them with node:fs/promises, 279 MiB;
 * with writeSync, 103 MiB; with Bun's own FileSink, 94 MiB. So on Bun the chunks written through
 * node:fs's asynchronous writes (the disk store's WriteStream) stay resident well after they are
 * written (a forced collection every 100 ms took that 279 down to 195 only). The memory does not
 * follow the file size: one 1 GiB upload grows it by 17 to 68 MiB. Bound: the highest peak plus
 * 64 MiB, as on Node.
 */
export const PEAK_RSS_BOUND_MIB_BUN = 477 + 64

/**
 * The bounds above are absolute, from a service whose RSS at rest was about 126 MiB (Node) and 113
 * to 132 MiB (Bun). The service has since grown modules loaded at start (the AWS SDK, the Redis
 * client, prom-client, pino, the OpenTelemetry API, rate-limiter-flexible: 9 to 26 MiB of RSS each,
 * imported alone), which move its rest, not what a transfer holds (about 2 MiB each on Node, as
 * before). So the audit bounds the peak above the RSS at rest, by what the bounds allowed above
 * theirs (the highest rest measured), and the rest by itself.
 */
export const ABOVE_REST_BOUND_MIB = { node: PEAK_RSS_BOUND_MIB - 126, bun: PEAK_RSS_BOUND_MIB_BUN - 132 }
/** The service at rest with every module it loads at start: 186 MiB on Node and 152 on Bun when set. */
export const REST_BOUND_MIB = 256

export const MEMORY = { uploads: 40, downloads: 40, fileBytes: 64 * 1024 * 1024 }

export const CONCURRENCY = {
  writers: 32,
  readers: 32,
  paths: 8,
  /** Each worker stops at the deadline or after this many operations, whichever comes first. */
  durationMs: 8_000,
  maxOpsPerWorker: 400,
  /**
   * A run shorter than this proves little: past its duration it goes on (up to `maxStretch` times
   * as long) until it made at least these many writes and audited reads (a slow store on a slow machine).
   */
  minWrites: 48,
  minReads: 240,
  maxStretch: 3,
  /** Share of writes large enough to be streamed in many chunks. */
  largeShare: 0.1,
  smallMaxBytes: 64 * 1024,
  largeMaxBytes: 3 * 1024 * 1024,
}

export const CRASH_LOOP = {
  /** kill -9 per store (at least 20, the minimum). */
  crashes: 20,
  sweepIntervalSeconds: 1,
  /**
   * s3: multipart uploads a killed process left open are aborted once older than the upload expiry
   * (S3 cannot tell a dead writer from a slow one), so the loop runs with a short one and waits it
   * out before counting leftovers.
   */
  s3UploadExpirySeconds: 45,
  completionLeaseSeconds: 2,
  /**
   * Payload sizes per store (FerretDB on SQLite writes far slower than a disk). The tus PATCH cut by
   * the crash must be larger than the socket buffers, or what must survive it is nothing.
   */
  sizes: {
    disk: { putBytes: 24 * 1024 * 1024, partBytes: 8 * 1024 * 1024, tusFirstPatchBytes: 4 * 1024 * 1024, tusPatchBytes: 96 * 1024 * 1024 },
    // On FerretDB a PATCH larger than the socket buffers takes most of a minute: the one cut there is
    // smaller, so the mongo run checks that HEAD keeps what was acknowledged and that the upload resumes.
    // Parts of 1 MiB are still four GridFS chunks each; larger ones only made each crash slower.
    mongo: { putBytes: 6 * 1024 * 1024, partBytes: 1 * 1024 * 1024, tusFirstPatchBytes: 1 * 1024 * 1024, tusPatchBytes: 4 * 1024 * 1024 },
    // On s3 a PUT over 8 MiB goes up in parts (its sha256 in a digest), a part of 6 MiB is copied
    // server-side when composed; a PATCH killed part-way keeps nothing (it was never acknowledged).
    s3: { putBytes: 12 * 1024 * 1024, partBytes: 6 * 1024 * 1024, tusFirstPatchBytes: 1 * 1024 * 1024, tusPatchBytes: 4 * 1024 * 1024 },
  } as Record<string, { putBytes: number; partBytes: number; tusFirstPatchBytes: number; tusPatchBytes: number }>,
}

export const FULL_DISK = { tmpfsMiB: 64, fillFileBytes: 4 * 1024 * 1024 }

/** schemathesis, from PyPI, in the virtual environment scripts/test-services.sh install creates. */
export const SCHEMATHESIS = {
  version: '4.32.5',
  maxExamples: 25,
  seed: 20240610,
  /** schemathesis's own time budget (fuzzing and stateful tests go on until it is spent). */
  maxTimeSeconds: 60,
  /**
   * One thread: with two, Python 3.11's ast.parse (hypothesis calls it to describe its filters)
   * now and then fails with "SystemError: AST constructor recursion depth mismatch" (CPython
   * issue 106905: the depth is kept per interpreter, not per thread) and schemathesis stops.
   */
  workers: 1,
  /** A bound on the process, should it not stop by itself. */
  timeoutSeconds: 180,
}

/** The events audit (events.test.ts). */
export const EVENTS = {
  /** kill -9 per store (the count). */
  crashes: 20,
  /** Changes in flight when a kill comes, on disjoint paths. */
  batch: 4,
  /**
   * The kill comes at a random moment between these fractions of the time the uncut batch before it
   * took: rarely before the requests arrive, rarely after their answers.
   */
  killWithin: [0.25, 1.2] as const,
  /** COMPLETION_LEASE_SECONDS: on the mongo store, how long a dead process's registration lasts before its intents are settled. */
  livenessSeconds: 2,
  /** Two instances: clients changing their own paths one request at a time, and how many each. */
  clients: 6,
  opsPerClient: 20,
}
