/**
 * Events across kill -9 (issue 21), black box: the built service delivers to a receiver in this
 * process, which verifies every request with the reference `standardwebhooks` library.
 *
 * The crash loop: batches of concurrent uploads (PUTs, and completions of uploads in parts), moves
 * and deletes (of folders too, on disk), each with its own X-Request-Id, on disjoint paths, killed at
 * a random moment, 20 times per store. After each restart, what every cut request did is read from
 * the store (the new version or the old one, moved or not, gone or not). Once all is delivered: every
 * change that happened has exactly one event id (a completion two: its file's and upload.completed),
 * each delivered at least once, every copy the same bytes; no change that did not happen has one; and
 * the receiver's view of the store, built from the events alone, is the store.
 *
 * Two instances with WORKERS=2 each on one store: every change has exactly one event, duplicates (if
 * any) carry the same webhook-id, and the view built from the events is the store.
 */
import { randomBytes } from 'node:crypto'
import { afterAll, describe, expect, test } from 'vitest'
import { freePorts } from '../helpers/ports.js'
import type { ProcessService } from '../helpers/process-service.js'
import { sha256 } from '../helpers/streams.js'
import { type Delivery, newSecret, type Receiver, startReceiver } from '../helpers/webhook-receiver.js'
import { expectNone } from './expect-none.js'
import { auditedStores, dropStoreDatabase, report, startBuilt, storeEnv, tempDir } from './harness.js'
import { EVENTS } from './knobs.js'
import { listAll, readInfo } from './reads.js'
import { type Answer, send } from './sender.js'

const started: ProcessService[] = []
const receivers: Receiver[] = []
afterAll(async () => {
  await Promise.all(started.map((s) => s.stop('SIGKILL')))
  await Promise.all(receivers.map((r) => r.close()))
})

const uniform = (min: number, max: number) => min + Math.random() * (max - min)
const pick = <T>(items: T[]): T => items[Math.floor(Math.random() * items.length)]!

/** `create`: a createupload, `complete`: its completeupload (the part sent in between, not a change). */
type Kind = 'put' | 'create' | 'complete' | 'move' | 'delete' | 'rmdir' | 'mvdir'

interface Op {
  kind: Kind
  requestId: string
  /** put, delete, rmdir: the target; move, mvdir: the source. */
  path: string
  to?: string
  /** put, complete: the new bytes. */
  body?: Buffer
  /** put, complete: their sha256. */
  sha?: string
  uploadId?: string
  answer?: Answer | undefined
  committed?: boolean
}

/** The store as the test knows it: path -> sha256 of the file there. */
type Model = Map<string, string>

const under = (model: Model, dir: string) => [...model.keys()].filter((p) => p.startsWith(`${dir}/`))

/**
 * The receiver's view of the store, from the events alone: each event once (its first arrival),
 * in the order they arrived (in order per path is what the service promises, and all this needs).
 */
function viewOf(deliveries: Delivery[]): Model {
  const view: Model = new Map()
  const seen = new Set<string>()
  for (const d of deliveries) {
    if (seen.has(d.id)) continue
    seen.add(d.id)
    const { path, from, kind, sha256: sha } = d.data as { path: string; from?: string; kind?: string; sha256?: string }
    if (d.type === 'file.created' || d.type === 'file.replaced') view.set(path, sha!)
    else if (d.type === 'file.deleted') {
      if (kind === 'directory') for (const p of under(view, path)) view.delete(p)
      else view.delete(path)
    } else if (d.type === 'file.moved') {
      if (kind === 'directory') {
        for (const p of under(view, from!)) {
          view.set(`${path}${p.slice(from!.length)}`, view.get(p)!)
          view.delete(p)
        }
      } else {
        view.delete(from!)
        view.set(path, sha!)
      }
    }
  }
  return view
}

/** What the store holds: path -> sha256, from a recursive listing. */
async function storeView(api: string, store: string): Promise<Model> {
  const listing = await listAll(api, store, '')
  if (listing.status !== 200) throw new Error(`the listing answers ${listing.status}`)
  return new Map(listing.entries.map((e) => [e.path, e.sha256]))
}

function compareViews(view: Model, stored: Model): string[] {
  const problems: string[] = []
  for (const [path, sha] of stored) if (view.get(path) !== sha) problems.push(`the store holds ${path} (${sha.slice(0, 8)}), the events say ${view.get(path)?.slice(0, 8) ?? 'nothing'}`)
  for (const path of view.keys()) if (!stored.has(path)) problems.push(`the events say ${path} exists, the store has nothing there`)
  return problems
}

