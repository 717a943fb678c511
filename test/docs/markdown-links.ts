/**
 * Finds the broken links of a repository's Markdown files, read as GitHub renders them: a relative
 * link must name a file or folder of the repository (never one outside it, nor one git ignores),
 * and a `#fragment` must name a heading of its target (GitHub's slugs, from github-slugger) or an
 * `id` or `name` in its raw HTML. Links to other sites are not fetched.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { posix } from 'node:path'
import GithubSlugger from 'github-slugger'
import { Parser } from 'htmlparser2'
import type { Root } from 'mdast'
import { fromMarkdown } from 'mdast-util-from-markdown'
import { gfmFromMarkdown } from 'mdast-util-gfm'
import { toString } from 'mdast-util-to-string'
import { gfm } from 'micromark-extension-gfm'
import { visit } from 'unist-util-visit'

export interface Link {
  url: string
  line: number
}

export interface BrokenLink extends Link {
  /** The Markdown file, relative to the root. */
  file: string
  reason: string
}

export interface LinkReport {
  /** The Markdown files read, relative to the root. */
  files: string[]
  /** How many links to something inside the repository were checked. */
  checked: number
  broken: BrokenLink[]
}

const MARKDOWN = /\.(md|markdown)$/i
const README = /^readme\.(md|markdown)$/i
/** GitHub's anchors to lines of a file it shows as code: `#L12`, `#L12-L20`. */
const LINE_ANCHOR = /^L\d+(-L\d+)?$/
/** A URL with a scheme (`https:`, `mailto:`) or protocol-relative: it leaves the repository. */
const EXTERNAL = /^([a-z][a-z0-9+.-]*:|\/\/)/i

/** The repository's files as a clean clone has them: committed, or new and not ignored by git. */
export function repositoryFiles(root: string): string[] {
  const out = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: root, encoding: 'utf8' })
  return out
    .split('\0')
    .filter(Boolean)
    .filter((file) => existsSync(posix.join(root, file))) // a committed file deleted in the work tree is gone
}

/** What a Markdown document offers (anchors) and asks for (links), from its syntax tree. */
export function readMarkdown(text: string): { anchors: Set<string>; links: Link[] } {
  const tree: Root = fromMarkdown(text, { extensions: [gfm()], mdastExtensions: [gfmFromMarkdown()] })
  const slugger = new GithubSlugger()
  const anchors = new Set<string>()
  const links: Link[] = []
  visit(tree, (node) => {
    const line = node.position?.start.line ?? 0
    if (node.type === 'heading') {
      // GitHub slugs the heading's text as shown: no HTML tags, no image alt text.
      anchors.add(slugger.slug(toString(node, { includeHtml: false, includeImageAlt: false })))
    } else if (node.type === 'link' || node.type === 'image' || node.type === 'definition') {
      links.push({ url: node.url, line })
    } else if (node.type === 'html') {
      const parser = new Parser({
        onopentag(_name, attributes) {
          for (const name of ['id', 'name'] as const) if (attributes[name]) anchors.add(attributes[name])
          for (const name of ['href', 'src'] as const) if (attributes[name] !== undefined) links.push({ url: attributes[name], line })
        },
      })
      parser.end(node.value)
    }
  })
  return { anchors, links }
}

/** Checks every link of every Markdown file among `files` (paths relative to `root`, with `/`). */
export function checkMarkdownLinks(root: string, files: string[]): LinkReport {
  const fileSet = new Set(files)
  const folders = new Set(files.flatMap((file) => ancestors(file)))
  const documents = new Map<string, ReturnType<typeof readMarkdown>>()
  const read = (file: string) => {
    let document = documents.get(file)
    if (!document) documents.set(file, (document = readMarkdown(readFileSync(posix.join(root, file), 'utf8'))))
    return document
  }
  /** The anchors of a target: a Markdown file's, or those of the README GitHub shows for a folder. */
  const anchorsOf = (target: string): Set<string> | undefined => {
    if (fileSet.has(target)) return MARKDOWN.test(target) ? read(target).anchors : undefined
    const readme = files.find((file) => posix.dirname(file) === (target || '.') && README.test(posix.basename(file)))
    return readme ? read(readme).anchors : undefined
  }

  const markdownFiles = files.filter((file) => MARKDOWN.test(file)).sort()
  const broken: BrokenLink[] = []
  let checked = 0
  for (const file of markdownFiles) {
    for (const link of read(file).links) {
      if (EXTERNAL.test(link.url)) continue
      checked++
      const reason = checkLink(file, link.url)
      if (reason) broken.push({ file, ...link, reason })
    }
  }
  return { files: markdownFiles, checked, broken }

  function checkLink(file: string, url: string): string | undefined {
    const hashAt = url.indexOf('#')
    const [pathAndQuery, fragment] = hashAt < 0 ? [url, undefined] : [url.slice(0, hashAt), url.slice(hashAt + 1)]
    const path = pathAndQuery.split('?')[0]!
    let decodedPath: string
    let decodedFragment: string | undefined
    try {
      decodedPath = decodeURIComponent(path)
      decodedFragment = fragment === undefined ? undefined : decodeURIComponent(fragment)
    } catch {
      return 'malformed percent-encoding'
    }
    // On GitHub a path starting with `/` is relative to the repository's root.
    const joined = decodedPath === '' ? file : decodedPath.startsWith('/') ? decodedPath.slice(1) : posix.join(posix.dirname(file), decodedPath)
    const target = posix.normalize(joined).replace(/\/+$/, '').replace(/^\.$/, '')
    if (target === '..' || target.startsWith('../')) return 'points outside the repository'
    if (!fileSet.has(target) && !folders.has(target)) return `no such file in the repository: ${target || '.'}`
    if (!decodedFragment) return undefined // no fragment, or `#` alone: the top of the page
    const anchors = anchorsOf(target)
    if (anchors?.has(decodedFragment)) return undefined
    if (fileSet.has(target) && !MARKDOWN.test(target) && LINE_ANCHOR.test(decodedFragment)) return undefined
    return anchors ? `no heading or anchor "${decodedFragment}" in ${target || '.'}` : `${target || '.'} has no anchors to link to`
  }
}

/** `a/b/c.md` → `a`, `a/b`, and `` for the root. */
function ancestors(file: string): string[] {
  const parts = file.split('/').slice(0, -1)
  return ['', ...parts.map((_, i) => parts.slice(0, i + 1).join('/'))]
}
