/** The access-control suite (access-control.ts) against the node adapter, in-process. */
import { describeAccessControl } from './access-control.js'

describeAccessControl('node')
