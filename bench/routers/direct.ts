// The baseline: clients connect straight to the primary, no router in between.

import type { RouterSetup } from './router.js'

export const direct: RouterSetup = {
  name: 'direct',
  missing: () => null,
  async start(cluster) {
    return { name: 'direct', port: cluster.primary.port, pid: null, unsupported: {}, stop: async () => {} }
  },
}
