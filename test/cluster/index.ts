// The cluster harness for tests: start a real primary with streaming replicas (see src/cluster).

export * from '../../src/cluster/index.js'