/**
 * Every change has exactly one event id (all copies of an id the same bytes), no change that did not
 * happen has one, and no event comes from elsewhere. Returns the problems and the duplicates.
 */
function checkEvents(receiver: Receiver, ops: Op[]): { problems: string[]; duplicates: number; distinct: number } {
  const problems = [...receiver.invalid.map((i) => `a request failed verification: ${i}`)]
  const bodies = new Map<string, string>()
  let duplicates = 0
  for (const d of receiver.taken) {
    const known = bodies.get(d.id)
    if (known === undefined) bodies.set(d.id, d.body)
    else {
      duplicates++
      if (known !== d.body) problems.push(`${d.id} was delivered twice with different bodies`)
    }
  }
  const byRequest = new Map<string, Set<string>>()
  for (const d of receiver.taken) {
    const requestId = String(d.data.requestId)
    if (!byRequest.has(requestId)) byRequest.set(requestId, new Set())
    byRequest.get(requestId)!.add(d.id)
  }
  const ours = new Set(ops.map((o) => o.requestId))
  for (const requestId of byRequest.keys()) if (!ours.has(requestId)) problems.push(`an event for a request never made (${requestId})`)
  for (const op of ops) {
    const ids = byRequest.get(op.requestId)?.size ?? 0
    // A completion is one change with two events: its file's, and upload.completed.
    const expected = op.kind === 'complete' ? 2 : 1
    if (op.committed && ids !== expected) problems.push(`${op.kind} ${op.path}${op.to ? ` -> ${op.to}` : ''} happened and has ${ids} event ids`)
    if (!op.committed && ids !== 0) problems.push(`${op.kind} ${op.path}${op.to ? ` -> ${op.to}` : ''} did not happen and has ${ids} event ids`)
  }
  return { problems, duplicates, distinct: bodies.size }
}

/** Waits until the store's event backlog has been empty at three checks in a row (everything delivered). */
async function drained(api: string, store: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let empty = 0
  while (empty < 3) {
    if (Date.now() > deadline) throw new Error(`the event backlog of ${store} did not drain within ${timeoutMs} ms`)
    const check = (await (await fetch(`${api}/check`)).json().catch(() => ({}))) as { events?: { stores?: Record<string, { backlog: number }> } }
    empty = check.events?.stores?.[store]?.backlog === 0 ? empty + 1 : 0
    await new Promise((resolve) => setTimeout(resolve, 700))
  }
}

const opRequest = (api: string, store: string, op: Op): { method: string; url: string; headers: Record<string, string>; body?: Buffer } => {
  const headers = { 'X-Request-Id': op.requestId }
  switch (op.kind) {
    case 'put':
      return { method: 'PUT', url: `${api}/${store}/upload/${op.path}`, headers, body: op.body! }
    case 'create':
      return { method: 'POST', url: `${api}/${store}/createupload/${op.path}`, headers: { ...headers, 'Content-Type': 'application/json' }, body: Buffer.from('{}') }
    case 'complete':
      return { method: 'POST', url: `${api}/${store}/completeupload/${op.uploadId}`, headers: { ...headers, 'Content-Type': 'application/json' }, body: Buffer.from('{}') }
    case 'move':
    case 'mvdir':
      return { method: 'POST', url: `${api}/${store}/move/${op.path}`, headers: { ...headers, 'Content-Type': 'application/json' }, body: Buffer.from(JSON.stringify({ to: op.to })) }
    case 'delete':
      return { method: 'DELETE', url: `${api}/${store}/delete/${op.path}`, headers }
    case 'rmdir':
      return { method: 'DELETE', url: `${api}/${store}/delete/${op.path}?recursive=true`, headers }
  }
}

/** Applies a change that happened to the model. */
function apply(model: Model, op: Op): void {
  switch (op.kind) {
    case 'put':
    case 'complete':
      model.set(op.path, op.sha!)
      break
    case 'create':
      break
    case 'move':
      model.set(op.to!, model.get(op.path)!)
      model.delete(op.path)
      break
    case 'delete':
      model.delete(op.path)
      break
    case 'rmdir':
      for (const p of under(model, op.path)) model.delete(p)
      break
    case 'mvdir':
      for (const p of under(model, op.path)) {
        model.set(`${op.to}${p.slice(op.path.length)}`, model.get(p)!)
        model.delete(p)
      }
      break
  }
}

