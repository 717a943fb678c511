/**
 * The files of a drop, with their paths relative to what was dropped: a dropped folder brings its
 * whole tree (File and Directory Entries API), so dropping a folder creates it in the store.
 */

/** Entries read from one folder at most (a bound on a hostile or huge drop). */
const MAX_FILES = 10_000

export async function droppedFiles(transfer: DataTransfer): Promise<{ file: File; relativePath: string }[]> {
  const roots = [...transfer.items].map((item) => item.webkitGetAsEntry?.()).filter((e): e is FileSystemEntry => Boolean(e))
  if (roots.length === 0) return [...transfer.files].map((file) => ({ file, relativePath: file.name }))
  const out: { file: File; relativePath: string }[] = []
  const walk = async (entry: FileSystemEntry, prefix: string): Promise<void> => {
    if (out.length >= MAX_FILES) return
    const path = prefix ? `${prefix}/${entry.name}` : entry.name
    if (entry.isFile) {
      const file = await new Promise<File>((resolve, reject) => (entry as FileSystemFileEntry).file(resolve, reject))
      out.push({ file, relativePath: path })
    } else if (entry.isDirectory) {
      const reader = (entry as FileSystemDirectoryEntry).createReader()
      // readEntries answers in batches until an empty one.
      for (;;) {
        const batch = await new Promise<FileSystemEntry[]>((resolve, reject) => reader.readEntries(resolve, reject))
        if (batch.length === 0) break
        for (const child of batch) await walk(child, path)
      }
    }
  }
  for (const root of roots) await walk(root, '')
  return out
}
