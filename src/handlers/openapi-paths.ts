/**
 * Routes match paths with slashes through Hono's regex parameters (`{path{.+}}`); OpenAPI has no
 * such syntax, so documents and listings show the plain template (`{path}`).
 */
export const openApiPath = (routePath: string): string => routePath.replace(/\{(\w+)\{[^}]*\}\}/g, '{$1}')