/** Whether a cut `op` happened, from what the store shows now (`before`: the model before it); a problem when neither fits. */
async function happened(api: string, store: string, op: Op, before: Model): Promise<boolean | string> {
  const sha = async (path: string) => {
    const { status, info } = await readInfo(api, store, path)
    return status === 200 ? info!.sha256 : status === 404 ? undefined : `status ${status}`
  }
  const files = async (dir: string) => new Map((await listAll(api, store, dir)).entries.map((e) => [e.path, e.sha256]))
  switch (op.kind) {
    case 'create':
      return `a createupload is never cut (it is made before the batch)`
    case 'put':
    case 'complete': {
      const now = await sha(op.path)
      return now === op.sha ? true : now === before.get(op.path) ? false : `${op.path} holds ${now}: neither the old version nor the new`
    }
    case 'move': {
      const [at, to] = [await sha(op.path), await sha(op.to!)]
      if (at === undefined && to === before.get(op.path)) return true
      if (at === before.get(op.path) && to === undefined) return false
      return `move ${op.path} -> ${op.to}: ${at ?? 'nothing'} at the source, ${to ?? 'nothing'} at the target`
    }
    case 'delete': {
      const now = await sha(op.path)
      return now === undefined ? true : now === before.get(op.path) ? false : `${op.path} holds ${now} after a delete`
    }
    case 'rmdir':
    case 'mvdir': {
      const [at, to] = [await files(op.path), op.to ? await files(op.to) : new Map()]
      const had = under(before, op.path).length
      if (at.size === 0 && (op.kind === 'rmdir' || to.size === had)) return true
      if (at.size === had && to.size === 0) return false
      return `${op.kind} ${op.path}: ${at.size} files left of ${had}, ${to.size} at the target`
    }
  }
}

/** A batch of changes on disjoint paths, drawn from the model. */
function batch(model: Model, size: number, folders: boolean, n: { i: number }): Op[] {
  const FILES = Array.from({ length: 8 }, (_, i) => `f/${i}.bin`)
  const DIRS = ['d/0', 'd/1', 'd/2']
  const used = new Set<string>()
  const ops: Op[] = []
  const id = () => `op-${n.i++}-${randomBytes(3).toString('hex')}`
  const put = (path: string): Op => {
    const body = randomBytes(Math.floor(uniform(1024, 64 * 1024)))
    // Some writes are uploads in parts: the batch cuts their completion.
    return { kind: Math.random() < 0.2 ? 'complete' : 'put', requestId: id(), path, body, sha: sha256(body) }
  }
  for (let tries = 0; ops.length < size && tries < 50; tries++) {
    if (folders && Math.random() < 0.3) {
      const dir = pick(DIRS.filter((d) => !used.has(d)))
      if (!dir) continue
      const held = under(model, dir).length
      const empty = DIRS.find((d) => d !== dir && !used.has(d) && under(model, d).length === 0)
      const r = Math.random()
      let op: Op
      if (held < 2 || r < 0.4) op = put(`${dir}/${held % 2 === 0 ? 'a' : 'b'}.bin`)
      else if (r < 0.7 || !empty) op = { kind: 'rmdir', requestId: id(), path: dir }
      else op = { kind: 'mvdir', requestId: id(), path: dir, to: empty }
      used.add(dir)
      if (op.to) used.add(op.to)
      ops.push(op)
      continue
    }
    const path = pick(FILES.filter((f) => !used.has(f)))
    if (!path) break
    used.add(path)
    if (!model.has(path)) {
      ops.push(put(path))
      continue
    }
    const free = FILES.find((f) => !used.has(f) && !model.has(f))
    const r = Math.random()
    if (r < 0.4) ops.push(put(path))
    else if (r < 0.7 && free) {
      used.add(free)
      ops.push({ kind: 'move', requestId: id(), path, to: free })
    } else ops.push({ kind: 'delete', requestId: id(), path })
  }
  return ops
}

const stores = auditedStores('the events crash loop')

