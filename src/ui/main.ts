/**
 * The file browser page (served by src/handlers/ui.ts): a store's folders with breadcrumbs, sorted
 * by name, size or date; uploads by file picker or drag and drop (uploads.ts); download by signed
 * URL; rename or move, delete with confirmation; previews (preview.ts). Where one is, is in the
 * URL's fragment (`#disk/reports/2025`), so the back button and links work.
 */
import { type Entry, type FileEntry, listFolder, MAX_ENTRIES, move, remove, signedDownloadUrl, storeNames, token } from './api.js'
import { byId, formatSize, h } from './dom.js'
import { explain } from './explain.js'
import { type Sort, type SortKey, sortEntries } from './listing.js'
import { closePreview, previewKind, showPreview } from './preview.js'
import { createUploader } from './uploads.js'
import { droppedFiles } from './dropped-files.js'

const state = { store: '', dir: '', sort: { key: 'name', descending: false } as Sort, entries: [] as Entry[], stores: [] as string[] }

const els = {
  tokenForm: byId<HTMLFormElement>('token-form'),
  token: byId<HTMLInputElement>('token'),
  tokenState: byId('token-state'),
  store: byId<HTMLSelectElement>('store'),
  crumbs: byId('crumbs'),
  picker: byId<HTMLInputElement>('picker'),
  newFolder: byId<HTMLButtonElement>('new-folder'),
  refresh: byId<HTMLButtonElement>('refresh'),
  error: byId('error'),
  status: byId('status'),
  table: byId<HTMLTableElement>('files'),
  body: byId<HTMLTableSectionElement>('file-rows'),
  drop: byId('drop'),
  uploads: byId('uploads'),
  preview: byId('preview'),
  ask: byId<HTMLDialogElement>('ask'),
}

const join = (dir: string, name: string) => (dir ? `${dir}/${name}` : name)

// ---- errors -------------------------------------------------------------------------------------

function showError(error: unknown): void {
  const { title, message, hint } = explain(error)
  els.error.replaceChildren(
    h('strong', { class: 'error-title' }, title),
    h('p', { class: 'error-message' }, message),
    h('p', { class: 'error-hint' }, hint),
    h('button', { type: 'button', onclick: () => (els.error.hidden = true) }, 'Dismiss'),
  )
  els.error.hidden = false
}

async function attempt(task: () => Promise<void>): Promise<void> {
  try {
    els.error.hidden = true
    await task()
  } catch (e) {
    showError(e)
  }
}

// ---- where we are -------------------------------------------------------------------------------

function readLocation(): void {
  const [store = '', ...segments] = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent)
  state.store = state.stores.includes(store) ? store : (state.stores[0] ?? '')
  state.dir = segments.join('/')
}

function go(dir: string, store = state.store): void {
  const hash = `#${[store, ...dir.split('/').filter(Boolean)].map(encodeURIComponent).join('/')}`
  if (location.hash === hash) void load()
  else location.hash = hash // hashchange loads
}

function renderCrumbs(): void {
  const parts = state.dir ? state.dir.split('/') : []
  const crumbs: Node[] = [h('a', { href: `#${encodeURIComponent(state.store)}` }, state.store)]
  parts.forEach((part, i) => {
    const dir = parts.slice(0, i + 1).join('/')
    crumbs.push(document.createTextNode(' / '))
    crumbs.push(i === parts.length - 1 ? h('span', { 'aria-current': 'page' }, part) : h('a', { href: `#${[state.store, ...parts.slice(0, i + 1)].map(encodeURIComponent).join('/')}`, 'data-dir': dir }, part))
  })
  els.crumbs.replaceChildren(...crumbs)
}

// ---- the listing --------------------------------------------------------------------------------

/** Counts listings asked for: the answer of one that a newer one replaced is dropped. */
let listings = 0
/** Set once the store names are known (at the end of this file), which starts the first listing. */
let storesKnown = false

