/**
 * Every link inside the repository's Markdown files resolves: relative links name files of the
 * repository, and `#anchors` name headings of their target, by GitHub's rules. The checker itself is
 * proved first on a small tree of documents with every kind of link it must judge.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { checkMarkdownLinks, type LinkReport, readMarkdown, repositoryFiles } from './markdown-links.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

describe('the Markdown files of this repository', () => {
  it('link only to files and headings that exist in it', () => {
    const report = checkMarkdownLinks(ROOT, repositoryFiles(ROOT))
    expect(report.files).toContain('README.md')
    expect(report.files.filter((f) => f.startsWith('docs/')).length).toBeGreaterThanOrEqual(8)
    expect(report.checked).toBeGreaterThan(20)
    expect(report.broken).toEqual([])
  })
})

describe('the link checker', () => {
  let base: string
  let root: string
  let report: LinkReport
  const brokenUrls = () => report.broken.map((b) => `${b.file}:${b.url}`).sort()

  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'filestorage-links-'))
    root = join(base, 'repo')
    const files: Record<string, string> = {
      'README.md': [
        '# The project',
        '',
        '## `PUT` /{store}/upload — raw bytes!',
        '## Notes',
        '## Notes',
        '<a id="custom-anchor"></a>',
        '',
        '- [a doc](docs/guide.md), [a heading in it](docs/guide.md#a-section), [another file](docs/my%20file.md)',
        '- [code slug](#put-storeupload--raw-bytes), [second duplicate](#notes-1), [html anchor](#custom-anchor), [top](#)',
        '- [folder](docs/), [folder readme heading](docs#docs-home), [root-relative](/docs/guide.md)',
        '- [source line](src/a.ts#L3), [source lines](src/a.ts#L3-L5)',
        '- [site](https://example.com/x.md), [mail](mailto:a@example.com), [protocol-relative](//example.com/y)',
        '',
        '| column |',
        '| --- |',
        '| [in a table](docs/table-target.md) |',
        '',
        '```md',
        '[inside a code block](nowhere.md)',
        '```',
        '',
        '<img src="docs/pic.png" alt="">',
        '',
        // broken, one of each kind
        '- [missing file](docs/missing.md), [missing heading](docs/guide.md#no-such-section), [third duplicate](#notes-2)',
        '- [outside](../outside.md), [ignored file](data/local.txt), [bad escape](docs/%zz.md)',
        '- [anchor in code](src/a.ts#main), [html link](#)<a href="gone.html">x</a>, [folder anchor](src#x)',
        '',
        '[ref]: docs/gone-by-reference.md',
      ].join('\n'),
      'docs/README.md': '# Docs home\n',
      'docs/guide.md': '# Guide\n\n## A section\n\nBack to [the project](../README.md#the-project), [bad](../README.md#nope).\n',
      'docs/my file.md': '# Spaces\n',
      'docs/table-target.md': '# Table\n',
      'docs/pic.png': 'not really a picture',
      'src/a.ts': 'export {}\n',
    }
    for (const [file, text] of Object.entries(files)) {
      await mkdir(dirname(join(root, file)), { recursive: true })
      await writeFile(join(root, file), text)
    }
    // On disk but not in the repository: one outside its root, one git would ignore (not listed).
    await writeFile(join(base, 'outside.md'), '# Outside\n')
    await mkdir(join(root, 'data'))
    await writeFile(join(root, 'data/local.txt'), 'local')
    report = checkMarkdownLinks(root, Object.keys(files))
  })
  afterAll(async () => rm(base, { recursive: true, force: true }))

  it('reads every Markdown file, and only those', () => {
    expect(report.files).toEqual(['README.md', 'docs/README.md', 'docs/guide.md', 'docs/my file.md', 'docs/table-target.md'])
  })

  it('finds exactly the broken links, one of each kind', () => {
    expect(brokenUrls()).toEqual(
      [
        'README.md:#notes-2',
        'README.md:../outside.md',
        'README.md:data/local.txt',
        'README.md:docs/%zz.md',
        'README.md:docs/gone-by-reference.md',
        'README.md:docs/guide.md#no-such-section',
        'README.md:docs/missing.md',
        'README.md:gone.html',
        'README.md:src#x',
        'README.md:src/a.ts#main',
        'docs/guide.md:../README.md#nope',
      ].sort(),
    )
  })

  it('says why each link is broken, and on which line', () => {
    const byUrl = new Map(report.broken.map((b) => [b.url, b]))
    expect(byUrl.get('../outside.md')!.reason).toBe('points outside the repository')
    expect(byUrl.get('docs/missing.md')!.reason).toBe('no such file in the repository: docs/missing.md')
    expect(byUrl.get('docs/guide.md#no-such-section')!.reason).toBe('no heading or anchor "no-such-section" in docs/guide.md')
    expect(byUrl.get('docs/%zz.md')!.reason).toBe('malformed percent-encoding')
    expect(byUrl.get('src/a.ts#main')!.reason).toBe('src/a.ts has no anchors to link to')
    expect(byUrl.get('docs/missing.md')!.line).toBe(24)
    expect(byUrl.get('docs/gone-by-reference.md')!.line).toBe(28)
  })

  it('counts the links it checked, leaving out those to other sites', () => {
    const links = readMarkdown('[a](https://x.org) [b](b.md) [c](#c)\n\n[d]: mailto:x@y.z').links.map((l) => l.url)
    expect(links).toEqual(['https://x.org', 'b.md', '#c', 'mailto:x@y.z'])
    // README.md: 28 links (3 to other sites; the one in the code block is no link), docs/guide.md: 2.
    expect(report.checked).toBe(28 - 3 + 2)
  })

  it('slugs headings as GitHub does', () => {
    const { anchors } = readMarkdown(
      ['# Hello, World!', '## Hello, World!', '## Café *au* `lait`', '## <span>Tagged</span> heading', '## 3.5 Errors', '## A_b-c  d'].join('\n'),
    )
    expect([...anchors]).toEqual(['hello-world', 'hello-world-1', 'café-au-lait', 'tagged-heading', '35-errors', 'a_b-c--d'])
  })
})
