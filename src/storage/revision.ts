/** A fresh revision token: a version's own, stored with it (`PutOptions.revision`, `FileToBe.revision`). */
import { randomBytes } from 'node:crypto'

export const newRevision = (): string => randomBytes(12).toString('hex')