/** Lists the folder in the URL. The table is `aria-busy` until the newest listing is shown. */
async function load(): Promise<void> {
  // Before then (a token given, the URL changed) there is no store to list: the first listing comes.
  if (!storesKnown) return
  const listing = ++listings
  readLocation()
  els.store.value = state.store
  renderCrumbs()
  closePreview(els.preview)
  els.table.setAttribute('aria-busy', 'true')
  state.entries = []
  els.status.textContent = 'loading…'
  renderRows()
  let shown: Entry[] = []
  let status = ''
  let error: unknown
  try {
    const { entries, truncated } = await listFolder(state.store, state.dir)
    shown = entries
    status = truncated ? `the first ${MAX_ENTRIES} entries` : ''
  } catch (e) {
    // A folder that does not exist yet is where a new folder's first upload will go.
    if ((e as { status?: number }).status === 404 && state.dir !== '') status = 'This folder is empty: upload files into it to create it.'
    else error = e
  }
  if (listing !== listings) return
  state.entries = shown
  els.status.textContent = status
  if (error) showError(error)
  else els.error.hidden = true
  renderRows()
  els.table.setAttribute('aria-busy', 'false')
}

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' })

function renderRows(): void {
  const rows = sortEntries(state.entries, state.sort).map((entry) => {
    const isFile = entry.type === 'file'
    const open = isFile ? () => void openFile(entry) : () => go(entry.path)
    return h(
      'tr',
      { 'data-path': entry.path, 'data-type': entry.type },
      h('td', { class: 'name' }, h('button', { type: 'button', class: `link ${entry.type}`, onclick: open }, isFile ? entry.name : `${entry.name}/`)),
      h('td', { class: 'size' }, isFile ? formatSize(entry.size) : ''),
      h('td', { class: 'modified' }, isFile ? dateFormat.format(new Date(entry.modified)) : ''),
      h(
        'td',
        { class: 'actions' },
        isFile ? h('button', { type: 'button', class: 'download', onclick: () => void download(entry) }, 'Download') : null,
        h('button', { type: 'button', class: 'rename', onclick: () => void renameOrMove(entry) }, 'Rename/move'),
        h('button', { type: 'button', class: 'delete', onclick: () => void confirmDelete(entry) }, 'Delete'),
      ),
    )
  })
  els.body.replaceChildren(...rows)
  if (!state.entries.length && !els.status.textContent) els.status.textContent = 'This folder is empty: drop files here or pick some to upload.'
  for (const button of els.table.querySelectorAll<HTMLButtonElement>('th button[data-sort]')) {
    const key = button.dataset.sort
    button.parentElement!.setAttribute('aria-sort', key === state.sort.key ? (state.sort.descending ? 'descending' : 'ascending') : 'none')
  }
}

function setSort(key: SortKey): void {
  state.sort = { key, descending: state.sort.key === key ? !state.sort.descending : false }
  renderRows()
}

// ---- actions ------------------------------------------------------------------------------------

/** The page's one dialog: a question, an optional text field, OK or Cancel. Resolves the text (or '' without a field), or null. */
function ask(question: string, options: { value?: string; ok: string }): Promise<string | null> {
  const input = options.value !== undefined ? h('input', { type: 'text', name: 'answer', value: options.value, required: true, spellcheck: 'false' }) : null
  const form = h(
    'form',
    { method: 'dialog' },
    h('p', {}, question),
    input,
    h('menu', {}, h('button', { value: 'cancel', type: 'submit', formnovalidate: true }, 'Cancel'), h('button', { value: 'ok', type: 'submit', class: 'primary' }, options.ok)),
  )
  els.ask.replaceChildren(form)
  return new Promise((resolve) => {
    els.ask.addEventListener('close', () => resolve(els.ask.returnValue === 'ok' ? (input?.value.trim() ?? '') : null), { once: true })
    els.ask.returnValue = ''
    els.ask.showModal()
    input?.select()
  })
}

