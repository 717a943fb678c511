/**
 * The s3 driver on the run's SeaweedFS: the storage contract, then what only an object store shows.
 */
import { describe } from 'vitest'
import { openS3Store, s3TestTarget } from '../helpers/s3-store.js'
import { describeStorageContract } from './contract.js'

const target = s3TestTarget()

describe.runIf(target !== undefined)('s3 store', () => {
  describeStorageContract('s3', { open: async (policy) => openS3Store(target!, { uploads: policy }) })
})
