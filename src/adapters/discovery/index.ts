/**
 * Finding filestorage (or any service) through Consul, and calling it by name: `filestorage/discovery`.
 */
export {
  createServiceResolver,
  DiscoveryError,
  ServiceResolver,
  type DiscoveryErrorCode,
  type ServiceInstance,
  type ServiceResolverOptions,
} from './service-resolver.js'
export {
  createFileStorageClient,
  FileStorageClient,
  FileStorageError,
  type CheckReport,
  type DownloadOptions,
  type FileStorageClientOptions,
  type ListOptions,
  type ListPage,
  type MoveOptions,
  type RetryEvent,
  type SignedUrl,
  type SignOptions,
  type UploadBody,
  type UploadOptions,
} from './file-storage-client.js'
export type { EntryInfo, FileInfo } from '../../storage/types.js'