async function openFile(file: FileEntry): Promise<void> {
  if (!previewKind(file)) return download(file)
  await attempt(() => showPreview(els.preview, state.store, file))
}

async function download(file: FileEntry): Promise<void> {
  await attempt(async () => {
    const url = await signedDownloadUrl(state.store, file.path)
    const link = h('a', { href: url, download: file.name, hidden: true })
    document.body.append(link)
    link.click()
    link.remove()
  })
}

async function renameOrMove(entry: Entry): Promise<void> {
  const to = await ask(`Rename or move ${entry.type === 'directory' ? 'the folder' : ''} “${entry.path}” to (a path in ${state.store}):`, {
    value: entry.path,
    ok: 'Move',
  })
  if (!to || to === entry.path) return
  await attempt(async () => {
    await move(state.store, entry.path, to.replace(/^\/+|\/+$/g, ''))
    await load()
  })
}

async function confirmDelete(entry: Entry): Promise<void> {
  const what = entry.type === 'directory' ? `the folder “${entry.path}” and everything in it` : `“${entry.path}”`
  if ((await ask(`Delete ${what}? This cannot be undone.`, { ok: 'Delete' })) === null) return
  await attempt(async () => {
    await remove(state.store, entry.path, entry.type === 'directory')
    await load()
  })
}

async function newFolder(): Promise<void> {
  const name = await ask('New folder name (it is created by the first file uploaded into it):', { value: '', ok: 'Open' })
  if (name) go(join(state.dir, name.replace(/^\/+|\/+$/g, '')))
}

// ---- uploads ------------------------------------------------------------------------------------

let refreshTimer: ReturnType<typeof setTimeout> | undefined
const refreshSoon = () => {
  clearTimeout(refreshTimer)
  refreshTimer = setTimeout(() => void load(), 300)
}
const uploader = createUploader(els.uploads, refreshSoon, (e) => showError(e))

function upload(files: { file: File; relativePath: string }[]): void {
  if (!state.store) return showError(new Error('the service named no store to upload to (is it running?)'))
  if (files.length) uploader.add(state.store, files.map(({ file, relativePath }) => ({ file, path: join(state.dir, relativePath) })))
}

// ---- wiring -------------------------------------------------------------------------------------

function showTokenState(): void {
  els.tokenState.textContent = token.get() ? 'a token is set for this tab' : 'no token: anonymous'
}

els.tokenForm.addEventListener('submit', (event) => {
  event.preventDefault()
  token.set(els.token.value.trim())
  els.token.value = ''
  showTokenState()
  void load()
})
byId('token-clear').addEventListener('click', () => {
  token.set('')
  showTokenState()
  void load()
})
els.store.addEventListener('change', () => go('', els.store.value))
els.refresh.addEventListener('click', () => void load())
els.newFolder.addEventListener('click', () => void newFolder())
els.picker.addEventListener('change', () => {
  upload([...(els.picker.files ?? [])].map((file) => ({ file, relativePath: file.name })))
  els.picker.value = ''
})
for (const button of els.table.querySelectorAll<HTMLButtonElement>('th button[data-sort]')) {
  button.addEventListener('click', () => setSort(button.dataset.sort as SortKey))
}
els.drop.addEventListener('dragover', (event) => {
  event.preventDefault()
  els.drop.classList.add('dragging')
})
els.drop.addEventListener('dragleave', () => els.drop.classList.remove('dragging'))
els.drop.addEventListener('drop', (event) => {
  event.preventDefault()
  els.drop.classList.remove('dragging')
  if (event.dataTransfer) void attempt(async () => upload(await droppedFiles(event.dataTransfer!)))
})
window.addEventListener('hashchange', () => void load())

showTokenState()
void attempt(async () => {
  state.stores = await storeNames()
  storesKnown = true
  els.store.replaceChildren(...state.stores.map((name) => h('option', { value: name }, name)))
  await load()
})