describe.each(stores)('events across kill -9 on the %s store', (store) => {
  test(`${EVENTS.crashes} kill -9 in a mixed load: exactly one event per change that happened, none for one that did not, the events' view is the store`, { timeout: 300_000 }, async () => {
    const secret = newSecret()
    const receiver = await startReceiver([secret])
    receivers.push(receiver)
    const dir = await tempDir(`events-${store}`)
    const [port] = (await freePorts(1)) as [number]
    const env: Record<string, string> = {
      PORT: String(port),
      STORAGE_DIR: dir.path,
      WEBHOOK_URL: receiver.url,
      WEBHOOK_SECRET: secret,
      WEBHOOK_RETRY_DELAY_MAX: '500ms',
      SWEEP_INTERVAL_SECONDS: '1',
      // The mongo store counts a process dead once its registration has been silent this long.
      COMPLETION_LEASE_SECONDS: String(EVENTS.livenessSeconds),
      ...storeEnv(store),
    }
    let svc = await startBuilt(env)
    started.push(svc)
    const api = () => svc.api
    const model: Model = new Map()
    const ops: Op[] = []
    const problems: string[] = []
    const counter = { i: 0 }
    let crashes = 0
    let cut = 0
    let cutButHappened = 0
    try {
      const run = (todo: Op[]) =>
        todo.map((op) => {
          const r = opRequest(api(), store, op)
          return send(r.url, r.method, r.headers, r.body)
        })
      /** Creates the uploads the batch completes, with their part: changes of their own, never cut. */
      const prepare = async (todo: Op[]) => {
        for (const op of todo.filter((o) => o.kind === 'complete')) {
          const create: Op = { kind: 'create', requestId: `${op.requestId}-create`, path: op.path }
          const r = opRequest(api(), store, create)
          create.answer = await send(r.url, r.method, r.headers, r.body).answer
          create.committed = create.answer?.status === 201
          ops.push(create)
          if (!create.committed) {
            problems.push(`createupload ${op.path} answered ${create.answer?.status}`)
            continue
          }
          op.uploadId = (JSON.parse(create.answer!.body.toString()) as { uploadId: string }).uploadId
          const part = await send(`${api()}/${store}/uploadpart/${op.uploadId}?part=1`, 'PUT', {}, op.body).answer
          if (part?.status !== 200) problems.push(`uploadpart ${op.path} answered ${part?.status}`)
        }
      }
      for (let round = 0; round < EVENTS.crashes; round++) {
        // A batch that runs to its end, timed: the next one is killed within as long.
        const uncut = batch(model, EVENTS.batch, store === 'disk', counter)
        await prepare(uncut)
        const t0 = performance.now()
        const uncutAnswers = await Promise.all(run(uncut).map((s) => s.answer))
        const took = performance.now() - t0
        for (const [i, op] of uncut.entries()) {
          op.answer = uncutAnswers[i]
          ops.push(op)
          op.committed = op.answer !== undefined && op.answer.status >= 200 && op.answer.status < 300
          if (op.committed) apply(model, op)
          else problems.push(`round ${round}: ${op.kind} ${op.path} answered ${op.answer?.status} ${op.answer?.body.toString().slice(0, 160)}`)
        }
        const todo = batch(model, EVENTS.batch, store === 'disk', counter)
        await prepare(todo)
        const before = new Map(model)
        const sending = run(todo)
        const victim = svc
        const timer = setTimeout(() => victim.child.kill('SIGKILL'), took * uniform(EVENTS.killWithin[0], EVENTS.killWithin[1]))
        const answers = await Promise.all(sending.map((s) => s.answer))
        clearTimeout(timer)
        victim.child.kill('SIGKILL')
        await victim.exited
        crashes++
        svc = await startBuilt(env)
        started.push(svc)
        for (const [i, op] of todo.entries()) {
          op.answer = answers[i]
          ops.push(op)
          const status = op.answer?.status
          if (status !== undefined && status >= 200 && status < 300) op.committed = true
          else if (status !== undefined) problems.push(`round ${round}: ${op.kind} ${op.path} answered ${status} ${op.answer!.body.toString().slice(0, 160)}`)
          else {
            cut++
            const outcome = await happened(api(), store, op, before)
            if (typeof outcome === 'string') problems.push(`round ${round}: ${outcome}`)
            op.committed = outcome === true
            if (op.committed) cutButHappened++
          }
          if (op.committed) apply(model, op)
        }
      }
      await drained(api(), store, 90_000)
      const events = checkEvents(receiver, ops)
      problems.push(...events.problems)
      const stored = await storeView(api(), store)
      problems.push(...compareViews(viewOf(receiver.taken), stored), ...compareViews(model, stored).map((p) => `the test's model: ${p}`))
      const happenedCount = ops.filter((o) => o.committed).length
      await report(`events crash loop ${store}`, {
        readsAudited: receiver.taken.length,
        mismatches: problems.length,
        crashesSurvived: crashes,
        failed: problems.length ? [`${problems.length} problems, e.g. ${problems.slice(0, 4).join(' | ')}`] : [],
      })
      console.log(
        `[reliability] events crash loop ${store}: ${crashes} kill -9, ${ops.length} changes asked (${cut} cut by a kill, ${cutButHappened} of them visible after it), ` +
          `${happenedCount} happened; ` +
          `${events.distinct} event ids, ${receiver.taken.length} deliveries (${events.duplicates} repeated after a kill, same id and bytes); ${stored.size} files at the end`,
      )
      expect(crashes).toBe(EVENTS.crashes)
      expect(cut).toBeGreaterThan(0)
      expectNone(problems, `in ${crashes} crashes`)
    } finally {
      await svc.stop('SIGKILL')
      await dropStoreDatabase(env)
      await dir.remove()
    }
  })

  test('two instances with WORKERS=2 each on one store: one event per change, duplicates only with their own webhook-id', { timeout: 240_000 }, async () => {
    const secret = newSecret()
    const receiver = await startReceiver([secret])
    receivers.push(receiver)
    const dir = await tempDir(`events-two-${store}`)
    const env: Record<string, string> = {
      STORAGE_DIR: dir.path,
      WORKERS: '2',
      WEBHOOK_URL: receiver.url,
      WEBHOOK_SECRET: secret,
      COMPLETION_LEASE_SECONDS: String(EVENTS.livenessSeconds),
      ...storeEnv(store),
    }
    const instances = [await startBuilt(env), await startBuilt(env)]
    started.push(...instances)
    const ops: Op[] = []
    const problems: string[] = []
    try {
      // Each client owns two paths and changes them one request at a time, through either instance.
      await Promise.all(
        Array.from({ length: EVENTS.clients }, async (_, c) => {
          const model: Model = new Map()
          const paths = [`c${c}/x.bin`, `c${c}/y.bin`]
          for (let i = 0; i < EVENTS.opsPerClient; i++) {
            const path = pick(paths)
            const other = paths.find((p) => p !== path)!
            const requestId = `c${c}-${i}`
            let op: Op
            if (!model.has(path)) {
              const body = randomBytes(Math.floor(uniform(512, 8192)))
              op = { kind: 'put', requestId, path, body, sha: sha256(body) }
            } else if (Math.random() < 0.3 && !model.has(other)) op = { kind: 'move', requestId, path, to: other }
            else if (Math.random() < 0.4) op = { kind: 'delete', requestId, path }
            else {
              const body = randomBytes(Math.floor(uniform(512, 8192)))
              op = { kind: 'put', requestId, path, body, sha: sha256(body) }
            }
            const r = opRequest(pick(instances).api, store, op)
            op.answer = await send(r.url, r.method, r.headers, r.body).answer
            ops.push(op)
            if (op.answer && op.answer.status >= 200 && op.answer.status < 300) {
              op.committed = true
              apply(model, op)
            } else problems.push(`${op.kind} ${op.path} answered ${op.answer?.status} ${op.answer?.body.toString().slice(0, 160)}`)
          }
        }),
      )
      await drained(instances[0]!.api, store, 60_000)
      const events = checkEvents(receiver, ops)
      problems.push(...events.problems)
      const stored = await storeView(instances[1]!.api, store)
      problems.push(...compareViews(viewOf(receiver.taken), stored))
      await report(`events two instances ${store}`, { readsAudited: receiver.taken.length, mismatches: problems.length, failed: problems.slice(0, 4) })
      console.log(
        `[reliability] events, two instances with WORKERS=2 on ${store}: ${ops.length} changes, ${events.distinct} event ids, ` +
          `${receiver.taken.length} deliveries (${events.duplicates} repeated); ${stored.size} files at the end`,
      )
      expectNone(problems, `with two instances`)
    } finally {
      await Promise.all(instances.map((s) => s.stop('SIGTERM')))
      await dropStoreDatabase(env)
      await dir.remove()
    }
  })
})
