/**
 * Where the file API is mounted by default (SPEC 3). Its own module, with no imports, so that a
 * client (src/adapters/discovery) can use it without loading the handlers.
 */
export const DEFAULT_BASE_PATH = '/filestorage/v1'
